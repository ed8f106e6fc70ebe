"""The join-time link probe: the estimate from acks (made up, and recorded in the lab), and a
probe against the real hub."""

from __future__ import annotations

import asyncio
import json
import zlib
from collections import Counter
from pathlib import Path

import pytest
import websockets

from porchlight.kiosk.ladder import Ladder
from porchlight.kiosk.link_probe import OVERHEAD_SHARE, LinkProbe, estimate_bps
from porchlight.protocol import DEVICE_WS_PATH

RECORDED = json.loads((Path(__file__).parent / "probe_traces" / "rural.json").read_text())
PADDING_BPS = 8192 * 8 / 0.2  # 8 KB every 0.2 s
WIRE_BPS = PADDING_BPS * (1 + OVERHEAD_SHARE)


def test_steady_acks_give_the_rate() -> None:
    acks = [(0.3 + 0.2 * i, 8192) for i in range(8)]
    assert estimate_bps(acks) == pytest.approx(WIRE_BPS)
    assert estimate_bps(acks[:3]) is None
    assert estimate_bps([(1.0, 100)] * 5) is None


def test_slow_start_costs_little() -> None:
    # Acks slow at first (TCP opening its window), then 8 KB every 0.2 s.
    acks = [(0.5, 8192), (0.9, 8192)] + [(1.0 + 0.2 * i, 8192) for i in range(8)]
    bps = estimate_bps(acks)
    assert bps is not None and 0.9 * WIRE_BPS < bps <= WIRE_BPS


def test_acks_held_back_and_released_at_once_do_not_read_as_a_fast_link() -> None:
    # Recorded shape (rural probe 3): the third ack was lost on the way back, and TCP held it
    # and the two behind it until it was resent; the three came at one instant.
    acks = [(0.3, 8192), (0.5, 8192), (1.1, 8192), (1.1, 8192), (1.1, 8192), (1.3, 8192)]
    acks += [(1.5, 8192)]
    bps = estimate_bps(acks)
    assert bps is not None and 0.8 * WIRE_BPS < bps <= 1.02 * WIRE_BPS
    # The same when the batch is the first thing the probe hears (the first ack held).
    acks = [(0.9, 8192)] * 4 + [(1.1 + 0.2 * i, 8192) for i in range(3)]
    bps = estimate_bps(acks)
    assert bps is not None and 0.8 * WIRE_BPS < bps <= 1.02 * WIRE_BPS


def recorded_runs() -> list[dict]:
    return RECORDED["runs"]


def acks_within_probe(run: dict) -> list[tuple[float, int]]:
    """What the probe had heard when it stopped (its duration after it began)."""
    return [(t, RECORDED["wire_bytes"]) for t, _ in run["acks"] if t <= RECORDED["duration_s"]]


def test_the_recorded_probes_hold_batches_of_acks() -> None:
    # What made the probe misread the link is in the recording: acks released together.
    batched = [
        run
        for run in recorded_runs()
        if max(Counter(t for t, _ in acks_within_probe(run)).values()) >= 3
    ]
    assert len(batched) >= 4
    assert max(run["estimate_bps_then"] for run in batched) > 2 * RECORDED["link_bps"]


@pytest.mark.parametrize("index", range(len(RECORDED["runs"])))
def test_recorded_rural_probe_reads_what_the_hub_received(index: int) -> None:
    run = recorded_runs()[index]
    bps = estimate_bps(acks_within_probe(run))
    # The rate the padding reached the hub at (its own clock: no ack was held on the way
    # back), over the whole recording.
    hub = [t for t, _ in run["at_hub"]]
    at_hub_bps = (len(hub) - 1) * RECORDED["wire_bytes"] * 8 * (1 + OVERHEAD_SHARE)
    at_hub_bps /= hub[-1] - hub[0]
    assert bps is not None and 0.8 * at_hub_bps < bps < 1.1 * at_hub_bps
    # ... so the call starts on a rung the 292 kbit/s link carries, never above 180p15.
    link = Ladder(start_bps=RECORDED["link_bps"])
    start = Ladder(start_bps=bps)
    assert start.rungs.index(start.rung) >= link.rungs.index(link.rung)


def test_a_rural_probe_starts_the_call_at_180p15() -> None:
    # 292 kbit/s of link, about 94 % of it padding.
    acks = [(i * 8192 * 8 / 275_000, 8192) for i in range(12)]
    assert Ladder(start_bps=estimate_bps(acks)).rung.name == "180p15"


async def test_probe_against_the_real_hub_on_loopback(hub) -> None:
    server, seed = hub
    async with websockets.connect(
        server.ws_url + DEVICE_WS_PATH,
        additional_headers={"Authorization": f"Bearer {seed.device_token}"},
    ) as ws:
        await ws.send(json.dumps({"type": "hello", "state": "idle"}))
        outbox: asyncio.Queue[str] = asyncio.Queue()

        def send(message) -> bool:
            outbox.put_nowait(json.dumps(message))
            return True

        probe = LinkProbe(send, duration_s=0.5)

        async def write() -> None:
            while True:
                await ws.send(await outbox.get())

        async def read() -> None:
            async for raw in ws:
                message = json.loads(raw)
                if message["type"] == "probe_ack":
                    probe.on_ack(message["seq"])

        tasks = [asyncio.create_task(write()), asyncio.create_task(read())]
        try:
            bps = await probe.run()
        finally:
            for task in tasks:
                task.cancel()
    # Loopback is fast: far more than any rung needs.
    assert bps is not None and bps > 5_000_000
    assert Ladder(start_bps=bps).rung.name == "720p30"


async def test_the_probe_keeps_its_window_full_to_the_end() -> None:
    """A 2 Mbit/s link made of timers: each message leaves after the ones before it, taking
    its deflated size's time, and is acknowledged then. The probe must keep sending for its
    whole second (it once stopped after 0.8 s at 2.5 Mbit/s in the lab: its window shrank with
    every ack) and read the link's rate."""
    rate, duration = 2_000_000, 1.0
    loop = asyncio.get_running_loop()
    free_at = loop.time()
    sent_at: list[float] = []
    probe: LinkProbe

    def send(message) -> bool:
        nonlocal free_at
        deflate = zlib.compressobj(wbits=-15)
        wire = len(deflate.compress(message["pad"].encode()) + deflate.flush())
        free_at = max(loop.time(), free_at) + wire * 8 / rate
        sent_at.append(loop.time())
        loop.call_at(free_at, probe.on_ack, message["seq"])
        return True

    probe = LinkProbe(send, duration_s=duration)
    started = loop.time()
    bps = await probe.run()
    assert sent_at[-1] - started > 0.9 * duration
    assert bps is not None and 0.9 * rate < bps < 1.2 * rate


async def test_probe_stops_when_the_link_is_down() -> None:
    probe = LinkProbe(lambda message: False, duration_s=5)
    assert await asyncio.wait_for(probe.run(), 1) is None

"""The join-time link probe: the estimate from acks, and a probe against the real hub."""

from __future__ import annotations

import asyncio
import json

import websockets

from porchlight.kiosk.ladder import Ladder
from porchlight.kiosk.link_probe import LinkProbe, estimate_bps
from porchlight.protocol import DEVICE_WS_PATH


def test_estimate_uses_the_later_half_of_the_acks() -> None:
    # Slow start (acks bunched late), then 8 KB every 0.2 s = 327,680 bit/s of padding.
    acks = [(0.5, 8192), (0.9, 8192)] + [(1.0 + 0.2 * i, 8192) for i in range(8)]
    bps = estimate_bps(acks)
    assert bps is not None and 320_000 < bps < 360_000
    assert estimate_bps(acks[:3]) is None
    assert estimate_bps([(1.0, 100)] * 5) is None


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


async def test_probe_stops_when_the_link_is_down() -> None:
    probe = LinkProbe(lambda message: False, duration_s=5)
    assert await asyncio.wait_for(probe.run(), 1) is None

"""The join-time link probe: how much can this kiosk send, before the call starts?

While the patient waits, the kiosk sends padding to the hub over its WebSocket (`probe`,
docs/protocol.md) with at most `window_bytes` unacknowledged, for `duration_s`; the hub
answers each at once (`probe_ack`). The acknowledgements come back at the rate the uplink
delivered the padding, so that rate — over the later half of the probe, once TCP has opened
its window — is the estimate the call starts from (kiosk/ladder.py picks the rung). The hub
is on the clinic's side of the patient's home link, which is the link that limits a call.

Acks do not all come when their padding arrived. A lost TCP segment, either way, holds back
everything behind it until it is resent (head-of-line blocking), and then what was held comes
at once: on the lab's rural link (bench/link_probe.py) a lost ack held three for 0.5 s, and a
rate taken from the first of such a batch read 738 kbit/s off a 292 kbit/s link. A held ack
is only ever late, never early; so on a plot of bytes acknowledged against time the acks that
came on time lie on the upper convex hull and held ones under it, and the rate is taken
between two points of that hull.

The padding is random (base64 of random bytes), fresh for every message: the WebSocket
compresses (permessage-deflate), and repeated or regular padding would shrink to nothing on
the wire and measure nothing. What each message costs on the wire is estimated by deflating
one like it (about 3/4 of its length: base64 carries 6 bits a character).

`estimate_bps` is pure; `LinkProbe` does the sending (through the hub link's `send`) and is
fed the acks by kiosk/core.py.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import time
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from porchlight.protocol import DeviceSays

# What one probe message adds on the wire besides its padding (JSON, WebSocket framing and
# masking, TLS record, TCP/IP headers shared by about one 1448-byte segment per 1.4 KB).
OVERHEAD_SHARE = 0.06


def estimate_bps(acks: Sequence[tuple[float, int]]) -> float | None:
    """Bits per second from (arrival time, bytes) of acknowledged probe messages, in order.

    The rate between the last ack and the latest on-time ack (a vertex of the upper convex
    hull of bytes acknowledged over time) no later than halfway through the acks' span: by
    then TCP's slow start is over, and acks released in a batch after a retransmission do
    not count as having come faster than the link. None with too few acks.
    """
    if len(acks) < 4:
        return None
    hull: list[tuple[float, int]] = []  # (time, bytes acknowledged by then)
    total = 0
    for at, size in acks:
        total += size
        if hull and at <= hull[-1][0]:
            hull.pop()  # acks of one instant: only the last one's total is a point
        # Drop points that lie on or under the line from the one before them to this one.
        while len(hull) >= 2 and _under(hull[-2], hull[-1], (at, total)):
            hull.pop()
        hull.append((at, total))
    first, last = acks[0][0], hull[-1][0]
    if last <= first:
        return None
    start = [p for p in hull if p[0] <= first + (last - first) / 2][-1]
    return (hull[-1][1] - start[1]) * 8 * (1 + OVERHEAD_SHARE) / (last - start[0])


def _under(a: tuple[float, int], b: tuple[float, int], c: tuple[float, int]) -> bool:
    """Is `b` on or under the line from `a` to `c` (a, b, c in time order)?"""
    return (b[1] - a[1]) * (c[0] - a[0]) <= (c[1] - a[1]) * (b[0] - a[0])


@dataclass
class LinkProbe:
    send: Callable[[dict[str, Any]], bool]
    clock: Callable[[], float] = time.monotonic
    message_bytes: int = 8192
    window_bytes: int = 64 * 1024
    duration_s: float = 1.5
    _sizes: dict[int, int] = field(default_factory=dict)
    _acks: list[tuple[float, int]] = field(default_factory=list)
    _in_flight: int = 0
    _acked: asyncio.Event = field(default_factory=asyncio.Event)

    def _pad(self) -> str:
        return base64.b64encode(os.urandom(self.message_bytes * 3 // 4)).decode()

    def on_ack(self, seq: int) -> None:
        size = self._sizes.pop(seq, None)
        if size is None:
            return  # not ours (an earlier probe's) or a duplicate
        self._in_flight -= size
        self._acks.append((self.clock(), size))
        self._acked.set()

    @property
    def result_bps(self) -> float | None:
        return estimate_bps(self._acks)

    async def run(self) -> float | None:
        """Probe for `duration_s` (stops early if the link goes); returns the estimate."""
        sample = self._pad()
        # Bytes on the wire per message, after the socket's deflate (raw, as in RFC 7692).
        deflate = zlib.compressobj(wbits=-15)
        wire = len(deflate.compress(sample.encode()) + deflate.flush())
        seq = 0
        deadline = self.clock() + self.duration_s
        while self.clock() < deadline:
            while self._in_flight + wire <= self.window_bytes:
                if not self.send({"type": DeviceSays.PROBE, "seq": seq, "pad": self._pad()}):
                    return self.result_bps  # the hub link is down: keep what we have
                # In wire bytes, as on_ack uncounts it: counted as padding and uncounted as
                # wire, the window shrank with every ack until the probe stopped sending.
                self._sizes[seq] = wire
                self._in_flight += wire
                seq += 1
            self._acked.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._acked.wait(), max(0.01, deadline - self.clock()))
        return self.result_bps

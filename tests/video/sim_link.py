"""A small stateful model of a bottleneck link and an aiortc-like receiver, for ladder tests.

Not a packet simulator: once a second it turns what the sender puts on the wire into what
getStats would show — loss (random, plus tail drops above capacity), RTT (a queue builds
when over capacity) and a REMB that behaves like aiortc's (grows ≤ 8 %/s up to 1.5× what it
receives; cut to 0.85× the throughput when the queue grows).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field

from porchlight.kiosk.ladder import Ladder, LinkSample


@dataclass
class SimLink:
    capacity_bps: Callable[[float], float]
    base_rtt_s: float = 0.1
    random_loss: float = 0.0
    rng: random.Random = field(default_factory=lambda: random.Random(7))
    remb: float | None = None
    queue_s: float = 0.0

    def sample(
        self, now: float, sent_bps: float, dt: float = 1.0, audio_bps: float = 0.0
    ) -> LinkSample:
        cap = self.capacity_bps(now)
        over = max(0.0, sent_bps - cap)
        # tbf with ~200 ms of queue: it fills, then the excess is dropped.
        self.queue_s = min(0.2, max(0.0, self.queue_s + (over - max(0.0, cap - sent_bps)) / cap))
        tail = over / sent_bps if sent_bps > 0 and self.queue_s >= 0.2 else 0.0
        loss = min(1.0, tail + self.random_loss * self.rng.uniform(0.5, 1.5))
        # The receiver's REMB is estimated from the video packets only.
        received = min(sent_bps, cap) * max(0.0, sent_bps - audio_bps) / max(1.0, sent_bps)
        if self.remb is None:
            self.remb = received
        elif self.queue_s > 0.05:
            self.remb = 0.85 * received
        else:
            self.remb = min(self.remb * 1.08**dt, max(self.remb, 1.5 * received + 10_000))
        return LinkSample(
            now=now,
            sent_bps=sent_bps,
            remb_bps=self.remb,
            remb_at=now,
            loss=loss,
            rtt_s=self.base_rtt_s + self.queue_s,
            jitter_s=0.005,
            encode_s=0.004,
        )


def sent_for(ladder: Ladder) -> float:
    """What the sender puts on the wire at the ladder's current rung and cap (video + audio)."""
    decision = ladder.decision()
    return min(decision.rung.video_bps, decision.video_cap_bps) + ladder.config.audio_bps


def run(ladder: Ladder, link: SimLink, seconds: float, start: float = 0.0, step: float = 1.0):
    """Drive the ladder once per `step`; returns [(time, decision)]."""
    out = []
    t = start
    while t < start + seconds:
        t += step
        sample = link.sample(t, sent_for(ladder), step, audio_bps=ladder.config.audio_bps)
        out.append((t, ladder.update(sample)))
    return out

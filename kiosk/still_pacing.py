"""How fast a still may go up during a call: the link's headroom, not a share of it (issue 10).

Pure: time (`now`, seconds) is passed in. The kiosk asks `StillPacer.update` at every ladder
decision (about once a second) and hands the answer to the sync worker's token bucket
(kiosk/upload_pacing.py), which paces the still's chunks to it.

- Link: the ladder's estimate (our loss/delay estimate net of its headroom, or the
  receiver's REMB when that binds), but never more than the REMB plus the audio: the loss
  estimate alone can read far over the link (on the lab's 300 kbit/s rural line it swung
  between ~190 and ~540 kbit/s from one second to the next, recorded in
  tests/video/traces/rural.json) while the REMB is what the receiver sees arrive. The least
  of that over the last `window_s`, so one optimistic second never opens the tap.
- Budget: that link less a safety `margin`, less what the call sends now: the rung's video
  (capped while a REMB dip holds it) with its retransmission share, and the audio; or what was
  measured going out, if that is more. What is left is the still's. A fixed share of the
  estimate (the old rule: a quarter) took up to 135 kbit/s of a 300 kbit/s line the call
  already filled, so the still's bytes queued the call's packets behind them.
- After the ladder steps down to a lower rung (loss, delay, REMB) the link is congested right
  now, perhaps by the still itself: the still drops to its floor for `calm_s` so the router's
  queue drains and the call's new rung settles.
- Floor: a still always moves, at `floor_share` of what the call sends (a twentieth: well
  inside the video's own swing around its rate, which the ladder's 15 % headroom absorbs;
  an aiortc receiver's REMB is at most 1.5× what it gets and dips with CPU jitter, so on a
  fast link it often leaves no headroom at all), and at least `floor_bps`. When the call is
  audio-only the still is the only picture the clinician gets, so it gets more.
- Room: when what is left of the still would take more than `make_room_over_s` at its
  budget, the call makes room for it: the ladder holds the video one rung lower until the
  still's bytes are all up (Ladder.make_room). On the lab's rural line the headroom beside
  180p15 is 16-30 kbit/s, a minute for an 80 kB still; the clinician asked for the still and
  is waiting for it, and would rather the live picture ran at 10 frames a second for a few
  seconds. What the video gave up (with its retransmission share) is then the still's,
  whatever the estimate says: a receiver's REMB grows only to 1.5x what it gets, so the
  ladder's estimate falls with the rung and would show no new headroom. On a link with
  headroom, the still takes it and the picture is left alone. That step down is the pacer's
  own doing, so it starts no calm; a later one is the link's, and takes the room back.
- Chunk size: a chunk leaves the kiosk at the link's full speed, however well the average is
  paced, and waits in the home router's queue ahead of the call's packets; so a chunk and its
  request take at most `queue_s` at the link's estimate (1 KiB on a 300 kbit/s rural line,
  whose router queue holds about 8 kB).
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field

from porchlight.kiosk.ladder import Decision, LadderConfig, LinkSample
from porchlight.kiosk.upload_pacing import MAX_CHUNK, MIN_CHUNK, REQUEST_OVERHEAD, chunk_size


@dataclass(frozen=True)
class StillPacingConfig:
    # Share of the link estimate nobody uses: the estimate's error and room for the router's
    # queue to drain (the ladder's own estimate already keeps 15 % back for the call).
    margin: float = 0.10
    # With video flowing the still may take a while (80 kB: about a minute at 16 kbit/s with
    # small chunks' overhead); the live picture is what matters. Audio-only, the still is the
    # only picture, and a link too poor for video still carries this beside the audio.
    floor_bps: float = 16_000.0
    floor_share: float = 0.05  # ... or this share of what the call sends, if more
    audio_only_floor_bps: float = 32_000.0
    calm_s: float = 5.0  # after the ladder steps down, the still waits at its floor this long
    window_s: float = 5.0  # the link is the least estimate over this long
    queue_s: float = 0.05  # the longest a chunk (and its request) may queue at the link's rate
    # Make room (one rung down) when what is left of the still would take longer than this.
    make_room_over_s: float = 10.0

    def __post_init__(self) -> None:
        if not 0 <= self.margin < 1:
            raise ValueError("still pacing margin must be in [0, 1)")
        if not 0 < self.floor_bps <= self.audio_only_floor_bps or not 0 <= self.floor_share < 1:
            raise ValueError(
                "still floors must be positive (the audio-only one the larger), "
                "floor_share in [0, 1)"
            )
        if self.calm_s < 0 or self.window_s < 0 or self.queue_s <= 0:
            raise ValueError("calm_s and window_s must be 0 or more, queue_s more than 0")
        if self.make_room_over_s <= 0:
            raise ValueError("make_room_over_s must be more than 0")


@dataclass(frozen=True)
class CallLoad:
    """What the ladder says about the call at one decision (all bit/s)."""

    estimate_bps: float  # the ladder's link estimate (Decision.estimate_bps)
    rung_bps: float  # the rung's video rate (Rung.video_bps; 0: audio-only)
    video_bps: float  # what the video may send now (Decision.video_cap_bps, at most rung_bps)
    audio_bps: float  # the audio's reservation (LadderConfig.audio_bps)
    rtx_share: float = 0.10  # retransmissions and keyframes on top of the video rate
    sent_bps: float | None = None  # audio + video measured going out, if known
    remb_bps: float | None = None  # the receiver's REMB for the video, if fresh
    reason: str = ""  # why the ladder is on this rung (Decision.reason; "still": made room)


@dataclass(frozen=True)
class StillPace:
    budget_bps: float  # the sync worker's token bucket rate
    chunk_bytes: int  # bytes per PUT
    reason: str  # headroom / room / floor / calm (for logs and the bench)
    make_room: bool = False  # the ladder should hold the video one rung lower for the still


def call_load(
    estimate_bps: float,
    decision: Decision | None,
    sample: LinkSample | None,
    config: LadderConfig,
    sent_bps: float | None = None,
) -> CallLoad:
    """The ladder's word at one decision as a CallLoad (no decision yet: audio only; a REMB
    only while the ladder itself would count it: fresh, and video flowing)."""
    rung = decision.rung.video_bps if decision is not None else 0
    remb = None
    if rung and sample is not None and sample.remb_at is not None:
        fresh = sample.now - sample.remb_at <= config.remb_stale_s
        remb = sample.remb_bps if fresh else None
    return CallLoad(
        estimate_bps=estimate_bps,
        rung_bps=rung,
        video_bps=min(rung, decision.video_cap_bps) if decision is not None else 0,
        audio_bps=config.audio_bps,
        rtx_share=config.rtx_share,
        sent_bps=sent_bps,
        remb_bps=remb,
        reason=decision.reason if decision is not None else "",
    )


def link_bps(load: CallLoad) -> float:
    """What the link carries by this decision: the estimate, at most the REMB and the audio."""
    if load.remb_bps is None:
        return load.estimate_bps
    return min(load.estimate_bps, load.remb_bps + load.audio_bps)


def call_bps(load: CallLoad) -> float:
    """What the call puts on the link: the rung's (capped) video and its retransmissions, the
    audio; or what was measured going out, if more."""
    call = load.video_bps * (1 + load.rtx_share) + load.audio_bps
    return call if load.sent_bps is None else max(call, load.sent_bps)


def headroom_bps(link: float, call: float, margin: float) -> float:
    """What a link of `link` bit/s has left after the call, with `margin` of it kept free
    (below zero: the call itself is over the link)."""
    return link * (1 - margin) - call


def still_chunk(budget_bps: float, link_bps: float, queue_s: float) -> int:
    """Bytes per PUT: half a second of budget (upload_pacing.chunk_size), and no more than
    the link carries in `queue_s` with the request's own bytes, within MIN_CHUNK..MAX_CHUNK."""
    by_queue = link_bps / 8 * queue_s - REQUEST_OVERHEAD
    return int(max(MIN_CHUNK, min(MAX_CHUNK, chunk_size(budget_bps), by_queue)))


@dataclass
class StillPacer:
    """One call's still pacing: remembers the rung (to see a step down), the calm, and
    whether the call is making room for a still."""

    config: StillPacingConfig = field(default_factory=StillPacingConfig)
    calm_until: float = -math.inf
    rung_bps: float | None = None  # the rung at the last update
    links: deque[tuple[float, float]] = field(default_factory=deque)  # (when, link_bps)
    room: bool = False  # making room until the stills' bytes are all up
    freed_bps: float = 0.0  # what the video gave up for the still (with its retransmissions)

    def update(self, load: CallLoad, now: float, backlog_bytes: int = 0) -> StillPace:
        """The still's pace at this ladder decision; `backlog_bytes`: stills' bytes not yet
        on the hub."""
        cfg = self.config
        rates = (load.estimate_bps, load.rung_bps, load.video_bps, load.audio_bps)
        optional = (load.sent_bps, load.remb_bps)
        if not all(isinstance(r, int | float) and r >= 0 for r in rates) or not all(
            r is None or (isinstance(r, int | float) and r >= 0) for r in optional
        ):
            raise ValueError("the call's rates must be numbers of bit/s, 0 or more")
        if backlog_bytes < 0:
            raise ValueError("backlog_bytes must be 0 or more")
        if backlog_bytes == 0:
            self.room, self.freed_bps = False, 0.0  # the still is up: the video may climb
        before = self.rung_bps if self.rung_bps is not None else load.rung_bps
        dropped = load.rung_bps < before
        if dropped and load.reason == "still" and self.room:
            self.freed_bps = (before - load.rung_bps) * (1 + load.rtx_share)
        elif dropped:
            self.calm_until = now + cfg.calm_s
            self.freed_bps = 0.0
        self.rung_bps = load.rung_bps
        audio_only = load.rung_bps == 0
        floor = max(
            cfg.audio_only_floor_bps if audio_only else cfg.floor_bps,
            cfg.floor_share * call_bps(load),
        )
        while self.links and (self.links[0][0] < now - cfg.window_s or self.links[0][0] > now):
            self.links.popleft()  # older than the window (or from a clock that went back)
        self.links.append((now, link_bps(load)))
        link = min(bps for _, bps in self.links)
        spare = headroom_bps(link, call_bps(load), cfg.margin)
        if now < self.calm_until:
            budget, reason = floor, "calm"
        elif spare > floor and spare >= self.freed_bps:
            budget, reason = spare, "headroom"
        elif self.freed_bps > floor:
            budget, reason = self.freed_bps, "room"
        else:
            budget, reason = floor, "floor"
        # Chunks are sized to the link, but it carries at least what the call and still send.
        link = max(link, budget + call_bps(load))
        if backlog_bytes * 8 > budget * cfg.make_room_over_s and not audio_only:
            self.room = True  # kept until the bytes are up: the room it made is its budget
        return StillPace(budget, still_chunk(budget, link, cfg.queue_s), reason, self.room)

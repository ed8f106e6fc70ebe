"""The bandwidth ladder: which picture (size, frame rate, bit rate) the kiosk sends now.

Pure policy: no aiortc, no clock. `Ladder.update(sample)` takes one `LinkSample` (what
getStats and the encoder said over the last second, with its time) and returns a `Decision`.
kiosk/call.py feeds it and applies the rung through kiosk/rtc.py.

How it decides (the libwebrtc rules in ../shared/ANCHORS.md, plus what the lab measured):

- Two limits. The receiver's REMB (delay-based, measured on the video packets) is
  compared with a rung's video rate. Our own estimate is compared with what a rung needs
  (video plus a share for retransmissions, and audio) × headroom: it is loss-based (above
  10 % loss cut to sent × (1 − loss/2), not within `loss_holdoff_s` of a step down; below
  2 % grow 8 %/s, never past 2 × what is really sent) and delay-based (RTT 150 ms above its
  recent floor means a queue: cut to 0.85 × sent; only without a REMB, which is itself
  delay-based: aiortc's RTT from receiver reports is too noisy to second it).
- Audio is reserved first and never cut.
- Down is fast: as soon as the current rung does not fit, jump straight to the best rung
  that does (several rungs at once if needed), or to audio-only below the lowest rung. A
  REMB below us counts at once when it was just cut; one that is rising (catching up after
  a climb or a video restart) gets `remb_catchup_s`. One within `remb_tolerance` of the rung
  caps the video rate instead (frames skipped) for up to `remb_dip_s` (not back on the rung a
  failed climb came from when the REMB is cut again: that is the link, not the climb's queue
  draining); one under the lowest rung holds that rung, capped, for `remb_audio_only_s`
  before video stops.
- Loss is smoothed by time (samples repeat a receiver report), and a loss cut starts from
  what was sent over `sent_window_s`. The reports of the `loss_holdoff_s` after a step down
  still describe the old rate: the smoothing starts afresh after them, so one burst of loss
  cuts once, not again on its own echo.
- Up is careful: one rung at a time, only when the next rung fits with a margin, smoothed
  loss is low and the RTT calm for `up_hold_s`, and not soon after a drop. A REMB grows
  only to 1.5× what it receives, so a REMB near that ceiling does not stop the next step
  (it is app-limited, not a measure of the link) and a climb is itself the probe. One
  undone within `probe_window_s` doubles the wait before that rung is tried again: up to
  `retry_max_s` when the receiver's REMB stopped it (cheap, so kept short: probing is the
  only way to learn that a link got better), up to `retry_max_lossy_s` when packets were
  lost (and then it goes straight back to the rung it came from).
- The CPU is an input too: when encoding a frame takes more than `cpu_budget` of the frame
  interval for `cpu_over_samples` samples in a row, the ladder steps down and does not
  climb back above that rung for `cpu_hold_s`.
- Audio-only is left by itself: after `audio_only_retry_s` of calm audio the lowest video
  rung is tried again, backing off up to `audio_only_retry_max_s` while it keeps failing.
- Room for a still (`make_room`): while a still the clinician asked for goes up over a link
  with little headroom (kiosk/still_pacing.py decides), the video stays one rung under where
  it was, never below the lowest video rung, and climbs back by the usual rules after. Not a
  failed climb, and the quality word still describes the link, not the rung given up.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field

QUALITY_WORDS = ("good", "fair", "poor")
# A REMB this far under the one before was cut by the receiver (it saw a queue), not jitter.
REMB_CUT = 0.97


@dataclass(frozen=True)
class Rung:
    """One step of the ladder. Sizes are 16:9 boxes; the scaler keeps the camera's aspect."""

    name: str
    width: int
    height: int
    fps: int
    video_bps: int  # what the video should put on the wire at this rung

    @property
    def audio_only(self) -> bool:
        return self.video_bps == 0

    @property
    def pixel_rate(self) -> int:
        """Delivered pixels per second: the benchmarks' 'pixels × fps'."""
        return self.width * self.height * self.fps


AUDIO_ONLY = Rung("audio only", 0, 0, 0, 0)

# Best first. Bit rates are what VP8 needs for a clear, moving picture at that size (checked
# with bench/video_encode.py); neighbours ≤ 1.45× apart (see the module docstring).
DEFAULT_RUNGS: tuple[Rung, ...] = (
    Rung("720p30", 1280, 720, 30, 1_500_000),
    Rung("540p30", 960, 540, 30, 1_100_000),
    Rung("540p20", 960, 540, 20, 800_000),
    Rung("360p30", 640, 360, 30, 600_000),
    Rung("360p20", 640, 360, 20, 420_000),
    Rung("270p20", 480, 270, 20, 300_000),
    Rung("270p15", 480, 270, 15, 220_000),
    Rung("180p15", 320, 180, 15, 160_000),
    Rung("180p10", 320, 180, 10, 110_000),
    Rung("180p6", 320, 180, 6, 80_000),
)


@dataclass(frozen=True)
class LadderConfig:
    rungs: tuple[Rung, ...] = DEFAULT_RUNGS
    # The camera's height (or what the device can encode): no rung above the first that holds it.
    max_height: int = 720
    # Opus at 32 kbit/s plus RTP/SRTP/UDP/IP headers at 50 packets/s: reserved, never cut.
    audio_bps: int = 56_000
    # Room for retransmissions and keyframes on top of a rung's video rate.
    rtx_share: float = 0.10
    # Use at most this share of our own (loss/delay) estimate; REMB already has its margin.
    headroom: float = 0.85
    # The next rung must fit with this much to spare before we climb.
    up_margin: float = 1.05
    up_hold_s: float = 3.0  # calm this long before each step up
    up_after_down_s: float = 5.0  # no climbing this soon after a drop
    probe_window_s: float = 10.0  # a step up undone within this is a failed probe
    # The longest wait between failed probes. Short, because probing is the only way to learn
    # that a link got better (a REMB only grows to 1.5× what it receives).
    retry_max_s: float = 10.0
    retry_max_lossy_s: float = 60.0  # ... unless the failed climb cost lost packets
    loss_up_max: float = 0.05  # climb only while the smoothed loss is below this
    loss_down: float = 0.10  # above this loss the loss-based estimate is cut
    loss_grow: float = 0.02  # below this loss the loss-based estimate grows
    # After a step down, loss reports still describe the old rate for about an RTCP interval.
    loss_holdoff_s: float = 3.0
    sent_window_s: float = 1.5  # a loss cut starts from what was sent over this long
    rtt_rise_s: float = 0.15  # RTT this far above its recent floor = a queue is building
    rtt_window_s: float = 30.0
    remb_stale_s: float = 5.0
    remb_catchup_s: float = 3.0  # a rising REMB below our rate gets this long to catch up
    # A REMB between this share of the rung's video rate and the rate itself keeps the rung
    # and caps the video rate (frames are skipped): the rung below is ~30 % less, and an
    # aiortc receiver's REMB dips 15 % at a jitter burst; stepping at once would cascade.
    remb_tolerance: float = 0.8
    # ... for this long at most: a REMB that stays under the rung is the link, not a dip, and
    # skipping frames for longer costs more (the frame rate) than the size is worth.
    remb_dip_s: float = 5.0
    # REMB this many times our video rate is at a receiver's app-limited ceiling (1.5×).
    remb_app_limited: float = 1.35
    cpu_budget: float = 0.6  # encoding may take this share of the frame interval
    # ... in this many samples in a row: one slow second is another process (or, in the lab,
    # another engineer's tests), not a CPU that cannot keep up at this rung.
    cpu_over_samples: int = 3
    cpu_hold_s: float = 60.0
    # A REMB under the lowest rung holds that rung, capped to the REMB, this long before
    # video stops: a single REMB that low follows a stall (the receiver saw nothing for a
    # moment), and audio-only costs at least `audio_only_retry_s` of frozen picture.
    remb_audio_only_s: float = 3.0
    audio_only_retry_s: float = 8.0
    # Trying video costs a link that barely carries the audio: back off further.
    audio_only_retry_max_s: float = 60.0
    # With no probe result, start as if the link carried this much.
    default_start_bps: float = 300_000.0

    def __post_init__(self) -> None:
        if not self.rungs:
            raise ValueError("a ladder needs at least one video rung")
        rates = [r.video_bps for r in self.rungs]
        if rates != sorted(rates, reverse=True) or min(rates) <= 0:
            raise ValueError("rungs must be best first with falling, positive bit rates")
        if not 0 < self.headroom <= 1 or self.up_margin < 1:
            raise ValueError("headroom must be in (0, 1] and up_margin at least 1")


@dataclass(frozen=True)
class LinkSample:
    """What the call saw over the last interval. None: not known (yet)."""

    now: float
    sent_bps: float | None = None  # audio + video actually sent
    remb_bps: float | None = None  # the receiver's latest REMB (None if it sends none)
    remb_at: float | None = None  # when that REMB arrived
    loss: float | None = None  # fraction lost (0-1) from the receiver's report
    rtt_s: float | None = None
    jitter_s: float | None = None
    encode_s: float | None = None  # mean encode time per video frame


@dataclass(frozen=True)
class Decision:
    rung: Rung
    changed: bool
    reason: str  # why this rung: start, hold, remb, loss, delay, cpu, up, video-retry, ...
    estimate_bps: float  # the link estimate the decision used (audio + video)
    quality: str  # one of QUALITY_WORDS
    # The video rate to hold to now: the rung's, or less while a REMB is under it but not
    # far enough under to change rung (the sender skips frames rather than change size).
    video_cap_bps: float = 0.0


@dataclass(frozen=True)
class _Limits:
    remb: float | None  # the receiver's REMB, compared with a rung's video rate
    own: float  # our loss/delay estimate × headroom, compared with what a rung needs


@dataclass
class _Probe:
    """Back-off for stepping up to one rung after a failed attempt."""

    wait_s: float
    last_fail: float = -math.inf


@dataclass
class Ladder:
    config: LadderConfig = field(default_factory=LadderConfig)
    start_bps: float | None = None
    now: float = 0.0

    def __post_init__(self) -> None:
        cfg = self.config
        # Up to the first size that holds the whole camera picture (a 240-line camera keeps
        # the 270p rungs: they send it unscaled); above that a rung would only cost bits.
        holding = [r.height for r in cfg.rungs if r.height >= cfg.max_height]
        cap = min(holding) if holding else max(r.height for r in cfg.rungs)
        self.rungs: tuple[Rung, ...] = tuple(r for r in cfg.rungs if r.height <= cap)
        start = self.start_bps if self.start_bps else cfg.default_start_bps
        self._loss_est = float(start)
        self._rtts: deque[tuple[float, float]] = deque()
        self._index = self._best_index(_Limits(remb=None, own=start * cfg.headroom))
        self._changed_at = self.now
        self._last_down = -math.inf
        self._last_up: tuple[float, int] | None = None  # (when, from which index)
        self._calm_since: float | None = None
        self._probes: dict[int, _Probe] = {}
        self._cpu_cap: tuple[int, float] | None = None  # (best allowed index, until)
        self._estimate = float(start)
        self._quality = "fair"
        self._reason = "start"
        self._prev_remb: float | None = None
        self._loss_avg: float | None = None
        self._use_rtt = True
        self._remb_cap: float | None = None
        self._remb_under = False
        self._cpu_over = 0  # samples in a row over the CPU budget
        self._sent: deque[tuple[float, float, float]] = deque()  # (when, dt, sent_bps)
        self._remb_low_since: float | None = None
        self._remb_under_since: float | None = None  # REMB under this rung's rate since
        self._back_from_climb = False  # on the rung a climb undone by the REMB came from
        self._room_from: int | None = None  # make_room: the rung it was asked on

    # ------------------------------------------------------------ reading

    @property
    def rung(self) -> Rung:
        return AUDIO_ONLY if self._index >= len(self.rungs) else self.rungs[self._index]

    @property
    def estimate_bps(self) -> float:
        return self._estimate

    def wire_bps(self, rung: Rung) -> float:
        """What we send at this rung, video and audio (REMB is compared with the video alone:
        receivers estimate it from the packets that carry abs-send-time, the video's)."""
        return rung.video_bps + self.config.audio_bps

    def need_bps(self, rung: Rung) -> float:
        """What the link must carry for this rung: video with its retransmission share, audio.
        Compared with our own (loss, delay) estimate × headroom."""
        return rung.video_bps * (1 + self.config.rtx_share) + self.config.audio_bps

    def fits(self, rung: Rung, capacity_bps: float) -> bool:
        """Whether a clean link of this capacity carries the rung (for tests, benchmarks)."""
        return rung.audio_only or self.need_bps(rung) <= capacity_bps * self.config.headroom

    def best_rung_for(self, capacity_bps: float) -> Rung:
        """The best rung a clean link of this capacity can carry (for benchmarks)."""
        index = self._best_index(_Limits(remb=None, own=capacity_bps * self.config.headroom))
        return AUDIO_ONLY if index >= len(self.rungs) else self.rungs[index]

    def decision(self, changed: bool = False) -> Decision:
        cap = float(self.rung.video_bps)
        if self._remb_cap is not None:
            cap = min(cap, self._remb_cap)
        return Decision(self.rung, changed, self._reason, self._estimate, self._quality, cap)

    def make_room(self, on: bool) -> None:
        """On: from the next update, stay one rung under the rung now (not below the lowest
        video rung) until called with off; a still's bytes get the difference. Off: the
        ladder climbs back by its usual rules (calm for `up_hold_s`)."""
        if not on:
            self._room_from = None
        elif self._room_from is None and self._index < len(self.rungs):
            self._room_from = self._index

    @property
    def _room_below(self) -> int | None:
        """While room is made: no rung above this index (one under where it was asked, not
        below the lowest video rung)."""
        if self._room_from is None:
            return None
        return min(self._room_from + 1, len(self.rungs) - 1)

    # ------------------------------------------------------------ deciding

    def update(self, s: LinkSample) -> Decision:
        cfg = self.config
        dt = max(0.0, s.now - self.now)
        self.now = max(self.now, s.now)
        remb = s.remb_bps
        if remb is not None and s.remb_at is not None and self.now - s.remb_at > cfg.remb_stale_s:
            remb = None
        if self.rung.audio_only:
            remb = None  # REMB is measured on video packets: none flow now

        congested_by = self._update_loss_estimate(s, dt)
        own, own_reason = self._loss_est * cfg.headroom, congested_by or "loss"
        # Our own delay check only stands in for a receiver that sends no REMB (a REMB is
        # itself delay-based, and aiortc's RTT from receiver reports is too noisy to second it).
        self._use_rtt = remb is None and not self.rung.audio_only
        if self._use_rtt and self._queue_building(s):
            sent = s.sent_bps if s.sent_bps else self.wire_bps(self.rung)
            if 0.85 * sent < own:
                own, own_reason = 0.85 * sent, "delay"
        self._remb_under = remb is not None and remb < self.rung.video_bps
        if not self._remb_under:
            self._remb_under_since = None
        elif self._remb_under_since is None:
            self._remb_under_since = self.now
        dip = self._remb_under_since is None or self.now - self._remb_under_since < cfg.remb_dip_s
        prev = self._prev_remb
        falling = remb is not None and prev is not None and remb < prev * REMB_CUT
        up = self._last_up
        probing = up is not None and self.now - up[0] <= cfg.probe_window_s
        if (probing or self._back_from_climb) and self._remb_under and falling:
            # Soon after a climb, or back from one that failed, a REMB under this rung that is
            # cut again is the link, not a jitter dip or the climb's queue draining (those
            # rise): holding the rung, capped, only skips frames (rural lab: 0.5 s freezes,
            # one after another) until remb_dip_s steps down anyway.
            dip = False
        remb, self._remb_cap = self._remb_that_counts(remb)
        limits = _Limits(remb=remb, own=own)
        # What binds: REMB is compared with what we send, our own estimate with what we need.
        remb_binds = remb is not None and remb / max(1.0, self.rung.video_bps) < own / max(
            1.0, self.need_bps(self.rung)
        )
        reason = "remb" if remb_binds else own_reason
        self._estimate = remb if remb_binds and remb is not None else own

        up = self._last_up
        if up is not None and self.now - up[0] > cfg.probe_window_s:
            self._probes.pop(self._index, None)  # that climb held: forget its failures
            self._last_up = None

        before = self._index
        if self._cpu_overloaded(s) and self._index < len(self.rungs) - 1:
            self._step_to(self._index + 1, "cpu")
            self._cpu_cap = (self._index, self.now + cfg.cpu_hold_s)
        elif not self._fits(self._index, limits, remb_margin=cfg.remb_tolerance if dip else 1.0):
            index = self._best_index(limits)
            lowest = len(self.rungs) - 1
            if index > lowest and reason == "remb" and self._fits(lowest, _Limits(None, own)):
                # Only the REMB says no video at all: hold the lowest rung (capped to the
                # REMB) for a while first.
                if self._remb_low_since is None:
                    self._remb_low_since = self.now
                if self.now - self._remb_low_since < cfg.remb_audio_only_s:
                    index = lowest
            up = self._last_up
            if (
                up is not None
                and self.now - up[0] <= cfg.probe_window_s
                and up[1] < len(self.rungs)
                and index > up[1]
            ):
                # A climb that did not hold: go back to where it came from (that rung was
                # fine a moment ago), not as far as the loss formula or a REMB cut by the
                # climb's own queue would, unless the receiver's estimate is under what
                # that rung would be held at anyway (capped: see remb_tolerance).
                if reason == "loss":
                    index = up[1]
                    self._loss_est = max(
                        self._loss_est, self.need_bps(self.rungs[index]) / cfg.headroom
                    )
                elif reason == "remb" and self._fits(up[1], limits, remb_margin=cfg.remb_tolerance):
                    index = up[1]
            self._step_to(index, reason)
            self._back_from_climb = up is not None and index == up[1] and reason == "remb"
        elif (below := self._room_below) is not None and self._index < below:
            self._step_to(below, "still")
        else:
            self._maybe_up(s, limits)
        if remb is None or remb >= cfg.remb_tolerance * self.rungs[-1].video_bps:
            self._remb_low_since = None
        self._quality = self._quality_word(s)
        if self._index == before:
            self._reason = "hold"
        return self.decision(changed=self._index != before)

    # ------------------------------------------------------------ pieces

    def _fits(
        self, index: int, limits: _Limits, margin: float = 1.0, remb_margin: float | None = None
    ) -> bool:
        if index >= len(self.rungs):
            return True  # audio-only is what we fall back to; its audio is never cut
        rung = self.rungs[index]
        remb_margin = margin if remb_margin is None else remb_margin
        if limits.remb is not None and rung.video_bps * remb_margin > limits.remb:
            return False
        return self.need_bps(rung) * margin <= limits.own

    def _best_index(self, limits: _Limits) -> int:
        for i in range(len(self.rungs)):
            if self._fits(i, limits):
                return i
        return len(self.rungs)

    def _step_to(self, index: int, reason: str) -> None:
        index = max(0, min(index, len(self.rungs)))
        if index == self._index:
            return
        cfg = self.config
        if index > self._index:  # down
            self._last_down = self.now
            up = self._last_up
            failed_climb = up is not None and self.now - up[0] <= cfg.probe_window_s
            if failed_climb and reason != "still" and index > up[1] - 1:
                # The last climb did not hold: wait longer before trying that rung again.
                target = up[1] - 1
                from_audio_only = up[1] >= len(self.rungs)
                if from_audio_only:
                    first, cap = cfg.audio_only_retry_s / 2, cfg.audio_only_retry_max_s
                elif reason == "remb":  # the receiver saw a queue: a cheap lesson, retry soon
                    first, cap = cfg.up_hold_s, cfg.retry_max_s
                else:  # packets were lost (pictures froze): try that rung much more rarely
                    first, cap = cfg.up_hold_s, cfg.retry_max_lossy_s
                probe = self._probes.setdefault(target, _Probe(first))
                probe.wait_s = min(cap, probe.wait_s * 2)
                probe.last_fail = self.now
            self._last_up = None
        else:
            self._last_up = (self.now, self._index)
        self._index = index
        self._back_from_climb = False
        self._remb_under_since = None
        self._changed_at = self.now
        self._calm_since = None
        self._reason = reason

    def _remb_that_counts(self, remb: float | None) -> tuple[float | None, float | None]:
        """(REMB for rung decisions, REMB as a cap on the video rate).

        Below our video rate a REMB counts for the rung at once when it has just been cut
        (the receiver saw a queue). Otherwise it counts only from `remb_catchup_s` after the
        last rung change (until then it may only be catching up with a rate it has not seen
        yet: after a climb, or when video restarts after audio-only), and not while it is
        still rising (the receiver is growing its estimate again). Outside that first
        catch-up time it always caps the video rate: the sender skips frames rather than
        send more than the receiver asks for.
        """
        prev, self._prev_remb = self._prev_remb, remb
        if remb is None or remb >= self.rung.video_bps or self.rung.audio_only:
            return remb, None
        if prev is not None and remb < prev * REMB_CUT:
            return remb, remb  # cut
        if self.now - self._changed_at < self.config.remb_catchup_s:
            return None, None
        rising = prev is not None and remb > prev * 1.03
        return (None if rising else remb), remb

    def _sent_over(self, s: LinkSample, dt: float) -> float | None:
        """What was sent over about the last `sent_window_s` (time-weighted): a receiver
        report covers a second or so, while a sample after a REMB may cover 0.2 s."""
        if s.sent_bps is None or dt <= 0:
            return s.sent_bps
        self._sent.append((self.now, dt, s.sent_bps))
        while self._sent and self.now - self._sent[0][0] > self.config.sent_window_s:
            self._sent.popleft()
        return sum(d * b for _, d, b in self._sent) / sum(d for _, d, _ in self._sent)

    def _update_loss_estimate(self, s: LinkSample, dt: float) -> str | None:
        cfg = self.config
        sent = self._sent_over(s, dt)
        if s.loss is None:
            return None
        if self.now - self._last_down < cfg.loss_holdoff_s:
            # Receiver reports still describe the time before the step down: they neither
            # cut again nor count towards the loss at the new rate. (Smoothed in, the loss
            # of a failed climb on the rural lab link cut 180p10 to audio only 3 s later,
            # on fresh reports of 2-3 %.)
            self._loss_avg = None
            return None
        # From a prior of no loss: the first report of a call (its start-up burst), or the
        # first after a step down, is smoothed like any other. Weighted by time: samples
        # come every second, and every 0.2 s after a REMB, when they repeat the same report.
        keep = 0.7 ** min(1.0, dt)
        self._loss_avg = keep * (self._loss_avg or 0.0) + (1 - keep) * s.loss
        # Smoothed: one report covers a second or so, and on a link with random loss a
        # single report of 10 % is chance; a queue overflowing keeps it high.
        if self._loss_avg > cfg.loss_down:
            base = sent if sent else self._loss_est
            self._loss_est = min(self._loss_est, base * (1 - 0.5 * self._loss_avg))
            return "loss"
        if s.loss < cfg.loss_grow and dt > 0:
            grown = self._loss_est * 1.08 ** min(dt, 1.0)
            # App-limited: a link we do not use is not a link we know (2×: the next rung
            # must stay within reach, see the module docstring).
            cap = 2 * sent + 10_000 if sent else grown
            self._loss_est = max(self._loss_est, min(grown, cap))
        return None

    def _queue_building(self, s: LinkSample) -> bool:
        cfg = self.config
        if s.rtt_s is None:
            return False
        self._rtts.append((self.now, s.rtt_s))
        while self._rtts and self.now - self._rtts[0][0] > cfg.rtt_window_s:
            self._rtts.popleft()
        floor = min(r for _, r in self._rtts)
        return s.rtt_s - floor > cfg.rtt_rise_s

    def _cpu_overloaded(self, s: LinkSample) -> bool:
        rung = self.rung
        if s.encode_s is None or rung.audio_only or self._index >= len(self.rungs) - 1:
            self._cpu_over = 0
            return False
        over = s.encode_s > self.config.cpu_budget / rung.fps
        self._cpu_over = self._cpu_over + 1 if over else 0
        if self._cpu_over < self.config.cpu_over_samples:
            return False
        self._cpu_over = 0  # the rung below starts afresh
        return True

    def _calm(self, s: LinkSample) -> bool:
        cfg = self.config
        if self._loss_avg is not None and self._loss_avg > cfg.loss_up_max:
            return False
        if self._remb_under:  # the receiver wants less than this rung already sends
            return False
        if not self._use_rtt:
            return True
        return not (self._rtts and s.rtt_s is not None and self._queue_building_now(s.rtt_s))

    def _queue_building_now(self, rtt: float) -> bool:
        floor = min(r for _, r in self._rtts)
        return rtt - floor > self.config.rtt_rise_s / 2

    def _maybe_up(self, s: LinkSample, limits: _Limits) -> None:
        cfg = self.config
        if self._index == 0:
            return
        if not self._calm(s):
            self._calm_since = None
            return
        if self._calm_since is None:
            self._calm_since = self.now
        target = self._index - 1
        if (below := self._room_below) is not None and target < below:
            return
        if self._cpu_cap is not None:
            cap, until = self._cpu_cap
            if self.now < until and target < cap:
                return
        probe = self._probes.get(target)
        # A failed probe's back-off counts from its failure (below), not again from the
        # last change of rung: after a drop the link may well have recovered meanwhile.
        hold = cfg.up_hold_s
        if self.rung.audio_only:
            hold = max(hold, cfg.audio_only_retry_s)
        if self.now - self._calm_since < hold:
            return
        if self.now - self._last_down < cfg.up_after_down_s:
            return
        if probe is not None and self.now - probe.last_fail < probe.wait_s:
            return
        if self.rung.audio_only:
            # No video flows, so there is no REMB and our estimate only knows the audio: the
            # audio's calm decides, and the lowest rung is tried (a failure backs off).
            self._loss_est = max(self._loss_est, self.need_bps(self.rungs[target]) / cfg.headroom)
            self._step_to(target, "video-retry")
            return
        remb = limits.remb
        if remb is not None and remb >= cfg.remb_app_limited * self.rung.video_bps:
            # REMB near its 1.5×-of-what-arrives ceiling says nothing about the link, only
            # that nothing is queueing: one rung up is how to find out more.
            limits = _Limits(remb=None, own=limits.own)
        if self._fits(target, limits, cfg.up_margin):
            self._step_to(target, "up")

    def _quality_word(self, s: LinkSample) -> str:
        rung = self.rung
        if self._room_from is not None and self._index == self._room_below:
            rung = self.rungs[self._room_from]  # given up for a still, not lost to the link
        loss = s.loss or 0.0
        rtt = s.rtt_s or 0.0
        if rung.audio_only or rung.fps <= 10 or loss > self.config.loss_down or rtt > 0.6:
            return "poor"
        if rung.height >= min(360, self.rungs[0].height) and loss < 0.03 and rtt < 0.3:
            return "good"
        return "fair"

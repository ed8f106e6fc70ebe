"""How the kiosk's video sender keeps to its rung: size, frame rate, bit rate, retransmissions.

Pure: numbers and times in, decisions out. kiosk/rtc.py applies them in front of and around
aiortc's VP8 encoder, whose measured habits (../shared/PLATFORM.md, bench/video_encode.py)
this corrects:

- `scaled_size`: the camera picture fitted into a rung's box, aspect kept, never enlarged;
- `FramePacer`: which camera frames to encode for the rung's frame rate;
- `OvershootCalibrator`: libvpx (as built into PyAV) sends about twice the bit rate it is
  told, at every size; the calibrator learns the ratio from what really came out and tells
  the encoder a target that lands on the rate wanted;
- `RateGuard`: a token bucket on encoded bits that skips a frame when the encoder has run
  over (a keyframe, a burst of motion), so the rung's rate holds within a second instead of
  waiting for the next rebuild;
- `RetransmitBudget`: answers each NACKed packet at most twice, a little apart, and spends
  at most a share of the rung's rate on retransmissions (an aiortc receiver asks for
  everything again on every gap: see PLATFORM.md).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field


def scaled_size(src_w: int, src_h: int, box_w: int, box_h: int) -> tuple[int, int]:
    """The largest even size that fits the box with the source's aspect, never upscaled."""
    if src_w <= 0 or src_h <= 0 or box_w <= 0 or box_h <= 0:
        raise ValueError("sizes must be positive")
    scale = min(box_w / src_w, box_h / src_h, 1.0)
    w = max(2, int(src_w * scale) // 2 * 2)
    h = max(2, int(src_h * scale) // 2 * 2)
    return w, h


@dataclass
class FramePacer:
    """Keeps frames at most `fps` a second, evenly (by the frames' own timestamps)."""

    fps: float
    _next: float | None = None

    def set_fps(self, fps: float) -> None:
        self.fps = fps
        self._next = None

    def take(self, t: float) -> bool:
        if self.fps <= 0:
            return False
        interval = 1.0 / self.fps
        # A frame up to a quarter interval early still counts (camera timing jitters).
        if self._next is not None and t < self._next - interval / 4:
            return False
        base = self._next if self._next is not None and t - self._next < interval else t
        self._next = base + interval
        return True


@dataclass
class OvershootCalibrator:
    """Learns output/target of the encoder and returns targets that land on the wanted rate."""

    ratio: float = 2.0  # measured: PyAV's libvpx sends ~2× its target (bench/video_encode.py)
    min_ratio: float = 0.8
    max_ratio: float = 4.0
    window_s: float = 3.0
    _bits: float = 0.0
    _seconds: float = 0.0

    def codec_target(self, wanted_bps: float) -> int:
        return max(20_000, round(wanted_bps / self.ratio))

    def observe(self, bits: float, seconds: float, codec_target_bps: float) -> bool:
        """Add what the encoder produced over `seconds` at `codec_target_bps`.

        Returns True when the ratio moved by more than 25 %: the encoder should be rebuilt
        with a new target (which costs a keyframe, so not for small errors).
        """
        self._bits += bits
        self._seconds += seconds
        if self._seconds < self.window_s or codec_target_bps <= 0:
            return False
        measured = self._bits / self._seconds / codec_target_bps
        self._bits = self._seconds = 0.0
        measured = min(self.max_ratio, max(self.min_ratio, measured))
        old = self.ratio
        self.ratio = 0.5 * old + 0.5 * measured
        return abs(self.ratio - old) / old > 0.25


@dataclass
class RateGuard:
    """A token bucket on encoded bits: `allow(t)` is False while the encoder is over budget."""

    rate_bps: float
    burst_s: float = 0.5
    _level: float = 0.0  # bits in hand; negative = debt
    _t: float | None = None

    def set_rate(self, rate_bps: float) -> None:
        self.rate_bps = rate_bps
        self._level = min(self._level, rate_bps * self.burst_s)

    def _refill(self, t: float) -> None:
        if self._t is not None and t > self._t:
            cap = self.rate_bps * self.burst_s
            self._level = min(cap, self._level + self.rate_bps * (t - self._t))
        if self._t is None or t > self._t:
            self._t = t

    def allow(self, t: float) -> bool:
        self._refill(t)
        return self._level >= 0

    def spent(self, bits: float, t: float) -> None:
        self._refill(t)
        self._level -= bits


@dataclass
class RetransmitBudget:
    """Which NACKed packets to send again, and how many."""

    share: float = 0.3  # of the video rate
    max_times: int = 2
    min_gap_s: float = 0.05
    packet_bits: float = 1200 * 8
    window_s: float = 1.0
    _sent: dict[int, tuple[int, float]] = field(default_factory=dict)  # seq -> (times, last)
    _recent: deque[float] = field(default_factory=deque)
    refused: int = 0

    def allow(self, seq: int, now: float, rate_bps: float) -> bool:
        while self._recent and now - self._recent[0] > self.window_s:
            self._recent.popleft()
        times, last = self._sent.get(seq, (0, float("-inf")))
        budget = max(5, int(rate_bps * self.share * self.window_s / self.packet_bits))
        if times >= self.max_times or now - last < self.min_gap_s or len(self._recent) >= budget:
            self.refused += 1
            return False
        self._sent[seq] = (times + 1, now)
        self._recent.append(now)
        if len(self._sent) > 4096:  # forget the oldest
            for old in list(self._sent)[:1024]:
                del self._sent[old]
        return True

"""The status light's patterns, as data: brightness (0..1) over time, repeating.

Pure: the LED adapter (light.py) and the kiosk's on-screen indicator both read these, so the
screen shows exactly what the lamp does. Each pattern differs from every other by rhythm
alone (one colour, no hue cues), so a colour-blind person can tell them apart:

    steady      on, not moving
    off         dark
    slow_blink  1 s on, 1 s off
    fast_blink  4 flashes a second
    breathing   a smooth 3 s rise and fall
    heartbeat   a short double flash every 3 s (offline)
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import NamedTuple

from porchlight.errors import BadInput


@dataclass(frozen=True)
class Segment:
    """`duration` seconds going linearly from `start` to `end` brightness."""

    duration: float
    start: float
    end: float


class BlinkTimings(NamedTuple):
    """The four numbers gpiozero's PWMLED.blink takes (pulse is blink with on = off = 0)."""

    on_time: float
    off_time: float
    fade_in_time: float
    fade_out_time: float


@dataclass(frozen=True)
class Pattern:
    name: str
    segments: tuple[Segment, ...]
    blink: BlinkTimings | None = None  # set when gpiozero's blink/pulse can draw it

    def __post_init__(self) -> None:
        if not self.segments or any(s.duration < 0 for s in self.segments):
            raise BadInput(f"light pattern {self.name!r} needs segments of 0 s or longer")
        if self.period <= 0:
            raise BadInput(f"light pattern {self.name!r} must last longer than 0 s")
        if any(not (0 <= s.start <= 1 and 0 <= s.end <= 1) for s in self.segments):
            raise BadInput(f"light pattern {self.name!r} has a level outside 0..1")

    @property
    def period(self) -> float:
        return sum(s.duration for s in self.segments)

    @property
    def constant(self) -> float | None:
        """The level, if the pattern never changes; else None."""
        levels = {s.start for s in self.segments} | {s.end for s in self.segments}
        return levels.pop() if len(levels) == 1 else None

    def level_at(self, t: float) -> float:
        """Brightness at `t` seconds after the pattern started (t < 0 counts as 0)."""
        phase = math.fmod(max(t, 0.0), self.period)
        for segment in self.segments:
            if phase < segment.duration:
                return segment.start + (segment.end - segment.start) * phase / segment.duration
            phase -= segment.duration
        return self.segments[-1].end  # phase == period after rounding


def constant(name: str, level: float) -> Pattern:
    return Pattern(name, (Segment(1.0, level, level),))


def blink(
    name: str, on_s: float, off_s: float, fade_in_s: float = 0.0, fade_out_s: float = 0.0
) -> Pattern:
    """Fade in, stay on, fade out, stay off: gpiozero's PWMLED.blink, as data."""
    if min(on_s, off_s, fade_in_s, fade_out_s) < 0:
        raise BadInput(f"light pattern {name!r}: blink times must be 0 s or longer")
    segments = (
        Segment(fade_in_s, 0.0, 1.0),
        Segment(on_s, 1.0, 1.0),
        Segment(fade_out_s, 1.0, 0.0),
        Segment(off_s, 0.0, 0.0),
    )
    return Pattern(
        name,
        tuple(s for s in segments if s.duration > 0),
        BlinkTimings(on_s, off_s, fade_in_s, fade_out_s),
    )


def sequence(name: str, *steps: tuple[float, float]) -> Pattern:
    """Hold each (level, seconds) in turn: for rhythms blink cannot draw."""
    return Pattern(name, tuple(Segment(seconds, level, level) for level, seconds in steps))


# Read-only: every part of the kiosk shares this one table.
PATTERNS: Mapping[str, Pattern] = MappingProxyType(
    {
        p.name: p
        for p in (
            constant("steady", 1.0),
            constant("off", 0.0),
            blink("slow_blink", on_s=1.0, off_s=1.0),
            blink("fast_blink", on_s=0.125, off_s=0.125),
            blink("breathing", on_s=0.0, off_s=0.0, fade_in_s=1.5, fade_out_s=1.5),
            sequence("heartbeat", (1.0, 0.15), (0.0, 0.15), (1.0, 0.15), (0.0, 2.55)),
            # A clinician is calling: quick double flashes, every second (kiosk/state.py).
            sequence("ringing", (1.0, 0.2), (0.0, 0.15), (1.0, 0.2), (0.0, 0.45)),
            # An appointment is close: three short flashes, then a rest.
            sequence(
                "reminder", (1.0, 0.2), (0.0, 0.2), (1.0, 0.2), (0.0, 0.2), (1.0, 0.2), (0.0, 1.5)
            ),
        )
    }
)

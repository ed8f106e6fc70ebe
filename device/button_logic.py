"""What a press of the one button means, from raw pin edges and the time they happened.

Pure: no GPIO, no clock. The adapter (button.py) feeds edges with their timestamps, calls
`tick` at `next_deadline()`, and acts on the events returned.

Debouncing is our own rather than gpiozero's `bounce_time`, which can miss edges (see
PLATFORM.md). The rules:

* a down edge while released is a press, reported at once (feedback must start within
  200 ms, so we never wait to see whether the contact settles);
* the press ends only when the contact has stayed up for `debounce_s`; any down edge before
  then is bounce and the press goes on;
* each hold threshold is reported once per press, when it passes with the contact down;
* the release reports how long the button was held, up to the last up edge.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from porchlight.errors import BadInput


@dataclass(frozen=True)
class Pressed:
    at: float


@dataclass(frozen=True)
class Held:
    seconds: float  # the threshold that was crossed
    at: float  # when it was noticed: at the threshold when `tick` is called on time


@dataclass(frozen=True)
class Released:
    held_s: float
    at: float  # when the release was confirmed (debounce_s after the last up edge)


ButtonEvent = Pressed | Held | Released


class ButtonLogic:
    def __init__(self, *, hold_thresholds: Iterable[float] = (2.0,), debounce_s: float = 0.03):
        thresholds = sorted(set(hold_thresholds))
        if any(t <= 0 for t in thresholds):
            raise BadInput("hold thresholds must be more than 0 seconds")
        if debounce_s < 0:
            raise BadInput("debounce_s must be 0 or more")
        self.hold_thresholds: tuple[float, ...] = tuple(thresholds)
        self.debounce_s = debounce_s
        self._pressed = False  # the debounced state the rest of the kiosk sees
        self._contact_down = False  # the raw level of the last edge
        self._pressed_at = 0.0
        self._up_since: float | None = None  # last up edge while pressed (release pending)
        self._thresholds_left: list[float] = []
        self._now = float("-inf")

    @property
    def is_pressed(self) -> bool:
        return self._pressed

    def down(self, now: float) -> list[ButtonEvent]:
        events = self._advance(now)
        if self._contact_down:
            return events  # a repeated edge of the same level says nothing new
        self._contact_down = True
        if not self._pressed:
            self._pressed = True
            self._pressed_at = self._now
            self._up_since = None
            self._thresholds_left = list(self.hold_thresholds)
            events.append(Pressed(self._now))
        else:
            self._up_since = None  # bounce: the press goes on
            events += self._fire_holds(self._now)
        return events

    def up(self, now: float) -> list[ButtonEvent]:
        events = self._advance(now)
        if not self._contact_down:
            return events
        self._contact_down = False
        if self._pressed:
            self._up_since = self._now
            events += self._advance(self._now)  # with debounce_s == 0 the release is immediate
        return events

    def tick(self, now: float) -> list[ButtonEvent]:
        return self._advance(now)

    def next_deadline(self) -> float | None:
        """When `tick` must next be called for a hold or a release to be reported on time."""
        if not self._pressed:
            return None
        if self._up_since is not None:
            return self._up_since + self.debounce_s
        if self._thresholds_left:
            return self._pressed_at + self._thresholds_left[0]
        return None

    def _advance(self, now: float) -> list[ButtonEvent]:
        # Time never runs backwards here, even if a caller's timestamps jitter.
        self._now = max(self._now, now)
        if not self._pressed:
            return []
        if self._up_since is None:
            return self._fire_holds(self._now)
        # The contact is open (holds up to the up edge were reported by up()). Compared
        # exactly as next_deadline() computes it, so a tick at the deadline fires.
        if self._now >= self._up_since + self.debounce_s:
            held_s = self._up_since - self._pressed_at
            self._pressed = False
            self._up_since = None
            self._thresholds_left = []
            return [Released(held_s, self._now)]
        return []

    def _fire_holds(self, down_until: float) -> list[ButtonEvent]:
        events: list[ButtonEvent] = []
        while self._thresholds_left and down_until >= self._pressed_at + self._thresholds_left[0]:
            threshold = self._thresholds_left.pop(0)
            events.append(Held(threshold, self._now))
        return events

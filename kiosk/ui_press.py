"""How on-screen presses become one button, and how far a hold-to-leave has got.

Pure: no Kivy, time passed in. The big on-screen button (any number of fingers) and the space
bar act as one physical button: the core hears one `down` when the first goes down and one
`up` when the last lets go, exactly as from the GPIO button.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass, field

from porchlight.kiosk.view import KioskState

# States in which holding the button leaves the waiting room or ends the call (kiosk/state.py).
HOLD_TO_LEAVE_STATES = frozenset({KioskState.JOINING, KioskState.WAITING, KioskState.IN_CALL})


@dataclass
class PressGate:
    """Several press sources (touch ids, the space bar) folded into one button."""

    _held: set[Hashable] = field(default_factory=set)

    @property
    def held(self) -> bool:
        return bool(self._held)

    def down(self, source: Hashable) -> bool:
        """`source` went down; True when that makes the button go down."""
        was_held = self.held
        self._held.add(source)
        return not was_held

    def up(self, source: Hashable) -> bool:
        """`source` let go; True when that makes the button come up."""
        if source not in self._held:
            return False
        self._held.discard(source)
        return not self.held

    def release_all(self) -> bool:
        """Forget every source (the window lost focus); True if the button was down."""
        was_held = self.held
        self._held.clear()
        return was_held


@dataclass
class HoldMeter:
    """How much of a hold-to-leave is done, for the bar that fills on the button.

    A hold counts only if the press began in a state where holding leaves, and only while
    the kiosk stays in that state: a press that joins from home does not then fill the bar.
    """

    hold_s: float
    _since: float | None = None
    _state: KioskState | None = None

    def update(self, pressed: bool, state: KioskState, now: float) -> float | None:
        """The fraction (0..1) of the hold done, or None when no hold is under way."""
        if not pressed:
            self._since = self._state = None
            return None
        if self._since is None:
            self._since, self._state = now, state
        if self._state != state or state not in HOLD_TO_LEAVE_STATES:
            return None
        if self.hold_s <= 0:
            return 1.0
        return min(1.0, max(0.0, (now - self._since) / self.hold_s))

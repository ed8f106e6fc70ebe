"""What the kiosk screen shows: the state, the words, the button, the light, the pictures.

The UI only reads these. `KioskView` is produced by the pure state machine (kiosk/state.py);
`FrameSource` is how the UI pulls the newest decoded video frame without blocking.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    import numpy


class KioskState(StrEnum):
    IDLE = "idle"
    OFFLINE = "offline"
    JOINING = "joining"
    WAITING = "waiting"
    IN_CALL = "in_call"
    ENDING = "ending"
    RINGING = "ringing"  # a clinician is calling the patient


# Link indicator values; no numbers on the kiosk.
LINK_LEVELS = ("good", "fair", "poor", "none")


@dataclass(frozen=True)
class KioskView:
    state: KioskState
    headline: str  # large plain words
    detail: str  # a smaller line under the headline
    button_label: str  # on-screen big button text, "" when there is none
    button_enabled: bool
    light: str  # status light pattern name (device/light)
    link: str  # one of LINK_LEVELS
    show_video: bool  # in call: remote video full screen + small self-view
    pressed: bool = False  # True right after a press (instant feedback)
    countdown: int | None = None  # ringing with auto-answer: whole seconds left
    step: str = ""  # home screen asking about the last call: "faces", then "again"
    help_fraction: float | None = None  # a hold for help under way: 0..1, else None
    language: str = "en"  # the language of the words above
    # In a call (issue 10): the clinician is looking closely ("please hold still"), and what
    # they asked the patient to show, shown large over the picture ("" for none).
    close_look: str = ""
    prompt: str = ""


class FrameSource(Protocol):
    def latest(self) -> tuple[int, numpy.ndarray | None]:
        """(sequence number, HxWx3 uint8 RGB) of the newest frame; (0, None) before any."""
        ...


class LatestFrame:
    """A FrameSource that keeps only the newest frame.

    Written from the asyncio loop (after conversion in an executor), read by the UI on the
    same loop; the lock makes it safe from another thread too.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._seq = 0
        self._frame: numpy.ndarray | None = None

    def put(self, frame: numpy.ndarray) -> None:
        with self._lock:
            self._seq += 1
            self._frame = frame

    def clear(self) -> None:
        """Forget the picture (the sequence number keeps rising so a UI notices)."""
        with self._lock:
            self._seq += 1
            self._frame = None

    def latest(self) -> tuple[int, numpy.ndarray | None]:
        with self._lock:
            return self._seq, self._frame

"""Vital-sign peripherals behind one interface, and the simulated pulse oximeter twin.

`ReadingSource` is what the check-in asks for a reading; it knows nothing about how the
device is reached. The simulated oximeter ships in the package so the demo and the tests use
the same twin; a Bluetooth LE source (Pulse Oximeter service 0x1822, often with bonding
quirks) is a later adapter behind the same interface.

Reads block for up to `timeout` seconds, so callers on an event loop run them in an executor.
"""

from __future__ import annotations

import random
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass

from porchlight.errors import DeviceFault


@dataclass(frozen=True)
class Reading:
    """One settled reading. Keys match `porchlight.kiosk.records.VITALS`."""

    values: dict[str, int | float]
    source: str


class ReadingSource(ABC):
    """A device that can produce vital-sign readings."""

    name: str = "source"
    provides: tuple[str, ...] = ()

    @abstractmethod
    def read(self, timeout: float) -> Reading | None:
        """A settled reading, or None when none came within `timeout` (no finger on the
        sensor, device asleep). Raises DeviceFault when the device is broken or gone."""

    def close(self) -> None:  # noqa: B027 - optional for sources with nothing to release
        """Release the device."""


class SimulatedOximeter(ReadingSource):
    """A fingertip pulse oximeter twin: plausible SpO2 and pulse around a baseline.

    Like a real one it needs a finger on it (`finger_present`) and takes a moment to settle
    (`settle_s`); its readings wander a little between calls. `baseline()` lets a demo or a
    test show an unusual patient (e.g. SpO2 88). `fail()` makes it behave like a device that
    was unplugged."""

    name = "simulated-oximeter"
    provides = ("spo2", "pulse")

    def __init__(
        self,
        *,
        spo2: int = 97,
        pulse: int = 72,
        seed: int | None = None,
        settle_s: float = 0.5,
        finger_present: bool = True,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._rng = random.Random(seed)
        self._spo2, self._pulse = spo2, pulse
        self._settle_s = settle_s
        self._sleep = sleep
        self._broken = False
        self._lock = threading.Lock()
        self.finger_present = finger_present

    def baseline(self, *, spo2: int | None = None, pulse: int | None = None) -> None:
        with self._lock:
            self._spo2 = self._spo2 if spo2 is None else spo2
            self._pulse = self._pulse if pulse is None else pulse

    def fail(self) -> None:
        self._broken = True

    def read(self, timeout: float) -> Reading | None:
        if self._broken:
            raise DeviceFault("the pulse oximeter is not answering; check it is switched on")
        if not self.finger_present:
            # A real sensor waits for a finger; do so for as long as asked, then give up.
            self._sleep(max(0.0, timeout))
            return None
        if self._settle_s > timeout:
            self._sleep(max(0.0, timeout))
            return None
        self._sleep(self._settle_s)
        with self._lock:
            # Small, bounded wander: SpO2 ±1 around its baseline (never above 100), pulse ±4.
            spo2 = min(100, max(50, self._spo2 + self._rng.choice((-1, 0, 0, 1))))
            pulse = max(30, self._pulse + self._rng.randint(-4, 4))
        return Reading({"spo2": spo2, "pulse": pulse}, self.name)


def make_reading_source(kind: str = "simulated", **kwargs: object) -> ReadingSource:
    """The reading source for `kind`. Only the simulated oximeter exists so far."""
    if kind == "simulated":
        return SimulatedOximeter(**kwargs)  # type: ignore[arg-type]
    raise DeviceFault(
        f"no vital-signs device of kind {kind!r}; use 'simulated' (Bluetooth devices come later)"
    )

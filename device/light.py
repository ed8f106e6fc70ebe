"""The status light: a PWM-driven LED showing one of the patterns in light_patterns.

gpiozero draws the patterns on its own background threads: PWMLED.blink for the blinks,
PWMLED.pulse-style fades for breathing, and its `source` machinery (a value per 20 ms taken
from the pattern at the current time) for rhythms blink cannot draw, such as heartbeat.
Nothing here blocks the caller. In simulation the pin is a gpiozero MockPWMPin whose timed
`.states` history shows what the lamp did.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

from gpiozero import PWMLED

from porchlight.device.config import DeviceConfig
from porchlight.device.light_patterns import PATTERNS, Pattern
from porchlight.errors import BadInput, DeviceFault

__all__ = ["PATTERNS", "Pattern", "StatusLight"]

# How often the `source` thread updates the LED for patterns blink cannot draw.
SOURCE_STEP_S = 0.02


class StatusLight:
    def __init__(
        self,
        config: DeviceConfig,
        *,
        pin_factory: Any = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._clock = clock
        self._pattern = "off"
        self._started_at = clock()
        try:
            self._led = PWMLED(config.light_pin, initial_value=0, pin_factory=pin_factory)
        except Exception as exc:
            raise DeviceFault(
                f"cannot open the status light on GPIO{config.light_pin}: {exc} "
                "(check device.light_pin, or run with device.simulate = true)"
            ) from exc
        self._led.source_delay = SOURCE_STEP_S

    @property
    def pattern(self) -> str:
        """The name of the pattern on show."""
        return self._pattern

    @property
    def started_at(self) -> float:
        """Clock time (time.monotonic by default) when the current pattern started."""
        return self._started_at

    def level_at(self, now: float) -> float:
        """The brightness the pattern asks for at clock time `now`: what an on-screen twin
        of the lamp draws to stay in step with it."""
        return PATTERNS[self._pattern].level_at(now - self._started_at)

    @property
    def value(self) -> float:
        """The LED's brightness right now (0..1)."""
        return float(self._led.value)

    @property
    def pin(self) -> Any:
        """The gpiozero pin (a MockPWMPin in simulation)."""
        return self._led.pin

    def show(self, pattern_name: str) -> None:
        """Switch to a pattern; showing the one already on keeps its rhythm going."""
        pattern = PATTERNS.get(pattern_name)
        if pattern is None:
            raise BadInput(
                f"unknown light pattern {pattern_name!r}; use one of {', '.join(PATTERNS)}"
            )
        if pattern_name == self._pattern:
            return
        self._led.source = None  # stops the source thread, if one is running
        self._started_at = self._clock()
        level = pattern.constant
        if level is not None:
            self._led.value = level  # also stops a running blink
        elif pattern.blink is not None:
            self._led.blink(*pattern.blink, background=True)
        else:
            self._led.source = _follow(pattern, self._clock, self._started_at)
        self._pattern = pattern_name

    def close(self) -> None:
        self._led.close()


def _follow(pattern: Pattern, clock: Callable[[], float], start: float) -> Iterator[float]:
    """The pattern's level at each step, read off the clock so the rhythm never drifts."""
    while True:
        yield pattern.level_at(clock() - start)

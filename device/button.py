"""The one physical button, through gpiozero, with presses delivered on the asyncio loop.

gpiozero reports edges on its own threads; each edge is stamped there and handed to the loop
with `call_soon` (by default `loop.call_soon_threadsafe`). Everything else (the debounce and
hold logic in ButtonLogic, the hold/release timers, the callbacks) runs on the loop.

In simulation the pin is a gpiozero mock pin: `press()` and `release()` drive it low and high,
so simulated presses take the same path as real ones.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
from collections.abc import Callable, Iterable
from typing import Any

from gpiozero import DigitalInputDevice
from gpiozero.pins.mock import MockPin

from porchlight.device.button_logic import ButtonEvent, ButtonLogic, Held, Pressed, Released
from porchlight.device.config import DeviceConfig
from porchlight.errors import DeviceFault

__all__ = ["ButtonEvent", "ButtonLogic", "Held", "PressButton", "Pressed", "Released"]

log = logging.getLogger(__name__)


class PressButton:
    """The kiosk's button. Callbacks run on the loop; each may be a plain function or async.

    on_pressed() fires at once on a press; on_held(seconds) once per hold threshold crossed
    (default: config.long_press_s); on_released(held_s) when the button is let go. The
    callbacks are attributes too, so they can be set after construction.
    """

    def __init__(
        self,
        config: DeviceConfig,
        *,
        pin_factory: Any = None,
        on_pressed: Callable[[], Any] | None = None,
        on_held: Callable[[float], Any] | None = None,
        on_released: Callable[[float], Any] | None = None,
        call_soon: Callable[..., Any] | None = None,
        loop: asyncio.AbstractEventLoop | None = None,
        hold_thresholds: Iterable[float] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.on_pressed = on_pressed
        self.on_held = on_held
        self.on_released = on_released
        if loop is None:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                raise DeviceFault(
                    "PressButton needs an asyncio event loop for its timers: create it inside "
                    "the running loop or pass loop="
                ) from None
        self._loop = loop
        self._call_soon = call_soon or loop.call_soon_threadsafe
        self._clock = clock
        thresholds = (config.long_press_s,) if hold_thresholds is None else hold_thresholds
        self._logic = ButtonLogic(hold_thresholds=thresholds, debounce_s=config.debounce_s)
        self._timer: asyncio.TimerHandle | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        try:
            # bounce_time=None: gpiozero passes every edge; ButtonLogic does the debouncing.
            self._device = DigitalInputDevice(
                config.button_pin, pull_up=True, bounce_time=None, pin_factory=pin_factory
            )
        except Exception as exc:
            raise DeviceFault(
                f"cannot open the button on GPIO{config.button_pin}: {exc} "
                "(check device.button_pin, or run with device.simulate = true)"
            ) from exc
        self._device.when_activated = self._edge_down
        self._device.when_deactivated = self._edge_up

    @property
    def is_pressed(self) -> bool:
        """The debounced state: True from a press until its release is confirmed."""
        return self._logic.is_pressed

    @property
    def hold_thresholds(self) -> tuple[float, ...]:
        return self._logic.hold_thresholds

    @property
    def pin(self) -> Any:
        """The gpiozero pin (a MockPin in simulation)."""
        return self._device.pin

    @property
    def simulated(self) -> bool:
        return isinstance(self._device.pin, MockPin)

    # -- simulation ------------------------------------------------------------------------

    def press(self) -> None:
        """Simulation: close the contact (drive the mock pin low, as the real button does)."""
        self._mock_pin().drive_low()

    def release(self) -> None:
        """Simulation: open the contact (the pull-up takes the mock pin high again)."""
        self._mock_pin().drive_high()

    async def hold(self, seconds: float) -> None:
        """Simulation: press, keep the button down for `seconds`, release."""
        self.press()
        try:
            await asyncio.sleep(seconds)
        finally:
            self.release()

    def _mock_pin(self) -> MockPin:
        if not self.simulated:
            raise DeviceFault("press() and release() only work on a simulated button")
        return self._device.pin

    # -- edges (gpiozero's thread) -> logic (the loop) ---------------------------------------

    def _edge_down(self) -> None:
        self._deliver(self._logic.down, self._clock())

    def _edge_up(self) -> None:
        self._deliver(self._logic.up, self._clock())

    def _deliver(self, step: Callable[[float], list[ButtonEvent]], at: float) -> None:
        try:
            self._call_soon(self._apply, step, at)
        except RuntimeError:
            log.debug("button edge after the event loop closed; ignored")

    def _apply(self, step: Callable[[float], list[ButtonEvent]], at: float) -> None:
        self._dispatch(step(at))
        self._schedule()

    def _on_timer(self) -> None:
        self._timer = None
        self._dispatch(self._logic.tick(self._clock()))
        self._schedule()

    def _schedule(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        deadline = self._logic.next_deadline()
        if deadline is not None:
            self._timer = self._loop.call_later(max(0.0, deadline - self._clock()), self._on_timer)

    def _dispatch(self, events: list[ButtonEvent]) -> None:
        for event in events:
            if isinstance(event, Pressed):
                self._call(self.on_pressed)
            elif isinstance(event, Held):
                self._call(self.on_held, event.seconds)
            else:
                self._call(self.on_released, event.held_s)

    def _call(self, callback: Callable[..., Any] | None, *args: float) -> None:
        if callback is None:
            return
        try:
            result = callback(*args)
        except Exception:
            log.exception("button callback failed")
            return
        if inspect.isawaitable(result):
            task = asyncio.ensure_future(result, loop=self._loop)
            self._tasks.add(task)
            task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("button callback failed", exc_info=task.exception())

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._device.close()

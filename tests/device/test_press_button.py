"""PressButton end to end on gpiozero mock pins: edges in, callbacks out on the asyncio loop."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from porchlight.device.button import PressButton
from porchlight.errors import DeviceFault


class Recorder:
    """Collects callbacks with the time and thread they ran on; wait() for a count."""

    def __init__(self) -> None:
        self.events: list[tuple[str, float | None, float, int]] = []
        self._changed = asyncio.Event()

    def pressed(self) -> None:
        self._add("pressed", None)

    def held(self, seconds: float) -> None:
        self._add("held", seconds)

    def released(self, held_s: float) -> None:
        self._add("released", held_s)

    def _add(self, name: str, value: float | None) -> None:
        self.events.append((name, value, time.monotonic(), threading.get_ident()))
        self._changed.set()

    def names(self) -> list[str]:
        return [e[0] for e in self.events]

    async def wait(self, count: int, timeout: float = 5.0) -> None:
        async def until() -> None:
            while len(self.events) < count:
                self._changed.clear()
                await self._changed.wait()

        await asyncio.wait_for(until(), timeout)


def make_button(config, pin_factory, recorder: Recorder, **kwargs) -> PressButton:
    return PressButton(
        config,
        pin_factory=pin_factory,
        on_pressed=recorder.pressed,
        on_held=recorder.held,
        on_released=recorder.released,
        **kwargs,
    )


async def test_press_reaches_the_loop_at_once_and_release_reports_how_long(config, pin_factory):
    rec = Recorder()
    button = make_button(config, pin_factory, rec)
    try:
        assert button.simulated
        assert button.pin.pull == "up"  # wired to ground: active low
        start = time.monotonic()
        button.press()
        assert button.pin.state == 0
        await rec.wait(1)
        assert rec.names() == ["pressed"]
        assert rec.events[0][2] - start < 0.2  # the kiosk's feedback budget
        assert rec.events[0][3] == threading.get_ident()  # delivered on the loop's thread
        assert button.is_pressed
        button.release()
        await rec.wait(2)
        assert rec.names() == ["pressed", "released"]
        assert 0 <= rec.events[1][1] < 0.2
        assert not button.is_pressed
    finally:
        button.close()


async def test_holding_crosses_each_threshold_once_then_releases(config, pin_factory):
    rec = Recorder()
    button = make_button(config, pin_factory, rec, hold_thresholds=(0.2, 0.35))
    try:
        assert button.hold_thresholds == (0.2, 0.35)
        start = time.monotonic()
        await button.hold(0.5)
        await rec.wait(4)
        assert rec.names() == ["pressed", "held", "held", "released"]
        assert [e[1] for e in rec.events[1:3]] == [0.2, 0.35]
        # The timers fire on time, not only when the next edge arrives.
        assert rec.events[1][2] - start == pytest.approx(0.2, abs=0.1)
        assert rec.events[2][2] - start == pytest.approx(0.35, abs=0.1)
        assert rec.events[3][1] == pytest.approx(0.5, abs=0.1)
    finally:
        button.close()


async def test_default_threshold_is_the_configured_long_press(config, pin_factory):
    config.long_press_s = 0.15
    rec = Recorder()
    button = make_button(config, pin_factory, rec)
    try:
        assert button.hold_thresholds == (0.15,)
        await button.hold(0.25)
        await rec.wait(3)
        assert rec.names() == ["pressed", "held", "released"]
        assert rec.events[1][1] == 0.15
    finally:
        button.close()


async def test_contact_chatter_on_the_pin_is_one_press(config, pin_factory):
    rec = Recorder()
    button = make_button(config, pin_factory, rec)
    pin = button.pin
    try:
        for _ in range(4):  # far faster than the 30 ms debounce
            pin.drive_low()
            pin.drive_high()
        pin.drive_low()
        await rec.wait(1)
        pin.drive_high()
        await rec.wait(2)
        assert rec.names() == ["pressed", "released"]
    finally:
        button.close()


async def test_edges_from_gpiozero_threads_are_delivered_on_the_loop(config, pin_factory):
    rec = Recorder()
    button = make_button(config, pin_factory, rec)
    try:
        # A real pin factory calls back on its own thread; drive the mock pin from one.
        await asyncio.to_thread(button.press)
        await rec.wait(1)
        await asyncio.to_thread(button.release)
        await rec.wait(2)
        assert rec.names() == ["pressed", "released"]
        assert {e[3] for e in rec.events} == {threading.get_ident()}
    finally:
        button.close()


async def test_async_callbacks_and_callbacks_set_later(config, pin_factory):
    done = asyncio.Event()
    seen: list[float] = []

    async def on_released(held_s: float) -> None:
        seen.append(held_s)
        done.set()

    button = PressButton(config, pin_factory=pin_factory)
    try:
        button.on_released = on_released
        button.press()
        button.release()
        await asyncio.wait_for(done.wait(), 5)
        assert len(seen) == 1
    finally:
        button.close()


async def test_a_failing_callback_does_not_stop_the_button(config, pin_factory):
    rec = Recorder()

    def broken() -> None:
        raise RuntimeError("kiosk bug")

    button = make_button(config, pin_factory, rec)
    button.on_pressed = broken
    try:
        button.press()
        button.release()
        await rec.wait(1)
        assert rec.names() == ["released"]
    finally:
        button.close()


async def test_call_soon_is_how_edges_reach_the_loop(config, pin_factory):
    loop = asyncio.get_running_loop()
    calls: list[object] = []

    def call_soon(callback, *args):
        calls.append(callback)
        return loop.call_soon_threadsafe(callback, *args)

    rec = Recorder()
    button = make_button(config, pin_factory, rec, call_soon=call_soon)
    try:
        button.press()
        button.release()
        await rec.wait(2)
        assert len(calls) == 2
    finally:
        button.close()


def test_needs_an_event_loop(config, pin_factory):
    with pytest.raises(DeviceFault, match="event loop"):
        PressButton(config, pin_factory=pin_factory)


async def test_a_pin_already_in_use_is_a_device_fault(config, pin_factory):
    first = PressButton(config, pin_factory=pin_factory)
    try:
        with pytest.raises(DeviceFault, match="GPIO17"):
            PressButton(config, pin_factory=pin_factory)
    finally:
        first.close()

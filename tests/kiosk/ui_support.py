"""Helpers for the kiosk UI tests: a small core that the UI can drive, the views of every
screen, synthetic video frames, and a way to put the app on the offscreen window.

`RecordingCore` is a stand-in for porchlight.kiosk.core.KioskCore that keeps the real pure
state machine (kiosk/state.py) inside, so the UI is shown the very views the kiosk makes, and
records what the UI asked of it. Kivy's environment (offscreen SDL2, temp KIVY_HOME, ...) is
set by tests/conftest.py before anything imports Kivy.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy

from porchlight.kiosk import state as sm
from porchlight.kiosk.view import KioskView, LatestFrame

WIDTH, HEIGHT = 800, 480


@dataclass
class FakeClock:
    """Monotonic seconds that move only when a test says so."""

    t: float = 1000.0

    def __call__(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds


@dataclass
class RecordingCore:
    """What the UI needs from the core, with the real state machine behind it."""

    clock: FakeClock = field(default_factory=FakeClock)
    simulated: bool = True
    machine: sm.KioskMachine = field(init=False)
    remote_frames: LatestFrame = field(default_factory=LatestFrame)
    local_frames: LatestFrame = field(default_factory=LatestFrame)
    calls: list[str] = field(default_factory=list)
    _subscribers: list[Callable[[KioskView], None]] = field(default_factory=list)
    _down_at: float = 0.0

    def __post_init__(self) -> None:
        self.machine = sm.KioskMachine(now=self.clock())

    @property
    def view(self) -> KioskView:
        return self.machine.view

    def subscribe(self, fn: Callable[[KioskView], None]) -> Callable[[], None]:
        self._subscribers.append(fn)
        return lambda: self._subscribers.remove(fn)

    @property
    def subscribers(self) -> int:
        return len(self._subscribers)

    def feed(self, *events: sm.Event) -> KioskView:
        """Hand events to the machine (as the hub link and call would) and tell the UI."""
        for event in events:
            self.machine.handle(event, self.clock())
        for fn in list(self._subscribers):
            fn(self.machine.view)
        return self.machine.view

    def button_down(self) -> None:
        self.calls.append("down")
        self._down_at = self.clock()
        self.feed(sm.ButtonPressed())

    def button_up(self) -> None:
        self.calls.append("up")
        self.feed(sm.ButtonReleased(self.clock() - self._down_at))

    def on_ui_ready(self) -> None:
        self.calls.append("ready")


# Every screen the kiosk can show, as the events that lead the real machine there.
CALL_ID = "call-1"
_HOME = (sm.HubConnected(),)
_JOINING = (*_HOME, sm.ButtonPressed(), sm.ButtonReleased())
_WAITING = (*_JOINING, sm.WaitingConfirmed())
_ADMITTED = (*_WAITING, sm.Admitted(CALL_ID))
_TALKING = (*_ADMITTED, sm.MediaConnected(CALL_ID))
SCREENS: dict[str, tuple[sm.Event, ...]] = {
    "starting": (),
    "idle": _HOME,
    "offline": (*_HOME, sm.HubLost()),
    "offline-waiting": (*_WAITING, sm.HubLost()),
    "setup": (sm.NeedsSetup(),),
    "joining": _JOINING,
    "waiting": _WAITING,
    "connecting": _ADMITTED,  # admitted, no picture yet
    "in_call": _TALKING,
    "ending": (*_TALKING, sm.CallEnded(CALL_ID)),
}


def core_at(screen: str, **kwargs) -> RecordingCore:
    """A core whose machine has been driven to `screen` (a key of SCREENS)."""
    core = RecordingCore(**kwargs)
    for event in SCREENS[screen]:
        # Time passes between real events; the pressed flash must not linger into the shot.
        core.clock.advance(1.0)
        core.machine.handle(event, core.clock())
    core.clock.advance(1.0)
    core.machine.handle(sm.Tick(), core.clock())
    return core


def person_frame(width: int, height: int, *, background, clothes, skin) -> numpy.ndarray:
    """A calm synthetic picture of a person (head and shoulders) for video tests and shots."""
    yy, xx = numpy.mgrid[0:height, 0:width]
    frame = numpy.empty((height, width, 3), numpy.uint8)
    shade = (0.75 + 0.25 * yy / max(1, height - 1))[..., None]
    frame[:] = (numpy.array(background, float) * shade).astype(numpy.uint8)
    cx = width / 2
    shoulders = ((xx - cx) / (width * 0.38)) ** 2 + ((yy - height) / (height * 0.38)) ** 2 <= 1
    frame[shoulders] = clothes
    head = ((xx - cx) / (width * 0.13)) ** 2 + ((yy - height * 0.42) / (height * 0.2)) ** 2 <= 1
    frame[head] = skin
    return frame


def nurse_frame(width: int = 640, height: int = 480) -> numpy.ndarray:
    return person_frame(
        width, height, background=(70, 110, 150), clothes=(30, 60, 120), skin=(224, 180, 150)
    )


def patient_frame(width: int = 320, height: int = 240) -> numpy.ndarray:
    return person_frame(
        width, height, background=(150, 130, 100), clothes=(120, 40, 60), skin=(230, 190, 160)
    )


def halves_frame(width: int, height: int) -> numpy.ndarray:
    """Top half red, bottom half blue: shows at once if the picture is upside down."""
    frame = numpy.zeros((height, width, 3), numpy.uint8)
    frame[: height // 2, :, 0] = 255
    frame[height // 2 :, :, 2] = 255
    return frame


# ---------------------------------------------------------------- Kivy side


def window():
    from kivy.base import EventLoop

    EventLoop.ensure_window()
    return EventLoop.window


def pump(frames: int = 2) -> None:
    """Let Kivy run `frames` frames: clock callbacks, layout, drawing."""
    from kivy.base import EventLoop

    for _ in range(frames):
        EventLoop.idle()


def pump_until(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    """Run frames until `predicate()` holds; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("the UI never reached the expected state")
        pump(1)


@contextmanager
def mounted(app) -> Iterator:
    """The app's root on the offscreen window for the duration of a test."""
    win = window()
    root = app.build()
    app.root = root
    win.add_widget(root)
    try:
        pump(3)
        yield root
    finally:
        app.close()
        win.remove_widget(root)
        pump(1)


def pixels(widget) -> numpy.ndarray:
    """What `widget` looks like, as an HxWx4 uint8 array, top row first."""
    texture = widget.export_as_image().texture
    return numpy.frombuffer(texture.pixels, numpy.uint8).reshape(texture.height, texture.width, 4)


def visible_labels(widget) -> Iterator:
    """Every Label under `widget` that a person can see (shown, with text)."""
    from kivy.uix.label import Label

    def shown(w) -> bool:
        while w is not None and w is not w.parent:  # the window is its own parent
            if w.opacity <= 0:
                return False
            w = w.parent
        return True

    for child in widget.walk(restrict=True):
        if isinstance(child, Label) and child.text and shown(child):
            yield child


def backdrop_of(widget):
    """The colour really behind `widget`: its own or its nearest ancestor's `bg_color`."""
    w = widget
    while w is not None and w is not w.parent:
        if hasattr(w, "bg_color"):
            return tuple(w.bg_color)
        w = w.parent
    raise AssertionError(f"{widget!r} has nothing behind it that says its colour")


def run_app_once() -> dict:
    """Run KioskApp the way the kiosk runner does (async_run on asyncio), press its button
    once, and stop. Returns what was seen. Used in a subprocess by test_ui_run.py, so the
    real app loop and window lifecycle cannot disturb the other UI tests."""
    import asyncio

    from kivy.tests.common import UnitTestTouch

    from porchlight.kiosk.app import KioskApp

    core = core_at("idle")
    app = KioskApp(core)
    seen: dict = {}

    async def drive() -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 20
        while "ready" not in core.calls:
            if loop.time() > deadline:
                raise TimeoutError("the app never said it was ready")
            await asyncio.sleep(0.02)
        win = window()
        seen["window"] = list(win.size)
        seen["headline_at_ready"] = app.screen.message.headline.text
        button = app.button
        touch = UnitTestTouch(*button.to_window(*button.center))
        touch.touch_down()
        touch.touch_up()
        while app.screen.message.headline.text == seen["headline_at_ready"]:
            if loop.time() > deadline:
                raise TimeoutError("the screen never changed after the press")
            await asyncio.sleep(0.02)
        seen["headline_after_press"] = app.screen.message.headline.text
        app.stop()

    async def main() -> None:
        task = asyncio.create_task(drive())
        await app.async_run(async_lib="asyncio")
        await task

    asyncio.run(main())
    seen["calls"] = core.calls
    seen["subscribers_after_stop"] = core.subscribers
    return seen


if __name__ == "__main__":
    import json

    print("RESULT " + json.dumps(run_app_once()))

"""The kiosk's setup screen in Kivy (offscreen): touches on the big keys reach the flow, every
step draws, sizes and contrast hold, and screenshots go to docs/screenshots/setup-*.png
(set PORCHLIGHT_SCREENSHOT_DIR=docs/screenshots to refresh the committed ones)."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy
import pytest

from porchlight.hub.enrolment import ALPHABET, EnrolmentTicket
from porchlight.kiosk import ui_theme as theme
from porchlight.kiosk.setup_flow import Enrol, ResultLine, SetupFlow, SetupView, Step
from porchlight.kiosk.ui_contrast import AAA, contrast_ratio
from porchlight.provisioning.wifi import SeenNetwork

WIDTH, HEIGHT = 800, 480


class FlowSession:
    """The real pure flow behind the UI; effects are recorded instead of carried out."""

    def __init__(self) -> None:
        self.flow = SetupFlow()
        self.view: SetupView = self.flow.view
        self.effects: list[Any] = []
        self._subscribers: list[Callable[[SetupView], None]] = []

    def subscribe(self, fn: Callable[[SetupView], None]) -> Callable[[], None]:
        self._subscribers.append(fn)
        return lambda: self._subscribers.remove(fn)

    def act(self, action: str, *args: Any) -> None:
        self.effects.extend(getattr(self.flow, action)(*args))
        self.view = self.flow.view
        for fn in list(self._subscribers):
            fn(self.view)


def window():
    from kivy.base import EventLoop

    EventLoop.ensure_window()
    EventLoop.window.size = (WIDTH, HEIGHT)
    return EventLoop.window


def pump(frames: int = 3) -> None:
    from kivy.base import EventLoop

    for _ in range(frames):
        EventLoop.idle()


@pytest.fixture
def shown():
    from porchlight.kiosk.ui_setup import SetupApp

    session = FlowSession()
    app = SetupApp(session)
    win = window()
    root = app.build()
    app.root = root
    win.add_widget(root)
    pump()
    yield app, session, root
    app.close()
    win.remove_widget(root)
    pump(1)


def tap(app, action: str, arg: str = "") -> None:
    from kivy.tests.common import UnitTestTouch

    key = app.key(action, arg)
    touch = UnitTestTouch(*key.to_window(*key.center))
    touch.touch_down()
    touch.touch_up()
    pump()


def test_typing_the_code_on_the_keypad(shown):
    app, session, root = shown
    tap(app, "open_keypad")
    assert session.flow.step is Step.KEYPAD
    # Every code character has a key, and nothing else can be typed.
    assert {k.arg for k in app.all_keys() if k.action == "key"} == set(ALPHABET)
    for char in "ACDEFGHX":
        tap(app, "key", char)
    code = next(w for w in root.walk() if getattr(w, "setup_role", "") == "code")
    assert code.text == "ACDE-FGHX"
    tap(app, "backspace")
    tap(app, "key", "J")
    tap(app, "submit_code")
    assert session.effects == [Enrol(EnrolmentTicket("ACDEFGHJ"))]
    assert root.headline.text == "Setting up…"


def test_a_short_code_shows_its_error_on_screen(shown):
    app, session, root = shown
    tap(app, "open_keypad")
    tap(app, "key", "A")
    tap(app, "submit_code")
    assert "has 8 characters; this one has 1" in root.error.text
    assert session.effects == []


def test_sizes_and_contrast_of_every_step(shown):
    from porchlight.kiosk.ui_setup import BODY_PX, KEY_PX, SetupKey, SetupText, colour_pairs

    _app, session, root = shown
    for what, fg, bg in colour_pairs():
        assert contrast_ratio(fg, bg) >= AAA, what
    for step in drive_to_every_step(session):
        pump()
        for widget in root.walk():
            if isinstance(widget, SetupKey):
                assert widget.font_size >= KEY_PX >= theme.BUTTON_MIN_PX, (step, widget.text)
                assert widget.height >= 56 and widget.width >= 56, (step, widget.text)
                # The whole label fits: nothing is cut short to "...".
                assert natural_width(widget) <= widget.text_size[0], (step, widget.text)
            elif isinstance(widget, SetupText) and widget.text.strip():
                assert widget.font_size >= BODY_PX >= theme.BODY_MIN_PX, (step, widget.text)


def natural_width(label) -> float:
    from kivy.core.text import Label as CoreLabel

    core = CoreLabel(text=label.text, font_size=label.font_size, bold=label.bold)
    core.refresh()
    return core.texture.size[0]


def drive_to_every_step(session: FlowSession):
    yield "welcome"
    session.act("open_keypad")
    for char in "ACDEF":
        session.act("key", char)
    yield "keypad"
    session.act("back")
    session.act("open_wifi")
    session.act("networks_found", NETWORKS)
    yield "wifi"
    session.act("choose_network", "Home")
    yield "password"
    session.act("password_key", "x")
    yield "password"
    session.act("back")
    session.act("back")
    session.act("qr_text", "http://127.0.0.1:8740/enrol#code=ACDEFGHJ")
    yield "working"
    session.act("enrolled", "Alice Able")
    yield "selftest"
    session.act("self_test_done", RESULTS)
    yield "done"


NETWORKS = [
    SeenNetwork("Home", 80, True),
    SeenNetwork("Jones family", 62, True),
    SeenNetwork("Library free Wi-Fi", 31, False),
]
RESULTS = [
    ResultLine("The camera shows a picture.", "ok"),
    ResultLine("The speaker played a tone. Check that you heard it.", "ok"),
    ResultLine("The microphone hears nothing. Check it is plugged in and not muted.", "problem"),
    ResultLine("The light went on and off. Check that you saw it.", "ok"),
    ResultLine("The button works.", "ok"),
    ResultLine("The link to the hub is good (delay 12 ms, down 40.0 Mbit/s).", "ok"),
    ResultLine("The kiosk's clock is right.", "ok"),
]


def png_size(path: Path) -> tuple[int, int]:
    import struct

    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", data[16:24])


def test_screenshots_of_every_step(shown, tmp_path):
    _app, session, root = shown
    out = Path(os.environ.get("PORCHLIGHT_SCREENSHOT_DIR") or tmp_path)
    out.mkdir(parents=True, exist_ok=True)
    names = []
    for step in drive_to_every_step(session):
        pump(4)
        if step == "keypad":
            session.act("key", "0")  # shows the error line too
            pump(4)
        path = out / f"setup-{step}.png"
        root.export_to_png(str(path))
        names.append(path.name)
        assert png_size(path) == (WIDTH, HEIGHT)
        texture = root.export_as_image().texture
        picture = numpy.frombuffer(texture.pixels, numpy.uint8).reshape(HEIGHT, WIDTH, 4)
        assert len({tuple(p) for p in picture[::8, ::8].reshape(-1, 4)}) > 3, step
    assert len(set(names)) == 7

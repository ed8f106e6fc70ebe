"""Touches and the space bar reach the core as one button, with visible feedback at once."""

from __future__ import annotations

import time
from contextlib import contextmanager

import pytest
from kivy.tests.common import UnitTestTouch

from porchlight.kiosk import state as sm
from porchlight.kiosk import ui_theme as theme
from porchlight.kiosk.app import KioskApp
from porchlight.kiosk.ui_contrast import parse

from .ui_support import core_at, mounted, pixels, pump, pump_until, window

SPACE, ENTER = 32, 13


@contextmanager
def showing(screen: str):
    core = core_at(screen)
    app = KioskApp(core, now=core.clock)
    with mounted(app) as root:
        core.calls.clear()  # forget "ready": these tests count presses
        yield app, core, root


def finger_on(button) -> UnitTestTouch:
    return UnitTestTouch(*button.to_window(*button.center))


def key(kind: str, code: int) -> None:
    window().dispatch(f"on_key_{kind}", code, 0, " " if code == SPACE else "", [])


def test_touching_the_big_button_presses_and_releases_the_core_button():
    with showing("idle") as (app, core, root):
        touch = finger_on(app.button)
        touch.touch_down()
        assert core.calls == ["down"]
        touch.touch_up()
        assert core.calls == ["down", "up"]
        pump(1)
        # The real state machine took it as a join.
        assert root.message.headline.text == "Calling your nurse…"


def test_holding_is_one_long_press():
    with showing("waiting") as (app, core, _root):
        touch = finger_on(app.button)
        touch.touch_down()
        touch.touch_move(touch.x + 40, touch.y + 10)  # a shaky finger is still pressing
        core.clock.advance(2.2)
        touch.touch_up()
        assert core.calls == ["down", "up"]
        pump(1)
        assert core.view.state == sm.S.IDLE  # held 2 s while waiting: left the room
        assert app.screen.message.detail.text == sm.NOTICE_LEFT


def test_a_touch_beside_the_button_does_nothing():
    with showing("idle") as (app, core, _root):
        button = app.button
        x, y = button.to_window(button.x, button.y)
        touch = UnitTestTouch(x + 10, y + button.height + 40)  # on the words above it
        touch.touch_down()
        touch.touch_up()
        assert core.calls == []


def test_two_fingers_are_one_press():
    with showing("offline") as (app, core, _root):
        first, second = finger_on(app.button), finger_on(app.button)
        first.touch_down()
        second.touch_down()
        first.touch_up()
        assert core.calls == ["down"]
        second.touch_up()
        assert core.calls == ["down", "up"]


def test_space_bar_is_the_button_and_key_repeat_is_ignored():
    with showing("idle") as (_app, core, root):
        key("down", SPACE)
        key("down", SPACE)  # auto-repeat while held
        key("down", SPACE)
        assert core.calls == ["down"]
        key("up", SPACE)
        assert core.calls == ["down", "up"]
        key("down", ENTER)
        key("up", ENTER)
        assert core.calls == ["down", "up"]
        pump(1)
        assert root.message.headline.text == "Calling your nurse…"


def test_space_and_finger_together_are_one_press():
    with showing("waiting") as (app, core, _root):
        touch = finger_on(app.button)
        key("down", SPACE)
        touch.touch_down()
        key("up", SPACE)
        assert core.calls == ["down"]
        touch.touch_up()
        assert core.calls == ["down", "up"]


def test_losing_focus_lets_go_of_a_held_space_bar():
    with showing("waiting") as (_app, core, _root):
        win = window()
        key("down", SPACE)
        win._focus = False  # what the SDL2 window does on "windowfocuslost"
        try:
            assert core.calls == ["down", "up"]
            key("up", SPACE)  # the late key-up must not count twice
            assert core.calls == ["down", "up"]
        finally:
            win._focus = True


def _ring_pixel(app, root) -> tuple[int, int, int]:
    """The colour just inside the button's left edge, where the pressed ring is drawn."""
    button = app.button
    x, y = button.to_window(button.x, button.center_y)
    picture = pixels(root)
    return tuple(int(c) for c in picture[root.height - 1 - int(y), int(x) + 2][:3])


@pytest.mark.parametrize("screen", ["offline", "waiting"])
def test_a_press_is_visible_on_the_next_frame(screen):
    with showing(screen) as (app, _core, root):
        before = _ring_pixel(app, root)
        touch = finger_on(app.button)
        started = time.monotonic()
        touch.touch_down()
        assert app.button.pressed  # set before the core or the clock had a say
        pump(1)
        elapsed = time.monotonic() - started
        after = _ring_pixel(app, root)
        touch.touch_up()
        ink = tuple(round(c * 255) for c in parse(theme.INK))
        assert before != ink and after == ink
        assert elapsed < 0.2


def test_a_press_on_the_physical_button_shows_on_screen_too():
    with showing("waiting") as (app, core, _root):
        assert not app.button.pressed
        core.feed(sm.ButtonPressed())  # what the core does for a GPIO edge
        pump(1)
        assert app.button.pressed
        core.clock.advance(0.2)
        core.feed(sm.ButtonReleased(0.2))
        core.clock.advance(1.0)  # past the core's pressed flash
        core.feed(sm.Tick())
        pump(1)
        assert not app.button.pressed


def test_the_hold_bar_fills_while_held_and_empties_on_release():
    with showing("waiting") as (app, core, _root):
        button = app.button
        assert button.holdable and button.hold_fraction < 0
        touch = finger_on(button)
        touch.touch_down()
        for done in (0.0, 0.25, 0.5, 0.75):  # a 2 s hold, in 0.5 s steps
            if done:
                core.clock.advance(0.5)
            pump_until(lambda d=done: button.hold_fraction == pytest.approx(d))
        touch.touch_up()  # let go after 1.5 s: still waiting
        pump(1)
        assert core.view.state == sm.S.WAITING
        assert button.hold_fraction < 0


def test_a_quick_tap_does_not_leave_the_hold_bar_running():
    with showing("waiting") as (app, core, _root):
        button = app.button
        touch = finger_on(button)
        touch.touch_down()
        core.clock.advance(0.2)
        touch.touch_up()
        pump(2)
        # The core keeps its short pressed flash after the tap; the bar must not carry on.
        assert core.view.pressed and button.pressed
        assert button.hold_fraction < 0


def test_no_hold_bar_for_the_press_that_joins():
    with showing("idle") as (app, core, _root):
        touch = finger_on(app.button)
        touch.touch_down()
        core.clock.advance(1.0)
        pump(2)
        assert all(b.hold_fraction < 0 for b in app.buttons)
        touch.touch_up()

"""Every kiosk screen, drawn offscreen from the views the real state machine makes: the right
words, readable sizes, 7:1 contrast against what is really behind each word, and a screenshot.

Set PORCHLIGHT_SCREENSHOT_DIR=docs/screenshots to refresh the committed screenshots.
"""

from __future__ import annotations

import dataclasses
import os
import struct
from contextlib import contextmanager
from pathlib import Path

import pytest
from kivy.tests.common import UnitTestTouch

from porchlight.device.light_patterns import PATTERNS
from porchlight.kiosk import state as sm
from porchlight.kiosk import ui_theme as theme
from porchlight.kiosk.app import KioskApp
from porchlight.kiosk.ui_contrast import AAA, contrast_ratio
from porchlight.kiosk.widgets import BigButton, LightLamp, LinkBars, StateIcon

from .ui_support import (
    HEIGHT,
    SCREENS,
    WIDTH,
    backdrop_of,
    core_at,
    mounted,
    nurse_frame,
    patient_frame,
    pixels,
    pump,
    pump_until,
    visible_labels,
)


@contextmanager
def showing(screen: str, *, simulated: bool = True):
    core = core_at(screen, simulated=simulated)
    core.remote_frames.put(nurse_frame())
    core.local_frames.put(patient_frame())
    app = KioskApp(core, now=core.clock)
    with mounted(app) as root:
        if core.view.show_video:
            pump_until(lambda: root.call.remote.texture is not None)
        yield app, core, root


def inside_window(widget) -> bool:
    x, y = widget.to_window(widget.x, widget.y)
    return x >= 0 and y >= 0 and x + widget.width <= WIDTH and y + widget.height <= HEIGHT


@pytest.mark.parametrize("screen", list(SCREENS))
def test_each_screen_shows_the_words_of_its_view(screen):
    with showing(screen) as (app, core, root):
        view = core.view
        shown = {label.text for label in visible_labels(root.current_screen)}
        if view.show_video:
            assert root.current == "call"
            assert shown == {view.button_label}  # the picture, and only the End call button
            assert app.button is root.call.button
        else:
            assert root.current == "message"
            panel = root.message
            assert panel.headline.text == view.headline
            assert panel.detail.text == view.detail
            assert panel.icon.state == view.state.value
            expected = {view.headline, view.detail, view.button_label} - {""}
            assert shown == expected
        # A button is on screen exactly when the view names one.
        assert app.button.shown == bool(view.button_label)
        for label in visible_labels(root.current_screen):
            assert inside_window(label), f"{label.text!r} runs off the screen"
            tw, th = label.texture_size
            assert tw <= label.width + 1 and th <= label.height + 1, f"{label.text!r} overflows"


def check_readable(root) -> int:
    """Sizes and contrast of everything drawn on the current screen; returns words checked."""
    checked = 0
    for label in visible_labels(root.current_screen):
        floor = theme.BUTTON_MIN_PX if isinstance(label, BigButton) else theme.BODY_MIN_PX
        assert label.font_size >= floor, f"{label.text!r} is {label.font_size}px"
        ratio = contrast_ratio(tuple(label.color), backdrop_of(label))
        assert ratio >= AAA, f"{label.text!r} has contrast {ratio:.2f}"
        checked += 1
    for shape in root.current_screen.walk(restrict=True):
        if isinstance(shape, StateIcon | LinkBars | LightLamp) and shape.opacity > 0:
            ratio = contrast_ratio(tuple(shape.fg_color), backdrop_of(shape))
            assert ratio >= AAA, f"{type(shape).__name__} has contrast {ratio:.2f}"
    return checked


@pytest.mark.parametrize("screen", list(SCREENS))
def test_each_screen_is_readable_at_arms_length(screen):
    with showing(screen) as (app, _core, root):
        assert check_readable(root) >= 1
        button = app.button
        if button.shown:
            # Very large targets: even the End call button over the picture.
            assert button.width >= 400 and button.height >= 100
            # Pressed looks different but stays just as readable.
            touch = UnitTestTouch(*button.to_window(*button.center))
            touch.touch_down()
            pump(1)
            check_readable(root)
            touch.touch_up()


def test_home_button_fills_most_of_the_screen():
    with showing("idle") as (app, _core, _root):
        button = app.button
        assert button.width * button.height >= 0.5 * WIDTH * HEIGHT
        assert button.font_size == theme.HOME_BUTTON_PX


def test_screen_follows_the_core_through_a_call():
    with showing("idle") as (app, core, root):
        seen = []
        for event in (
            sm.ButtonPressed(),
            sm.ButtonReleased(),
            sm.WaitingConfirmed(),
            sm.Admitted("c"),
            sm.MediaConnected("c"),
            sm.CallEnded("c"),
        ):
            core.clock.advance(1.0)
            core.feed(event)
            pump(1)
            seen.append((root.current, app.screen.message.icon.state))
        assert seen == [
            ("message", "joining"),
            ("message", "joining"),
            ("message", "waiting"),
            ("message", "in_call"),  # admitted, no picture yet: "Your nurse is joining…"
            ("call", "in_call"),
            ("message", "ending"),
        ]


def test_many_views_in_one_frame_draw_the_newest():
    with showing("idle") as (_app, core, root):
        core.feed(sm.ButtonPressed())
        core.feed(sm.ButtonReleased())
        core.feed(sm.WaitingConfirmed())
        pump(1)
        assert root.message.headline.text == sm.WAITING_HEADLINE


def test_the_ui_says_it_is_ready_once_and_lets_go_of_the_core():
    core = core_at("idle")
    app = KioskApp(core, now=core.clock)
    with mounted(app):
        assert core.subscribers == 1
        pump(3)
        assert core.calls.count("ready") == 1
        assert app.ui_ready
    assert core.subscribers == 0


@pytest.mark.parametrize("link", ["good", "fair", "poor", "none"])
def test_link_bars_follow_the_view(link):
    with showing("waiting") as (_app, core, root):
        core.machine.view = dataclasses.replace(core.view, link=link)  # as the hub link reports
        core.feed()
        pump(1)
        bars = root.message.sim.bars
        assert bars.link == link
        assert bars.filled == {"good": 3, "fair": 2, "poor": 1, "none": 0}[link]


def test_an_inactive_button_is_outlined_and_still_answers():
    # The machine today hides a button it does not want pressed; a view may also show one
    # greyed out. It must stay readable (7:1), differ by shape (outline, no fill) and still
    # pass presses to the core, which gives the beep and the words.
    with showing("offline") as (app, core, root):
        core.machine.view = dataclasses.replace(core.view, button_enabled=False)
        core.feed()
        pump(1)
        button = app.button
        assert button.shown and not button.enabled
        assert tuple(button.fill_color) == theme.rgba(theme.SCREEN)
        check_readable(root)
        touch = UnitTestTouch(*button.to_window(*button.center))
        touch.touch_down()
        touch.touch_up()
        assert core.calls[-2:] == ["down", "up"]


def test_simulation_aids_only_when_simulated():
    with showing("waiting", simulated=False) as (app, _core, root):
        assert not app.simulated
        assert root.message.sim.opacity == 0 and root.message.sim.height == 0
    with showing("waiting", simulated=True) as (app, _core, root):
        assert root.message.sim.opacity == 1 and root.message.sim.height > 0


def test_light_indicator_draws_the_device_pattern():
    with showing("waiting") as (_app, core, root):
        lamp = root.message.sim.lamp
        assert core.view.light == "slow_blink"
        started = core.clock.t  # the pattern starts when its view first reaches the screen
        levels = []
        for at in (0.5, 1.5, 2.25):  # on, off, on again
            core.clock.t = started + at
            expected = PATTERNS["slow_blink"].level_at(at)
            pump_until(lambda e=expected: lamp.level == pytest.approx(e))
            levels.append(lamp.level)
        assert levels == [1.0, 0.0, 1.0]


# ---------------------------------------------------------------- screenshots


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    return struct.unpack(">II", data[16:24])


SHOTS = [
    *((f"kiosk-{name}.png", name, None) for name in SCREENS),
    ("kiosk-offline-pressed.png", "offline", "press"),
    ("kiosk-waiting-holding.png", "waiting", "hold"),
]


@pytest.mark.parametrize(("filename", "screen", "action"), SHOTS)
def test_screenshot(filename, screen, action, tmp_path):
    out = Path(os.environ.get("PORCHLIGHT_SCREENSHOT_DIR") or tmp_path)
    out.mkdir(parents=True, exist_ok=True)
    with showing(screen) as (app, core, root):
        touch = None
        if action:
            button = app.button
            touch = UnitTestTouch(*button.to_window(*button.center))
            touch.touch_down()
            if action == "hold":
                core.clock.advance(1.2)  # 60 % of the way to leaving
            pump(3)
        path = out / filename
        root.export_to_png(str(path))
        picture = pixels(root)
        if action:
            assert app.button.pressed
        if action == "hold":
            assert app.button.hold_fraction == pytest.approx(0.6)
        if touch is not None:
            touch.touch_up()
        assert png_size(path) == (WIDTH, HEIGHT)
        # Not a blank frame: the screen has words and shapes on it.
        assert len({tuple(p) for p in picture[::8, ::8].reshape(-1, 4)}) > 3

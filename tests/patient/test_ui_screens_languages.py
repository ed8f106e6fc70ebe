"""Every kiosk screen in every language the kiosk speaks, drawn offscreen from the views the
real state machine makes: the words are the language's, every word is at least 32 px (48 px
on buttons), every word and shape is at least 7:1 against what is really behind it, nothing
runs off the 800x480 screen, and a screenshot of each is saved.

Set PORCHLIGHT_SCREENSHOT_DIR=docs/screenshots to refresh the committed screenshots (they go
to <dir>/languages/<lang>/kiosk-<screen>.png).
"""

from __future__ import annotations

import os
import struct
from datetime import UTC, datetime
from pathlib import Path

import pytest
from kiosk.ui_support import (
    HEIGHT,
    WIDTH,
    backdrop_of,
    mounted,
    nurse_frame,
    patient_frame,
    pixels,
    pump_until,
    visible_labels,
)

from porchlight.kiosk import ui_theme as theme
from porchlight.kiosk.app import KioskApp
from porchlight.kiosk.appointments import Appointment, home_line
from porchlight.kiosk.i18n import LANGUAGES, words_for
from porchlight.kiosk.ui_contrast import AAA, contrast_ratio
from porchlight.kiosk.ui_survey import Face
from porchlight.kiosk.widgets import BigButton, LightLamp, LinkBars, StateIcon

from .ui_patient import core_at, screens

NOW = datetime(2025, 3, 4, 9, 30, tzinfo=UTC)
APPOINTMENT = Appointment("a1", datetime(2025, 3, 4, 14, 30, tzinfo=UTC), "Nurse Priya Shah")
SCREENS = list(screens(""))


def agenda(language: str) -> str:
    line = home_line([APPOINTMENT], NOW, words_for(language), UTC)
    assert line is not None
    return line


def inside_window(widget) -> bool:
    x, y = widget.to_window(widget.x, widget.y)
    return x >= -1 and y >= -1 and x + widget.width <= WIDTH + 1 and y + widget.height <= HEIGHT + 1


def check_readable(root) -> list[str]:
    """Sizes, contrast and fit of every word and shape on the screen; returns the words."""
    words = []
    for label in visible_labels(root.current_screen):
        floor = theme.BUTTON_MIN_PX if isinstance(label, BigButton) else theme.BODY_MIN_PX
        assert label.font_size >= floor, f"{label.text!r} is {label.font_size}px"
        ratio = contrast_ratio(tuple(label.color), backdrop_of(label))
        assert ratio >= AAA, f"{label.text!r} has contrast {ratio:.2f}"
        assert inside_window(label), f"{label.text!r} runs off the screen"
        tw, th = label.texture_size
        assert tw <= label.width + 1 and th <= label.height + 1, f"{label.text!r} overflows"
        words.append(label.text)
    for shape in root.current_screen.walk(restrict=True):
        if isinstance(shape, StateIcon | LinkBars | LightLamp | Face) and shape.opacity > 0:
            if shape.width <= 0 or shape.height <= 0:
                continue
            ratio = contrast_ratio(tuple(shape.fg_color), backdrop_of(shape))
            assert ratio >= AAA, f"{type(shape).__name__} has contrast {ratio:.2f}"
    return words


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", data[16:24])


@pytest.mark.parametrize("language", list(LANGUAGES))
@pytest.mark.parametrize("screen", SCREENS)
def test_every_screen_in_every_language(screen, language, tmp_path):
    core = core_at(screen, language, agenda=agenda(language))
    english = core_at(screen, "en", agenda=agenda("en")).view
    view = core.view
    assert view.language == language
    core.remote_frames.put(nurse_frame())
    core.local_frames.put(patient_frame())
    app = KioskApp(core, now=core.clock)
    with mounted(app) as root:
        if view.show_video:
            pump_until(lambda: root.call.remote.texture is not None)
        shown = check_readable(root)
        assert shown, "a screen with no words"
        if view.step:
            assert root.current == "survey"
            assert app.survey.panel.question == view.headline
        elif not view.show_video:
            assert root.current == "message"
            assert root.message.headline.text == view.headline
            assert root.message.detail.text == view.detail
        if language != "en" and screen != "starting":
            # Translated: what the patient reads is not the English text.
            assert set(shown) != {english.headline, english.detail, english.button_label} - {""}
        out = Path(os.environ.get("PORCHLIGHT_SCREENSHOT_DIR") or tmp_path) / "languages" / language
        out.mkdir(parents=True, exist_ok=True)
        path = out / f"kiosk-{screen}.png"
        root.export_to_png(str(path))
        assert png_size(path) == (WIDTH, HEIGHT)
        picture = pixels(root)
        assert len({tuple(p) for p in picture[::8, ::8].reshape(-1, 4)}) > 3

"""The home and reminder screens name who will call, drawn offscreen in every language with
a long name: the line wraps (never clips), every word is at least 48 px, fits its box and the
screen, and keeps 7:1 contrast. Screenshots go to <dir>/languages/<lang>/kiosk-<screen>-named.png
(PORCHLIGHT_SCREENSHOT_DIR=docs/screenshots refreshes the committed ones)."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

import pytest
from kiosk.ui_support import HEIGHT, WIDTH, mounted

from porchlight.kiosk.app import KioskApp
from porchlight.kiosk.appointments import Appointment, home_line
from porchlight.kiosk.i18n import LANGUAGES, words_for

from .test_ui_screens_languages import check_readable, png_size
from .ui_patient import core_at

NOW = datetime(2025, 3, 4, 9, 30, tzinfo=UTC)
LONG_NAME = "Nurse Bartholomew Featherstonehaugh-Wojciechowska"
APPOINTMENT = Appointment("a1", datetime(2025, 3, 4, 14, 30, tzinfo=UTC), LONG_NAME)


@pytest.mark.parametrize("language", list(LANGUAGES))
@pytest.mark.parametrize("screen", ["idle-appointment", "reminder"])
def test_a_long_name_wraps_and_stays_big(screen, language, tmp_path):
    line = home_line([APPOINTMENT], NOW, words_for(language), UTC)
    assert line is not None and LONG_NAME in line
    core = core_at(screen, language, agenda=line)
    app = KioskApp(core, now=core.clock)
    with mounted(app) as root:
        assert root.current == "message"
        headline = root.message.headline
        assert headline.text == line  # the whole line, name and all
        assert headline.font_size >= 48, f"the named line is {headline.font_size}px"
        check_readable(root)  # fits its box and the screen, 7:1
        one_line = headline.font_size * 1.6
        assert headline.texture_size[1] > one_line, "a long line must wrap, not clip"
        out = Path(os.environ.get("PORCHLIGHT_SCREENSHOT_DIR") or tmp_path) / "languages"
        path = out / language / f"kiosk-{screen}-named.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        root.export_to_png(str(path))
        assert png_size(path) == (WIDTH, HEIGHT)

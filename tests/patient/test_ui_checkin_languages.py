"""The check-in's screens in every language (the default check-in's questions are in the
catalogues; a care team's own questionnaire is shown as written): words translated, sizes,
7:1 contrast, fit, screenshots in <dir>/languages/<lang>/checkin-*.png."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest
from kiosk.ui_support import pump, pump_until, window

from porchlight.kiosk.i18n import LANGUAGES, words_for
from porchlight.kiosk.outbox import new_record_id
from porchlight.kiosk.questionnaire import default_checkin
from porchlight.kiosk.ui_checkin import SENT, CheckinButton, CheckinFlow

from .test_ui_screens_languages import check_readable

# (screen name, what to do to get there from the first question)
STEPS = {
    "choice": [],
    "yes-no": ["same"],
    "stepper": ["same", False, True, "well"],
    "check-again": ["same", False, True, "well", 85],
    "sent": ["same", False, True, "well", "skip", "skip", "skip"],
}


class Screen:
    """A Kivy screen holder the helpers can walk like the app's root."""

    def __init__(self, widget) -> None:
        self.current_screen = widget


@pytest.mark.parametrize("language", list(LANGUAGES))
@pytest.mark.parametrize("name", list(STEPS))
def test_checkin_screens_in_every_language(name, language, tmp_path):
    words = words_for(language)
    saved = threading.Event()
    flow = CheckinFlow(
        default_checkin(),
        patient_id="p",
        new_id=new_record_id,
        save=lambda records: saved.set(),
        wait_sent=lambda ids, timeout: True,
        words=words,
        size_hint=(None, None),
        size=(800, 480),
    )
    win = window()
    win.add_widget(flow)
    try:
        for step in STEPS[name]:
            if step == "skip":
                flow.skip()
            elif isinstance(step, int):
                flow.answer(step)  # an unusual oxygen level: "please check that again"
            else:
                flow.answer(step)
            pump(2)
        if name == "sent":
            pump_until(lambda: flow.outcome == SENT)
        pump(3)
        shown = check_readable(Screen(flow))
        item = flow.walker.current
        in_english = (item.label or item.text) if item is not None else SENT
        if language != "en":
            assert flow.question and flow.question != in_english
            buttons = {w.text for w in flow.walk() if isinstance(w, CheckinButton) and w.shown}
            assert buttons and not buttons & {"Yes", "No", "Next", "Skip", "Done", "Back"}
        assert shown
        out = Path(os.environ.get("PORCHLIGHT_SCREENSHOT_DIR") or tmp_path) / "languages" / language
        out.mkdir(parents=True, exist_ok=True)
        flow.export_to_png(str(out / f"checkin-{name}.png"))
    finally:
        win.remove_widget(flow)
        pump(1)

"""Touching the patient-side screens: a face then an answer rate the call (one tap each, the
answers reach the core), hidden answers take no touches, and "Answer" answers a ring."""

from __future__ import annotations

from kiosk.ui_support import mounted, pump
from kivy.tests.common import UnitTestTouch

from porchlight.kiosk import state as sm
from porchlight.kiosk.app import KioskApp

from .ui_patient import core_at


def tap(widget) -> None:
    touch = UnitTestTouch(*widget.to_window(*widget.center))
    touch.touch_down()
    touch.touch_up()


def test_one_tap_on_a_face_then_one_on_an_answer(tmp_path):
    core = core_at("survey-faces")
    app = KioskApp(core, now=core.clock)
    with mounted(app) as root:
        assert root.current == "survey"
        survey = app.survey
        assert [f.word for f in survey.faces] == [
            "Very good",
            "Good",
            "All right",
            "Bad",
            "Very bad",
        ]
        assert not survey.yes.shown and not survey.no.shown
        tap(survey.faces[1])  # "Good"
        pump(2)
        assert core.calls[-1] == "face:4"
        assert core.view.step == "again" and root.current == "survey"
        assert survey.panel.question == "Would you use video again?"
        # The faces are gone: touching where one was does nothing.
        tap(survey.faces[0])
        pump(1)
        assert core.calls[-1] == "face:4" and core.view.step == "again"
        tap(survey.yes)
        pump(2)
        assert core.calls[-1] == "again:True"
        assert root.current == "message"
        assert root.message.headline.text == "Thank you for your answers"


def test_the_answer_button_answers_a_ring():
    core = core_at("ringing")
    app = KioskApp(core, now=core.clock)
    with mounted(app) as root:
        assert root.message.headline.text == "Nurse Priya Shah is calling you"
        assert app.button.text == "Answer" and app.button.shown
        tap(app.button)
        pump(2)
        assert core.calls[-2:] == ["down", "up"]
        assert core.view.state == sm.S.JOINING
        assert root.message.headline.text == "Connecting you to your nurse…"

"""Helpers for the patient-side UI tests: a core with the real state machine that also takes
survey taps, and every kiosk screen (issue 8's new ones included) as the events that lead
the real machine there, in any of the kiosk's languages.

The Kivy helpers (offscreen window, pumping frames, reading labels and what is behind them)
are tests/kiosk/ui_support.py's; Kivy's environment is set by tests/conftest.py.
"""

from __future__ import annotations

from dataclasses import dataclass

from kiosk.ui_support import RecordingCore

from porchlight.kiosk import state as sm
from porchlight.kiosk.i18n import words_for

CALL_ID = "call-1"
RING_ID = "ring-1"
CALLER = "Nurse Priya Shah"


@dataclass
class PatientCore(RecordingCore):
    """RecordingCore plus the survey taps the survey screen sends."""

    def survey_face(self, score: int) -> None:
        self.calls.append(f"face:{score}")
        self.feed(sm.SurveyFace(score))

    def survey_again(self, again: bool) -> None:
        self.calls.append(f"again:{again}")
        self.feed(sm.SurveyAgain(again))


# (event, seconds after the previous one). Between steps a second passes unless said.
Step = tuple[sm.Event, float]
_HOME: list[Step] = [(sm.HubConnected(), 1.0)]
_PRESS: list[Step] = [(sm.ButtonPressed(), 1.0), (sm.ButtonReleased(0.1), 0.1)]
_WAITING = [*_HOME, *_PRESS, (sm.WaitingConfirmed(), 1.0)]
_TALKING = [*_WAITING, (sm.Admitted(CALL_ID), 1.0), (sm.MediaConnected(CALL_ID), 1.0)]
_ENDED = [*_TALKING, (sm.CallEnded(CALL_ID), 1.0)]
_SURVEY = [*_ENDED, (sm.Tick(), 6.0)]


def _ring(auto: bool) -> list[Step]:
    return [*_HOME, (sm.RingReceived(RING_ID, CALLER, auto), 1.0)]


def screens(agenda: str) -> dict[str, list[Step]]:
    """Every screen the patient can see; `agenda` is the home line for an appointment."""
    return {
        "starting": [],
        "idle": _HOME,
        "idle-appointment": [*_HOME, (sm.Agenda(agenda), 1.0)],
        "reminder": [*_HOME, (sm.Agenda(agenda), 1.0), (sm.Remind("…", 600.0), 1.0)],
        "offline": [*_HOME, (sm.HubLost(), 1.0)],
        "offline-waiting": [*_WAITING, (sm.HubLost(), 1.0)],
        "setup": [(sm.NeedsSetup(), 1.0)],
        "joining": [*_HOME, *_PRESS],
        "waiting": _WAITING,
        "connecting": [*_WAITING, (sm.Admitted(CALL_ID), 1.0)],
        "in_call": _TALKING,
        "ending": _ENDED,
        "ringing": _ring(False),
        "ringing-auto": [*_ring(True), (sm.Tick(), 3.0)],
        "answering": [*_ring(False), *_PRESS],
        "missed-call": [*_ring(False), (sm.RingStopped(RING_ID, "no_answer"), 1.0)],
        "help-holding": [*_HOME, (sm.ButtonPressed(), 1.0), (sm.Tick(), 2.0)],
        "help-sent": [
            *_HOME,
            (sm.ButtonPressed(), 1.0),
            (sm.Tick(), 3.1),
            (sm.ButtonReleased(3.1), 0.1),
        ],
        "survey-faces": _SURVEY,
        "survey-again": [*_SURVEY, (sm.SurveyFace(4), 1.0)],
        "survey-thanks": [*_SURVEY, (sm.SurveyFace(4), 1.0), (sm.SurveyAgain(True), 1.0)],
    }


def core_at(screen: str, language: str = "en", *, agenda: str = "", **kwargs) -> PatientCore:
    """A core whose machine, speaking `language` with auto-answer on, is at `screen`."""
    core = PatientCore(**kwargs)
    words = words_for(language)
    core.machine.handle(sm.Settings(words, True, True), core.clock())
    for event, after in screens(agenda)[screen]:
        core.clock.advance(after)
        core.machine.handle(event, core.clock())
    if screen not in ("help-holding", "ringing-auto"):
        core.clock.advance(1.0)  # the pressed flash must not linger into the picture
        core.machine.handle(sm.Tick(), core.clock())
    return core

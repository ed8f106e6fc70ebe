"""The patient-side rules of the kiosk's state machine, with time passed in: ringing and
answering, the auto-answer countdown and who it is for, the hold for help, the survey after a
call, reminders, spoken prompts off, and words in the patient's language."""

from __future__ import annotations

import pytest

from porchlight.kiosk import state as m
from porchlight.kiosk.i18n import words_for
from porchlight.kiosk.view import KioskState as S


class Driver:
    """Feeds events with an explicit clock and keeps every effect."""

    def __init__(self, *, auto_answer: bool = False, spoken: bool = True, language: str = "en"):
        self.now = 100.0
        self.machine = m.KioskMachine(now=self.now)
        self.effects: list[m.Effect] = []
        self(m.Settings(words_for(language), spoken, auto_answer))
        self(m.HubConnected())

    def __call__(self, event: m.Event, after: float = 0.0) -> list[m.Effect]:
        self.now += after
        out = self.machine.handle(event, self.now)
        self.effects += out
        return out

    def ticks(self, seconds: float, step: float = 0.125) -> list[m.Effect]:
        # 1/8 s: exact in binary, so the clock adds up to whole seconds with no drift.
        out: list[m.Effect] = []
        for _ in range(round(seconds / step)):
            out += self(m.Tick(), after=step)
        return out

    @property
    def view(self):
        return self.machine.view

    @property
    def state(self) -> S:
        return self.machine.view.state


def says(effects) -> list[str]:
    return [e.text for e in effects if isinstance(e, m.Say)]


def ring(d: Driver, auto: bool = False, ring_id: str = "r1") -> list[m.Effect]:
    return d(m.RingReceived(ring_id, "Nurse Priya Shah", auto), after=1.0)


# ---------------------------------------------------------------- ringing


def test_a_ring_rings_with_light_tone_and_words_and_one_press_answers():
    d = Driver()
    out = ring(d)
    assert d.state == S.RINGING
    assert d.view.light == "ringing"
    assert d.view.headline == "Nurse Priya Shah is calling you"
    assert d.view.detail == "Press the button to answer"
    assert d.view.button_label == "Answer" and d.view.countdown is None
    assert m.Beep() in out
    assert says(out) == ["Nurse Priya Shah is calling you. Press the button to answer."]
    tone = d.ticks(4.0)
    assert tone.count(m.Beep()) == 2  # the ring tone: a beep every 2 s
    assert d.state == S.RINGING  # without auto-answer it waits for the patient
    out = d(m.ButtonPressed(), after=0.1)
    assert out[0] == m.Beep()
    assert m.SendRingAccept("r1") in out
    assert d.state == S.JOINING
    assert d.view.headline == "Connecting you to your nurse…"
    # The hub admits straight away: into the call as after an admit from the waiting room.
    out = d(m.Admitted("c1"), after=0.3)
    assert d.state == S.IN_CALL and m.StartCall("c1") in out


def test_auto_answer_counts_down_ten_seconds_aloud_and_on_screen_then_answers():
    d = Driver(auto_answer=True)
    out = ring(d, auto=True)
    assert says(out) == [
        "Nurse Priya Shah is calling you. The call will start by itself in 10 seconds."
    ]
    shown, spoken = [], []
    for _ in range(79):  # 9.875 s
        spoken += says(d(m.Tick(), after=0.125))
        shown.append(d.view.countdown)
    assert d.state == S.RINGING
    assert sorted(set(shown), reverse=True) == [10, 9, 8, 7, 6, 5, 4, 3, 2, 1]
    assert d.view.detail == "The call will start by itself in 1 second"
    assert spoken == ["5", "4", "3", "2", "1"]
    out = d(m.Tick(), after=0.125)
    assert m.SendRingAccept("r1") in out
    assert d.state == S.JOINING


def test_auto_answer_needs_both_keys_the_hub_and_the_kiosk():
    # The hub sends auto_answer only for a clinician of the patient's care team whose nurse
    # turned it on; the kiosk's own copy of the setting must agree as well.
    hub_says_no = Driver(auto_answer=True)
    ring(hub_says_no, auto=False)
    kiosk_says_no = Driver(auto_answer=False)
    ring(kiosk_says_no, auto=True)
    for d in (hub_says_no, kiosk_says_no):
        assert d.view.countdown is None
        out = d.ticks(30.0)
        assert d.state == S.RINGING
        assert not any(isinstance(e, m.SendRingAccept) for e in out)


def test_turning_auto_answer_off_while_ringing_stops_the_countdown():
    d = Driver(auto_answer=True)
    ring(d, auto=True)
    d.ticks(3.0)
    d(m.Settings(words_for("en"), True, False))
    assert d.view.countdown is None
    assert not any(isinstance(e, m.SendRingAccept) for e in d.ticks(10.0))


def test_a_ring_that_stops_or_times_out_leaves_a_missed_call_notice():
    d = Driver()
    ring(d)
    out = d(m.RingStopped("other"), after=1.0)
    assert d.state == S.RINGING and out == []  # not this ring
    out = d(m.RingStopped("r1", "cancelled"), after=1.0)
    assert d.state == S.IDLE
    assert d.view.headline == "You missed a call from your nurse"
    assert d.view.detail == "Press the button to call them back"
    assert says(out) == ["You missed a call from your nurse. Press the button to call them back."]
    # A press then calls back: the waiting room.
    assert m.SendJoin() in d(m.ButtonPressed(), after=1.0)

    d = Driver()
    ring(d)
    d.ticks(59.875)
    assert d.state == S.RINGING
    d.ticks(0.125)
    assert d.state == S.IDLE and d.view.headline == "You missed a call from your nurse"


def test_rings_are_ignored_outside_home_and_lost_with_the_link():
    d = Driver()
    d(m.ButtonPressed(), after=1.0)
    d(m.WaitingConfirmed(), after=0.2)
    assert ring(d) == [] and d.state == S.WAITING
    d = Driver()
    ring(d)
    d(m.HubLost(), after=1.0)
    assert d.state == S.OFFLINE
    assert d.machine.hello() == {"type": "hello", "state": "idle"}


def test_answering_a_ring_that_the_hub_refuses_goes_home_with_plain_words():
    d = Driver()
    ring(d)
    d(m.ButtonPressed(), after=1.0)
    d(m.HubError("ring_over"), after=0.2)
    assert d.state == S.IDLE
    assert d.view.detail == m.NOTICE_RING_FAILED


# ---------------------------------------------------------------- help


def test_holding_three_seconds_from_home_asks_for_help_instead_of_the_call():
    d = Driver()
    out = d(m.ButtonPressed(), after=1.0)
    assert m.SendJoin() in out  # the press still joins at once (the 1 s promise)
    d.ticks(0.875)
    assert d.view.help_fraction is None  # a normal press is much shorter: nothing said
    d.ticks(0.25)
    assert d.view.headline == "Keep holding to ask your care team for help"
    assert d.view.detail == "Let go to call your nurse"
    assert 0 < d.view.help_fraction < 0.2
    d(m.WaitingConfirmed(), after=0.2)  # the join reached the room meanwhile
    out = d.ticks(2.0)
    assert m.SendLeave() in out and m.QueueHelp() in out
    assert out.index(m.SendLeave()) < out.index(m.QueueHelp())
    assert d.state == S.IDLE
    assert d.view.headline == "Your care team has been asked to call you"
    assert says(out) == [
        "I have asked your care team to call you. They will call as soon as they can."
    ]
    out = d(m.ButtonReleased(3.5), after=0.5)
    assert not any(isinstance(e, m.QueueHelp | m.SendJoin | m.SendLeave) for e in out)
    assert out.count(m.QueueHelp()) == 0 and d.effects.count(m.QueueHelp()) == 1


def test_a_short_press_only_calls_the_nurse():
    d = Driver()
    d(m.ButtonPressed(), after=1.0)
    d(m.ButtonReleased(0.4), after=0.4)
    out = d.ticks(5.0)
    assert not any(isinstance(e, m.QueueHelp | m.SendLeave) for e in d.effects)
    assert d.state == S.JOINING
    assert not any(isinstance(e, m.Say) for e in out)


def test_help_can_be_asked_while_offline_it_waits_in_the_outbox():
    d = Driver()
    d(m.HubLost(), after=1.0)
    d(m.ButtonPressed(), after=1.0)
    out = d.ticks(3.125)
    assert m.QueueHelp() in out and m.SendLeave() not in out
    assert d.state == S.OFFLINE
    assert d.view.detail == "Your care team has been asked to call you"


def test_holding_in_the_waiting_room_leaves_and_does_not_ask_for_help():
    d = Driver()
    d(m.ButtonPressed(), after=1.0)
    d(m.ButtonReleased(0.1), after=0.1)
    d(m.WaitingConfirmed(), after=0.2)
    d(m.ButtonPressed(), after=5.0)
    out = d.ticks(4.0)
    assert m.SendLeave() in out and m.QueueHelp() not in d.effects


def test_no_help_once_the_nurse_has_admitted_the_patient():
    d = Driver()
    d(m.ButtonPressed(), after=1.0)
    d(m.WaitingConfirmed(), after=0.2)
    d(m.Admitted("c1"), after=1.0)
    d.ticks(3.0)
    assert d.state == S.IN_CALL and m.QueueHelp() not in d.effects


# ---------------------------------------------------------------- the survey


def talk_and_end(d: Driver, media: bool = True) -> None:
    d(m.ButtonPressed(), after=1.0)
    d(m.ButtonReleased(0.1), after=0.1)
    d(m.WaitingConfirmed(), after=0.2)
    d(m.Admitted("c1"), after=2.0)
    if media:
        d(m.MediaConnected("c1"), after=1.0)
    d(m.CallEnded("c1"), after=60.0)


def test_after_a_call_two_taps_rate_it_and_the_answers_are_queued():
    d = Driver()
    talk_and_end(d)
    assert d.state == S.ENDING
    out = d.ticks(5.125)
    assert d.state == S.IDLE and d.view.step == "faces"
    assert d.view.headline == "How was your call?"
    assert says(out) == ["How was your call? Touch one of the faces."]
    assert says(d(m.SurveyFace(4), after=3.0)) == ["Would you use video again?"]
    assert d.view.step == "again" and d.view.headline == "Would you use video again?"
    out = d(m.SurveyAgain(True), after=2.0)
    assert m.QueueSurvey("c1", 4, True) in out
    assert d.view.step == "" and d.view.headline == "Thank you for your answers"
    assert d.effects.count(m.QueueSurvey("c1", 4, True)) == 1


def test_no_survey_when_no_picture_and_sound_ever_flowed():
    d = Driver()
    talk_and_end(d, media=False)
    d.ticks(6.0)
    assert d.view.step == ""


def test_the_button_during_the_survey_calls_the_nurse_and_keeps_what_was_answered():
    d = Driver()
    talk_and_end(d)
    d.ticks(5.125)
    d(m.SurveyFace(2), after=1.0)
    out = d(m.ButtonPressed(), after=1.0)
    assert m.SendJoin() in out and m.QueueSurvey("c1", 2, None) in out
    assert d.state == S.JOINING


def test_a_survey_nobody_answers_goes_away_quietly_after_ten_minutes():
    d = Driver()
    talk_and_end(d)
    d.ticks(5.125)
    d(m.Tick(), after=599.0)
    assert d.view.step == "faces"  # no hurry
    out = d(m.Tick(), after=1.0)
    assert d.view.step == "" and not any(isinstance(e, m.QueueSurvey) for e in out)
    assert says(out) == []


def test_impossible_survey_taps_change_nothing():
    d = Driver()
    talk_and_end(d)
    d.ticks(5.125)
    assert d(m.SurveyAgain(True)) == []  # not asked yet
    assert d(m.SurveyFace(9)) == [] and d.view.step == "faces"


# ---------------------------------------------------------------- reminders, speech, words


def test_a_reminder_is_said_and_lights_the_light_then_the_light_goes_back():
    d = Driver()
    d(m.Agenda("Your nurse will call at 2:30 today"), after=1.0)
    assert d.view.headline == "Your nurse will call at 2:30 today"
    assert d.view.detail == "Press the button to call your nurse"
    out = d(m.Remind("Your nurse will call at 2:30, in 15 minutes.", 60.0), after=1.0)
    assert says(out) == ["Your nurse will call at 2:30, in 15 minutes."]
    assert m.SetLight("reminder") in out and d.view.light == "reminder"
    out = d.ticks(60.0)
    assert m.SetLight("steady") in out and d.view.light == "steady"


def test_reminders_are_not_said_during_a_call():
    d = Driver()
    d(m.ButtonPressed(), after=1.0)
    d(m.WaitingConfirmed(), after=0.2)
    assert d(m.Remind("…", 60.0)) == []


def test_spoken_prompts_off_says_nothing_but_still_beeps_and_lights():
    d = Driver(spoken=False)
    out = ring(d)
    assert says(out) == [] and m.Beep() in out and m.SetLight("ringing") in out
    out = d(m.ButtonPressed(), after=1.0)
    assert says(out) == [] and m.SendRingAccept("r1") in out


@pytest.mark.parametrize(
    ("language", "headline", "spoken"),
    [
        ("cy", "Mae Nurse Priya Shah yn eich ffonio", "Mae Nurse Priya Shah yn eich ffonio."),
        ("pl", "Dzwoni Nurse Priya Shah", "Dzwoni Nurse Priya Shah."),
    ],
)
def test_the_words_and_prompts_are_in_the_patients_language(language, headline, spoken):
    d = Driver(auto_answer=True, language=language)
    out = ring(d, auto=True)
    assert d.view.headline == headline and d.view.language == language
    assert says(out)[0].startswith(spoken)
    d.ticks(8.0)
    two = {"cy": "mewn 2 eiliad", "pl": "za 2 sekundy"}[language]
    assert d.view.detail.endswith(two)

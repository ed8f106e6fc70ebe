"""The kiosk state machine, driven with time passed in (no clock, no I/O)."""

from __future__ import annotations

import pytest

from porchlight.kiosk import state as m
from porchlight.kiosk.view import KioskState as S


class Driver:
    """Feeds events to a machine with an explicit clock and keeps every effect."""

    def __init__(self, **timings: float) -> None:
        self.now = 100.0
        self.machine = m.KioskMachine(timings=m.Timings(**timings), now=self.now)
        self.effects: list[m.Effect] = []

    def __call__(self, event: m.Event, after: float = 0.0) -> list[m.Effect]:
        self.now += after
        out = self.machine.handle(event, self.now)
        self.effects += out
        return out

    @property
    def view(self):
        return self.machine.view

    @property
    def state(self) -> S:
        return self.machine.view.state

    def press(self, hold: float = 0.1) -> list[m.Effect]:
        out = self(m.ButtonPressed())
        return out + self(m.ButtonReleased(hold), after=hold)

    def hold(self, seconds: float = 2.0, step: float = 0.1) -> list[m.Effect]:
        """Press and keep the button down, ticking as the core does, then let go."""
        out = self(m.ButtonPressed())
        held = 0.0
        while held < seconds - 1e-9:
            out += self(m.Tick(), after=step)
            held += step
        return out + self(m.ButtonReleased(held))


def says(effects) -> list[str]:
    return [e.text for e in effects if isinstance(e, m.Say)]


@pytest.fixture
def d() -> Driver:
    drv = Driver()
    drv(m.HubConnected())
    return drv


@pytest.fixture
def waiting(d: Driver) -> Driver:
    d.press()
    d(m.WaitingConfirmed("2024-05-01T10:00:00Z"))
    assert d.state == S.WAITING
    return d


@pytest.fixture
def in_call(waiting: Driver) -> Driver:
    waiting(m.Admitted("c1", ({"urls": ["turn:x"]},)))
    waiting(m.MediaConnected("c1"))
    assert waiting.state == S.IN_CALL
    return waiting


def test_starts_offline_getting_ready_and_becomes_idle_on_welcome() -> None:
    d = Driver()
    assert d.state == S.OFFLINE
    assert d.view.headline == "Getting ready"
    assert d.view.link == "none"
    out = d(m.HubConnected())
    assert d.state == S.IDLE
    assert d.view.button_label == "Call my nurse" and d.view.button_enabled
    assert m.SetLight("steady") in out
    assert says(out) == ["Press the button to call your nurse"]
    assert d.view.link == "good"


def test_press_in_idle_joins_at_once_with_beep_and_feedback(d: Driver) -> None:
    out = d(m.ButtonPressed())
    # Feedback comes first, before any network effect.
    assert out[0] == m.Beep()
    assert m.SendJoin() in out
    assert d.state == S.JOINING
    assert d.view.pressed is True
    assert m.SetLight("fast_blink") in out
    assert says(out) == ["Calling your nurse."]


def test_joining_becomes_waiting_when_hub_confirms(d: Driver) -> None:
    d.press()
    out = d(m.WaitingConfirmed("2024-05-01T10:00:00Z"))
    assert d.state == S.WAITING
    assert d.view.headline == "Your nurse knows you are waiting"
    assert d.view.detail == "To leave, hold the button for 2 seconds"
    assert d.view.button_label == "Hold to leave"
    assert says(out) == ["Your nurse knows you are waiting."]
    assert m.SetLight("slow_blink") in out


def test_pressed_flag_clears_after_release_and_flash(d: Driver) -> None:
    d(m.ButtonPressed())
    d(m.ButtonReleased(0.05), after=0.05)
    assert d.view.pressed is True  # still flashing
    d(m.Tick(), after=1.0)
    assert d.view.pressed is False


def test_holding_on_after_the_joining_press_does_not_leave(d: Driver) -> None:
    # Past the 2 s hold-to-leave; under the 3 s hold for help (tests/patient/test_help.py).
    out = d.hold(2.5)
    assert m.SendLeave() not in out
    assert d.state == S.JOINING


def test_join_without_answer_goes_home_after_timeout_with_plain_message(d: Driver) -> None:
    d.press()
    d(m.Tick(), after=9.0)
    assert d.state == S.JOINING
    out = d(m.Tick(), after=1.5)
    assert d.state == S.IDLE
    assert d.view.detail == m.NOTICE_NO_ANSWER
    assert m.SendLeave() in out
    assert says(out) == [m.NOTICE_NO_ANSWER]
    # The notice goes once the patient presses again.
    d(m.ButtonPressed())
    assert d.state == S.JOINING


def test_hub_error_while_joining_goes_home(d: Driver) -> None:
    d.press()
    d(m.HubError("bad_state"))
    assert d.state == S.IDLE
    assert d.view.detail == m.NOTICE_REFUSED


def test_short_press_while_waiting_explains_and_stays(waiting: Driver) -> None:
    out = waiting.press(0.2)
    assert m.Beep() in out
    assert waiting.state == S.WAITING
    assert m.SendLeave() not in out
    assert says(out) == [f"Your nurse knows you are waiting. {m.LEAVE_HINT}."]


def test_hold_two_seconds_while_waiting_leaves(waiting: Driver) -> None:
    out = waiting(m.ButtonPressed())
    assert waiting.view.pressed and waiting.state == S.WAITING
    out = waiting(m.Tick(), after=1.9)
    assert waiting.state == S.WAITING
    out = waiting(m.Tick(), after=0.1)
    assert m.SendLeave() in out
    assert waiting.state == S.IDLE
    assert waiting.view.detail == m.NOTICE_LEFT
    assert says(out) == [m.NOTICE_LEFT]
    # Letting go afterwards must not join again.
    out = waiting(m.ButtonReleased(2.5), after=0.5)
    assert waiting.state == S.IDLE
    assert m.SendJoin() not in out


def test_held_event_from_device_leaves_without_ticks(waiting: Driver) -> None:
    waiting(m.ButtonPressed())
    out = waiting(m.ButtonHeld(2.0))
    assert m.SendLeave() in out
    assert waiting.state == S.IDLE


def test_release_reporting_a_long_hold_leaves_even_if_no_tick_came(waiting: Driver) -> None:
    waiting(m.ButtonPressed())
    out = waiting(m.ButtonReleased(2.2))
    assert m.SendLeave() in out
    assert waiting.state == S.IDLE


def test_hub_left_while_waiting_goes_home(waiting: Driver) -> None:
    waiting(m.LeftRoom())
    assert waiting.state == S.IDLE
    assert waiting.view.detail == m.NOTICE_REMOVED


def test_admitted_starts_call_offer_answer_and_video(waiting: Driver) -> None:
    ice = ({"urls": ["turn:t.example:3478"], "username": "u", "credential": "p"},)
    out = waiting(m.Admitted("c1", ice))
    assert m.StartCall("c1", ice) in out
    assert waiting.state == S.IN_CALL
    assert waiting.view.show_video is False
    assert waiting.view.button_label == "Hold to end call"
    assert says(out) == ["Your nurse is here."]
    assert m.SetLight("breathing") in out
    assert waiting(m.OfferReady("c1", "v=0 offer")) == [m.SendOffer("c1", "v=0 offer")]
    assert waiting(m.OfferReady("other", "v=0")) == []
    assert waiting(m.AnswerReceived("c1", "v=0 answer")) == [m.ApplyAnswer("c1", "v=0 answer")]
    waiting(m.MediaConnected("c1"))
    assert waiting.view.show_video is True
    assert waiting.view.headline == "You are talking to your nurse"


def test_remote_end_shows_thank_you_then_home_after_five_seconds(in_call: Driver) -> None:
    out = in_call(m.CallEnded("c1", "clinician_ended"))
    assert m.EndCall("c1") in out
    assert not any(isinstance(e, m.SendHangup) for e in out)
    assert in_call.state == S.ENDING
    assert in_call.view.headline == "Call ended — thank you"
    assert in_call.view.show_video is False
    assert says(out) == ["The call has ended. Thank you."]
    in_call(m.Tick(), after=4.9)
    assert in_call.state == S.ENDING
    in_call(m.Tick(), after=0.2)
    assert in_call.state == S.IDLE
    assert in_call.machine.call_id is None


def test_ended_for_another_call_is_ignored(in_call: Driver) -> None:
    assert in_call(m.CallEnded("old", "clinician_ended")) == []
    assert in_call.state == S.IN_CALL


def test_hold_in_call_hangs_up(in_call: Driver) -> None:
    out = in_call.hold(2.0)
    assert m.SendHangup("c1") in out and m.EndCall("c1") in out
    assert out.index(m.SendHangup("c1")) < out.index(m.EndCall("c1"))
    assert in_call.state == S.ENDING


def test_short_press_in_call_only_beeps(in_call: Driver) -> None:
    out = in_call.press(0.3)
    assert m.Beep() in out
    assert in_call.state == S.IN_CALL
    assert not any(isinstance(e, m.SendHangup | m.EndCall) for e in out)


def test_media_failure_before_media_flowed_ends_call_and_tells_hub(waiting: Driver) -> None:
    waiting(m.Admitted("c1"))
    out = waiting(m.MediaFailed("c1", "ice_failed"))
    assert m.SendHangup("c1") in out and m.EndCall("c1") in out
    assert waiting.view.headline == m.LOST_HEADLINE
    # (A failure after media flowed is a drop the kiosk tries to recover: tests/video.)


def test_no_media_within_connect_timeout_gives_up(waiting: Driver) -> None:
    waiting(m.Admitted("c1"))
    out = waiting(m.Tick(), after=31.0)
    assert m.SendHangup("c1") in out and m.EndCall("c1") in out
    assert waiting.state == S.ENDING


def test_admitted_when_not_waiting_is_refused(d: Driver) -> None:
    out = d(m.Admitted("c9"))
    assert out == [m.SendHangup("c9")]
    assert d.state == S.IDLE


def test_offline_press_still_beeps_explains_and_retries_now() -> None:
    d = Driver()
    d(m.HubConnected())
    d(m.HubLost())
    assert d.state == S.OFFLINE
    assert d.view.headline == "Not connected"
    assert d.view.detail == "Trying again by itself"
    assert d.view.light == "heartbeat"
    out = d(m.ButtonPressed())
    assert out[0] == m.Beep()
    assert m.ReconnectNow() in out
    assert says(out) == ["Not connected yet. The kiosk is trying again by itself."]
    assert d.view.pressed
    assert not any(isinstance(e, m.SendJoin) for e in out)


def test_waiting_patient_goes_back_to_waiting_when_hub_returns(waiting: Driver) -> None:
    waiting(m.HubLost())
    assert waiting.state == S.OFFLINE
    assert "back in the waiting room" in waiting.view.detail
    hello = waiting.machine.hello()
    assert hello == {"type": "hello", "state": "waiting", "since": "2024-05-01T10:00:00Z"}
    out = waiting(m.HubConnected(), after=8.0)
    assert waiting.state == S.WAITING
    assert m.SendJoin() not in out  # the hello restores the place; a join is not needed
    assert says(out) == ["You are back in the waiting room."]
    # The hub's confirmation keeps the original since.
    waiting(m.WaitingConfirmed("2024-05-01T10:00:00Z"))
    assert waiting.machine.hello()["since"] == "2024-05-01T10:00:00Z"


def test_idle_patient_comes_back_idle(d: Driver) -> None:
    d(m.HubLost())
    assert d.machine.hello() == {"type": "hello", "state": "idle"}
    d(m.HubConnected())
    assert d.state == S.IDLE


def test_call_survives_hub_blip_and_hello_names_call(in_call: Driver) -> None:
    in_call(m.HubLost())
    assert in_call.state == S.IN_CALL
    assert in_call.machine.hello() == {"type": "hello", "state": "in_call", "call_id": "c1"}
    in_call(m.HubConnected())
    assert in_call.state == S.IN_CALL


def test_ending_while_offline_lands_offline(in_call: Driver) -> None:
    in_call(m.CallEnded("c1"))
    in_call(m.HubLost())
    in_call(m.Tick(), after=6.0)
    assert in_call.state == S.OFFLINE


def test_needs_setup_is_distinct_and_press_explains() -> None:
    d = Driver()
    d(m.NeedsSetup())
    assert d.state == S.OFFLINE
    assert d.view.headline == "This kiosk needs setting up"
    assert d.view.button_enabled is False
    out = d(m.ButtonPressed())
    assert out[0] == m.Beep()
    assert m.ReconnectNow() not in out
    assert says(out) == ["This kiosk needs setting up. Please ask your nurse."]


def test_press_during_ending_goes_home_at_once(in_call: Driver) -> None:
    in_call(m.CallEnded("c1"))
    in_call(m.ButtonPressed())
    assert in_call.state == S.IDLE


def test_time_going_backwards_is_ignored(d: Driver) -> None:
    d.press()
    d.machine.handle(m.Tick(), d.now - 50)
    assert d.state == S.JOINING


def test_press_held_through_joining_into_waiting_does_not_leave_but_a_new_hold_does(
    d: Driver,
) -> None:
    d(m.ButtonPressed())
    # 2.5 s: past hold-to-leave, under the 3 s hold for help (tests/patient/test_help.py).
    d(m.WaitingConfirmed("2024-05-01T10:00:00Z"), after=2.5)
    assert d.state == S.WAITING  # the joining press was used; holding on must not leave
    d(m.ButtonReleased(2.5))
    out = d.hold(2.1)
    assert m.SendLeave() in out
    assert d.state == S.IDLE

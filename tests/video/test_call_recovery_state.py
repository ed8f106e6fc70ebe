"""The kiosk state machine when a call's media goes quiet: wait, ask again, or give up plainly;
the link indicator follows the ladder; the link probe runs when the patient starts waiting."""

from __future__ import annotations

import pytest

from porchlight.kiosk import state as m
from porchlight.kiosk.view import KioskState as S


class Clocked:
    def __init__(self) -> None:
        self.now = 100.0
        self.machine = m.KioskMachine(now=self.now)
        self.effects: list[m.Effect] = []

    def __call__(self, event: m.Event, after: float = 0.0) -> list[m.Effect]:
        self.now += after
        out = self.machine.handle(event, self.now)
        self.effects += out
        return out

    def run(self, seconds: float, step: float = 0.1) -> list[m.Effect]:
        out: list[m.Effect] = []
        for _ in range(round(seconds / step)):
            out += self(m.Tick(), after=step)
        return out

    @property
    def view(self):
        return self.machine.view


@pytest.fixture
def call() -> Clocked:
    k = Clocked()
    k(m.HubConnected())
    k(m.ButtonPressed())
    k(m.ButtonReleased(0.1), after=0.1)
    out = k(m.WaitingConfirmed("2024-05-01T10:00:00Z"))
    assert m.ProbeLink() in out  # the uplink is measured while the patient waits
    k(m.Admitted("c1"))
    k(m.MediaConnected("c1"))
    assert k.view.show_video
    return k


def test_link_indicator_follows_the_ladder(call: Clocked) -> None:
    assert call.view.link == "good"
    call(m.LinkQuality("c1", "poor"))
    assert call.view.link == "poor"
    call(m.LinkQuality("other-call", "good"))
    assert call.view.link == "poor"


def test_short_drop_that_comes_back_by_itself_needs_nothing(call: Clocked) -> None:
    call(m.MediaStalled("c1"))
    assert call.view.headline == m.RECONNECTING_HEADLINE and call.view.link == "none"
    assert not call.view.show_video
    out = call.run(1.5)  # the hub link never dropped; media back within the wait
    call(m.MediaResumed("c1"))
    assert not any(isinstance(e, m.RestartMedia | m.EndCall) for e in out)
    assert call.view.show_video and call.machine.state == S.IN_CALL


def test_media_not_back_after_the_hub_link_returns_is_asked_for_afresh(call: Clocked) -> None:
    call(m.MediaStalled("c1"))
    out = call.run(5)
    # The hub socket still looks up (it may not have noticed the outage): ask the hub, and
    # offer nothing until it answers.
    assert sum(isinstance(e, m.PingHub) for e in out) >= 4
    assert not any(isinstance(e, m.RestartMedia) for e in out)
    call(m.HubLost(), after=0.5)
    out = call.run(10)
    # While the hub is away the kiosk keeps nudging its link (once a second), nothing else.
    assert sum(isinstance(e, m.ReconnectNow) for e in out) >= 9
    assert not any(isinstance(e, m.RestartMedia) for e in out)
    call(m.HubConnected())
    out = call.run(1.9)
    assert not any(isinstance(e, m.RestartMedia) for e in out)  # the old call may come back
    out = call.run(0.3)
    assert out.count(m.RestartMedia("c1")) == 1
    out = call.run(7.5)
    assert m.RestartMedia("c1") not in out  # one attempt per rejoin_every_s
    out = call.run(1.0)
    assert m.RestartMedia("c1") in out
    call(m.MediaResumed("c1"))
    assert call.view.show_video


def test_an_answer_from_the_hub_is_enough_evidence(call: Clocked) -> None:
    call(m.MediaStalled("c1"))
    call.run(3)
    call(m.HubHeard())  # e.g. the answer to a PingHub
    out = call.run(1.9)
    assert not any(isinstance(e, m.RestartMedia) for e in out)
    assert m.RestartMedia("c1") in call.run(0.3)


def test_a_failed_connection_after_media_flowed_is_recovered_not_ended(call: Clocked) -> None:
    out = call(m.MediaFailed("c1", "media_failed"))
    assert m.EndCall("c1") not in out and call.machine.state == S.IN_CALL
    call(m.HubHeard())
    out = call.run(2.1)
    assert m.RestartMedia("c1") in out


def test_quiet_for_too_long_ends_the_call_plainly(call: Clocked) -> None:
    call(m.MediaStalled("c1"))
    out = call.run(39.8)
    assert call.machine.state == S.IN_CALL
    out = call.run(0.3)
    assert m.SendHangup("c1", reason="dropped") in out and m.EndCall("c1") in out
    assert call.machine.state == S.IDLE
    assert call.view.headline == m.NOTICE_DROPPED  # "Call dropped — press the button to rejoin"
    assert any(isinstance(e, m.Say) and "Call dropped" in e.text for e in out)
    assert call.machine.survey is None
    # One press joins again.
    out = call(m.ButtonPressed(), after=1)
    assert m.SendJoin() in out


def test_give_up_while_the_hub_is_away_still_goes_home_and_says_so(call: Clocked) -> None:
    call(m.MediaStalled("c1"))
    call(m.HubLost())
    out = call.run(40.2)
    assert not any(isinstance(e, m.SendHangup) for e in out)  # nothing to send it on
    assert m.EndCall("c1") in out
    assert call.machine.state == S.OFFLINE and call.view.detail == m.NOTICE_DROPPED
    assert call.machine.hello() == {"type": "hello", "state": "idle"}
    call(m.HubConnected(), after=5)  # back online: the words stay until the next press
    assert call.machine.state == S.IDLE and call.view.headline == m.NOTICE_DROPPED


def test_the_clinician_ending_during_a_drop_ends_it_normally(call: Clocked) -> None:
    call(m.MediaStalled("c1"))
    out = call(m.CallEnded("c1", "clinician_ended"), after=3)
    assert m.EndCall("c1") in out and call.machine.state == S.ENDING
    assert call.machine.quiet_since is None

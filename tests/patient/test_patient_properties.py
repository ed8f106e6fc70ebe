"""Properties of the patient-side rules, over random event sequences (time passed in)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from porchlight.kiosk import state as m
from porchlight.kiosk.i18n import english
from porchlight.kiosk.view import LINK_LEVELS, KioskState

call_ids = st.sampled_from(["c1", "c2"])
ring_ids = st.sampled_from(["r1", "r2"])
events = st.one_of(
    st.just(m.HubConnected()),
    st.just(m.HubLost()),
    st.just(m.ButtonPressed()),
    st.builds(m.ButtonReleased, st.floats(0, 5)),
    st.builds(m.WaitingConfirmed, st.just(None)),
    st.just(m.LeftRoom()),
    st.builds(m.Admitted, call_ids),
    st.builds(m.MediaConnected, call_ids),
    st.builds(m.CallEnded, call_ids),
    st.builds(m.HubError, st.just("ring_over")),
    st.just(m.Tick()),
    st.builds(m.RingReceived, ring_ids, st.just("Nurse A"), st.booleans()),
    st.builds(m.RingStopped, ring_ids),
    st.builds(m.SurveyFace, st.integers(0, 6)),
    st.builds(m.SurveyAgain, st.booleans()),
    st.builds(m.Remind, st.just("soon"), st.floats(0, 120)),
    st.builds(m.Agenda, st.sampled_from(["", "Your nurse will call at 2:30 today"])),
    st.builds(
        lambda auto, spoken: m.Settings(english(), spoken, auto), st.booleans(), st.booleans()
    ),
)
steps = st.lists(st.tuples(events, st.floats(0, 12)), max_size=60)


@settings(max_examples=300, deadline=None)
@given(steps)
def test_any_order_of_events_keeps_the_patient_safe(seq):
    machine = m.KioskMachine()
    now = 0.0
    down_since: float | None = None
    from_home = False
    surveyed: list[str] = []
    for event, dt in seq:
        now += dt
        before = machine.view.state
        ring = machine.ring
        effects = machine.handle(event, now)
        view = machine.view
        assert view.headline and view.link in LINK_LEVELS
        if view.button_enabled:
            assert view.button_label
        if view.state == KioskState.RINGING:
            assert machine.ring is not None
        if isinstance(event, m.ButtonPressed):
            assert effects[0] == m.Beep()
            down_since = now
            from_home = before in (KioskState.IDLE, KioskState.OFFLINE) and not machine.needs_setup
        for effect in effects:
            if isinstance(effect, m.QueueHelp):
                # Only a hold of 3 s or more that began on the home screen asks for help
                # (the button's own measure of the hold, on release, is believed too).
                assert from_home and down_since is not None
                reported = event.held_s if isinstance(event, m.ButtonReleased) else 0.0
                assert max(now - down_since, reported) >= 3.0
            if isinstance(effect, m.SendRingAccept):
                pressed = isinstance(event, m.ButtonPressed)
                # Answered by a press, or by itself only with both keys, after 10 s.
                assert pressed or (
                    ring is not None and ring.auto and machine.auto_answer is not False
                )
                if not pressed:
                    assert ring is not None and now - ring.at >= 10.0
            if isinstance(effect, m.QueueSurvey):
                assert effect.score is not None and 1 <= effect.score <= 5
                assert effect.call_id not in surveyed, "one rating per call"
                surveyed.append(effect.call_id)
            if isinstance(effect, m.SendJoin):
                assert machine.hub_up
            if isinstance(effect, m.StartCall) and effect.call_id in surveyed:
                surveyed.remove(effect.call_id)  # the same id again: a new call
        if isinstance(event, m.ButtonReleased):
            down_since = None

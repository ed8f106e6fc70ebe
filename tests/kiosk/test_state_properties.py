"""Property tests: whatever happens in whatever order, the kiosk stays sane."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from porchlight.kiosk import state as m
from porchlight.kiosk.view import LINK_LEVELS, KioskState, KioskView

call_ids = st.sampled_from(["c1", "c2"])
events = st.one_of(
    st.just(m.HubConnected()),
    st.just(m.HubLost()),
    st.just(m.NeedsSetup()),
    st.just(m.ButtonPressed()),
    st.builds(m.ButtonHeld, st.floats(0, 5)),
    st.builds(m.ButtonReleased, st.floats(0, 5)),
    st.builds(m.WaitingConfirmed, st.sampled_from([None, "2024-05-01T10:00:00Z"])),
    st.just(m.LeftRoom()),
    st.builds(m.Admitted, call_ids),
    st.builds(m.OfferReady, call_ids, st.just("v=0")),
    st.builds(m.AnswerReceived, call_ids, st.just("v=0")),
    st.builds(m.MediaConnected, call_ids),
    st.builds(m.MediaFailed, call_ids),
    st.builds(m.CallEnded, call_ids, st.sampled_from(["clinician_ended", "replaced"])),
    st.builds(m.HubError, st.just("bad")),
    st.just(m.Tick()),
)
steps = st.lists(st.tuples(events, st.floats(0, 12)), max_size=60)


def assert_valid(view: KioskView) -> None:
    assert isinstance(view.state, KioskState)
    assert view.light == m.LIGHT_FOR_STATE[view.state]
    assert view.link in LINK_LEVELS
    assert view.headline
    if view.button_enabled:
        assert view.button_label
    if view.show_video:
        assert view.state == KioskState.IN_CALL


def run(seq, machine: m.KioskMachine, now: float = 0.0):
    open_calls: set[str] = set()
    for event, dt in seq:
        now += dt
        effects = machine.handle(event, now)
        assert_valid(machine.view)
        if isinstance(event, m.ButtonPressed):
            assert effects[0] == m.Beep(), "a press must beep first"
            assert machine.view.pressed, "a press must show at once"
        for effect in effects:
            if isinstance(effect, m.SendJoin):
                assert machine.hub_up, "join is only sent on a live link"
            if isinstance(effect, m.StartCall):
                assert not open_calls, "never two calls at once"
                open_calls.add(effect.call_id)
            if isinstance(effect, m.EndCall):
                open_calls.discard(effect.call_id)
        if machine.view.state != KioskState.IN_CALL:
            assert not open_calls, "a call is left running outside the in-call state"
    return now


@settings(max_examples=300, deadline=None)
@given(steps)
def test_random_events_never_crash_and_always_give_a_valid_view(seq) -> None:
    run(seq, m.KioskMachine())


@settings(max_examples=300, deadline=None)
@given(steps)
def test_leaving_is_always_possible_from_waiting_or_call(seq) -> None:
    machine = m.KioskMachine()
    now = run(seq, machine)
    before = machine.view.state
    if before not in (KioskState.WAITING, KioskState.IN_CALL):
        return
    call_id = machine.call_id
    machine.handle(m.ButtonReleased(0.0), now)
    effects = machine.handle(m.ButtonPressed(), now)
    for _ in range(21):  # hold a little past 2 s, ticking as the core does
        now += 0.1
        effects += machine.handle(m.Tick(), now)
    assert machine.view.state not in (KioskState.WAITING, KioskState.IN_CALL)
    if before == KioskState.WAITING:
        assert machine.hub_up is False or m.SendLeave() in effects
    else:
        assert m.SendHangup(call_id) in effects and m.EndCall(call_id) in effects


@settings(max_examples=200, deadline=None)
@given(steps)
def test_home_is_reached_again_once_the_hub_is_up_and_time_passes(seq) -> None:
    machine = m.KioskMachine()
    now = run(seq, machine)
    machine.handle(m.HubConnected(), now)
    machine.handle(m.ButtonReleased(0.0), now)
    for call_id in ("c1", "c2"):
        machine.handle(m.CallEnded(call_id), now)
    machine.handle(m.LeftRoom(), now)
    machine.handle(m.Tick(), now + 60)
    assert machine.view.state == KioskState.IDLE

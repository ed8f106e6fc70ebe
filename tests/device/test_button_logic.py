"""ButtonLogic: presses, holds and releases from raw edges, with time passed in."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from porchlight.device.button_logic import ButtonLogic, Held, Pressed, Released
from porchlight.errors import BadInput

DEBOUNCE = 0.03


def logic(*thresholds: float) -> ButtonLogic:
    return ButtonLogic(hold_thresholds=thresholds or (2.0,), debounce_s=DEBOUNCE)


def test_press_is_reported_on_the_down_edge_itself():
    button = logic()
    assert button.down(10.0) == [Pressed(10.0)]
    assert button.is_pressed


def test_release_is_confirmed_after_the_contact_stays_open_for_the_debounce_time():
    button = logic()
    button.down(10.0)
    assert button.up(10.5) == []
    assert button.next_deadline() == pytest.approx(10.5 + DEBOUNCE)
    assert button.tick(10.5 + DEBOUNCE / 2) == []
    assert button.tick(10.5 + DEBOUNCE) == [Released(pytest.approx(0.5), 10.5 + DEBOUNCE)]
    assert not button.is_pressed
    assert button.next_deadline() is None


def test_bounce_on_press_and_on_release_gives_one_press():
    button = logic()
    events = []
    # Closing: the contact chatters for 8 ms.
    closing = [(1.000, "down"), (1.002, "up"), (1.004, "down"), (1.006, "up"), (1.008, "down")]
    for t, edge in closing:
        events += getattr(button, edge)(t)
    # Opening: it chatters again.
    for t, edge in [(1.400, "up"), (1.403, "down"), (1.405, "up")]:
        events += getattr(button, edge)(t)
    events += button.tick(2.0)
    assert events == [Pressed(1.0), Released(pytest.approx(0.405), 2.0)]


def test_a_press_shorter_than_the_debounce_time_is_not_lost():
    button = logic()
    assert button.down(5.0) == [Pressed(5.0)]
    assert button.up(5.005) == []
    assert button.tick(5.005 + DEBOUNCE) == [Released(pytest.approx(0.005), 5.005 + DEBOUNCE)]


def test_next_press_after_a_confirmed_release_is_reported_at_once():
    button = logic()
    button.down(1.0)
    button.up(1.1)
    # No tick in between: the down edge itself confirms the release first.
    assert button.down(1.2) == [Released(pytest.approx(0.1), 1.2), Pressed(1.2)]


def test_each_hold_threshold_fires_once_while_down():
    button = logic(2.0, 3.0)
    button.down(0.0)
    assert button.next_deadline() == 2.0
    assert button.tick(1.99) == []
    assert button.tick(2.0) == [Held(2.0, 2.0)]
    assert button.tick(2.5) == []
    assert button.next_deadline() == 3.0
    assert button.tick(3.1) == [Held(3.0, 3.1)]
    assert button.tick(9.0) == []
    assert button.next_deadline() is None
    assert button.up(9.0) == []
    assert button.tick(10.0) == [Released(9.0, 10.0)]


def test_holds_late_ticks_catch_up_in_order():
    button = logic(2.0, 3.0)
    button.down(0.0)
    assert button.tick(5.0) == [Held(2.0, 5.0), Held(3.0, 5.0)]


def test_a_hold_is_not_reported_when_the_button_opened_before_the_threshold():
    button = logic(2.0)
    button.down(0.0)
    button.up(1.99)
    # The release is confirmed after the threshold time, but the contact was open by then.
    assert button.tick(2.5) == [Released(pytest.approx(1.99), 2.5)]


def test_a_threshold_passed_during_a_bounce_fires_when_the_contact_closes_again():
    button = logic(2.0)
    button.down(0.0)
    assert button.up(1.995) == []
    assert button.tick(2.0) == []  # open at the threshold: not (yet) held
    assert button.down(2.01) == [Held(2.0, 2.01)]  # it was bounce: still held


def test_a_hold_nobody_ticked_for_is_reported_by_the_up_edge():
    button = logic(2.0)
    button.down(0.0)
    assert button.up(2.5) == [Held(2.0, 2.5)]  # nobody ticked at 2.0
    assert button.tick(3.0) == [Released(2.5, 3.0)]


def test_repeated_edges_of_the_same_level_are_ignored():
    button = logic()
    assert button.up(0.5) == []
    assert button.down(1.0) == [Pressed(1.0)]
    assert button.down(1.1) == []
    assert button.is_pressed


def test_zero_debounce_releases_on_the_up_edge():
    button = ButtonLogic(hold_thresholds=(1.0,), debounce_s=0.0)
    button.down(0.0)
    assert button.up(0.2) == [Released(0.2, 0.2)]


def test_time_running_backwards_is_treated_as_no_time_passing():
    button = logic()
    button.down(10.0)
    button.up(9.0)  # a jittery timestamp
    assert button.tick(10.0 + DEBOUNCE) == [Released(0.0, 10.0 + DEBOUNCE)]


def test_bad_settings_are_refused():
    with pytest.raises(BadInput):
        ButtonLogic(hold_thresholds=(0.0,))
    with pytest.raises(BadInput):
        ButtonLogic(debounce_s=-1)


# -- properties over random edge sequences -----------------------------------------------------

ops = st.lists(
    st.tuples(st.sampled_from(["down", "up", "tick"]), st.floats(0.0, 0.5)),
    max_size=60,
)


@given(ops=ops, thresholds=st.lists(st.floats(0.05, 3.0), min_size=1, max_size=3))
@settings(max_examples=300, deadline=None)
def test_events_always_form_press_holds_release(ops, thresholds):
    """Whatever the edges: press, then distinct rising thresholds, then a release; repeat."""
    button = ButtonLogic(hold_thresholds=thresholds, debounce_s=DEBOUNCE)
    now = 0.0
    events = []
    for op, gap in ops:
        now += gap
        out = getattr(button, op)(now)
        if op == "down" and out and isinstance(out[-1], Pressed):
            assert out[-1].at == now  # a press is reported in the same call as its edge
        events += out
    events += button.up(now) + button.tick(now + 10.0)
    pressed = False
    held: list[float] = []
    pressed_at = 0.0
    for event in events:
        if isinstance(event, Pressed):
            assert not pressed
            pressed, held, pressed_at = True, [], event.at
        elif isinstance(event, Held):
            assert pressed
            assert event.seconds in button.hold_thresholds
            assert not held or event.seconds > held[-1]
            assert event.at >= pressed_at + event.seconds
            held.append(event.seconds)
        else:
            assert pressed
            assert event.held_s >= 0
            assert all(t <= event.held_s + 1e-9 for t in held)
            pressed = False
    assert not pressed and not button.is_pressed


@st.composite
def presses_with_bounce(draw):
    """Real presses (clean gaps, held >= debounce) with contact chatter after each edge.

    Chatter alternates, as a real contact does, with every open or closed spell shorter than
    the debounce time.
    """
    chatter = st.lists(st.floats(0.0002, 0.9 * DEBOUNCE), max_size=6).map(
        lambda gaps: gaps[: len(gaps) // 2 * 2]  # whole open-close (or close-open) pairs
    )
    edges: list[tuple[float, str]] = []
    presses: list[tuple[float, float, float]] = []  # down edge, up edge, last up edge
    t = draw(st.floats(0.0, 1.0))
    for _ in range(draw(st.integers(1, 5))):
        t += draw(st.floats(2 * DEBOUNCE, 0.5))
        down_at = t
        edges.append((t, "down"))
        for i, gap in enumerate(draw(chatter)):
            t += gap
            edges.append((t, "up" if i % 2 == 0 else "down"))
        t += draw(st.floats(DEBOUNCE, 2.5))
        up_at = t
        edges.append((t, "up"))
        for i, gap in enumerate(draw(chatter)):
            t += gap
            edges.append((t, "down" if i % 2 == 0 else "up"))
        presses.append((down_at, up_at, t))
    ticks = draw(st.lists(st.floats(0.0, t + 1.0), max_size=20))
    return sorted(edges + [(x, "tick") for x in ticks]), presses


@given(scenario=presses_with_bounce())
@settings(max_examples=300, deadline=None)
def test_contact_chatter_never_adds_or_loses_a_press(scenario):
    edges, presses = scenario
    threshold = 1.0
    button = ButtonLogic(hold_thresholds=(threshold,), debounce_s=DEBOUNCE)
    events = []
    for at, op in edges:
        events += getattr(button, op)(at)
    events += button.tick(edges[-1][0] + 1.0)
    got = [e for e in events if isinstance(e, Pressed)]
    assert [e.at for e in got] == [p[0] for p in presses]
    released = [e for e in events if isinstance(e, Released)]
    assert [e.held_s for e in released] == pytest.approx([p[2] - p[0] for p in presses])
    # A hold is reported exactly for the presses whose contact was closed at the threshold
    # (even if only while the release was still bouncing).
    held_presses = sum(1 for down, _, last_up in presses if last_up >= down + threshold)
    assert sum(1 for e in events if isinstance(e, Held)) == held_presses

"""The light patterns as data: shapes, timings, and that each is told apart by rhythm alone."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from porchlight.device.light_patterns import PATTERNS, Pattern, Segment, blink, sequence
from porchlight.errors import BadInput

STEP = 0.005


def samples(pattern: Pattern, seconds: float = 6.0) -> list[float]:
    return [pattern.level_at(i * STEP) for i in range(int(seconds / STEP))]


def flashes(pattern: Pattern, seconds: float) -> int:
    """Rising edges through half brightness in `seconds`."""
    levels = samples(pattern, seconds)
    return sum(1 for a, b in itertools.pairwise(levels) if a < 0.5 <= b) + (levels[0] >= 0.5)


def test_the_issue_names_are_all_there():
    issue_2 = {"steady", "off", "slow_blink", "fast_blink", "breathing", "heartbeat"}
    assert set(PATTERNS) == issue_2 | {"ringing", "reminder"}  # + issue 8 (calls, appointments)
    with pytest.raises(TypeError):
        PATTERNS["party"] = PATTERNS["steady"]  # type: ignore[index]


def test_steady_and_off_never_change():
    assert set(samples(PATTERNS["steady"])) == {1.0}
    assert set(samples(PATTERNS["off"])) == {0.0}
    assert PATTERNS["steady"].constant == 1.0
    assert PATTERNS["off"].constant == 0.0


def test_slow_blink_is_one_second_on_one_second_off():
    p = PATTERNS["slow_blink"]
    assert p.period == 2.0
    times = (0.0, 0.5, 0.99, 1.0, 1.5, 1.99, 2.0, 2.5)
    assert [p.level_at(t) for t in times] == [1, 1, 1, 0, 0, 0, 1, 1]
    assert p.blink == (1.0, 1.0, 0.0, 0.0)
    assert flashes(p, 6.0) == 3


def test_fast_blink_is_about_four_hertz():
    p = PATTERNS["fast_blink"]
    assert p.period == pytest.approx(0.25)
    assert flashes(p, 2.0) == 8


def test_breathing_rises_and_falls_smoothly_over_three_seconds():
    p = PATTERNS["breathing"]
    assert p.period == pytest.approx(3.0)
    levels = samples(p, 3.0)
    assert max(levels) == pytest.approx(1.0, abs=0.01)
    assert min(levels) == 0.0
    # Smooth: no jump bigger than the ramp's own slope allows.
    assert max(abs(b - a) for a, b in itertools.pairwise(levels)) <= STEP / 1.5 + 1e-9
    assert p.level_at(0.75) == pytest.approx(0.5)
    assert p.level_at(2.25) == pytest.approx(0.5)
    assert p.blink == (0.0, 0.0, 1.5, 1.5)


def test_heartbeat_is_a_short_double_flash_every_three_seconds():
    p = PATTERNS["heartbeat"]
    assert p.period == pytest.approx(3.0)
    assert flashes(p, 3.0) == 2
    assert flashes(p, 6.0) == 4
    lit = sum(1 for x in samples(p, 3.0) if x > 0.5) * STEP
    assert lit == pytest.approx(0.3, abs=0.02)  # mostly dark: it says "not connected"
    assert p.blink is None  # gpiozero's blink cannot draw it; the adapter uses a source


def test_every_pattern_differs_from_every_other_by_rhythm_alone():
    """One colour only: compare brightness over time, whatever the phase you start at."""

    def signature(p: Pattern) -> tuple:
        levels = samples(p, 6.0)
        on_fraction = round(sum(1 for x in levels if x > 0.5) / len(levels), 2)
        partial = any(0.1 < x < 0.9 for x in levels)  # fades rather than switches
        return (flashes(p, 6.0), on_fraction, partial)

    signatures = {name: signature(p) for name, p in PATTERNS.items()}
    assert len(set(signatures.values())) == len(PATTERNS), signatures


@given(t=st.floats(0, 1e6, allow_nan=False))
def test_levels_are_always_between_0_and_1(t):
    for p in PATTERNS.values():
        assert 0.0 <= p.level_at(t) <= 1.0


def test_negative_time_is_the_start():
    assert PATTERNS["slow_blink"].level_at(-5) == 1.0


def test_bad_patterns_are_refused():
    with pytest.raises(BadInput):
        Pattern("empty", ())
    with pytest.raises(BadInput):
        Pattern("instant", (Segment(0.0, 1.0, 1.0),))
    with pytest.raises(BadInput):
        sequence("too bright", (1.5, 1.0))
    with pytest.raises(BadInput):
        blink("backwards", on_s=-1.0, off_s=1.0)

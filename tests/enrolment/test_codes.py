"""Enrolment codes and throttles as pure rules: alphabet, normalising, expiry, single use,
guess limits (time passed in, no sleeps)."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from porchlight.errors import BadInput, NotAuthorised
from porchlight.hub import enrolment as e
from porchlight.hub.nhs_number import format_nhs_number, normalise_nhs_number
from porchlight.hub.throttle import GLOBAL, Guard, Throttle, Throttled

T0 = datetime(2025, 3, 4, 9, 30, tzinfo=UTC)
LOOK_ALIKES = set("0O1IL2Z5S8BUV")


def test_alphabet_has_no_look_alikes_and_codes_use_it():
    assert not LOOK_ALIKES & set(e.ALPHABET)
    assert len(set(e.ALPHABET)) == len(e.ALPHABET) == 23
    codes = {e.new_code() for _ in range(200)}
    assert len(codes) == 200
    assert all(len(c) == 8 and set(c) <= set(e.ALPHABET) for c in codes)


@given(st.text(alphabet=e.ALPHABET, min_size=8, max_size=8))
def test_a_code_survives_how_people_write_it(code):
    typed = f" {code[:4].lower()}-{code[4:]} "
    assert e.normalise_code(typed) == code
    assert e.normalise_code(e.format_code(code)) == code
    assert e.parse_ticket(e.enrolment_uri("http://hub:8740/", code)) == e.EnrolmentTicket(
        code, "http://hub:8740"
    )


@pytest.mark.parametrize(
    ("typed", "words"),
    [
        ("ACDE-FGH0", "never contains '0'"),
        ("ACDEFGHI", "never contains 'I'"),
        ("ACDEFGH", "has 8 characters; this one has 7"),
        ("ACDEFGHJK", "this one has 9"),
        ("", "this one has 0"),
    ],
)
def test_bad_codes_say_what_is_wrong(typed, words):
    with pytest.raises(BadInput, match=words):
        e.normalise_code(typed)


def test_tickets_from_qr_text_and_what_is_not_one():
    assert e.parse_ticket("acde fghj") == e.EnrolmentTicket("ACDEFGHJ")
    with pytest.raises(BadInput, match="not a Porchlight enrolment code"):
        e.parse_ticket("https://example.org/something")
    with pytest.raises(BadInput, match="not a Porchlight enrolment code"):
        e.parse_ticket("WIFI:S:Home;T:WPA;P:12345678;;")
    with pytest.raises(BadInput, match="http"):
        e.parse_ticket("ftp://hub/enrol#code=ACDEFGHJ")
    assert "ACDEFGHJ" not in repr(e.EnrolmentTicket("ACDEFGHJ", "http://hub"))


def test_a_code_works_for_30_minutes_and_once():
    expires = e.expires_at(T0)
    assert expires - T0 == timedelta(minutes=30)
    e.check_usable(e.EnrolmentState(expires, None), T0 + timedelta(minutes=29, seconds=59))
    refusals = [
        None,  # unknown
        e.EnrolmentState(expires, None),  # at the expiry instant
        e.EnrolmentState(expires + timedelta(hours=1), T0),  # used
        e.EnrolmentState(expires + timedelta(hours=1), None, cancelled=True),
    ]
    messages = set()
    for state in refusals:
        with pytest.raises(NotAuthorised) as caught:
            e.check_usable(state, expires)
        messages.add(str(caught.value))
    # One answer for every refusal: a guesser cannot tell "used" from "never existed".
    assert len(messages) == 1


def test_a_throttle_blocks_after_the_limit_and_forgets_after_the_window():
    throttle = Throttle(3, timedelta(minutes=15))
    for i in range(3):
        assert throttle.retry_after("a", T0 + timedelta(minutes=i)) == 0
        throttle.record_failure("a", T0 + timedelta(minutes=i))
    assert throttle.retry_after("a", T0 + timedelta(minutes=3)) == pytest.approx(12 * 60)
    assert throttle.retry_after("b", T0 + timedelta(minutes=3)) == 0  # others unaffected
    # The oldest failure leaves the window at T0+15 min: one more try is allowed.
    assert throttle.retry_after("a", T0 + timedelta(minutes=15)) == 0
    throttle.clear("a")
    assert throttle.retry_after("a", T0 + timedelta(minutes=3)) == 0


@given(st.lists(st.integers(min_value=0, max_value=3600), max_size=60))
def test_a_throttle_never_allows_more_than_limit_failures_in_any_window(offsets):
    throttle = Throttle(5, timedelta(minutes=10))
    allowed: list[datetime] = []
    for offset in sorted(offsets):
        now = T0 + timedelta(seconds=offset)
        if throttle.retry_after("k", now) == 0:
            allowed.append(now)
            throttle.record_failure("k", now)
    for i, start in enumerate(allowed):
        inside = [t for t in allowed[i:] if t < start + timedelta(minutes=10)]
        assert len(inside) <= 5


def test_a_throttle_keeps_bounded_memory():
    throttle = Throttle(2, timedelta(minutes=10), max_keys=100)
    for i in range(1000):
        throttle.record_failure(f"source-{i}", T0)
    assert len(throttle._failures) <= 100


def test_the_enrolment_guard_limits_each_source_and_the_whole_hub():
    guard = e.enrolment_guard()
    rng = random.Random(7)
    now = T0
    for _ in range(e.GUESSES_PER_SOURCE):
        guard.check(e.guard_keys("10.0.0.1"), now)
        guard.failed(e.guard_keys("10.0.0.1"), now)
    with pytest.raises(Throttled, match="Too many wrong enrolment codes") as caught:
        guard.check(e.guard_keys("10.0.0.1"), now)
    assert caught.value.retry_after_header == str(15 * 60)
    # A distributed guesser: every guess from a new address, until the hub-wide limit.
    for _ in range(e.GUESSES_GLOBAL - e.GUESSES_PER_SOURCE):
        source = f"198.51.100.{rng.randrange(256)}:{rng.randrange(1 << 16)}"
        guard.check(e.guard_keys(source), now)
        guard.failed(e.guard_keys(source), now)
    with pytest.raises(Throttled):
        guard.check(e.guard_keys("203.0.113.9"), now)
    # Success clears the source's count but never the hub-wide one.
    guard.succeeded(e.guard_keys("10.0.0.1"))
    assert guard.throttles[GLOBAL].retry_after(GLOBAL, now) > 0
    assert guard.throttles["source"].retry_after("10.0.0.1", now) == 0


def test_a_guard_is_blocked_when_any_of_its_throttles_is():
    guard = Guard(
        {"user": Throttle(1, timedelta(minutes=1)), "source": Throttle(5, timedelta(minutes=1))},
        "Too many.",
    )
    guard.failed({"user": "ann", "source": "s1"}, T0)
    with pytest.raises(Throttled, match="Wait 1 minute and try again"):
        guard.check({"user": "ann", "source": "s2"}, T0)
    guard.check({"user": "bob", "source": "s1"}, T0)


@pytest.mark.parametrize(
    ("typed", "stored"),
    [("943 476 5919", "9434765919"), ("943-476-5919", "9434765919"), ("4010232137", "4010232137")],
)
def test_nhs_numbers_with_a_valid_check_digit(typed, stored):
    assert normalise_nhs_number(typed) == stored
    assert format_nhs_number(stored) == f"{stored[:3]} {stored[3:6]} {stored[6:]}"


@pytest.mark.parametrize(
    ("typed", "words"),
    [
        ("943 476 5918", "last digit does not match"),
        ("123456789", "10 digits"),
        ("94347659190", "10 digits"),
        ("943476591x", "10 digits"),
        ("１２３４５６７８９０", "10 digits"),  # full-width digits are not ASCII digits
        ("1000000010", "last digit"),  # the check digit would have to be 10: never valid
    ],
)
def test_bad_nhs_numbers_are_refused_in_plain_words(typed, words):
    with pytest.raises(BadInput, match=words):
        normalise_nhs_number(typed)

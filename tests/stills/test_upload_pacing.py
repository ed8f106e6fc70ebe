"""The upload budget's token bucket (pure, time passed in)."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from porchlight.kiosk.upload_pacing import (
    MAX_CHUNK,
    MIN_BUDGET_BPS,
    MIN_CHUNK,
    REQUEST_OVERHEAD,
    TokenBucket,
    chunk_size,
    upload_budget,
)

rates = st.floats(min_value=8_000, max_value=50_000_000)


@given(rates)
def test_chunks_are_half_a_second_of_budget_within_bounds(rate):
    n = chunk_size(rate)
    assert MIN_CHUNK <= n <= MAX_CHUNK
    if MIN_CHUNK < n < MAX_CHUNK:
        assert abs(n - rate / 8 * 0.5) <= 1
    assert chunk_size(None) == MAX_CHUNK


def test_a_chunk_on_a_300_kbit_link_holds_the_call_up_briefly():
    # During a call the budget is a quarter of the link estimate; the chunk leaves at the
    # link's full speed, so it must take well under the 500 ms freeze target to send.
    link = 300_000
    n = chunk_size(link / 4)
    assert (n + REQUEST_OVERHEAD) * 8 / link < 0.25


def send_as_fast_as_allowed(bucket, start, seconds, n, waits=None):
    """Send chunks of n bytes whenever the bucket allows; return [(time, cost)]."""
    now, sent = start, []
    while now < start + seconds:
        wait = bucket.wait_s(n, now)
        if waits is not None:
            waits.append(wait)
        if wait > 0:
            # (at a clock of ~1e9 s a wait under the float's resolution would not move it)
            now = max(now + wait, math.nextafter(now, math.inf))
            continue
        bucket.take(n, now)
        sent.append((now, bucket.cost(n)))
    return sent


@settings(deadline=None, max_examples=60)  # each example simulates ~150 chunks
@given(rates, st.integers(min_value=1, max_value=64 * 1024), st.floats(min_value=0, max_value=2e9))
def test_no_window_ever_carries_more_than_the_budget_plus_one_burst(rate, n, start):
    bucket = TokenBucket(rate)
    sent = send_as_fast_as_allowed(bucket, start, 150 * bucket.cost(n) * 8 / rate, n)
    burst = bucket.burst
    for i, (t0, _) in enumerate(sent):
        total = 0
        for t, cost in sent[i:]:
            total += cost
            # Bytes sent in [t0, t]: at most what the bucket held plus what it earned, plus
            # one oversized chunk (it may go once the bucket is full, into debt).
            assert total <= burst + (t - t0) * rate / 8 + max(0, bucket.cost(n) - burst) + 1e-6


@settings(deadline=None)
@given(rates, st.integers(min_value=1, max_value=64 * 1024))
def test_a_long_upload_uses_the_budget_it_was_given(rate, n):
    bucket = TokenBucket(rate)
    seconds = 200 * bucket.cost(n) * 8 / rate
    sent = send_as_fast_as_allowed(bucket, 0.0, seconds, n)
    spent = sum(cost for _, cost in sent)
    # Within one chunk (and one burst) of rate × time: paced, and not slower than asked.
    assert abs(spent - rate / 8 * seconds) <= bucket.burst + bucket.cost(n)


def test_unpaced_never_waits_and_a_new_budget_applies_at_once():
    bucket = TokenBucket(None)
    assert all(w == 0 for w in [bucket.wait_s(10**6, t) for t in range(5)])
    waits = []
    bucket.set_rate(80_000, now=10.0)  # 10 kB/s, chunks of 5 kB
    send_as_fast_as_allowed(bucket, 10.0, 5.0, chunk_size(80_000), waits)
    assert max(waits) > 0
    bucket.set_rate(None, now=15.0)
    assert bucket.wait_s(MAX_CHUNK, 15.0) == 0


def test_an_idle_spell_saves_up_one_chunk_only():
    bucket = TokenBucket(80_000)
    n = chunk_size(80_000)
    bucket.take(n, 0.0)
    # An hour idle: one chunk may go at once, the next waits its full share.
    assert bucket.wait_s(n, 3600.0) == 0
    bucket.take(n, 3600.0)
    assert bucket.wait_s(n, 3600.0) == pytest.approx(bucket.cost(n) * 8 / 80_000)


def test_lowering_the_budget_caps_what_was_saved():
    bucket = TokenBucket(10_000_000)
    assert bucket.tokens == bucket.burst == MAX_CHUNK + REQUEST_OVERHEAD
    bucket.set_rate(16_000, now=0.0)
    assert bucket.tokens == bucket.burst == MIN_CHUNK + REQUEST_OVERHEAD


@pytest.mark.parametrize("bad", [0, -1, math.nan, "fast"])
def test_a_budget_must_be_a_positive_number(bad):
    with pytest.raises(ValueError, match="positive number of bit/s"):
        TokenBucket(bad)
    with pytest.raises(ValueError, match="positive number of bit/s"):
        TokenBucket(None).set_rate(bad, 0.0)


@given(st.floats(min_value=0, max_value=1e9, allow_nan=False))
def test_a_still_always_gets_some_budget(bps):
    assert upload_budget(bps) == max(bps, MIN_BUDGET_BPS)
    assert upload_budget(None) is None


@pytest.mark.parametrize("bad", [-1, math.nan, "fast", True])
def test_a_requested_budget_must_be_a_number_of_bits(bad):
    with pytest.raises(ValueError, match="number of bit/s"):
        upload_budget(bad)


def test_a_clock_that_goes_back_neither_earns_nor_stalls():
    bucket = TokenBucket(80_000)
    n = chunk_size(80_000)
    bucket.take(n, 1000.0)
    share = bucket.cost(n) * 8 / 80_000
    assert bucket.wait_s(n, 10.0) == pytest.approx(share)  # back 990 s: no credit for it
    assert bucket.wait_s(n, 10.0 + share) == 0  # and no stall: it earns from there

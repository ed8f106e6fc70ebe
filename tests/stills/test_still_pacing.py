"""The still's share of a call's link (pure, time passed in): headroom, floors, the calm after a
step down, and chunks small enough not to queue the call behind them."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from porchlight.kiosk.ladder import (
    AUDIO_ONLY,
    DEFAULT_RUNGS,
    Decision,
    LadderConfig,
    LinkSample,
)
from porchlight.kiosk.still_pacing import (
    CallLoad,
    StillPacer,
    StillPacingConfig,
    call_bps,
    call_load,
    still_chunk,
)
from porchlight.kiosk.upload_pacing import MAX_CHUNK, MIN_CHUNK, REQUEST_OVERHEAD, TokenBucket

CFG = StillPacingConfig()
LADDER = LadderConfig()
RUNG = {r.name: r for r in DEFAULT_RUNGS}


def load_at(estimate, rung, *, cap=None, sent=None, remb=None, reason=""):
    """What the ladder would say at this estimate and rung (cap: a REMB dip's video cap;
    reason: why the ladder is on it)."""
    return CallLoad(
        estimate_bps=estimate,
        rung_bps=rung.video_bps,
        video_bps=rung.video_bps if cap is None else cap,
        audio_bps=LADDER.audio_bps,
        rtx_share=LADDER.rtx_share,
        sent_bps=sent,
        remb_bps=remb,
        reason=reason,
    )


def spare(link, load):
    return link * (1 - CFG.margin) - call_bps(load)


def test_a_good_link_gives_the_still_what_the_call_leaves():
    load = load_at(1_000_000, RUNG["360p20"])
    pace = StillPacer().update(load, now=0.0)
    assert pace.reason == "headroom"
    # 90 % of the estimate, less 420 kbit/s of video with 10 % for retransmissions, less audio
    assert pace.budget_bps == pytest.approx(0.9 * 1_000_000 - 420_000 * 1.1 - 56_000)
    assert pace.budget_bps + call_bps(load) == pytest.approx(0.9 * load.estimate_bps)


def test_a_rural_line_the_call_fills_leaves_the_still_its_floor_in_small_chunks():
    # The lab's rural line (300 kbit/s): the ladder holds 180p15; its estimate is the REMB,
    # ~190 kbit/s (tests/video/traces/rural.json).
    load = load_at(190_000, RUNG["180p15"], remb=190_000)
    pace = StillPacer().update(load, now=0.0)
    assert (pace.budget_bps, pace.reason) == (CFG.floor_bps, "floor")
    # One chunk and its request queue ahead of the call's packets for about 50 ms on that
    # line (the old quarter-of-the-estimate rule sent 4.7 kB chunks: 0.13 s of it).
    assert (pace.chunk_bytes + REQUEST_OVERHEAD) * 8 / 300_000 <= 0.05
    assert pace.chunk_bytes < 1500


def test_an_optimistic_loss_estimate_is_held_to_the_remb():
    # On the rural line the loss-based estimate read ~540 kbit/s every other second while the
    # REMB said ~190: the still must not take a share of 540 kbit/s of a 300 kbit/s line.
    rung = RUNG["180p15"]
    assert StillPacer().update(load_at(544_000, rung), now=0.0).reason == "headroom"
    held = StillPacer().update(load_at(544_000, rung, remb=190_000), now=0.0)
    assert (held.reason, held.budget_bps) == ("floor", CFG.floor_bps)


def test_one_good_second_does_not_open_the_tap_until_the_poor_one_is_out_of_the_window():
    pacer = StillPacer()
    rung = RUNG["180p15"]
    assert pacer.update(load_at(230_000, rung), now=0.0).reason == "floor"
    better = load_at(544_000, rung, remb=400_000)
    assert pacer.update(better, now=1.0).reason == "floor"
    assert pacer.update(better, now=CFG.window_s - 0.01).reason == "floor"
    later = pacer.update(better, now=CFG.window_s + 0.01)
    assert later.reason == "headroom"
    assert later.budget_bps == pytest.approx(spare(400_000 + 56_000, better))


def test_a_fast_link_whose_remb_leaves_no_headroom_still_gives_a_share_of_the_call():
    # An aiortc receiver's REMB reaches at most 1.5x what it gets, and under CPU jitter
    # barely the rung's rate: no headroom by the formula, yet the link is far from full.
    load = load_at(3_000_000, RUNG["720p30"], remb=1_500_000)
    pace = StillPacer().update(load, now=0.0)
    assert pace.reason == "floor"
    assert pace.budget_bps == pytest.approx(CFG.floor_share * (1_500_000 * 1.1 + 56_000))
    assert pace.budget_bps > 5 * CFG.floor_bps  # an 80 kB still in ~10 s, not a minute


def test_audio_only_a_still_moves_faster_than_the_floor_with_video():
    pacer = StillPacer()
    starved = pacer.update(load_at(60_000, AUDIO_ONLY), now=0.0)
    assert (starved.budget_bps, starved.reason) == (CFG.audio_only_floor_bps, "floor")
    assert starved.budget_bps > CFG.floor_bps
    # An audio-only call on a link that carries more: the rest of the link is the still's,
    # once the poorer estimate is out of the window.
    roomy = pacer.update(load_at(160_000, AUDIO_ONLY), now=1.0 + CFG.window_s)
    assert roomy.reason == "headroom"
    assert roomy.budget_bps == pytest.approx(0.9 * 160_000 - 56_000)


def test_what_is_measured_going_out_counts_when_it_is_more_than_the_rung():
    nominal = load_at(1_000_000, RUNG["360p20"])
    busy = load_at(1_000_000, RUNG["360p20"], sent=700_000)
    assert StillPacer().update(busy, 0.0).budget_bps == pytest.approx(900_000 - 700_000)
    quiet = load_at(1_000_000, RUNG["360p20"], sent=100_000)
    assert (
        StillPacer().update(quiet, 0.0).budget_bps == StillPacer().update(nominal, 0.0).budget_bps
    )


def test_a_remb_dip_that_caps_the_video_frees_nothing_it_did_not_have():
    # A cap is what the video may send: what it does not send is the still's, within margin.
    capped = load_at(600_000, RUNG["360p20"], cap=350_000)
    pace = StillPacer().update(capped, 0.0)
    assert pace.budget_bps == pytest.approx(max(CFG.floor_bps, spare(600_000, capped)))
    assert pace.budget_bps > StillPacer().update(load_at(600_000, RUNG["360p20"]), 0.0).budget_bps


def test_a_step_down_calms_the_still_then_the_headroom_comes_back():
    pacer = StillPacer()
    high = load_at(1_200_000, RUNG["360p30"])
    assert pacer.update(high, now=10.0).reason == "headroom"
    lower = load_at(900_000, RUNG["360p20"])
    calm = pacer.update(lower, now=11.0)
    assert calm.reason == "calm"
    assert calm.budget_bps == pytest.approx(CFG.floor_share * call_bps(lower))  # > floor_bps
    # A second step down while calm starts the calm again.
    lowest = load_at(700_000, RUNG["270p20"])
    assert pacer.update(lowest, now=14.0).reason == "calm"
    assert pacer.update(lowest, now=14.0 + CFG.calm_s - 0.01).reason == "calm"
    back = pacer.update(lowest, now=14.0 + CFG.calm_s)
    assert back.reason == "headroom"
    assert back.budget_bps == pytest.approx(spare(700_000, lowest))
    # Climbing is no congestion: no calm.
    assert pacer.update(high, now=30.0).reason == "headroom"


def test_video_stopping_is_a_step_down_too():
    pacer = StillPacer()
    pacer.update(load_at(200_000, RUNG["180p6"]), now=0.0)
    pace = pacer.update(load_at(120_000, AUDIO_ONLY), now=1.0)
    assert (pace.reason, pace.budget_bps) == ("calm", CFG.audio_only_floor_bps)


estimates = st.floats(min_value=0, max_value=20_000_000)
rungs = st.sampled_from([*DEFAULT_RUNGS, AUDIO_ONLY])


@given(
    st.lists(st.tuples(estimates, st.none() | estimates), min_size=1, max_size=8),
    rungs,
    st.floats(min_value=0, max_value=1),
    st.none() | estimates,
)
def test_the_still_and_the_call_never_use_more_than_any_recent_estimate_less_margin(
    history, rung, cap_share, sent
):
    pacer = StillPacer()
    for now, (estimate, remb) in enumerate(history):  # one decision a second
        load = load_at(estimate, rung, cap=rung.video_bps * cap_share, sent=sent, remb=remb)
        pace = pacer.update(load, now=float(now))
    floor = CFG.audio_only_floor_bps if rung.audio_only else CFG.floor_bps
    floor = max(floor, CFG.floor_share * call_bps(load))
    assert pace.budget_bps >= floor
    assert pace.budget_bps > floor or pace.reason == "floor"
    recent = history[-int(CFG.window_s) - 1 :]
    if pace.budget_bps > floor:  # above the floor: only ever what the call leaves
        used = max(call_bps(load), sent or 0.0)
        for estimate, remb in recent:
            assert pace.budget_bps + used <= estimate * (1 - CFG.margin) * (1 + 1e-9)
            if remb is not None:
                link = (remb + LADDER.audio_bps) * (1 - CFG.margin)
                assert pace.budget_bps + used <= link * (1 + 1e-9)
    assert MIN_CHUNK <= pace.chunk_bytes <= MAX_CHUNK
    # A chunk never queues longer than queue_s on the link, unless it is the smallest.
    if pace.chunk_bytes > MIN_CHUNK:
        link = max(history[-1][0], pace.budget_bps + call_bps(load))
        assert (pace.chunk_bytes + REQUEST_OVERHEAD) * 8 / link <= CFG.queue_s * (1 + 1e-9)


@given(estimates, estimates, rungs)
def test_a_better_estimate_never_slows_the_still(a, b, rung):
    low, high = sorted((a, b))
    slow = StillPacer().update(load_at(low, rung), now=0.0)
    fast = StillPacer().update(load_at(high, rung), now=0.0)
    assert fast.budget_bps >= slow.budget_bps
    assert fast.chunk_bytes >= slow.chunk_bytes


@given(st.floats(min_value=8_000, max_value=10_000_000), st.floats(min_value=0, max_value=1e8))
def test_chunks_are_never_over_half_a_second_of_budget_nor_over_the_link_queue(budget, link):
    n = still_chunk(budget, link, CFG.queue_s)
    assert MIN_CHUNK <= n <= MAX_CHUNK
    if n > MIN_CHUNK:
        assert n <= budget / 8 * 0.5 + 1
        assert n + REQUEST_OVERHEAD <= link / 8 * CFG.queue_s + 1


def router_queue_delays(capacity_bps, call, pace, seconds, step=0.001):
    """A home router's queue (tbf-like, fluid): the call's packets arrive steadily at `call`
    bit/s, the still's chunks (with their request) in bursts whenever the token bucket lets
    them go; the queue drains at `capacity_bps`. Returns the queueing delay each ms."""
    bucket = TokenBucket(pace.budget_bps, chunk_bytes=pace.chunk_bytes)
    queued, delays, still_bytes = 0.0, [], 0
    for i in range(int(seconds / step)):
        now = i * step
        queued += call / 8 * step
        if bucket.wait_s(pace.chunk_bytes, now) == 0:
            bucket.take(pace.chunk_bytes, now)
            queued += bucket.cost(pace.chunk_bytes)
            still_bytes += pace.chunk_bytes
        queued = max(0.0, queued - capacity_bps / 8 * step)
        delays.append(queued * 8 / capacity_bps)
    return delays, still_bytes


@pytest.mark.parametrize(
    ("capacity", "rung"),
    [(300_000, RUNG["180p15"]), (600_000, RUNG["270p20"]), (2_000_000, RUNG["540p30"])],
)
def test_on_a_link_the_estimate_does_not_overstate_no_call_packet_waits_long(capacity, rung):
    # The estimate at most the link's capacity (the ladder's own keeps 15 % back): the still
    # and the call together never build a standing queue, and one chunk adds at most queue_s.
    estimate = capacity * 0.9
    load = load_at(estimate, rung)
    assert call_bps(load) <= estimate  # the ladder's rung fits its estimate
    pace = StillPacer().update(load, now=0.0)
    delays, still_bytes = router_queue_delays(capacity, call_bps(load), pace, seconds=20.0)
    assert max(delays) <= CFG.queue_s + 0.005
    assert still_bytes * 8 / 20.0 >= 0.5 * pace.budget_bps * pace.chunk_bytes / (
        pace.chunk_bytes + REQUEST_OVERHEAD
    )


def test_the_old_quarter_share_queued_the_call_on_the_rural_line():
    # The same router with the old rule (a quarter of the estimate, half-second chunks of at
    # least 4 KiB): the still's bytes plus the call's overfill the line and the queue grows
    # past what the lab's tbf holds (100 ms), which drops the call's packets.
    rung = RUNG["180p15"]
    load = load_at(270_000, rung)
    old = type("Old", (), {"budget_bps": 270_000 * 0.25, "chunk_bytes": 4 * 1024})()
    delays, _ = router_queue_delays(300_000, call_bps(load), old, seconds=20.0)
    assert max(delays) > 0.1
    new = StillPacer().update(load, now=0.0)
    delays, _ = router_queue_delays(300_000, call_bps(load), new, seconds=20.0)
    assert max(delays) < 0.1


@pytest.mark.parametrize(
    "bad",
    [
        {"margin": 1.0},
        {"margin": -0.1},
        {"floor_bps": 0},
        {"floor_bps": 30_000, "audio_only_floor_bps": 20_000},
        {"calm_s": -1},
        {"window_s": -1},
        {"queue_s": 0},
    ],
)
def test_a_config_that_makes_no_sense_is_refused(bad):
    with pytest.raises(ValueError):
        StillPacingConfig(**bad)


@pytest.mark.parametrize("bad", [-1, math.nan, "fast"])
def test_rates_must_be_numbers(bad):
    with pytest.raises(ValueError, match="bit/s"):
        StillPacer().update(CallLoad(bad, 0, 0, 56_000), now=0.0)


def test_the_ladders_word_becomes_a_call_load():
    rung = RUNG["270p15"]
    decision = Decision(rung, False, "hold", 300_000, "fair", video_cap_bps=190_000)
    fresh = LinkSample(now=100.0, remb_bps=210_000, remb_at=99.0)
    load = call_load(300_000, decision, fresh, LADDER, sent_bps=250_000)
    assert load == CallLoad(300_000, 220_000, 190_000, 56_000, 0.10, 250_000, 210_000, "hold")
    # A REMB older than the ladder trusts is none; nor one while no video flows.
    stale = LinkSample(now=100.0, remb_bps=210_000, remb_at=100.0 - LADDER.remb_stale_s - 1)
    assert call_load(300_000, decision, stale, LADDER).remb_bps is None
    quiet = Decision(AUDIO_ONLY, True, "remb", 120_000, "poor")
    assert call_load(120_000, quiet, fresh, LADDER).remb_bps is None
    # Before the ladder's first decision: as if audio only.
    first = call_load(200_000, None, None, LADDER)
    assert (first.rung_bps, first.video_bps, first.remb_bps) == (0, 0, None)


def test_a_still_that_would_take_long_makes_room_until_its_bytes_are_up():
    """Rural: 80 kB at the floor is 40 s, so the call makes room (one rung down); that step
    down is the pacer's own and starts no calm; the room is kept, though the budget it frees
    would no longer ask for it, until the backlog is 0."""
    pacer = StillPacer()
    rural = load_at(190_000, RUNG["180p15"], remb=190_000)
    assert not pacer.update(rural, now=0.0).make_room  # nothing to send
    asked = pacer.update(rural, now=1.0, backlog_bytes=80_000)
    assert asked.make_room and asked.reason == "floor"
    lower = load_at(300_000, RUNG["180p10"], remb=250_000, reason="still")
    made = pacer.update(lower, now=2.0, backlog_bytes=79_000)
    # No calm (its own step down), and what the video gave up is the still's, though the
    # estimate (held to its least over 5 s) shows no headroom.
    assert made.reason == "room" and made.make_room
    freed = (RUNG["180p15"].video_bps - RUNG["180p10"].video_bps) * (1 + LADDER.rtx_share)
    assert made.budget_bps == pytest.approx(freed)
    assert pacer.update(lower, now=3.0, backlog_bytes=2_000).make_room
    done = pacer.update(lower, now=4.0, backlog_bytes=0)
    assert not done.make_room and done.reason != "room"


def test_a_step_down_by_the_link_while_room_is_made_takes_the_room_back():
    pacer = StillPacer()
    pacer.update(load_at(190_000, RUNG["180p15"], remb=190_000), now=0.0, backlog_bytes=80_000)
    room = load_at(190_000, RUNG["180p10"], reason="still")
    assert pacer.update(room, now=1.0, backlog_bytes=79_000).reason == "room"
    worse = load_at(120_000, RUNG["180p6"], reason="loss")
    assert pacer.update(worse, now=2.0, backlog_bytes=78_000).reason == "calm"
    later = pacer.update(worse, now=2.0 + CFG.calm_s, backlog_bytes=70_000)
    assert later.reason == "floor" and later.make_room


def test_a_still_with_headroom_leaves_the_picture_alone():
    pacer = StillPacer()
    pace = pacer.update(load_at(2_000_000, RUNG["540p30"]), now=0.0, backlog_bytes=80_000)
    assert pace.reason == "headroom" and not pace.make_room
    # ... and audio-only there is no rung to give.
    audio = pacer.update(load_at(90_000, AUDIO_ONLY), now=1.0, backlog_bytes=80_000)
    assert not audio.make_room

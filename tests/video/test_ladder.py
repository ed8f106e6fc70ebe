"""The ladder policy on synthetic feedback: fast down, careful up, audio-only and back, CPU."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from porchlight.kiosk.ladder import (
    AUDIO_ONLY,
    DEFAULT_RUNGS,
    Ladder,
    LadderConfig,
    LinkSample,
)

from .sim_link import SimLink, run, sent_for


def steps(*pairs: tuple[float, float]):
    """A capacity profile: [(from time, bit/s), ...]."""

    def capacity(t: float) -> float:
        value = pairs[0][1]
        for start, bps in pairs:
            if t >= start:
                value = bps
        return value

    return capacity


def rung_names(history) -> list[str]:
    return [d.rung.name for _, d in history]


def test_rungs_are_close_enough_to_climb_on_remb() -> None:
    """A REMB may grow to 1.5× what it receives, so each step up must need less than that."""
    ladder = Ladder()
    needs = [ladder.need_bps(r) for r in DEFAULT_RUNGS]
    for better, worse in itertools.pairwise(needs):
        assert better / worse <= 1.45


def test_start_rung_comes_from_the_probe() -> None:
    assert Ladder(start_bps=3_000_000).rung.name == "720p30"
    assert Ladder(start_bps=320_000).rung.name == "180p15"
    assert Ladder(start_bps=60_000).rung == AUDIO_ONLY
    # No probe: a low start (climbing costs seconds, starting too high costs freezes).
    assert Ladder().rung.name == "180p15"


def test_max_height_caps_the_ladder() -> None:
    ladder = Ladder(LadderConfig(max_height=360), start_bps=10_000_000)
    assert ladder.rung.name == "360p30"
    assert Ladder(LadderConfig(max_height=100), start_bps=10_000_000).rung.name == "180p15"


def over_capacity_share(ladder: Ladder, history, capacity, after: float) -> float:
    """Share of samples after `after` in which the rung sends more than the link carries."""
    late = [(t, d) for t, d in history if t > after]
    over = [
        t
        for t, d in late
        if min(d.rung.video_bps, d.video_cap_bps) + ladder.config.audio_bps > 1.05 * capacity(t)
    ]
    return len(over) / len(late)


def test_drop_in_capacity_fits_within_two_seconds() -> None:
    ladder = Ladder(start_bps=2_500_000)
    capacity = steps((0, 2_500_000), (30, 600_000))
    history = run(ladder, SimLink(capacity), 90)
    before = [d for t, d in history if t < 30]
    assert before[-1].rung.name in ("720p30", "540p30")
    fitted_at = next(t for t, d in history if t >= 30 and ladder.wire_bps(d.rung) <= 600_000)
    assert fitted_at - 30 <= 2.0
    # It stays under the new capacity, apart from single-second probes of the next rung.
    assert over_capacity_share(ladder, history, capacity, fitted_at) <= 0.15
    overs = [t for t, d in history if t > fitted_at and ladder.wire_bps(d.rung) > 600_000]
    assert all(b - a > 1 for a, b in itertools.pairwise(overs))


def test_recovery_climbs_one_rung_at_a_time_to_the_best_fit() -> None:
    ladder = Ladder(start_bps=600_000)
    history = run(ladder, SimLink(steps((0, 600_000), (20, 1_000_000))), 60)
    best = ladder.best_rung_for(1_000_000)
    reached = next(t for t, d in history if t > 20 and d.rung.pixel_rate >= best.pixel_rate)
    assert reached - 20 <= 12.0
    order = [r.name for r in ladder.rungs]
    ups = [
        (order.index(a.rung.name), order.index(b.rung.name))
        for (_, a), (_, b) in itertools.pairwise(history)
        if order.index(b.rung.name) < order.index(a.rung.name)
    ]
    assert ups and all(frm - to == 1 for frm, to in ups)


def test_rural_link_keeps_at_least_180p15_with_two_percent_loss() -> None:
    ladder = Ladder(start_bps=290_000)
    capacity = steps((0, 292_000))
    history = run(ladder, SimLink(capacity, base_rtt_s=0.2, random_loss=0.02), 120)
    settled = [d.rung for t, d in history if t > 10]
    assert all(r.height >= 180 and r.fps >= 15 for r in settled), rung_names(history)
    assert over_capacity_share(ladder, history, capacity, 10) <= 0.15


def test_failed_climbs_back_off() -> None:
    """A link that cannot carry the next rung even at the lowest cap the ladder would hold it
    at: the ladder tries it, one step at a time, with growing pauses (probing is how it
    learns that a link got better)."""
    ladder = Ladder(start_bps=700_000)
    next_rung = next(r for r in DEFAULT_RUNGS if r.name == "360p30")
    capacity = steps((0, ladder.config.audio_bps + 0.75 * next_rung.video_bps))
    history = run(ladder, SimLink(capacity), 300)
    tries = [t for (t, d) in history if d.changed and d.reason == "up" and d.rung == next_rung]
    gaps = [b - a for a, b in itertools.pairwise(tries)]
    assert len(tries) >= 3 and gaps[0] >= ladder.config.up_hold_s
    assert min(gaps[1:]) >= ladder.config.retry_max_s  # the wait grew, up to retry_max_s
    assert len(tries) <= 300 / ladder.config.retry_max_s
    assert over_capacity_share(ladder, history, capacity, 10) <= 0.15


def test_audio_only_when_video_cannot_fit_and_back_by_itself() -> None:
    ladder = Ladder(start_bps=1_000_000)
    link = SimLink(steps((0, 1_000_000), (10, 100_000), (40, 1_000_000)))
    history = run(ladder, link, 90)
    # The REMB says so first: the lowest rung is held, capped to it, for remb_audio_only_s.
    went = next(t for t, d in history if d.rung.audio_only)
    assert went <= 11 + ladder.config.remb_audio_only_s
    held = [d for t, d in history if 10 < t < went and d.rung == ladder.rungs[-1]]
    assert all(d.video_cap_bps < d.rung.video_bps for d in held)
    during = [(t, d) for t, d in history if 13 <= t <= 40]
    # Only short retries of the lowest rung, at least audio_only_retry_s apart.
    retries = [t for t, d in during if d.changed and d.reason == "video-retry"]
    assert all(d.rung == ladder.rungs[-1] for t, d in during if not d.rung.audio_only)
    assert all(b - a >= ladder.config.audio_only_retry_s for a, b in itertools.pairwise(retries))
    assert sum(1 for t, d in during if not d.rung.audio_only) <= 3 * max(1, len(retries))
    back = [t for t, d in history if t > 40 and not d.rung.audio_only]
    assert back and back[0] - 40 <= 20  # two failed retries: the wait has doubled twice
    assert all(not d.rung.audio_only for t, d in history if t >= back[0])
    assert history[-1][1].rung.height >= 270


def test_audio_only_retries_back_off_on_a_link_that_stays_bad() -> None:
    ladder = Ladder(start_bps=100_000)
    history = run(ladder, SimLink(steps((0, 100_000))), 300)
    retries = [t for t, d in history if d.changed and d.reason == "video-retry"]
    gaps = [b - a for a, b in itertools.pairwise(retries)]
    assert 2 <= len(retries) <= 9
    assert gaps[-1] >= 30  # backing off towards audio_only_retry_max_s
    video_seconds = sum(1 for _, d in history if not d.rung.audio_only)
    assert video_seconds <= 2 * len(retries)


def test_cpu_that_cannot_keep_up_steps_down_and_holds() -> None:
    ladder = Ladder(start_bps=5_000_000)
    link = SimLink(steps((0, 5_000_000)))
    top = ladder.rung
    over = ladder.config.cpu_over_samples

    def slow(t: float) -> LinkSample:
        return LinkSample(
            now=t, sent_bps=sent_for(ladder), remb_bps=5e6, remb_at=t, loss=0, rtt_s=0.05,
            encode_s=0.9 / top.fps,
        )  # fmt: skip

    # One slow second (another process took the CPU) is not a CPU that cannot keep up.
    assert not ladder.update(slow(1)).changed
    assert ladder.update(LinkSample(now=2, sent_bps=sent_for(ladder), loss=0, encode_s=0.001))
    decisions = [ladder.update(slow(2 + i)) for i in range(1, over + 1)]
    assert not any(d.changed for d in decisions[:-1])
    decision = decisions[-1]
    assert decision.changed and decision.reason == "cpu" and decision.rung != top
    capped = decision.rung
    history = run(ladder, link, 50, start=2 + over)
    assert all(d.rung == capped for _, d in history)  # fast link, but the CPU said no
    history = run(ladder, link, 30, start=2 + over + 60)
    assert history[-1][1].rung == top  # tried again after cpu_hold_s


def test_queue_building_is_congestion_even_without_loss() -> None:
    ladder = Ladder(start_bps=1_000_000)
    t = 0.0
    for _ in range(5):
        t += 1
        ladder.update(LinkSample(now=t, sent_bps=700_000, loss=0.0, rtt_s=0.1))
    before = ladder.rung
    decision = ladder.update(LinkSample(now=t + 1, sent_bps=700_000, loss=0.0, rtt_s=0.4))
    assert decision.changed and decision.reason == "delay"
    assert ladder.need_bps(decision.rung) <= 0.85 * 700_000 < ladder.need_bps(before)


def test_a_remb_dip_is_ridden_out_but_a_remb_that_stays_under_is_the_link() -> None:
    ladder = Ladder(start_bps=1_000_000)
    top, cfg = ladder.rung, ladder.config

    def sample(t: float, remb: float) -> LinkSample:
        return LinkSample(now=t, sent_bps=remb + 56_000, remb_bps=remb, remb_at=t, loss=0.03)

    for t in range(1, 5):  # settled on the top rung, the receiver asking for a little more
        assert ladder.update(sample(t, 1.1 * top.video_bps)).rung == top
    remb = 0.85 * top.video_bps  # within remb_tolerance of the rung
    dip = [ladder.update(sample(5 + i, remb)) for i in range(int(cfg.remb_dip_s) + 1)]
    # A dip: the rung stays, its video capped to the REMB (frames skipped, same size) ...
    assert all(d.rung == top and d.video_cap_bps == remb for d in dip[:-1])
    # ... for remb_dip_s; then it steps to a rung that fits under the REMB.
    decision = dip[-1]
    assert decision.changed and decision.reason == "remb"
    assert decision.rung.video_bps <= remb


def climb_on_a_steady_remb(ladder: Ladder, remb: float) -> float:
    """Feed a clean link and a steady REMB, a sample a second, until the ladder climbs a rung;
    returns the time of the climb."""
    start, t = ladder.rung, 0.0
    while ladder.rung == start and t < 30:
        t += 1
        sample = LinkSample(
            now=t, sent_bps=ladder.wire_bps(ladder.rung), remb_bps=remb, remb_at=t,
            loss=0.0, rtt_s=0.2,
        )  # fmt: skip
        ladder.update(sample)
    return t


def climbed_and_undone_by_the_remb() -> tuple[Ladder, float]:
    """Rural lab shape: on 270p15 the REMB grows to its app-limited ceiling, the ladder tries
    270p20, the receiver cuts its REMB under 270p15 and the ladder goes back there, capped."""
    ladder = Ladder(start_bps=400_000)
    assert ladder.rung.name == "270p15"
    t = climb_on_a_steady_remb(ladder, 320_000)
    assert ladder.rung.name == "270p20"
    t += 1
    back = ladder.update(LinkSample(now=t, sent_bps=330_000, remb_bps=200_000, remb_at=t))
    assert back.changed and back.rung.name == "270p15" and back.video_cap_bps == 200_000
    return ladder, t


def test_back_from_a_failed_climb_a_falling_remb_steps_down_at_once() -> None:
    """Lab, rural: back on 270p15 after 270p20 failed, the REMB sank further (200 → 180
    kbit/s); the ladder held 270p15 capped for remb_dip_s, skipping frames (0.5 s freezes),
    and then stepped down anyway."""
    ladder, t = climbed_and_undone_by_the_remb()
    d = ladder.update(LinkSample(now=t + 0.2, sent_bps=250_000, remb_bps=190_000, remb_at=t + 0.2))
    assert d.changed and d.reason == "remb" and d.rung.name == "180p15"


def test_soon_after_a_climb_a_remb_that_sinks_under_the_rung_steps_down_at_once() -> None:
    """Lab, rural: 180p15 → 270p15 on a REMB that grew to its ceiling; a few seconds later
    the REMB sank under 270p15 and went on sinking, and the ladder held 270p15 capped (three
    0.5 s freezes in a row) for remb_dip_s."""
    ladder = Ladder(start_bps=300_000)
    assert ladder.rung.name == "180p15"
    t = climb_on_a_steady_remb(ladder, 240_000)
    assert ladder.rung.name == "270p15"
    for remb in (240_000, 240_000, 222_000, 218_000):  # past remb_catchup_s, then just under
        t += 1
        d = ladder.update(LinkSample(now=t, sent_bps=276_000, remb_bps=remb, remb_at=t))
    assert d.rung.name == "270p15" and d.video_cap_bps == 218_000  # a dip: capped
    t += 0.2
    d = ladder.update(LinkSample(now=t, sent_bps=250_000, remb_bps=200_000, remb_at=t))
    assert d.changed and d.reason == "remb" and d.rung.name == "180p15"


def test_back_from_a_failed_climb_a_rising_remb_keeps_the_rung_capped() -> None:
    """p1 lab shape: after a failed climb the REMB recovers from just under the rung: a dip
    (the climb's queue draining), ridden out at the same size."""
    ladder, t = climbed_and_undone_by_the_remb()
    for i, remb in enumerate((206_000, 212_000, 218_000), start=1):
        now = t + 0.2 * i
        d = ladder.update(LinkSample(now=now, sent_bps=250_000, remb_bps=remb, remb_at=now))
        assert d.rung.name == "270p15", (now, d)


def test_one_receiver_report_seen_by_quick_samples_counts_once() -> None:
    """After a REMB the ladder runs every 0.2 s, and each sample repeats the last receiver
    report: one report of 15 % loss is chance on a lossy link, the same loss report after
    report is congestion."""
    ladder = Ladder(start_bps=1_000_000)
    top, t = ladder.rung, 0.0
    for _ in range(3):  # a little loss: the estimate neither grows nor is cut
        t += 1
        assert ladder.update(LinkSample(now=t, sent_bps=700_000, loss=0.03, rtt_s=0.1)).rung == top
    for _ in range(5):
        t += 0.2
        decision = ladder.update(LinkSample(now=t, sent_bps=700_000, loss=0.15, rtt_s=0.1))
        assert decision.rung == top
    reasons = []
    for _ in range(4):
        t += 1
        decision = ladder.update(LinkSample(now=t, sent_bps=700_000, loss=0.15, rtt_s=0.1))
        reasons.append(decision.reason)
    assert decision.rung != top and "loss" in reasons


def test_a_burst_of_loss_cuts_once_not_again_on_the_reports_from_before_the_cut() -> None:
    """Lab, rural link: a failed climb's queue lost 25-30 % for a few reports; the ladder cut
    to 180p10, and 3 s later cut again to audio only on the smoothed burst while the fresh
    reports said 2-3 % (12 s with no picture)."""
    ladder = Ladder(start_bps=400_000)
    t = 0.0
    for _ in range(8):
        t += 1
        sample = LinkSample(
            now=t, sent_bps=ladder.wire_bps(ladder.rung), remb_bps=300_000, remb_at=t,
            loss=0.02, rtt_s=0.2,
        )  # fmt: skip
        ladder.update(sample)
    assert ladder.rung.name == "270p15"
    rungs = []
    for loss in (0.30, 0.30, 0.25, 0.03) + (0.02,) * 10:
        t += 1
        sample = LinkSample(
            now=t, sent_bps=0.95 * ladder.wire_bps(ladder.rung), remb_bps=300_000, remb_at=t,
            loss=loss, rtt_s=0.2,
        )  # fmt: skip
        rungs.append(ladder.update(sample).rung)
    assert rungs[0].height == 180  # the burst is acted on at once
    assert all(not r.audio_only and r.fps >= 10 for r in rungs), [r.name for r in rungs]


def test_loss_that_goes_on_after_a_cut_cuts_again() -> None:
    ladder = Ladder(start_bps=400_000)
    history = []
    for t in range(1, 30):
        loss = 0.25 if t > 8 else 0.02
        sample = LinkSample(
            now=t, sent_bps=ladder.wire_bps(ladder.rung), remb_bps=300_000, remb_at=t,
            loss=loss, rtt_s=0.2,
        )  # fmt: skip
        history.append((t, ladder.update(sample)))
    cuts = [t for t, d in history if d.changed and d.reason == "loss"]
    assert len(cuts) >= 2 and cuts[0] <= 10
    assert cuts[1] - cuts[0] <= ladder.config.loss_holdoff_s + 3


def test_stale_remb_is_ignored() -> None:
    ladder = Ladder(start_bps=1_000_000)
    decision = ladder.update(
        LinkSample(now=30, sent_bps=700_000, remb_bps=100_000, remb_at=10, loss=0, rtt_s=0.1)
    )
    assert not decision.rung.audio_only


def test_quality_words() -> None:
    good = Ladder(start_bps=1_000_000).update(LinkSample(now=1, loss=0.0, rtt_s=0.05))
    assert good.quality == "good"
    rural = Ladder(start_bps=290_000).update(LinkSample(now=1, loss=0.02, rtt_s=0.2))
    assert rural.quality == "fair"
    bad = Ladder(start_bps=90_000).update(LinkSample(now=1, loss=0.0, rtt_s=0.05))
    assert bad.quality == "poor"


def test_config_is_checked() -> None:
    with pytest.raises(ValueError):
        LadderConfig(rungs=tuple(reversed(DEFAULT_RUNGS)))
    with pytest.raises(ValueError):
        LadderConfig(headroom=1.5)


# ---------------------------------------------------------------- properties

capacity_steps = st.lists(
    st.tuples(st.integers(5, 60), st.integers(60_000, 3_000_000)), min_size=1, max_size=5
)


def profile_of(segments):
    pairs, t = [], 0.0
    for length, bps in segments:
        pairs.append((t, float(bps)))
        t += length
    return steps(*pairs), t


@settings(max_examples=60, deadline=None)
@given(capacity_steps, st.floats(0, 0.03), st.integers(50_000, 3_000_000))
def test_properties_on_random_capacity_profiles(segments, loss, start) -> None:
    capacity, total = profile_of(segments)
    ladder = Ladder(start_bps=start)
    link = SimLink(capacity, random_loss=loss)
    history = run(ladder, link, total + 30)
    order = [*ladder.rungs, AUDIO_ONLY]
    last_up = -1e9
    for (_, prev), (t, d) in itertools.pairwise(history):
        a, b = order.index(prev.rung), order.index(d.rung)
        if b < a:  # a climb: one rung, calm-held, after a while
            assert a - b == 1
            assert t - last_up >= ladder.config.up_hold_s
            last_up = t
        if d.changed and d.reason in ("remb", "delay"):
            # a drop lands on a rung that fits what was measured (or audio-only)
            if d.reason == "remb":  # REMB is compared with the video alone
                # (or a rung held capped to the REMB: back from a failed climb, when the REMB
                # is within remb_tolerance of it; the lowest rung, before audio-only)
                tolerated = ladder.config.remb_tolerance * d.rung.video_bps <= d.estimate_bps
                capped = d.video_cap_bps <= d.estimate_bps
                lowest = d.rung == ladder.rungs[-1]
                assert (
                    d.rung.audio_only
                    or d.rung.video_bps <= d.estimate_bps
                    or ((tolerated or lowest) and capped)
                )
            elif d.reason == "delay":  # (a "loss" drop may go back to the rung it came from)
                assert d.rung.audio_only or ladder.need_bps(d.rung) <= d.estimate_bps
        # The video cap never exceeds the rung, and follows a REMB under it.
        assert d.video_cap_bps <= d.rung.video_bps
        assert d.quality in ("good", "fair", "poor")


@settings(max_examples=40, deadline=None)
@given(st.integers(150_000, 3_000_000))
def test_a_steady_link_settles_on_the_best_fit_and_stays(capacity) -> None:
    ladder = Ladder(start_bps=capacity)
    profile = steps((0, float(capacity)))
    history = run(ladder, SimLink(profile), 180)
    best = ladder.best_rung_for(capacity)
    order = [*ladder.rungs, AUDIO_ONLY]
    late = [d for t, d in history if t > 60]
    # Never worse than one rung below the best fit, and rarely over the link (probes, and
    # the sawtooth of a receiver's REMB, which the rate cap follows).
    assert all(order.index(d.rung) <= order.index(best) + 1 for d in late), rung_names(history)
    assert over_capacity_share(ladder, history, profile, 60) <= 0.3


def test_making_room_for_a_still_holds_one_rung_lower_then_climbs_back() -> None:
    """A still asks for room (kiosk/still_pacing.py): the video goes one rung down at the next
    decision and never climbs above that, though the link would carry it; the quality word
    still describes the link. Room given back: it climbs back by its usual rules, and the
    room it made cost no failed-climb back-off."""
    ladder = Ladder(start_bps=1_000_000)
    link = SimLink(steps((0, 1_000_000)))
    settled = run(ladder, link, 20)
    order = [r.name for r in ladder.rungs]
    was = order.index(settled[-1][1].rung.name)
    word = settled[-1][1].quality
    probes = {i: (p.wait_s, p.last_fail) for i, p in ladder._probes.items()}

    ladder.make_room(True)
    during = run(ladder, link, 20, start=20)
    # The room it made is no failed climb: no back-off learnt from it.
    assert {i: (p.wait_s, p.last_fail) for i, p in ladder._probes.items()} == probes
    assert (during[0][1].rung.name, during[0][1].reason) == (order[was + 1], "still")
    assert {d.rung.name for _, d in during} == {order[was + 1]}
    assert all(d.quality == word for _, d in during)

    ladder.make_room(False)
    after = run(ladder, link, 10, start=40)
    back = next(t for t, d in after if order.index(d.rung.name) <= was)
    assert back - 40 <= ladder.config.up_hold_s + 1


def test_room_is_never_made_below_the_lowest_video_rung() -> None:
    lowest = DEFAULT_RUNGS[-1]
    ladder = Ladder(LadderConfig(rungs=(lowest,)), start_bps=1_000_000)
    ladder.make_room(True)
    link = SimLink(steps((0, 1_000_000)))
    assert {d.rung for _, d in run(ladder, link, 10)} == {lowest}


def test_room_holds_while_the_link_moves_the_rung() -> None:
    """Room asked at 360p20: never above 270p20 until given back, though the link would
    carry more; a drop below that is the link's, and is followed."""
    ladder = Ladder(start_bps=800_000)
    link = SimLink(steps((0, 800_000), (10, 250_000), (20, 2_000_000)))
    run(ladder, link, 1)
    assert ladder.rung.name == "360p20"
    ladder.make_room(True)
    history = run(ladder, link, 40, start=1)
    order = [r.name for r in ladder.rungs]
    assert all(order.index(d.rung.name) >= order.index("270p20") for _, d in history)
    assert any(order.index(d.rung.name) > order.index("270p20") for _, d in history)
    assert history[-1][1].rung.name == "270p20"


def test_room_made_just_after_a_climb_is_not_a_failed_climb() -> None:
    ladder = Ladder(start_bps=600_000)
    link = SimLink(steps((0, 600_000), (5, 1_500_000)))
    t = 0.0
    while True:
        t += 1
        decision = ladder.update(link.sample(t, sent_for(ladder), 1.0, audio_bps=56_000))
        if decision.changed and decision.reason == "up":
            break
        assert t < 60, "no climb"
    probes = {i: (p.wait_s, p.last_fail) for i, p in ladder._probes.items()}
    ladder.make_room(True)
    (_, step), *_ = run(ladder, link, 1, start=t)
    assert step.reason == "still"
    assert {i: (p.wait_s, p.last_fail) for i, p in ladder._probes.items()} == probes

"""Sizes, pacing, overshoot calibration, the rate guard and the retransmission budget."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from porchlight.kiosk.send_policy import (
    FramePacer,
    OvershootCalibrator,
    RateGuard,
    RetransmitBudget,
    scaled_size,
)


def test_scaled_size_keeps_aspect_and_never_upscales() -> None:
    assert scaled_size(1280, 720, 320, 180) == (320, 180)
    assert scaled_size(640, 480, 640, 360) == (480, 360)  # 4:3 camera in a 16:9 box
    assert scaled_size(320, 240, 1280, 720) == (320, 240)
    with pytest.raises(ValueError):
        scaled_size(0, 480, 640, 360)


@given(st.integers(16, 4000), st.integers(16, 4000), st.integers(16, 2000), st.integers(16, 2000))
def test_scaled_size_properties(sw, sh, bw, bh) -> None:
    w, h = scaled_size(sw, sh, bw, bh)
    assert w % 2 == 0 and h % 2 == 0
    assert w <= max(2, min(sw, bw)) and h <= max(2, min(sh, bh))


@pytest.mark.parametrize(("src", "fps", "expected"), [(30, 15, 15), (30, 20, 20), (30, 6, 6)])
def test_pacer_keeps_the_rung_frame_rate(src: int, fps: int, expected: int) -> None:
    pacer = FramePacer(fps)
    kept = sum(pacer.take(i / src) for i in range(src * 10))
    assert abs(kept / 10 - expected) <= 1


def test_pacer_at_zero_fps_holds_video_back() -> None:
    pacer = FramePacer(0)
    assert not any(pacer.take(i / 30) for i in range(60))


def test_calibrator_learns_the_overshoot_and_says_when_to_rebuild() -> None:
    cal = OvershootCalibrator(ratio=1.0)
    assert cal.codec_target(200_000) == 200_000
    rebuild = False
    for _ in range(120):  # the encoder sends 2× what it is told
        rebuild |= cal.observe(bits=2 * 200_000 / 10, seconds=0.1, codec_target_bps=200_000)
    assert rebuild and 1.7 < cal.ratio < 2.1
    assert 95_000 < cal.codec_target(200_000) < 120_000


def test_rate_guard_holds_the_average_rate() -> None:
    guard = RateGuard(rate_bps=100_000)
    sent = 0
    for i in range(300):  # 10 s at 30 fps, each frame 8 kbit (240 kbit/s if all sent)
        t = i / 30
        if guard.allow(t):
            guard.spent(8_000, t)
            sent += 8_000
    assert 90_000 <= sent / 10 <= 115_000


def test_retransmit_budget_answers_each_packet_twice_at_most_and_caps_the_rate() -> None:
    budget = RetransmitBudget(min_gap_s=0.05)
    assert budget.allow(7, 0.0, 500_000)
    assert not budget.allow(7, 0.01, 500_000)  # too soon
    assert budget.allow(7, 0.2, 500_000)
    assert not budget.allow(7, 0.5, 500_000)  # twice already
    # A storm of requests for new packets is capped at ~30 % of the rate.
    allowed = sum(budget.allow(1000 + i, 1.0 + i * 0.001, 500_000) for i in range(500))
    assert allowed <= 500_000 * 0.3 / (1200 * 8) + 1
    assert budget.refused > 400

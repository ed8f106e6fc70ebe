"""bench/video_adapt.py's count of the clinician's picture at the kiosk (the "reverse" frame
rate) from the kiosk's counter, sampled about every 0.1 s as the lab's kiosk role does."""

from __future__ import annotations

import random
import statistics

import pytest

from .lab import load_bench


def samples(fps: float, until: float, rng: random.Random) -> list[dict]:
    """A counter of frames decoded at `fps`, read every 0.1 s plus the sampler's own delay,
    from 0 to `until`."""
    out, t = [], 0.0
    while t <= until:
        out.append({"t": t, "frames_received": int(t * fps)})
        t += 0.1 + rng.uniform(0.0, 0.03)
    return out


def test_a_15_fps_picture_counts_15_fps_each_second() -> None:
    video_adapt = load_bench("video_adapt")
    rates = video_adapt.reverse_fps(samples(15, 60, random.Random(4)), 0.5, 58)
    assert len(rates) == 58
    assert all(14 <= r <= 16 for r in rates)
    assert statistics.fmean(rates) == pytest.approx(15, rel=0.05)


def test_the_last_second_counts_when_sampling_stops_a_moment_early() -> None:
    # The lab stops the kiosk as the profile ends: its last sample may fall just before that.
    video_adapt = load_bench("video_adapt")
    rates = video_adapt.reverse_fps(samples(15, 29.9, random.Random(2)), 0.0, 30)
    assert len(rates) == 30
    assert all(14 <= r <= 16 for r in rates)


def test_no_counts_without_samples_from_the_start() -> None:
    video_adapt = load_bench("video_adapt")
    assert video_adapt.reverse_fps(samples(15, 10, random.Random(1)), -1.0, 10) == []

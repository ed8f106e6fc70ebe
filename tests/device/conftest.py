"""Fixtures for the device tests: simulated pins and a simulated-device config."""

from __future__ import annotations

import time

import pytest

from porchlight.device.config import DeviceConfig
from porchlight.device.hardware import simulated_pin_factory


@pytest.fixture
def pin_factory():
    factory = simulated_pin_factory()
    yield factory
    factory.close()


@pytest.fixture
def config() -> DeviceConfig:
    return DeviceConfig(simulate=True)


async def recv_timed(track, count: int) -> tuple[list, float]:
    """The first frame plus `count` more, the seconds those `count` took; then stop the track."""
    try:
        first = await track.recv()
        start = time.monotonic()
        frames = [first] + [await track.recv() for _ in range(count)]
        return frames, time.monotonic() - start
    finally:
        track.stop()


@pytest.fixture
def timed_frames():
    return recv_timed

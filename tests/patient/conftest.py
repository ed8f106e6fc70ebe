"""Fixtures for the patient-side tests: the two-team world of tests/security (built once per
session: argon2 is slow on purpose) and a hub client on a fresh copy with a clock tests move."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from security.world import FakeClock, World, build_world, hub_client


@pytest.fixture(scope="session")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    return build_world(tmp_path_factory.mktemp("patient-world"))


@pytest.fixture
def clock() -> FakeClock:
    # Tuesday 4 March 2025, 09:30 UTC: the world's start.
    return FakeClock(datetime(2025, 3, 4, 9, 30, tzinfo=UTC))


@pytest.fixture
def client(world: World, tmp_path, clock: FakeClock) -> Iterator:
    with hub_client(world, tmp_path / "hub", clock) as c:
        yield c


@pytest.fixture
def kiosk_config(tmp_path):
    """A simulated kiosk (as tests/kiosk's): loopback ICE, the recording speaker, small video."""
    from kiosk.conftest import SMALL_CAMERA

    from porchlight.device.config import DeviceConfig
    from porchlight.kiosk.config import KioskConfig

    return KioskConfig(
        data_dir=tmp_path / "k",
        ice_host_addresses=["127.0.0.1"],
        device=DeviceConfig(simulate=True, speaker="sim", **SMALL_CAMERA),
    )

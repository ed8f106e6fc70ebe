"""Security test fixtures: the two-team world (built once), and a client on a fresh copy."""

from __future__ import annotations

import pytest

from .world import World, build_world


@pytest.fixture(scope="session")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    return build_world(tmp_path_factory.mktemp("security-world"))

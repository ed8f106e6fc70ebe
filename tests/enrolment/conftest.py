"""Enrolment test fixtures: the two-team world of tests/security, built once."""

from __future__ import annotations

import pytest
from security.world import World, build_world


@pytest.fixture(scope="session")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    return build_world(tmp_path_factory.mktemp("enrolment-world"))

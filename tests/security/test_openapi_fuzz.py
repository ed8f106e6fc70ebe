"""Schemathesis against the hub's OpenAPI document, on a bounded budget: generated requests
to every operation, as the caller each route is for, must never get a server error, and every
answer must match the schema the document promises."""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from porchlight.hub.app import create_app
from porchlight.hub.config import HubConfig
from porchlight.hub.store import Store
from porchlight.protocol import SESSION_COOKIE

from .world import FakeClock, World

EXAMPLES_PER_OPERATION = 12


@pytest.fixture(scope="module")
def hub_app(world: World, tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    folder = tmp_path_factory.mktemp("fuzz-hub")
    shutil.copy(world.db_file, folder / "hub.db")
    config = HubConfig(data_dir=folder)
    store = Store.open(config.resolved_database_url())
    yield create_app(config, store=store, clock=FakeClock())
    store.close()


@pytest.fixture(scope="module")
def api_schema(hub_app):
    return schemathesis.openapi.from_asgi("/openapi.json", hub_app)


schema = schemathesis.pytest.from_fixture("api_schema")


def caller_for(path: str) -> str:
    """Who each route is for, so generated requests get past authentication."""
    if path.startswith(("/api/device/", "/api/records")):
        return "device_a"
    if path.startswith(("/api/nurse/", "/api/devices/", "/api/teams")):
        return "nurse_x"
    if path.startswith("/api/admin/"):
        return "admin"
    return "clin_x"


@schema.parametrize()
@settings(
    max_examples=EXAMPLES_PER_OPERATION,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,  # the same requests on every run: a failure is reproducible
)
def test_no_server_errors_and_answers_match_the_schema(case, world):
    actor = caller_for(case.path)
    headers = {}
    if actor.startswith("device_"):
        headers["Authorization"] = f"Bearer {world.tokens[actor]}"
    else:
        headers["Cookie"] = f"{SESSION_COOKIE}={world.tokens[actor]}"
    if case.path == "/api/logout":
        headers.pop("Cookie")  # keep the shared session alive for the other operations
    case.call_and_validate(
        headers=headers,
        checks=[not_a_server_error, response_schema_conformance],
    )

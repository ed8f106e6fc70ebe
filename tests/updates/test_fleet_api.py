"""The fleet API: who may see it, heartbeats and their filters, rollout control by hand, and
the diagnostics round trip (asked by support, seen by the device, uploaded scrubbed)."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from porchlight.hub import auth
from porchlight.hub.config import HubConfig
from porchlight.hub.seed import DEMO_PASSWORD, ensure_person
from porchlight.hub.store import Role, Store
from porchlight.provisioning.heartbeat import safe_config, scrub

from .conftest import hub_app, utc_now

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    from fastapi.testclient import TestClient


@dataclass
class FakeClock:
    """The hub's clock, moved by hand."""

    now: datetime

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@dataclass
class Hub:
    client: TestClient
    clock: FakeClock
    tokens: dict[str, str]

    def beat(self, device: str, **inventory: Any) -> Any:
        return self.client.post(
            "/api/fleet/heartbeat",
            json=inventory,
            headers={"Authorization": f"Bearer {self.tokens[device]}"},
        )

    def login(self, username: str) -> None:
        r = self.client.post("/api/login", json={"username": username, "password": DEMO_PASSWORD})
        assert r.status_code == 200, r.text


@pytest.fixture
def hub(tmp_path: Path) -> Iterator[Hub]:
    config = HubConfig(data_dir=tmp_path / "hub")
    store = Store.open(config.resolved_database_url())
    ensure_person(store, "support", "Support Sam", Role.SUPPORT, DEMO_PASSWORD)
    ensure_person(store, "clinician", "Dr Who", Role.CLINICIAN, DEMO_PASSWORD)
    tokens = {}
    for name in ("a", "b", "c"):
        patient = store.add_patient(f"Patient {name}", now=utc_now())
        tokens[name] = auth.new_token()
        store.add_device(patient.id, auth.hash_token(tokens[name]), now=utc_now(), device_id=name)
    clock = FakeClock(utc_now())
    with TestClient(hub_app(config, store, clock=clock)) as client:
        yield Hub(client, clock, tokens)
    store.close()


def update(current: str, **kw: Any) -> dict[str, Any]:
    return {"update": {"current": current, "phase": "idle", **kw}}


def test_only_support_and_admin_see_the_fleet_and_never_patient_names(hub: Hub) -> None:
    assert hub.beat("a", **update("1.0")).status_code == 200
    assert hub.client.get("/api/fleet/devices").status_code == 401
    headers = {"Authorization": f"Bearer {hub.tokens['a']}"}
    assert hub.client.get("/api/fleet/devices", headers=headers).status_code == 401
    hub.login("clinician")
    assert hub.client.get("/api/fleet/devices").status_code == 403
    assert hub.client.post("/api/fleet/rollouts", json={"version": "2.0"}).status_code == 403
    hub.login("support")
    listed = hub.client.get("/api/fleet/devices")
    assert listed.status_code == 200
    assert "Patient a" not in listed.text
    page = hub.client.get("/support")
    assert page.status_code == 200 and 'data-testid="device-rows"' in page.text


def test_heartbeats_are_checked_and_a_bad_one_changes_nothing(hub: Hub) -> None:
    assert hub.beat("a", cpu_temp_c=900).status_code == 422
    assert hub.client.post("/api/fleet/heartbeat", json={}).status_code == 401
    hub.login("support")
    assert hub.client.get("/api/fleet/devices").json()["count"] == 0


def test_filters_stale_failing_and_old(hub: Hub) -> None:
    hub.beat("a", **update("1.0"))
    hub.clock.advance(80 * 60)  # a has been silent for 80 minutes
    failed = {"version": "2.0", "outcome": "rolled_back", "reason": "release 2.0 crashed"}
    hub.beat("b", **update("2.0"), kiosk_problems=[])
    hub.beat("c", **update("2.0", last_result=failed))
    hub.login("support")

    def ids(filter: str) -> list[str]:
        body = hub.client.get(f"/api/fleet/devices?filter={filter}").json()
        return [d["device_id"] for d in body["devices"]]

    assert ids("stale") == ["a"]
    assert ids("old") == ["a"]
    assert ids("failing") == ["c"]
    assert hub.client.get("/api/fleet/devices?filter=bogus").status_code == 400


def test_rollout_control_by_hand(hub: Hub) -> None:
    for name in hub.tokens:
        hub.beat(name, **update("1.0"))
    hub.login("support")
    made = hub.client.post("/api/fleet/rollouts", json={"version": "2.0", "stages": [100]})
    assert made.status_code == 201
    rollout = made.json()
    assert rollout["from_version"] == "1.0" and rollout["status"] == "running"
    assert hub.beat("a", **update("1.0")).json()["update"]["version"] == "2.0"

    act = f"/api/fleet/rollouts/{rollout['id']}"
    assert hub.client.post(act + "/pause").json()["status"] == "paused"
    assert hub.beat("a", **update("1.0")).json()["update"] is None  # nobody new while paused
    assert hub.client.post(act + "/pause").status_code == 400
    assert hub.client.post(act + "/resume").json()["status"] == "running"
    result = {"version": "2.0", "outcome": "installed", "rollout_id": rollout["id"]}
    hub.beat("a", **update("2.0", last_result=result))
    back = hub.client.post(act + "/rollback").json()
    assert back["status"] == "rolled_back"
    assert hub.beat("a", **update("2.0")).json()["update"]["version"] == "1.0"
    assert hub.beat("b", **update("1.0")).json()["update"] is None
    assert hub.client.post(act + "/explode").status_code == 400
    bad = hub.client.post("/api/fleet/rollouts", json={"version": "../x"})
    assert bad.status_code == 400


def test_diagnostics_round_trip_scrubbed(hub: Hub, tmp_path: Path) -> None:
    hub.beat("a", **update("1.0"))
    hub.login("support")
    assert hub.beat("a", **update("1.0")).json()["diagnostics_requested"] is False
    assert hub.client.post("/api/fleet/devices/a/diagnostics-request").json() == {"requested": True}
    assert hub.beat("a", **update("1.0")).json()["diagnostics_requested"] is True

    config_file = tmp_path / "porchlight.toml"
    config_file.write_text('[kiosk]\nhub_url = "https://hub"\nturn_credential = "s3cret"\n')
    log = "call from jo@example.org, NHS 943 476 5919, Authorization: Bearer abcdefghijklmnop\n"
    bundle = {"logs": scrub(log), "config": safe_config(config_file)}
    headers = {"Authorization": f"Bearer {hub.tokens['a']}"}
    up = hub.client.post("/api/fleet/diagnostics", json={"bundle": bundle}, headers=headers)
    assert up.status_code == 200
    got = hub.client.get("/api/fleet/devices/a/diagnostics").json()["bundle"]
    assert "jo@example.org" not in got["logs"] and "943" not in got["logs"]
    assert "abcdefghijklmnop" not in got["logs"]
    assert got["config"] == {"kiosk": {"hub_url": "https://hub"}}
    assert hub.beat("a", **update("1.0")).json()["diagnostics_requested"] is False
    too_big = {"bundle": {"logs": "x" * (2 * 1024 * 1024)}}
    assert (
        hub.client.post("/api/fleet/diagnostics", json=too_big, headers=headers).status_code == 400
    )

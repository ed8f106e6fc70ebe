"""Support's "check for updates now": stored on the hub, carried by the heartbeat reply to the
update agent's loop, which checks at once (never while the patient is busy) and reports back;
otherwise the loop checks on its schedule (30 min, with jitter) whatever the hub names."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import requests

from porchlight.provisioning.fleet_sim import SimDevice
from porchlight.provisioning.heartbeat import collect_inventory
from porchlight.provisioning.kiosk_status import read_status, write_status

from .conftest import FleetHub, Repo, sim_device, update_loop

MINUTE = 60.0


def _patient_in_a_call(device: SimDevice, in_call: bool) -> None:
    status = read_status(device.layout.kiosk_data_dir)
    assert status is not None
    now = device.clock()
    write_status(
        device.layout.kiosk_data_dir,
        dataclasses.replace(status, activity="call" if in_call else "idle", updated_at=now),
    )


@pytest.mark.parametrize("fleet_hub", [1], indirect=True)
def test_the_agent_checks_on_its_schedule_or_at_once_when_support_asks(
    tmp_path: Path, repo: Repo, fleet_hub: FleetHub
) -> None:
    repo.publish("1.4.0", "1.5.0")
    (device_id,) = fleet_hub.tokens
    device = sim_device(tmp_path, repo, fleet_hub, device_id)
    loop = update_loop(device)
    assert loop.beat() is None  # the first check: the hub names nothing yet

    # The hub names 1.4.0 in every heartbeat reply, but the next check is 30 minutes away.
    fleet_hub.rollout("1.4.0", canaries=[device_id], stages=[100])
    for _ in range(5):
        device.clock.sleep(MINUTE)
        assert loop.beat() is None
    assert device.version == "1.0.0"

    # Support asks while the patient is in a call: the agent checks at the next heartbeat,
    # and waits for the patient.
    _patient_in_a_call(device, True)
    asked = fleet_hub.api("POST", "/api/fleet/check-requests", json={"device_ids": [device_id]})
    assert asked == {"requested": [device_id], "unknown": []}
    assert fleet_hub.devices()[device_id]["check_requested_at"] is not None
    device.clock.sleep(MINUTE)
    result = loop.beat()
    assert result is not None and result.outcome == "deferred"
    assert "the patient is in a call" in result.reason and device.version == "1.0.0"
    row = fleet_hub.devices()[device_id]
    assert row["check_requested_at"] is None, "answered: the hub stops asking"
    assert row["last_check"]["outcome"] == "deferred"
    assert row["last_check"]["request_id"] is not None

    device.clock.sleep(MINUTE)  # still in the call: tried again, still waiting
    _patient_in_a_call(device, True)
    result = loop.beat()
    assert result is not None and result.outcome == "deferred"

    # The call ends: the next heartbeat installs, without support asking again.
    device.clock.sleep(MINUTE)
    _patient_in_a_call(device, False)
    result = loop.beat()
    assert result is not None and result.outcome == "installed"
    row = fleet_hub.devices()[device_id]
    assert row["version"] == "1.4.0" and row["last_check"]["outcome"] == "installed"
    assert row["last_result"]["outcome"] == "installed"

    # Nobody asks: 1.5.0 waits for the schedule, 30 minutes after the last check.
    fleet_hub.rollout("1.5.0", canaries=[device_id], stages=[100])
    for _ in range(29):
        device.clock.sleep(MINUTE)
        assert loop.beat() is None
    assert device.version == "1.4.0"
    device.clock.sleep(MINUTE)
    result = loop.beat()
    assert result is not None and result.outcome == "installed" and device.version == "1.5.0"
    assert fleet_hub.devices()[device_id]["last_check"]["request_id"] is None


@pytest.mark.parametrize("fleet_hub", [3], indirect=True)
def test_a_request_reaches_every_device_asked_and_only_those(
    tmp_path: Path, repo: Repo, fleet_hub: FleetHub
) -> None:
    ids = sorted(fleet_hub.tokens)
    devices = [sim_device(tmp_path, repo, fleet_hub, d) for d in ids]
    loops = [update_loop(d) for d in devices]
    for loop in loops:
        loop.beat()
    asked = fleet_hub.api(
        "POST", "/api/fleet/check-requests", json={"device_ids": [ids[0], "never-seen"]}
    )
    assert asked == {"requested": [ids[0]], "unknown": ["never-seen"]}
    rows = fleet_hub.devices()
    assert [bool(rows[d]["check_requested_at"]) for d in ids] == [True, False, False]

    fleet_hub.api("POST", "/api/fleet/check-requests", json={"all": True})
    assert all(row["check_requested_at"] for row in fleet_hub.devices().values())
    for device, loop in zip(devices, loops, strict=True):
        device.clock.sleep(MINUTE)
        result = loop.beat()
        assert result is not None and result.outcome == "up_to_date"
    rows = fleet_hub.devices()
    assert all(row["check_requested_at"] is None for row in rows.values())
    assert all(row["last_check"]["outcome"] == "up_to_date" for row in rows.values())

    # A lost reply costs nothing: the request is repeated until a heartbeat answers it.
    fleet_hub.api("POST", "/api/fleet/check-requests", json={"device_ids": [ids[1]]})
    first = devices[1].hub.heartbeat(collect_inventory(devices[1].layout, devices[1].agent))
    again = devices[1].hub.heartbeat(collect_inventory(devices[1].layout, devices[1].agent))
    assert first["check_requested"] and again["check_requested"] == first["check_requested"]


@pytest.mark.parametrize("fleet_hub", [1], indirect=True)
@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({}, 400, "name the devices"),
        ({"all": True, "device_ids": ["x"]}, 400, "not both"),
        ({"device_ids": ["nobody"]}, 404, "has sent a heartbeat"),
    ],
)
def test_check_requests_refuse_unclear_asks(
    fleet_hub: FleetHub, body: dict, status: int, message: str
) -> None:
    response = fleet_hub.support.post(
        fleet_hub.url + "/api/fleet/check-requests", json=body, timeout=30
    )
    assert response.status_code == status
    assert message in response.json()["message"]
    assert fleet_hub.devices() == {}
    anonymous = requests.post(
        fleet_hub.url + "/api/fleet/check-requests", json={"all": True}, timeout=30
    )
    assert anonymous.status_code == 401

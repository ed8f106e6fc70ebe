"""A release that crashes at start, and one that starts but fails its health check: each is
rolled back by the device on its own (real venvs, the app really started), the device is back
on the old version with a healthy kiosk, and the hub is told why (fleet page, rollout)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from porchlight.provisioning.heartbeat import HubClient, check_with_hub, collect_inventory
from porchlight.provisioning.kiosk_control import ProcessKiosk
from porchlight.provisioning.release_install import VenvInstaller, installed_versions
from porchlight.provisioning.update_agent import AgentConfig, UpdateAgent
from porchlight.provisioning.update_policy import UpdatePolicy

from .conftest import FleetHub, Repo, kill_sim_kiosk, make_device
from .test_power_cuts import wait_for_status


@pytest.mark.slow
@pytest.mark.parametrize("fleet_hub", [1], indirect=True)
def test_bad_releases_roll_back_and_the_hub_hears_why(
    tmp_path: Path, repo: Repo, fleet_hub: FleetHub
) -> None:
    repo.publish("1.2.0", "1.3.0")
    ((device_id, token),) = fleet_hub.tokens.items()
    layout = make_device(tmp_path / "device", repo, fleet_hub.url, real=True)
    kiosk = ProcessKiosk(layout)
    try:
        kiosk.restart()
        assert wait_for_status(layout, "1.0.0").problems() == []
        agent = UpdateAgent(
            layout,
            AgentConfig.for_hub(
                fleet_hub.url, health_poll_s=0.05, policy=UpdatePolicy(health_window_s=3.0)
            ),
            installer=VenvInstaller(sys.executable),
            kiosk=kiosk,
        )
        hub = HubClient(fleet_hub.url, token)
        cases = [
            ("1.2.0", "crashed 3 times at start"),
            ("1.3.0", "failed its health check: button not answering"),
        ]
        for version, why in cases:
            rollout = fleet_hub.rollout(version, canaries=[device_id], stages=[100])
            result = check_with_hub(agent, hub, inventory=lambda: collect_inventory(layout, agent))
            assert result is not None and result.outcome == "rolled_back"
            assert why in result.reason
            # Back on the old version, whose kiosk is running and healthy again.
            assert agent.current_version() == "1.0.0"
            assert version not in installed_versions(layout)
            assert wait_for_status(layout, "1.0.0").problems() == []
            # The hub heard why: on the fleet page, and the canary halted the rollout.
            row = fleet_hub.devices("failing")[device_id]
            assert row["version"] == "1.0.0"
            assert row["last_result"]["outcome"] == "rolled_back"
            assert why in row["last_result"]["reason"]
            listed = fleet_hub.api("GET", "/api/fleet/rollouts")["rollouts"][0]
            assert listed["id"] == rollout["id"] and listed["status"] == "halted"
            assert listed["failures"] == [{"device_id": device_id, "reason": result.reason}]
            # A release that failed here is not tried again.
            again = agent.check(version)
            assert again.outcome == "skipped" and agent.current_version() == "1.0.0"
    finally:
        kiosk.stop()
        kill_sim_kiosk(layout)

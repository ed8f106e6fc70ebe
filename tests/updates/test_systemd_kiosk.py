"""The real kiosk control (`SystemdKiosk`): what can be run without systemd as PID 1.

Exercised here: the crash count read from `systemctl show` output (pure), the real
`systemctl` binary failing on a machine whose init is not systemd (a clear DeviceFault), and
an agent whose restart fails in the middle of a switch: the device is left with a complete
release and the next run finishes the job. The units themselves are checked by
`systemd-analyze verify` (tests/images). Not exercised: a real `systemctl restart` of the
kiosk unit, NRestarts counting real crashes, Restart=always: they need systemd as PID 1.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from porchlight.errors import DeviceFault
from porchlight.provisioning.kiosk_control import (
    SystemdKiosk,
    crashes_since,
    parse_show,
)
from porchlight.provisioning.release_install import is_complete
from porchlight.provisioning.update_agent import Journal, UpdateAgent

from .conftest import Repo, make_device, simulated_agent

# As `systemctl show -p InvocationID -p NRestarts porchlight-kiosk.service` prints it.
BEFORE = "InvocationID=5a3c0b7e0cbd4f4e9f3b9f0f1d7e2a11\nNRestarts=7\n"
NOT_YET = BEFORE  # our restart job has not run: same invocation, the old count
STARTED = "InvocationID=0f4e0e3a8c6d4b0c9a1f6d2e3b4c5d66\nNRestarts=0\n"
CRASHED_TWICE = "InvocationID=9d1e2f3a4b5c4d6e8f7a6b5c4d3e2f11\nNRestarts=2\n"


def test_the_crash_count_starts_at_our_restart() -> None:
    before = parse_show(BEFORE)["InvocationID"]
    assert parse_show(BEFORE) == {
        "InvocationID": "5a3c0b7e0cbd4f4e9f3b9f0f1d7e2a11",
        "NRestarts": "7",
    }
    # Seven old restarts must not count as crashes of the new release before it even began.
    assert crashes_since(before, parse_show(NOT_YET)) == 0
    assert crashes_since(before, parse_show(STARTED)) == 0
    assert crashes_since(before, parse_show(CRASHED_TWICE)) == 2
    # A new agent (after a power cut) counts from the last manual start.
    assert crashes_since(None, parse_show(CRASHED_TWICE)) == 2
    assert crashes_since(None, parse_show("InvocationID=\nNRestarts=[not set]\n")) == 0


def test_systemctl_without_systemd_is_a_clear_device_fault() -> None:
    """The real systemctl binary, on a machine whose PID 1 is not systemd (or a unit that does
    not exist where it is): refused with a message that says what is needed."""
    kiosk = SystemdKiosk(unit="porchlight-no-such-unit-for-tests.service")
    with pytest.raises(DeviceFault, match="failed"):
        kiosk.restart()
    with pytest.raises(DeviceFault):
        kiosk.crashes()
    missing = SystemdKiosk(systemctl="/nonexistent/systemctl")
    with pytest.raises(DeviceFault, match="could not run"):
        missing.restart()


def test_a_restart_that_fails_mid_switch_leaves_a_device_the_next_run_completes(
    tmp_path: Path, repo: Repo, release_server
) -> None:
    repo.publish("1.4.0")
    layout = make_device(tmp_path / "device", repo, release_server.url)
    twin = simulated_agent(layout, release_server.url)
    real = UpdateAgent(
        layout,
        twin.config,
        installer=twin.installer,
        kiosk=SystemdKiosk(unit="porchlight-no-such-unit-for-tests.service"),
    )
    with pytest.raises(DeviceFault):
        real.check("1.4.0")
    # Switched, restart not done: `current` names a complete release, the journal a trial.
    assert real.current_version() == "1.4.0" and is_complete(layout, "1.4.0")
    assert Journal.load(layout.update_state_path).phase == "trial"
    # The next run (systemd restarts the agent) with a kiosk control that works finishes it.
    settled = twin.recover()
    assert settled is not None and settled.outcome == "installed"
    assert twin.current_version() == "1.4.0" and twin.journal().phase == "idle"

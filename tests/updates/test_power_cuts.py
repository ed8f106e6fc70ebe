"""A power cut (SIGKILL of the agent process) at every step of an install and of a rollback:
the release `current` names is always complete and starts, and the next run of the agent
finishes or undoes the job, leaving a healthy kiosk on a good version.

Real processes throughout: the agent in its own process, a venv per release, pip from the
release's wheels, the simulated app started as the kiosk.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from porchlight.provisioning.kiosk_status import KioskStatus, read_status
from porchlight.provisioning.layout import DeviceLayout
from porchlight.provisioning.release_install import installed_versions, is_complete, link_version
from porchlight.provisioning.update_agent import Journal

from .conftest import Repo, kill_sim_kiosk, make_device

DRIVER = Path(__file__).with_name("agent_driver.py")

INSTALL_STEPS = [
    "refreshing",
    "downloading",
    "downloaded",
    "installing",
    "installed",
    "switching",
    "previous-linked",
    "current-linked",
    "restarted",
    "committed",
]
ROLLBACK_STEPS = ["rolling-back", "rolled-back-link", "rolled-back-restart", "rolled-back"]

CASES = (
    [("1.1.0", step, None) for step in INSTALL_STEPS]
    + [("1.1.0", None, 0.4)]  # in the middle of pip
    + [("1.2.0", step, None) for step in ROLLBACK_STEPS]
)


def run_agent(root: Path, url: str, wanted: str, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(DRIVER), str(root), url, wanted, *extra],
        capture_output=True,
        text=True,
        timeout=90,
        cwd=root,
    )


def assert_starts(layout: DeviceLayout) -> str:
    """`current` is a complete release whose command runs; returns its version."""
    version = link_version(layout, layout.current_link)
    assert version is not None and is_complete(layout, version)
    ran = subprocess.run(
        [str(layout.current_entry_point), "version"], capture_output=True, text=True, timeout=30
    )
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.split() == ["porchlight", version]
    return version


def wait_for_status(layout: DeviceLayout, version: str, timeout_s: float = 15.0) -> KioskStatus:
    deadline = time.monotonic() + timeout_s
    while True:
        status = read_status(layout.kiosk_data_dir)
        if status is not None and status.version == version:
            return status
        assert time.monotonic() < deadline, f"no status from a running {version} kiosk"
        time.sleep(0.05)  # poll the file with a deadline


@pytest.mark.slow
@pytest.mark.parametrize(
    ("wanted", "kill_at", "kill_after_s"),
    CASES,
    ids=[f"{w}-{k or f'mid-pip-{s}s'}" for w, k, s in CASES],
)
def test_power_cut_leaves_a_version_that_starts(
    tmp_path: Path,
    repo: Repo,
    release_server,
    wanted: str,
    kill_at: str | None,
    kill_after_s: float | None,
) -> None:
    repo.publish("1.1.0", "1.2.0")
    root = tmp_path / "device"
    layout = make_device(root, repo, release_server.url, real=True)
    try:
        extra = ["--kill-at", kill_at] if kill_at else ["--kill-after-s", str(kill_after_s)]
        cut = run_agent(root, release_server.url, wanted, *extra, "--window", "20")
        assert cut.returncode == -9, cut.stdout + cut.stderr  # the cut really happened there

        # Straight after the cut, before any repair: what systemd would start is whole.
        assert assert_starts(layout) in ("1.0.0", wanted)

        # The next run (timer, or boot) finishes or undoes the job.
        again = run_agent(root, release_server.url, wanted, "--window", "20")
        assert again.returncode == 0, again.stderr
        outcome = json.loads(again.stdout.splitlines()[-1])
        good = "1.1.0" if wanted == "1.1.0" else "1.0.0"
        assert assert_starts(layout) == good
        assert outcome["outcome"] in (
            ("installed", "up_to_date") if good == wanted else ("rolled_back", "skipped")
        )
        journal = Journal.load(layout.update_state_path)
        assert journal.phase == "idle"
        if good != wanted:
            assert "crashed" in journal.failed[wanted]
        # Nothing half-done is left behind.
        assert all(is_complete(layout, p.name) for p in layout.releases_dir.iterdir())
        assert wanted in installed_versions(layout) or good != wanted
        assert not any(p.name.startswith(".") for p in layout.app_dir.iterdir())
        # And the kiosk running now is the good version, reporting healthy.
        status = wait_for_status(layout, good)
        assert status.problems() == []
    finally:
        kill_sim_kiosk(layout)

"""End to end: support clicks "Check now" on /support, the real update agent (its own process,
`porchlight update run`, venvs and pip, the simulated app started as the kiosk) sees the
request in its next heartbeat reply, checks at once, and the fleet page shows the outcome.

Set PORCHLIGHT_SCREENSHOT_DIR=docs/screenshots to refresh the committed screenshot.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from playwright.sync_api import expect, sync_playwright

from porchlight import chromium
from porchlight.hub.seed import DEMO_PASSWORD
from porchlight.kiosk.credential import DeviceCredential, save_credential

from .conftest import SUPPORT_USER, FleetHub, Repo, kill_sim_kiosk, make_device

HEARTBEAT_S = 2.0


def _wait_for(condition, timeout_s: float, what: str):
    deadline = time.monotonic() + timeout_s
    while True:
        value = condition()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)  # poll the hub's API with a deadline


@pytest.mark.browser
@pytest.mark.slow
@pytest.mark.parametrize("fleet_hub", [1], indirect=True)
def test_support_clicks_check_now_and_the_real_agent_answers(
    tmp_path: Path, repo: Repo, fleet_hub: FleetHub
) -> None:
    repo.publish("1.4.0")
    ((device_id, token),) = fleet_hub.tokens.items()
    layout = make_device(tmp_path / "device", repo, fleet_hub.url, real=True)
    save_credential(
        layout.kiosk_data_dir, DeviceCredential(fleet_hub.url, device_id, "patient", token)
    )
    agent = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "porchlight.cli",
            "update",
            "run",
            "--root",
            str(layout.root),
            "--kiosk",
            "process",
            "--heartbeat-interval",
            str(HEARTBEAT_S),
            "--window",
            "60",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    shots = Path(os.environ.get("PORCHLIGHT_SCREENSHOT_DIR") or tmp_path)
    try:
        _wait_for(lambda: fleet_hub.devices().get(device_id), 30, "the first heartbeat")
        with sync_playwright() as pw:
            browser = chromium.launch(pw)
            try:
                page = browser.new_page(viewport={"width": 1400, "height": 900})
                page.goto(fleet_hub.url + "/support")
                page.get_by_test_id("login-username").fill(SUPPORT_USER)
                page.get_by_test_id("login-password").fill(DEMO_PASSWORD)
                page.get_by_test_id("login-submit").click()
                row = page.locator(f'[data-testid="device-row"][data-device-id="{device_id}"]')
                last_check = row.get_by_test_id("device-last-check")

                # Nothing to install: the answer is "up to date", within one heartbeat.
                clicked = time.time()
                row.get_by_test_id("check-now").click()
                expect(row.get_by_test_id("check-now")).to_have_text("Check asked")
                expect(last_check).to_contain_text("up to date, as asked", timeout=20_000)
                shown_s = time.time() - clicked
                answered = fleet_hub.devices()[device_id]["last_check"]
                up_to_date_s = answered["at"] - clicked
                assert answered["outcome"] == "up_to_date" and answered["request_id"]
                # One heartbeat interval, plus one heartbeat's own time on a busy machine.
                assert up_to_date_s <= HEARTBEAT_S + 2.0

                # A rollout names 1.4.0; the agent's schedule keeps it waiting (30 min).
                fleet_hub.rollout("1.4.0", canaries=[device_id], stages=[100])
                seen = fleet_hub.devices()[device_id]["last_seen"]
                for _ in range(2):
                    seen = _wait_for(
                        lambda s=seen: (
                            fleet_hub.devices()[device_id]["last_seen"] != s
                            and fleet_hub.devices()[device_id]["last_seen"]
                        ),
                        10,
                        "a heartbeat",
                    )
                assert fleet_hub.devices()[device_id]["version"] == "1.0.0"

                # Asked now: verified, installed beside, switched, kiosk restarted, healthy.
                clicked = time.time()
                row.get_by_test_id("check-now").click()
                expect(last_check).to_contain_text("installed 1.4.0", timeout=90_000)
                install_shown_s = time.time() - clicked
                expect(row.locator("td").nth(2)).to_contain_text("1.4.0")
                installed = fleet_hub.devices()[device_id]["last_check"]
                install_s = installed["at"] - clicked
                page.screenshot(path=str(shots / "support-check-now.png"), full_page=True)
            finally:
                browser.close()
        # After committing, the service exits so systemd starts it from the new release.
        out, err = agent.communicate(timeout=30)
        assert agent.returncode == 0, err[-2000:]
        assert json.loads(out)["outcome"] == "installed"
        print(
            f"\ncheck now, nothing to install: agent answered {up_to_date_s:.2f} s after the "
            f"click (heartbeat every {HEARTBEAT_S:.0f} s), page showed it after {shown_s:.2f} s"
            f"\ncheck now, install 1.4.0: committed {install_s:.2f} s after the click, "
            f"page showed it after {install_shown_s:.2f} s"
        )
    finally:
        if agent.poll() is None:
            agent.kill()
            agent.wait(timeout=10)
        kill_sim_kiosk(layout)

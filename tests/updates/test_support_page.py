"""The /support page in a real Chromium: log in, see the fleet and a halted rollout with its
reasons, filter to failing devices, request diagnostics and read the bundle, ask a selection
and then every device to check for updates now."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import expect, sync_playwright

from porchlight import chromium
from porchlight.hub.seed import DEMO_PASSWORD
from porchlight.provisioning.fleet_sim import build_device, run_round

from .conftest import SUPPORT_USER, FleetHub, Repo


@pytest.mark.browser
@pytest.mark.slow
@pytest.mark.parametrize("fleet_hub", [6], indirect=True)
def test_support_page_shows_the_fleet_and_gets_diagnostics(
    tmp_path: Path, repo: Repo, fleet_hub: FleetHub
) -> None:
    repo.publish("1.4.0")
    ids = sorted(fleet_hub.tokens)
    devices = [
        build_device(
            tmp_path / device_id,
            device_id=device_id,
            token=fleet_hub.tokens[device_id],
            hub_url=fleet_hub.url,
            bootstrap_root=repo.root,
            first_release=repo.files["1.0.0"],
            first_version="1.0.0",
            # The first canary's display breaks on 1.4.0.
            healthy=(lambda v, d=device_id: not (v == "1.4.0" and d == ids[0])),
        )
        for device_id in ids
    ]
    run_round(devices)
    fleet_hub.rollout("1.4.0", canaries=ids[:2], stages=[100])
    run_round(devices)

    with sync_playwright() as pw:
        browser = chromium.launch(pw)
        try:
            page = browser.new_page()
            page.goto(fleet_hub.url + "/support")
            page.get_by_test_id("login-username").fill(SUPPORT_USER)
            page.get_by_test_id("login-password").fill(DEMO_PASSWORD)
            page.get_by_test_id("login-submit").click()

            expect(page.get_by_test_id("device-row")).to_have_count(len(ids))
            expect(page.get_by_test_id("rollout-status")).to_have_text("halted")
            expect(page.get_by_test_id("rollout-reason")).to_contain_text("canaries")
            expect(page.get_by_test_id("rollout-failures")).to_contain_text("button not answering")
            expect(page.get_by_test_id("rollout-rollback")).to_be_enabled()

            page.get_by_test_id("filter-failing").click()
            row = page.get_by_test_id("device-row")
            expect(row).to_have_count(1)
            expect(row).to_have_attribute("data-device-id", ids[0])
            expect(row.get_by_test_id("device-update")).to_contain_text("rolled_back")

            row.get_by_test_id("request-diagnostics").click()
            expect(row.get_by_test_id("request-diagnostics")).to_have_text("Requested")
            run_round(devices[:1])  # the device's next check sees the request and uploads
            page.get_by_test_id("filter-all").click()
            page.get_by_test_id("filter-failing").click()
            page.get_by_test_id("view-diagnostics").click()
            expect(page.get_by_test_id("diagnostics-bundle")).to_contain_text(
                "simulated device log"
            )

            # Check now for a selection, then for everyone; each device answers at its next
            # heartbeat and the page says so.
            page.get_by_test_id("filter-all").click()
            rows = page.get_by_test_id("device-row")
            expect(rows).to_have_count(len(ids))
            expect(page.get_by_test_id("check-selected")).to_be_disabled()
            rows.nth(1).get_by_test_id("select-device").check()
            rows.nth(2).get_by_test_id("select-device").check()
            expect(page.get_by_test_id("check-selected")).to_have_text("Check 2 selected now")
            page.get_by_test_id("check-selected").click()
            asked = page.get_by_role("button", name="Check asked")
            expect(asked).to_have_count(2)
            expect(rows.nth(1).get_by_test_id("check-now")).to_have_text("Check asked")
            page.get_by_test_id("check-all").click()
            expect(asked).to_have_count(len(ids))
            run_round(devices)
            expect(page.get_by_text("as asked")).to_have_count(len(ids))
            expect(asked).to_have_count(0)
        finally:
            browser.close()

"""The /support page in a real Chromium: someone else starts a rollout while this page still
shows the old state; starting one from the page is refused with the reason, nothing is
replaced, and the page then shows the rollout that was started meanwhile."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import requests
from playwright.sync_api import expect, sync_playwright

from porchlight import chromium
from porchlight.hub.config import HubConfig
from porchlight.hub.seed import DEMO_PASSWORD, ensure_person
from porchlight.hub.store import Role, Store

from .conftest import SUPPORT_USER, Served, hub_app


@pytest.mark.browser
def test_a_rollout_started_elsewhere_meanwhile_is_not_replaced_unseen(tmp_path: Path) -> None:
    config = HubConfig(data_dir=tmp_path / "hub")
    store = Store.open(config.resolved_database_url())
    ensure_person(store, SUPPORT_USER, "Support Sam", Role.SUPPORT, DEMO_PASSWORD)
    try:
        with Served(hub_app(config, store)) as served, sync_playwright() as pw:
            elsewhere = requests.Session()  # a colleague, through the API
            login = {"username": SUPPORT_USER, "password": DEMO_PASSWORD}
            assert elsewhere.post(served.url + "/api/login", json=login, timeout=30).ok
            first = elsewhere.post(
                served.url + "/api/fleet/rollouts", json={"version": "1.4.0"}, timeout=30
            )
            assert first.status_code == 201, first.text

            browser = chromium.launch(pw)
            try:
                page = browser.new_page()
                # The page's own refresh (every 10 s) must not pick up the colleague's
                # rollout before the form is sent: its timers wait for the test.
                page.clock.install()
                page.clock.pause_at(1_000_000_000_000)
                page.goto(served.url + "/support")
                page.get_by_test_id("login-username").fill(SUPPORT_USER)
                page.get_by_test_id("login-password").fill(DEMO_PASSWORD)
                page.get_by_test_id("login-submit").click()
                expect(page.get_by_test_id("rollout-version")).to_have_text("1.4.0")

                meanwhile = elsewhere.post(
                    served.url + "/api/fleet/rollouts",
                    json={"version": "1.5.0", "replaces": first.json()["id"]},
                    timeout=30,
                )
                assert meanwhile.status_code == 201, meanwhile.text

                page.get_by_test_id("rollout-form-version").fill("1.6.0")
                page.get_by_test_id("rollout-form-submit").click()
                expect(page.get_by_test_id("notice")).to_contain_text(
                    "Another rollout was started meanwhile: 1.5.0"
                )
                expect(page.get_by_test_id("rollout-version")).to_have_text("1.5.0")
                # PORCHLIGHT_SCREENSHOT_DIR=docs/screenshots refreshes the committed one.
                shots = Path(os.environ.get("PORCHLIGHT_SCREENSHOT_DIR") or tmp_path)
                page.screenshot(path=str(shots / "support-rollout-refused.png"), full_page=True)
            finally:
                browser.close()
            listed = elsewhere.get(served.url + "/api/fleet/rollouts", timeout=30).json()
            assert [r["version"] for r in listed["rollouts"]] == ["1.5.0", "1.4.0"]
    finally:
        store.close()

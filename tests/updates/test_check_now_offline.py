""" "Check now" to a device that is not there, told truthfully, with the real hub (its clock
moved by the test) and the real update agent's loop on a simulated device that goes away and
comes back:

- heard from lately: `waiting` ("the device answers within a minute");
- not heard from for a while: `offline` with how long ("device offline, last heard 3 h
  ago; it will check when it is back"); when the device is back it checks at once, as asked;
- open 24 h unanswered: `expired` (the button works again); the hub stops asking, so a device
  back after that checks on its own schedule; asked again, it is a fresh request;
- the /support page says each of these in words (Chromium).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests
from playwright.sync_api import expect, sync_playwright
from security.world import FakeClock

from porchlight import chromium
from porchlight.hub import auth
from porchlight.hub.config import HubConfig
from porchlight.hub.seed import DEMO_PASSWORD, ensure_person
from porchlight.hub.store import Role, Store
from porchlight.provisioning.heartbeat import collect_inventory

from .conftest import SUPPORT_USER, FleetHub, Repo, Served, hub_app, sim_device, update_loop

MINUTE = 60.0
HOURS_3 = timedelta(hours=3)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(datetime.now(UTC))


@pytest.fixture
def hub(tmp_path: Path, repo: Repo, clock: FakeClock) -> Iterator[FleetHub]:
    """The hub serving `repo`, on the test's clock, with two simulated devices enrolled."""
    config = HubConfig(data_dir=repo.config.path.parent)
    store = Store.open(config.resolved_database_url())
    ensure_person(store, SUPPORT_USER, "Support Sam", Role.SUPPORT, DEMO_PASSWORD)
    tokens = {}
    for index in range(2):
        patient = store.add_patient(f"Sim patient {index}", now=clock())
        token = auth.new_token()
        device_id = f"sim-{index:03d}"
        store.add_device(patient.id, auth.hash_token(token), now=clock(), device_id=device_id)
        tokens[device_id] = token
    with Served(hub_app(config, store, clock=clock)) as served:
        support = requests.Session()
        hub = FleetHub(served.url, store, config, support, tokens)
        log_in(hub)
        yield hub
    store.close()


def log_in(hub: FleetHub) -> None:
    """Support logs in (again, after the hub's clock moved past the session's end)."""
    login = hub.support.post(
        hub.url + "/api/login",
        json={"username": SUPPORT_USER, "password": DEMO_PASSWORD},
        timeout=30,
    )
    assert login.status_code == 200, login.text


def page_log_in(page) -> None:
    page.get_by_test_id("login-username").fill(SUPPORT_USER)
    page.get_by_test_id("login-password").fill(DEMO_PASSWORD)
    page.get_by_test_id("login-submit").click()


def _ask(hub: FleetHub, device_id: str) -> None:
    asked = hub.api("POST", "/api/fleet/check-requests", json={"device_ids": [device_id]})
    assert asked["requested"] == [device_id]


def _request(hub: FleetHub, device_id: str) -> dict | None:
    return hub.devices()[device_id]["check_request"]


def test_an_offline_device_is_asked_truthfully_and_checks_when_back(
    tmp_path: Path, repo: Repo, hub: FleetHub, clock: FakeClock
) -> None:
    (device_id, _) = sorted(hub.tokens)
    device = sim_device(tmp_path, repo, hub, device_id)
    loop = update_loop(device)
    loop.beat()  # heard from now

    # Heard a minute ago: waiting, answered at the next beat.
    clock.advance(MINUTE)
    _ask(hub, device_id)
    assert _request(hub, device_id)["state"] == "waiting"
    device.clock.sleep(MINUTE)
    clock.advance(MINUTE)
    result = loop.beat()
    assert result is not None and result.outcome == "up_to_date"
    assert _request(hub, device_id) is None

    # The device goes away (off, or its link down) for 3 hours; support asks then.
    clock.advance(HOURS_3.total_seconds())
    _ask(hub, device_id)
    request = _request(hub, device_id)
    assert request["state"] == "offline"
    assert request["last_heard_s"] == HOURS_3.total_seconds() and request["asked_s"] == 0
    clock.advance(10 * MINUTE)  # still away: still offline, the request still open
    request = _request(hub, device_id)
    assert request["state"] == "offline" and request["asked_s"] == 600
    asked_again = hub.api("POST", "/api/fleet/check-requests", json={"device_ids": [device_id]})
    assert asked_again["requested"] == [device_id]  # asking twice keeps one open request

    # Back: the first heartbeat carries the request, the agent checks at once, as asked.
    device.clock.sleep(MINUTE)
    result = loop.beat()
    assert result is not None and result.outcome == "up_to_date"
    row = hub.devices()[device_id]
    assert row["check_request"] is None and row["last_check"]["request_id"] is not None


def test_a_request_left_unanswered_expires_and_can_be_asked_afresh(
    tmp_path: Path, repo: Repo, hub: FleetHub, clock: FakeClock
) -> None:
    gone, asked_again = sorted(hub.tokens)
    devices = {d: sim_device(tmp_path, repo, hub, d) for d in (gone, asked_again)}
    loops = {d: update_loop(devices[d]) for d in devices}
    for loop in loops.values():
        loop.beat()
    clock.advance(HOURS_3.total_seconds())
    for device_id in devices:
        _ask(hub, device_id)
    clock.advance(timedelta(hours=24).total_seconds())
    log_in(hub)
    rows = hub.devices()
    assert [rows[d]["check_request"]["state"] for d in devices] == ["expired", "expired"]
    assert rows[gone]["check_request"]["last_heard_s"] == 27 * 3600

    # Asked again after it expired: a fresh request, open (offline) again.
    _ask(hub, asked_again)
    fresh = _request(hub, asked_again)
    assert fresh["state"] == "offline" and fresh["asked_s"] == 0

    # Both come back. The expired request is not carried (the device's own schedule checks
    # soon enough) and is cleared; the fresh one is answered at once.
    device = devices[gone]
    reply = device.hub.heartbeat(collect_inventory(device.layout, device.agent))
    assert reply["check_requested"] is None
    assert _request(hub, gone) is None
    devices[asked_again].clock.sleep(MINUTE)
    result = loops[asked_again].beat()
    assert result is not None and result.outcome == "up_to_date"
    assert hub.devices()[asked_again]["last_check"]["request_id"] is not None


@pytest.mark.browser
def test_the_support_page_says_offline_and_then_checked(
    tmp_path: Path, repo: Repo, hub: FleetHub, clock: FakeClock
) -> None:
    # The device was last heard 3 hours ago (the hub's clock then), and the page is now.
    clock.now = datetime.now(UTC) - HOURS_3
    device_id = sorted(hub.tokens)[0]
    device = sim_device(tmp_path, repo, hub, device_id)
    loop = update_loop(device)
    loop.beat()
    clock.now = datetime.now(UTC)
    shots = Path(os.environ.get("PORCHLIGHT_SCREENSHOT_DIR") or tmp_path / "shots")
    shots.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        browser = chromium.launch(pw)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 600})
            page.goto(hub.url + "/support")
            page_log_in(page)
            row = page.locator(f'[data-testid="device-row"][data-device-id="{device_id}"]')
            expect(row).to_be_visible()
            row.get_by_test_id("check-now").click()
            line = row.get_by_test_id("device-last-check")
            expect(line).to_have_attribute("data-check-state", "offline")
            expect(line).to_contain_text(
                "— device offline, last heard 3 h ago; it will check when it is back."
            )
            expect(row.get_by_test_id("check-now")).to_be_disabled()
            page.locator("table").first.screenshot(path=str(shots / "support-check-offline.png"))

            # A day later, unanswered: expired, and the button works again.
            clock.advance(timedelta(hours=24).total_seconds())
            page.reload()
            page_log_in(page)  # the session ended meanwhile
            expect(line).to_have_attribute("data-check-state", "expired")
            expect(line).to_contain_text("expired unanswered (device offline, last heard 27 h ago)")
            expect(row.get_by_test_id("check-now")).to_be_enabled()
            row.get_by_test_id("check-now").click()
            expect(line).to_contain_text("— device offline, last heard 27 h ago")

            # The device is back: it checks at once; the page shows it answered.
            device.clock.sleep(MINUTE)
            result = loop.beat()
            assert result is not None and result.outcome == "up_to_date"
            expect(line).to_contain_text("up to date, as asked", timeout=20_000)
            expect(row.get_by_test_id("check-now")).to_be_enabled()
        finally:
            browser.close()

"""A clinician's open clinic page follows their care teams as an admin changes them, in a real
Chromium against a real hub, without a reload or a reconnect:

- added to team X: a patient of team X waiting shows in the room, and team X's kiosk asking
  for help is pushed to the page at once (no fetch of the help list meanwhile);
- removed from team X: that patient leaves the page's room, and the next help request from
  team X's kiosk is not pushed — team Y's one, asked after it, is, and X's never shows.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime

import pytest
import requests
from patient.browser_support import log_in, receive, served_world
from playwright.sync_api import expect, sync_playwright
from security.world import PASSWORD
from websockets.sync.client import connect

from porchlight.chromium import launch
from porchlight.kiosk.records import help_record
from porchlight.protocol import DEVICE_WS_PATH, SESSION_COOKIE

pytestmark = [pytest.mark.browser, pytest.mark.timeout(180)]


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    from security.world import build_world

    return build_world(tmp_path_factory.mktemp("team-changes-world"))


@pytest.fixture
def hub(world, tmp_path):
    with served_world(world, tmp_path / "hub") as server:
        yield server


@pytest.fixture
def admin(hub) -> requests.Session:
    session = requests.Session()
    answer = session.post(
        f"{hub.url}/api/login", json={"username": "admin", "password": PASSWORD}, timeout=10
    )
    assert answer.status_code == 200, answer.text
    assert SESSION_COOKIE in session.cookies
    return session


def set_teams(hub, admin, username: str, teams: list[str]) -> None:
    answer = admin.put(
        f"{hub.url}/api/admin/people/{username}/teams", json={"teams": teams}, timeout=10
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["teams"] == sorted(teams)


def ask_for_help(hub, world, device: str, patient_id: str) -> str:
    record = help_record(record_id=str(uuid.uuid4()), patient_id=patient_id, now=datetime.now(UTC))
    answer = requests.post(
        f"{hub.url}/api/records",
        json={"records": [record.to_wire()]},
        headers={"Authorization": f"Bearer {world.tokens[device]}"},
        timeout=10,
    )
    assert answer.status_code == 200, answer.text
    return record.id


def test_an_open_page_follows_its_persons_care_teams(hub, world, admin):
    with sync_playwright() as pw:
        browser = launch(pw)
        page = browser.new_page(viewport={"width": 1280, "height": 1000}, locale="en-GB")
        sockets: list[str] = []
        page.on("websocket", lambda ws: sockets.append(ws.url))
        help_fetches: list[str] = []
        page.on(
            "request",
            lambda r: help_fetches.append(r.url) if "/api/help-requests" in r.url else None,
        )
        log_in(page, hub.url, "/clinic", "clin_y")
        expect(page.get_by_test_id("connection-state")).to_have_text("Live")
        room = page.get_by_test_id("waiting-list")

        headers = {"Authorization": f"Bearer {world.tokens['device_a']}"}
        ws_url = "ws" + hub.url[len("http") :] + DEVICE_WS_PATH
        with connect(ws_url, additional_headers=headers) as kiosk_a:
            kiosk_a.send(json.dumps({"type": "hello", "state": "idle"}))
            receive(kiosk_a, "welcome")
            kiosk_a.send(json.dumps({"type": "join"}))
            receive(kiosk_a, "waiting")
            expect(page.get_by_test_id("waiting-count")).to_have_text("0 waiting")

            # Added to team X: Alice (team X) shows in the room, and her help is pushed.
            set_teams(hub, admin, "clin_y", [world.team_x, world.team_y])
            expect(room).to_contain_text("Alice Able")
            fetched = len(help_fetches)
            asked = ask_for_help(hub, world, "device_a", world.patient_a)
            row = page.get_by_test_id(f"help-{asked}")
            expect(row).to_contain_text("Alice Able asked for help at", timeout=10_000)
            assert len(help_fetches) == fetched  # pushed, not polled

            # Removed from team X: Alice leaves the page's room; her next help is not pushed.
            set_teams(hub, admin, "clin_y", [world.team_y])
            expect(room).not_to_contain_text("Alice Able")
            again = ask_for_help(hub, world, "device_a", world.patient_a)
            # Team Y's kiosk asks after it: once that shows, X's would have shown before it.
            bob = ask_for_help(hub, world, "device_b", world.patient_b)
            expect(page.get_by_test_id(f"help-{bob}")).to_contain_text("Bob Baker", timeout=10_000)
            expect(page.get_by_test_id(f"help-{again}")).to_have_count(0)

        assert len(sockets) == 1, "the page never reconnected"
        browser.close()

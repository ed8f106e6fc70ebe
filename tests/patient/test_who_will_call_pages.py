"""Who will call, from the pages, in a real Chromium against a real hub (team X has two
clinicians here: Clin X and Dr Evans):

- the nurse page: with two clinicians the nurse must choose (booking without is refused in
  place, nothing booked); the chosen one is listed ("Dr Evans will call") and reaches the
  kiosk's plan as the display name; editing the appointment changes who calls;
- the clinic page: a clinician booking is the caller by default, and today's list says so.

Screenshots go to PORCHLIGHT_SCREENSHOT_DIR (docs/screenshots to refresh the committed ones)."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import requests
from playwright.sync_api import expect, sync_playwright

from porchlight.chromium import launch
from porchlight.hub.store import Role, Store

from .browser_support import log_in, screenshot_dir, served_world

pytestmark = [pytest.mark.browser, pytest.mark.timeout(180)]

LONDON = ZoneInfo("Europe/London")


@pytest.fixture
def hub(world, tmp_path):
    with served_world(world, tmp_path / "hub", prepare=lambda s: add_dr_evans(s, world)) as server:
        yield server


def add_dr_evans(store: Store, world) -> None:
    clin_x = store.get_person("clin_x")
    assert clin_x is not None
    store.add_person(
        "clin_x2",
        "Dr Evans",
        Role.CLINICIAN,
        clin_x.password_hash,  # the world's password (hashing again is slow on purpose)
        now=datetime.now(LONDON),
        teams=[world.team_x],
    )


@pytest.fixture
def shots(tmp_path) -> Path:
    return screenshot_dir(tmp_path)


def plan_callers(hub, world) -> list[str | None]:
    headers = {"Authorization": f"Bearer {world.tokens['device_a']}"}
    answer = requests.get(hub.url + "/api/device/plan", headers=headers, timeout=5)
    assert answer.status_code == 200, answer.text
    return [a["clinician_name"] for a in answer.json()["appointments"]]


def test_the_nurse_chooses_who_will_call_and_can_change_it(hub, world, shots):
    tomorrow = datetime.now(LONDON).date() + timedelta(days=1)
    with sync_playwright() as pw:
        browser = launch(pw)
        page = browser.new_page(
            viewport={"width": 1200, "height": 1000}, timezone_id="Europe/London", locale="en-GB"
        )
        log_in(page, hub.url, "/nurse", "nurse_x")
        page.get_by_test_id("patient-row").filter(has_text="Alice Able").get_by_test_id(
            "plan-button"
        ).click()
        caller = page.get_by_test_id("book-caller")
        expect(caller.locator("option")).to_have_text(
            ["Choose who will call…", "Clin X", "Dr Evans"]
        )
        page.get_by_test_id("book-date").fill(tomorrow.isoformat())
        page.get_by_test_id("book-time").fill("14:30")
        page.get_by_test_id("book-submit").click()
        expect(page.get_by_test_id("book-error")).to_have_text(
            "Choose who will call (one of the care team's clinicians)."
        )
        assert plan_callers(hub, world) == []

        caller.select_option(label="Dr Evans")
        page.get_by_test_id("book-submit").click()
        expect(page.get_by_test_id("book-saved")).to_contain_text("Dr Evans will call")
        item = page.get_by_test_id("upcoming-item")
        expect(item).to_have_count(1)
        expect(item.get_by_test_id("upcoming-caller")).to_have_text("Dr Evans will call")
        assert plan_callers(hub, world) == ["Dr Evans"]
        page.get_by_test_id("patient-panel").screenshot(
            path=str(shots / "nurse-appointments-who-calls.png")
        )

        # Edit: the same time, Clin X calls instead.
        item.get_by_test_id("move-button").click()
        expect(page.get_by_test_id("move-caller")).to_have_value("clin_x2")
        page.get_by_test_id("move-caller").select_option(label="Clin X")
        page.get_by_test_id("move-save").click()
        expect(item.get_by_test_id("upcoming-caller")).to_have_text("Clin X will call")
        expect(item.get_by_test_id("upcoming-when")).to_contain_text("14:30")
        assert plan_callers(hub, world) == ["Clin X"]
        browser.close()


def test_a_clinician_booking_calls_by_default(hub, world, shots):
    now = datetime.now(LONDON)
    soon = now + timedelta(minutes=30) if now.hour < 23 else now + timedelta(hours=2)
    with sync_playwright() as pw:
        browser = launch(pw)
        page = browser.new_page(
            viewport={"width": 1280, "height": 1000}, timezone_id="Europe/London", locale="en-GB"
        )
        log_in(page, hub.url, "/clinic", "clin_x2")
        expect(page.get_by_test_id("connection-state")).to_have_text("Live")
        page.get_by_test_id("care-book-open").click()
        page.get_by_test_id("care-book-patient").select_option(label="Alice Able (Team X)")
        caller = page.get_by_test_id("care-book-caller")
        expect(caller).to_have_value("clin_x2")  # me, the clinician booking
        expect(caller.locator("option")).to_have_text(["Clin X", "Dr Evans"])
        page.get_by_test_id("care-book-date").fill(soon.date().isoformat())
        page.get_by_test_id("care-book-time").fill(soon.strftime("%H:%M"))
        page.get_by_test_id("care-book-submit").click()
        expect(page.get_by_test_id("care-book-saved")).to_contain_text("Dr Evans will call")
        assert plan_callers(hub, world) == ["Dr Evans"]
        if soon.date() == now.date():
            expect(page.get_by_test_id("appointment-caller")).to_have_text("Dr Evans will call")
        page.get_by_test_id("care-panel").screenshot(path=str(shots / "clinic-book-who-calls.png"))
        browser.close()

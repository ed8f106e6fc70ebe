"""Booking and kiosk settings from the pages, in a real Chromium against a real hub:

- the nurse page's per-patient panel: a time in the past is refused in the hub's words and
  books nothing; a booking reaches the kiosk's plan (fetched as the device), can be moved and
  cancelled; the kiosk settings reach the plan and the kiosk is told at once (`plan_changed`);
- the clinic page: "Book a video appointment" for a patient of the team (an unknown patient and
  a past time refused in place, nothing booked), and a help request queued in a kiosk's outbox
  shows on the page the moment the hub stores it — with no fetch of the help list meanwhile.

The browser runs in Europe/London: the hub must get the instant the person meant.
Screenshots go to PORCHLIGHT_SCREENSHOT_DIR (docs/screenshots to refresh the committed ones)."""

from __future__ import annotations

import json
import re
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import requests
from playwright.sync_api import expect, sync_playwright
from websockets.sync.client import connect

from porchlight.chromium import launch
from porchlight.kiosk.outbox import Outbox, OutboxConfig
from porchlight.kiosk.records import help_record
from porchlight.kiosk.sync import SyncConfig, SyncWorker
from porchlight.protocol import DEVICE_WS_PATH

from .browser_support import log_in, receive, screenshot_dir, served_world

pytestmark = [pytest.mark.browser, pytest.mark.timeout(180)]

LONDON = ZoneInfo("Europe/London")


@pytest.fixture
def hub(world, tmp_path):
    with served_world(world, tmp_path / "hub") as server:
        yield server


@pytest.fixture
def shots(tmp_path) -> Path:
    return screenshot_dir(tmp_path)


def device_plan(hub, world) -> dict:
    headers = {"Authorization": f"Bearer {world.tokens['device_a']}"}
    answer = requests.get(hub.url + "/api/device/plan", headers=headers, timeout=5)
    assert answer.status_code == 200, answer.text
    return answer.json()


def instant(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def london(day_offset: int, hour: int, minute: int) -> datetime:
    day = datetime.now(LONDON).date() + timedelta(days=day_offset)
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=LONDON)


def test_nurse_books_moves_cancels_and_sets_the_kiosk(hub, world, shots):
    tomorrow = london(1, 14, 30)
    with sync_playwright() as pw:
        browser = launch(pw)
        page = browser.new_page(
            viewport={"width": 1200, "height": 1100}, timezone_id="Europe/London", locale="en-GB"
        )
        log_in(page, hub.url, "/nurse", "nurse_x")
        alice = page.get_by_test_id("patient-row").filter(has_text="Alice Able")
        alice.get_by_test_id("plan-button").click()
        panel = page.get_by_test_id("patient-panel")
        expect(panel).to_be_visible()
        expect(page.get_by_test_id("panel-patient")).to_have_text("Alice Able")
        expect(page.get_by_test_id("upcoming-empty")).to_be_visible()
        expect(page.get_by_test_id("language-en")).to_be_checked()

        # Nothing picked, then yesterday: refused in place, nothing booked.
        page.get_by_test_id("book-submit").click()
        expect(page.get_by_test_id("book-error")).to_have_text(
            "Choose a date and a time for the appointment."
        )
        page.get_by_test_id("book-date").fill(london(-1, 10, 0).date().isoformat())
        page.get_by_test_id("book-time").fill("10:00")
        page.get_by_test_id("book-submit").click()
        expect(page.get_by_test_id("book-error")).to_have_text(
            "That time is in the past. Choose a date and time still to come."
        )
        assert device_plan(hub, world)["appointments"] == []

        # Tomorrow at 14:30 London time: booked, listed, and in the kiosk's plan.
        page.get_by_test_id("book-date").fill(tomorrow.date().isoformat())
        page.get_by_test_id("book-time").fill("14:30")
        page.get_by_test_id("book-time").press("Enter")  # the keyboard books too
        expect(page.get_by_test_id("book-saved")).to_contain_text("Booked:")
        expect(page.get_by_test_id("book-error")).to_be_hidden()
        items = page.get_by_test_id("upcoming-item")
        expect(items).to_have_count(1)
        expect(items.first.get_by_test_id("upcoming-when")).to_contain_text("14:30")
        (booked,) = device_plan(hub, world)["appointments"]
        assert instant(booked["starts_at"]) == tomorrow

        # Kiosk settings: Welsh, no spoken prompts, auto-answer; the kiosk is told at once.
        headers = {"Authorization": f"Bearer {world.tokens['device_a']}"}
        ws_url = "ws" + hub.url[len("http") :] + DEVICE_WS_PATH
        with connect(ws_url, additional_headers=headers) as kiosk:
            kiosk.send(json.dumps({"type": "hello", "state": "idle"}))
            receive(kiosk, "welcome")
            page.get_by_test_id("language-en").focus()  # by keyboard: arrows move the choice
            page.keyboard.press("ArrowRight")
            expect(page.get_by_test_id("language-cy")).to_be_checked()
            page.get_by_test_id("spoken-off").check()
            page.get_by_test_id("auto-on").check()
            page.get_by_test_id("settings-submit").click()
            expect(page.get_by_test_id("settings-saved")).to_have_text(
                "Saved. The kiosk takes the new settings up now."
            )
            receive(kiosk, "plan_changed")
        assert device_plan(hub, world)["settings"] == {
            "language": "cy",
            "spoken_prompts": False,
            "auto_answer": True,
        }
        expect(panel).to_contain_text("only after a 10-second countdown")
        panel.screenshot(path=str(shots / "nurse-appointments-settings.png"))

        # Move it to 16:05 (into the past is refused in place first), then cancel it.
        items.first.get_by_test_id("move-button").click()
        page.get_by_test_id("move-date").fill(london(-2, 9, 0).date().isoformat())
        page.get_by_test_id("move-save").click()
        expect(items.first.get_by_test_id("upcoming-error")).to_contain_text("in the past")
        assert instant(device_plan(hub, world)["appointments"][0]["starts_at"]) == tomorrow
        page.get_by_test_id("move-date").fill(tomorrow.date().isoformat())
        page.get_by_test_id("move-time").fill("16:05")
        page.get_by_test_id("move-save").click()
        expect(items.first.get_by_test_id("upcoming-when")).to_contain_text("16:05")
        (moved,) = device_plan(hub, world)["appointments"]
        assert instant(moved["starts_at"]) == tomorrow.replace(hour=16, minute=5)
        items.first.get_by_test_id("cancel-button").click()
        items.first.get_by_test_id("cancel-confirm").click()
        expect(page.get_by_test_id("upcoming-empty")).to_be_visible()
        assert device_plan(hub, world)["appointments"] == []

        # The panel opened afresh shows what the hub holds.
        page.reload()
        alice.get_by_test_id("plan-button").click()
        expect(page.get_by_test_id("language-cy")).to_be_checked()
        expect(page.get_by_test_id("spoken-off")).to_be_checked()
        expect(page.get_by_test_id("auto-on")).to_be_checked()
        browser.close()


def test_clinic_books_for_the_team_and_sees_help_at_once(hub, world, shots, tmp_path):
    soon = london(0, 23, 55) if datetime.now(LONDON).hour < 23 else london(1, 9, 0)
    with sync_playwright() as pw:
        browser = launch(pw)
        page = browser.new_page(
            viewport={"width": 1280, "height": 1000}, timezone_id="Europe/London", locale="en-GB"
        )
        help_fetches: list[str] = []
        page.on(
            "request",
            lambda r: help_fetches.append(r.url) if "/api/help-requests" in r.url else None,
        )
        log_in(page, hub.url, "/clinic", "clin_x")
        expect(page.get_by_test_id("connection-state")).to_have_text("Live")

        # Book: the team's patients only; an unknown patient and a past time are refused.
        page.get_by_test_id("care-book-open").click()
        form = page.get_by_test_id("care-book-form")
        expect(form).to_be_visible()
        select = page.get_by_test_id("care-book-patient")
        expect(select.locator("option", has_text="Alice Able")).to_have_count(1)
        expect(select.locator("option", has_text="Bob Baker")).to_have_count(0)
        page.get_by_test_id("care-book-submit").click()
        expect(page.get_by_test_id("care-book-error")).to_have_text("Choose the patient.")

        # A patient gone from the team since the page loaded (here: an id the hub never had).
        select.evaluate(
            "(s, id) => { s.options[1].value = id; s.selectedIndex = 1; }", str(uuid.uuid4())
        )
        page.get_by_test_id("care-book-time").fill("10:00")
        page.get_by_test_id("care-book-submit").click()
        expect(page.get_by_test_id("care-book-error")).to_have_text(
            "No such patient in your care teams."
        )
        page.get_by_test_id("care-book-close").click()
        expect(form).to_be_hidden()
        page.get_by_test_id("care-book-open").click()  # fresh list from the hub
        select.select_option(label="Alice Able (Team X)")
        page.get_by_test_id("care-book-date").fill(london(-1, 10, 0).date().isoformat())
        page.get_by_test_id("care-book-submit").click()
        expect(page.get_by_test_id("care-book-error")).to_contain_text("in the past")
        assert device_plan(hub, world)["appointments"] == []

        page.get_by_test_id("care-book-date").fill(soon.date().isoformat())
        page.get_by_test_id("care-book-time").fill(soon.strftime("%H:%M"))
        page.get_by_test_id("care-book-submit").click()
        expect(page.get_by_test_id("care-book-saved")).to_contain_text("Booked: Alice Able")
        expect(page.get_by_test_id("care-book-error")).to_be_hidden()
        (booked,) = device_plan(hub, world)["appointments"]
        assert instant(booked["starts_at"]) == soon
        if soon.date() == datetime.now(LONDON).date():
            expect(page.get_by_test_id(f"appointment-{booked['id']}")).to_contain_text("Alice Able")
        form.screenshot(path=str(shots / "clinic-book-appointment.png"))

        # Help from the kiosk's outbox: on the page at once, without fetching the list again.
        expect(page.get_by_test_id("help-section")).to_be_hidden()
        fetched_before = len(help_fetches)
        assert fetched_before >= 1  # the page's first look, before the request existed
        outbox = Outbox.open(
            OutboxConfig(path=tmp_path / "outbox.db"), now=time.time(), resume=True
        )
        asked = help_record(
            record_id=str(uuid.uuid4()), patient_id=world.patient_a, now=datetime.now(UTC)
        )
        outbox.add(asked, now=time.time())
        worker = SyncWorker(
            outbox,
            hub_url=hub.url,
            token=world.tokens["device_a"],
            patient_id=world.patient_a,
            config=SyncConfig(backoff_base_s=0.2, backoff_cap_s=1.0),
        )
        worker.start()
        try:
            row = page.get_by_test_id(f"help-{asked.id}")
            expect(row).to_contain_text("Alice Able asked for help at", timeout=10_000)
            expect(row).to_contain_text("New")
            expect(page.get_by_test_id("help-section")).to_have_class(re.compile("help-alert"))
            assert len(help_fetches) == fetched_before  # pushed, not polled
            page.get_by_test_id("care-panel").screenshot(path=str(shots / "clinic-help-pushed.png"))
            page.get_by_test_id(f"help-done-{asked.id}").click()
            expect(page.get_by_test_id("help-section")).to_be_hidden()
        finally:
            worker.stop()
            outbox.close()
        browser.close()

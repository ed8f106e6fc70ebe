"""The care side of the clinic page in a real Chromium: today's appointments with "Call now"
(the kiosk rings, answers, the call starts), the outcome asked after the call (a home visit
lands on the team's follow-up list), and a patient's help request shown until it is dealt
with. The kiosk is a plain WebSocket client speaking the protocol."""

from __future__ import annotations

import json
import os
import tempfile
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests
from kiosk.conftest import seeded_hub
from playwright.sync_api import expect, sync_playwright
from websockets.sync.client import connect

from porchlight import chromium
from porchlight.hub.seed import DEMO_PASSWORD
from porchlight.kiosk.records import help_record
from porchlight.protocol import DEVICE_WS_PATH

from .browser_support import receive

SHOTS = Path(os.environ.get("PORCHLIGHT_SCREENSHOT_DIR") or tempfile.mkdtemp(prefix="shots-"))

pytestmark = [pytest.mark.browser]


@pytest.fixture
def hub(tmp_path):
    with seeded_hub(tmp_path) as h:
        yield h.url, h.seed


def test_call_a_booked_patient_then_record_a_home_visit_and_deal_with_help(hub):
    url, demo = hub
    nurse = requests.Session()
    nurse.post(url + "/api/login", json={"username": "nurse", "password": DEMO_PASSWORD})
    starts = datetime.now(UTC) + timedelta(minutes=5)
    booked = nurse.post(
        url + "/api/appointments",
        json={"patient_id": demo.patient_id, "starts_at": starts.isoformat()},
    )
    assert booked.status_code == 201
    appointment_id = booked.json()["appointment_id"]
    device = {"Authorization": f"Bearer {demo.device_token}"}
    asked = help_record(
        record_id=str(uuid.uuid4()), patient_id=demo.patient_id, now=datetime.now(UTC)
    )
    sent = requests.post(url + "/api/records", json={"records": [asked.to_wire()]}, headers=device)
    assert sent.json()["results"][0]["status"] == "stored"

    ws_url = "ws" + url[len("http") :] + DEVICE_WS_PATH
    with connect(ws_url, additional_headers=device) as kiosk, sync_playwright() as pw:
        kiosk.send(json.dumps({"type": "hello", "state": "idle"}))
        receive(kiosk, "welcome")
        browser = chromium.launch(pw)
        page = browser.new_page(viewport={"width": 1280, "height": 1000})
        page.goto(url + "/clinic")
        page.get_by_test_id("login-username").fill("clinician")
        page.get_by_test_id("login-password").fill(DEMO_PASSWORD)
        page.get_by_test_id("login-submit").click()
        expect(page.get_by_test_id("connection-state")).to_have_text("Live")

        # A help request stands out until someone has called the patient.
        help_row = page.get_by_test_id(f"help-{asked.id}")
        expect(help_row).to_contain_text(f"{demo.patient_name} asked for help at")
        row = page.get_by_test_id(f"appointment-{appointment_id}")
        expect(row).to_have_attribute("data-status", "booked")
        expect(row).to_contain_text(demo.patient_name)
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SHOTS / "clinic-appointments.png"))
        page.get_by_test_id(f"help-done-{asked.id}").click()
        expect(page.get_by_test_id("help-section")).to_be_hidden()

        # Call now: the kiosk rings; the patient answers; the call starts on the page.
        page.get_by_test_id(f"ring-{demo.patient_id}").click()
        expect(page.get_by_test_id(f"ringing-{demo.patient_id}")).to_have_text("Ringing…")
        ring = receive(kiosk, "ring")
        assert ring["clinician_name"] == "Nurse Priya Shah" and ring["auto_answer"] is False
        kiosk.send(json.dumps({"type": "ring_accept", "ring_id": ring["ring_id"]}))
        admitted = receive(kiosk, "admitted")
        expect(page.get_by_test_id("call-view")).to_be_visible()
        expect(page.get_by_test_id("call-patient")).to_have_text(demo.patient_name)

        # The patient hangs up: the page asks how it went; a home visit needs saving once.
        kiosk.send(json.dumps({"type": "hangup", "call_id": admitted["call_id"]}))
        form = page.get_by_test_id("outcome-form")
        expect(form).to_be_visible()
        expect(page.get_by_test_id("outcome-patient")).to_have_text(demo.patient_name)
        page.get_by_test_id("outcome-technical_failure").click()
        expect(page.get_by_test_id("outcome-error")).to_contain_text("what went wrong")
        page.get_by_test_id("outcome-reason").fill("Needs her dressing changed in person")
        page.get_by_test_id("outcome-home_visit").click()
        expect(page.get_by_test_id("outcome-saved")).to_contain_text("follow-up list")
        expect(row).to_have_attribute("data-status", "home_visit")
        page.screenshot(path=str(SHOTS / "clinic-outcome.png"))
        browser.close()

    (follow,) = nurse.get(url + "/api/follow-ups").json()
    assert follow["appointment_id"] == appointment_id
    assert follow["note"] == "Needs her dressing changed in person"

"""The clinic page in a real Chromium: a waiting patient's check-in for today, with flags,
appears in their row of the waiting room (rooming before admitting)."""

from __future__ import annotations

import json
import os
import tempfile
from datetime import UTC, datetime
from pathlib import Path

import pytest
from playwright.sync_api import expect, sync_playwright
from websockets.sync.client import connect

from porchlight import chromium
from porchlight.hub.seed import DEMO_PASSWORD
from porchlight.kiosk.outbox import new_record_id
from porchlight.kiosk.questionnaire import default_checkin
from porchlight.kiosk.records import answers_record, vitals_record
from porchlight.protocol import DEVICE_WS_PATH

# Screenshots refresh the committed ones only when asked
# (PORCHLIGHT_SCREENSHOT_DIR=docs/screenshots);
# otherwise they go to a temp folder, so a test run never changes the tree.
SHOTS = Path(os.environ.get("PORCHLIGHT_SCREENSHOT_DIR") or tempfile.mkdtemp(prefix="shots-"))

pytestmark = [pytest.mark.browser]


def test_waiting_patient_shows_todays_answers_and_vitals_with_flags(hub, tmp_path):
    now = datetime.now(UTC)
    answers = answers_record(
        default_checkin(),
        {"breathing": "worse", "pain": False, "medicines": True, "feeling": "okay"},
        record_id=new_record_id(),
        patient_id=hub.patient_id,
        now=now,
    )
    vitals = vitals_record(
        {"spo2": 89, "pulse": 84, "temperature": 37.2},
        record_id=new_record_id(),
        patient_id=hub.patient_id,
        now=now,
        confirmed=True,
    )
    sent = hub.device().post(
        hub.url + "/api/records",
        json={"records": [answers.to_wire(), vitals.to_wire()]},
        timeout=10,
    )
    assert [r["status"] for r in sent.json()["results"]] == ["stored", "stored"]

    ws_url = "ws" + hub.url[len("http") :] + DEVICE_WS_PATH
    with connect(ws_url, additional_headers={"Authorization": f"Bearer {hub.token}"}) as kiosk:
        kiosk.send(json.dumps({"type": "hello", "state": "idle"}))
        kiosk.send(json.dumps({"type": "join"}))
        with sync_playwright() as pw:
            browser = chromium.launch(pw)
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            page.goto(hub.url + "/clinic")
            page.get_by_test_id("login-username").fill("clinician")
            page.get_by_test_id("login-password").fill(DEMO_PASSWORD)
            page.get_by_test_id("login-submit").click()
            row = page.get_by_test_id(f"checkin-{hub.patient_id}")
            expect(row.get_by_test_id("checkin-flag-count")).to_contain_text("2 to check")
            spo2 = row.get_by_test_id("vital-spo2")
            expect(spo2).to_contain_text("Oxygen level 89%")
            expect(spo2).to_have_attribute("data-flag", "true")
            expect(row.get_by_test_id("vital-pulse")).to_have_attribute("data-flag", "false")
            breathing = row.get_by_test_id("answer-breathing")
            expect(breathing).to_contain_text("Worse than usual")
            expect(breathing).to_contain_text("check")
            expect(row.get_by_test_id("answer-pain")).to_have_attribute("data-flag", "false")
            SHOTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(SHOTS / "clinic-checkin.png"))
            browser.close()

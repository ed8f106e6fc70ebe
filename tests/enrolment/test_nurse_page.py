"""The nurse page in a real Chromium: add a patient (bad NHS number first), make a set-up
code, read its QR code back off the screen, enrol a kiosk with it, see the kiosk's self-test,
withdraw it. Screenshots are written to PORCHLIGHT_SCREENSHOT_DIR (set it to docs/screenshots
to refresh the committed nurse-*.png), else to a temporary folder."""

from __future__ import annotations

import io
import os
import shutil
from datetime import UTC, datetime
from pathlib import Path

import av
import pytest
import requests
from playwright.sync_api import expect, sync_playwright
from security.world import PASSWORD

from porchlight.chromium import launch
from porchlight.hub.config import HubConfig
from porchlight.hub.enrolment import parse_ticket
from porchlight.hub.server import HubServer
from porchlight.provisioning.enrol import enrol_device
from porchlight.provisioning.qr_scan import decode_qr
from porchlight.provisioning.selftest import CheckResult, HubProbe, SelfTestReport, Status

pytestmark = [pytest.mark.browser, pytest.mark.timeout(120)]


@pytest.fixture
def hub(world, tmp_path):
    folder = tmp_path / "hub"
    folder.mkdir()
    shutil.copy(world.db_file, folder / "hub.db")
    with HubServer(HubConfig(data_dir=folder, host="127.0.0.1"), port=0) as server:
        yield server


def png_to_grey(png: bytes):
    with av.open(io.BytesIO(png)) as container:
        frame = next(container.decode(video=0))
        return frame.to_ndarray(format="gray")


def test_nurse_enrols_a_kiosk_and_withdraws_it(hub, tmp_path):
    SHOTS = Path(os.environ.get("PORCHLIGHT_SCREENSHOT_DIR") or tmp_path / "shots")
    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = launch(p)
        page = browser.new_page(viewport={"width": 1200, "height": 900})
        page.goto(hub.url + "/nurse")
        expect(page.get_by_test_id("login-view")).to_be_visible()
        page.get_by_test_id("login-username").fill("nurse_x")
        page.get_by_test_id("login-password").fill(PASSWORD)
        page.get_by_test_id("login-submit").click()
        expect(page.get_by_test_id("nurse-view")).to_be_visible()

        # Only team X's patient is listed (Bob Baker is in team Y).
        rows = page.get_by_test_id("patient-row")
        expect(rows).to_have_count(1)
        expect(rows.first.get_by_test_id("patient-row-name")).to_have_text("Alice Able")
        expect(rows.first.get_by_test_id("patient-row-nhs")).to_have_text("943 476 5919")

        # A wrong check digit is refused in plain words, and nothing is added.
        page.get_by_test_id("patient-name").fill("Carol Cole")
        page.get_by_test_id("patient-nhs").fill("943 476 5918")
        page.get_by_test_id("patient-submit").click()
        expect(page.get_by_test_id("patient-error")).to_contain_text("not a valid NHS number")
        expect(rows).to_have_count(1)
        page.get_by_test_id("patient-nhs").fill("")
        page.get_by_test_id("patient-submit").click()
        expect(rows).to_have_count(2)
        expect(page.get_by_test_id("patient-error")).to_be_hidden()
        page.screenshot(path=str(SHOTS / "nurse-patients.png"))

        carol = rows.filter(has_text="Carol Cole")
        carol.get_by_test_id("enrol-button").click()
        sheet = page.get_by_test_id("enrol-sheet")
        expect(sheet).to_be_visible()
        expect(page.get_by_test_id("sheet-patient")).to_have_text("Carol Cole")
        code_display = page.get_by_test_id("sheet-code").inner_text()
        assert len(code_display) == 9 and code_display[4] == "-"
        expect(carol.get_by_test_id("patient-row-codes")).to_have_text("1 waiting")
        sheet.screenshot(path=str(SHOTS / "nurse-enrolment-sheet.png"))

        # The QR code on screen carries this hub and this code.
        qr = page.get_by_test_id("sheet-qr")
        expect(qr).to_have_js_property("complete", True)
        (text,) = decode_qr(png_to_grey(qr.screenshot()))
        ticket = parse_ticket(text)
        assert ticket.hub_url == hub.url
        assert ticket.code == code_display.replace("-", "")

        # A kiosk enrols with it (real HTTP), and reports a self-test.
        enrolled = enrol_device(ticket, data_dir=tmp_path / "kiosk")
        assert enrolled.display_name == "Carol Cole"
        probe = HubProbe(hub.url, enrolled.credential.token)
        probe.send_report(
            SelfTestReport(
                datetime.now(UTC),
                "setup",
                (
                    CheckResult("camera", Status.OK, "The camera shows a picture."),
                    CheckResult("microphone", Status.PROBLEM, "The microphone hears nothing."),
                ),
            )
        )
        page.get_by_test_id("sheet-close").click()
        expect(sheet).to_be_hidden()
        page.reload()
        expect(carol.get_by_test_id("patient-row-codes")).to_have_text("1 used")
        device_rows = page.get_by_test_id("device-row")
        mine = device_rows.filter(has_text="Carol Cole")
        expect(mine).to_have_count(1)
        expect(mine.get_by_test_id("device-selftest-summary")).to_have_text("1 problem")
        expect(mine.get_by_test_id("selftest-microphone")).to_have_text(
            "The microphone hears nothing."
        )
        page.get_by_test_id("device-list").screenshot(path=str(SHOTS / "nurse-devices.png"))

        # Withdraw: two clicks, then the kiosk's next request is refused.
        me = hub.url + "/api/device/me"
        auth = {"Authorization": f"Bearer {enrolled.credential.token}"}
        assert requests.get(me, headers=auth, timeout=5).status_code == 200
        mine.get_by_test_id("revoke-button").click()
        mine.get_by_test_id("revoke-confirm").click()
        expect(mine.get_by_test_id("device-revoked")).to_be_visible()
        assert requests.get(me, headers=auth, timeout=5).status_code == 401
        probe.close()
        browser.close()

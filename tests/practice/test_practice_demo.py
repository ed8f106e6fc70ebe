"""The practice patient is callable on a fresh demo: the README's `./demo`, a real Chromium as
the clinician, the Practice call button on the clinic page, video both ways, the PRACTICE
banner, an outcome; then put in the waiting room and admitted — and the month's evidence
still counts nothing."""

from __future__ import annotations

import glob
import json
import os
import tempfile
from pathlib import Path

import pytest
from e2e.test_demo_call import Demo, kiosk_status, wait_until
from playwright.sync_api import expect, sync_playwright

from porchlight import chromium
from porchlight.hub.practice import PRACTICE_NAME, practice_ids
from porchlight.hub.teams import DEFAULT_TEAM_ID

SHOTS = Path(os.environ.get("PORCHLIGHT_SCREENSHOT_DIR") or tempfile.mkdtemp(prefix="shots-"))

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def practice_socket(patient_id: str) -> Path | None:
    """The practice kiosk's simulated-device socket (hub/practice.py makes it under /tmp)."""
    pattern = os.path.join(tempfile.gettempdir(), "porchlight-practice-*", f"{patient_id[:8]}.sock")
    for found in glob.glob(pattern):
        if kiosk_status(Path(found)):
            return Path(found)
    return None


def test_a_fresh_demo_rings_its_practice_patient(tmp_path, port):
    patient_id = practice_ids(DEFAULT_TEAM_ID).patient_id
    demo = Demo(tmp_path / "demo", port)
    try:
        url = demo.expect_line(r"(http://127\.0\.0\.1:\d+/clinic)", timeout=120).group(1)
        login = demo.expect_line(r"[Ll]ogin:\s*(\S+)\s*/\s*(\S+)", timeout=10)
        demo.expect_line(r"practice patient", timeout=10)
        username, password = login.group(1), login.group(2)
        with sync_playwright() as pw:
            browser = chromium.launch(pw)
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.goto(url)
            page.get_by_test_id("login-username").fill(username)
            page.get_by_test_id("login-password").fill(password)
            page.get_by_test_id("login-submit").click()
            expect(page.get_by_test_id("connection-state")).to_have_text("Live")
            expect(page.get_by_test_id(f"practice-{patient_id}")).to_contain_text(PRACTICE_NAME)
            page.screenshot(path=str(SHOTS / "clinic-practice.png"), full_page=True)

            page.get_by_test_id(f"practice-call-{patient_id}").click()
            # The hub starts the practice kiosk, the page rings it, the kiosk answers.
            expect(page.get_by_test_id("call-patient")).to_have_text(PRACTICE_NAME, timeout=90_000)
            expect(page.get_by_test_id("practice-banner")).to_be_visible()
            page.wait_for_function(
                "() => { const v = document.querySelector('[data-testid=remote-video]');"
                " return v && v.getVideoPlaybackQuality().totalVideoFrames > 30"
                " && v.videoWidth > 0; }",
                timeout=30_000,
            )
            sock = wait_until(lambda: practice_socket(patient_id), 10, "the practice kiosk")
            status = wait_until(
                lambda: (s := kiosk_status(sock)).get("frames_received", 0) > 30 and s,
                30,
                "the practice kiosk to decode the clinician's video",
            )
            assert status["state"] == "in_call"
            page.screenshot(path=str(SHOTS / "clinic-practice-call.png"), full_page=True)

            page.get_by_test_id("end-call").click()
            expect(page.get_by_test_id("outcome-form")).to_be_visible()
            page.get_by_test_id("outcome-completed").click()
            expect(page.get_by_test_id("outcome-saved")).to_be_visible()
            expect(page.get_by_test_id("practice-status")).to_contain_text("not counted")

            # Rehearse admitting: the practice patient presses its button, then is admitted.
            page.get_by_test_id("close-call").click()
            expect(page.get_by_test_id("practice-banner")).to_have_count(0)
            page.get_by_test_id(f"practice-waiting-{patient_id}").click()
            page.get_by_test_id(f"admit-{patient_id}").click(timeout=30_000)
            expect(page.get_by_test_id("practice-banner")).to_be_visible()
            expect(page.get_by_test_id("call-state")).to_have_text("In call", timeout=30_000)
            page.get_by_test_id("end-call").click()
            page.get_by_test_id("outcome-completed").click()
            expect(page.get_by_test_id("outcome-saved")).to_be_visible()

            evidence = page.request.get(url.replace("/clinic", "/api/evidence")).json()
            assert evidence["figures"]["calls"] == 0
            assert evidence["figures"]["with_outcome"] == 0
            browser.close()
    finally:
        code = demo.stop()
    log = "".join(demo.output)
    assert code == 0, log
    assert practice_socket(patient_id) is None  # the practice kiosk stopped with the demo
    credential = json.loads(
        (tmp_path / "demo" / "hub" / "practice" / patient_id / "credential.json").read_text()
    )
    assert credential["token"] not in log, "practice device token in the log"

"""The clinic page in a real Chromium shows the patient's link live from the kiosk's reports:
a plain word first (not only a colour), then resolution, frame rate, bit rate, loss, RTT."""

from __future__ import annotations

import json

import pytest
from playwright.sync_api import expect, sync_playwright
from websockets.sync.client import connect

from porchlight import chromium
from porchlight.protocol import DEVICE_WS_PATH

pytestmark = [pytest.mark.browser]

REPORT = {
    "rung": "180p15",
    "width": 320,
    "height": 180,
    "fps": 14.6,
    "video_kbps": 158,
    "audio_kbps": 54,
    "loss": 0.02,
    "rtt_ms": 210,
    "jitter_ms": 4.5,
    "quality": "fair",
    "audio_only": False,
}


def expect_type(ws, kind: str) -> dict:
    while True:
        message = json.loads(ws.recv(timeout=10))
        if message["type"] == kind:
            return message


def test_clinic_page_shows_the_patients_link_live(hub) -> None:
    server, seed = hub
    headers = {"Authorization": f"Bearer {seed.device_token}"}
    with connect(server.ws_url + DEVICE_WS_PATH, additional_headers=headers) as kiosk:
        kiosk.send(json.dumps({"type": "hello", "state": "idle"}))
        expect_type(kiosk, "welcome")
        with sync_playwright() as pw:
            browser = chromium.launch(pw)
            page = browser.new_page()
            page.goto(server.url + "/clinic")
            page.get_by_test_id("login-username").fill(seed.username)
            page.get_by_test_id("login-password").fill(seed.password)
            page.get_by_test_id("login-submit").click()
            expect(page.get_by_test_id("connection-state")).to_have_text("Live")
            kiosk.send(json.dumps({"type": "join"}))
            page.locator("[data-testid^='admit-']").click()
            call_id = expect_type(kiosk, "admitted")["call_id"]

            panel = page.get_by_test_id("link-quality")
            expect(panel).to_be_visible()
            expect(page.get_by_test_id("link-word")).to_contain_text("Waiting for")

            kiosk.send(json.dumps({"type": "stats", "call_id": call_id, **REPORT}))
            expect(page.get_by_test_id("link-word")).to_have_text("Fair connection")
            expect(panel).to_have_attribute("data-quality", "fair")
            expect(page.get_by_test_id("link-resolution")).to_have_text("320×180")
            expect(page.get_by_test_id("link-fps")).to_have_text("15 fps")
            expect(page.get_by_test_id("link-bitrate")).to_have_text("212 kbit/s")
            expect(page.get_by_test_id("link-loss")).to_have_text("2.0 % lost")
            expect(page.get_by_test_id("link-rtt")).to_have_text("210 ms round trip")

            worse = {**REPORT, "quality": "poor", "audio_only": True, "width": 0, "height": 0,
                     "fps": 0, "video_kbps": 0, "loss": 0.12, "rtt_ms": 640}  # fmt: skip
            kiosk.send(json.dumps({"type": "stats", "call_id": call_id, **worse}))
            expect(page.get_by_test_id("link-word")).to_have_text("Poor connection")
            expect(panel).to_have_attribute("data-quality", "poor")
            expect(page.get_by_test_id("link-resolution")).to_contain_text("Audio only")
            expect(page.get_by_test_id("link-loss")).to_have_text("12.0 % lost")

            # Reports that stop coming are not shown as current (the kiosk reports every 2 s).
            expect(page.get_by_test_id("link-word")).to_contain_text(
                "No recent report", timeout=12_000
            )
            expect(panel).to_have_attribute("data-quality", "unknown")
            browser.close()

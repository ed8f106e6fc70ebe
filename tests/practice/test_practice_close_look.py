"""Rehearsing the close look on the practice patient, in Chromium: Practice call, zoom in,
take a still — the practice kiosk crops and sends its still as a patient's kiosk does."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect, sync_playwright

from porchlight import chromium
from porchlight.hub.seed import DEMO_PASSWORD

from .conftest import Hub

pytestmark = [pytest.mark.browser]


def test_zoom_and_a_still_on_the_practice_patient(hub: Hub) -> None:
    with sync_playwright() as pw:
        browser = chromium.launch(pw)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.goto(f"{hub.url}/clinic")
            page.get_by_test_id("login-username").fill("clinician")
            page.get_by_test_id("login-password").fill(DEMO_PASSWORD)
            page.get_by_test_id("login-submit").click()
            expect(page.get_by_test_id("connection-state")).to_have_text("Live")
            page.locator("[data-testid^='practice-call-']").click()
            expect(page.get_by_test_id("practice-banner")).to_be_visible(timeout=90_000)
            expect(page.get_by_test_id("call-state")).to_have_text("In call", timeout=30_000)

            page.get_by_test_id("zoom-in").click()
            expect(page.get_by_test_id("zoom-level")).not_to_have_text("Zoom 1×")
            page.get_by_test_id("take-still").click()
            expect(page.get_by_test_id("still-thumb")).to_have_count(1, timeout=45_000)

            page.get_by_test_id("end-call").click()
            page.get_by_test_id("outcome-completed").click()
            expect(page.get_by_test_id("outcome-saved")).to_be_visible()
        finally:
            browser.close()

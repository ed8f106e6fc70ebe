"""The clinic page with a real kiosk (KioskCore, simulated device, test-pattern camera): the
clinician zooms in and the kiosk tells the patient it is looking closely; a prompt is shown on
the kiosk; "Take still" makes the kiosk capture a full-resolution JPEG into its outbox, its
sync worker uploads the bytes and the record, and the still appears beside the call, whole
(the bytes the hub serves are the bytes in the kiosk's outbox)."""

from __future__ import annotations

import time

import pytest
from kiosk.conftest import SMALL_CAMERA, seeded_hub, wait_until
from playwright.async_api import async_playwright, expect

from porchlight import chromium
from porchlight.device.config import DeviceConfig
from porchlight.kiosk.config import KioskConfig
from porchlight.kiosk.core import KioskCore
from porchlight.kiosk.credential import save_credential
from porchlight.kiosk.view import KioskState
from porchlight.protocol import PROMPTS

pytestmark = [pytest.mark.browser]


@pytest.fixture
def hub(tmp_path):
    with seeded_hub(tmp_path) as h:
        yield h


@pytest.fixture
def kiosk_config(tmp_path) -> KioskConfig:
    """The simulated kiosk of the kiosk tests: loopback ICE, test-pattern camera 320×240."""
    return KioskConfig(
        data_dir=tmp_path / "k",
        ice_host_addresses=["127.0.0.1"],
        device=DeviceConfig(simulate=True, speaker="sim", **SMALL_CAMERA),
    )


async def test_zoom_prompt_and_a_still_with_a_real_kiosk(hub, kiosk_config):
    save_credential(kiosk_config.data_dir, hub.credential())
    core = KioskCore(kiosk_config)
    await core.start()
    try:
        await wait_until(lambda: core.view.state == KioskState.IDLE, 15, "the kiosk at home")
        core.button_down()
        core.button_up()
        await wait_until(lambda: core.view.state == KioskState.WAITING, 10, "waiting")
        async with async_playwright() as pw:
            browser = await chromium.launch(pw)
            page = await browser.new_page(viewport={"width": 1400, "height": 1000})
            await page.goto(hub.url + "/clinic")
            await page.get_by_test_id("login-username").fill("clinician")
            await page.get_by_test_id("login-password").fill(hub.seed.password)
            await page.get_by_test_id("login-submit").click()
            await page.get_by_test_id(f"admit-{hub.seed.patient_id}").click()
            await page.wait_for_function(
                "() => { const v = document.querySelector('[data-testid=remote-video]');"
                " return v && v.videoWidth > 0"
                " && v.getVideoPlaybackQuality().totalVideoFrames > 5; }",
                timeout=30_000,
            )

            await page.get_by_test_id("zoom-in").click()
            await page.get_by_test_id("zoom-in").click()
            await wait_until(lambda: core.view.close_look, 10, "the kiosk's close-look words")
            await page.get_by_test_id("zoom-reset").click()
            await wait_until(lambda: not core.view.close_look, 10, "the whole picture again")

            await page.get_by_test_id("prompt-show_ankles").click()
            await wait_until(
                lambda: core.view.prompt == PROMPTS["show_ankles"], 10, "the prompt on the kiosk"
            )

            clicked = time.monotonic()
            await page.get_by_test_id("take-still").click()
            thumb = page.get_by_test_id("still-thumb")
            await expect(thumb).to_have_count(1, timeout=30_000)
            await page.wait_for_function(
                "() => { const i = document.querySelector('[data-testid=still-thumb]');"
                " return i && i.complete && i.naturalWidth > 0; }",
                timeout=10_000,
            )
            shown_s = time.monotonic() - clicked
            print(f"take still → shown on the clinic page (loopback, no pacing): {shown_s:.2f} s")
            size = await thumb.evaluate("img => [img.naturalWidth, img.naturalHeight]")
            # The camera's full resolution, not the video rung's.
            assert size == [kiosk_config.device.camera_width, kiosk_config.device.camera_height]
            still_id = (await thumb.evaluate("img => img.src")).rsplit("/", 1)[1]
            served = await page.request.get(f"{hub.url}/api/stills/{still_id}")
            assert served.ok
            body = await served.body()
            listed = await (
                await page.request.get(f"{hub.url}/api/patients/{hub.seed.patient_id}/stills")
            ).json()
            (still,) = listed["stills"]
            # Stored only because its SHA-256 matched the kiosk's record of it.
            assert still["size"] == len(body) and body[:2] == b"\xff\xd8" and still["call_id"]
            await browser.close()
    finally:
        await core.stop()

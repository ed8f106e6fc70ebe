"""A whole adaptive call on loopback: KioskCore, the real hub, the clinician twin.

The clinician gets the kiosk's link reports; the kiosk shows the ladder's word; a call
whose media is lost on the clinician's side comes back by itself with a fresh offer.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from porchlight.clinician_peer import ClinicianPeer
from porchlight.device.config import DeviceConfig
from porchlight.kiosk.config import KioskConfig
from porchlight.kiosk.core import KioskCore
from porchlight.kiosk.credential import DeviceCredential
from porchlight.kiosk.view import KioskState

SMALL = {"camera_width": 320, "camera_height": 180, "camera_fps": 15}


async def until(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while not (value := predicate()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)
    return value


async def test_reports_indicator_and_a_lost_connection_that_comes_back(hub, tmp_path: Path):
    server, seed = hub
    config = KioskConfig(
        data_dir=tmp_path / "kiosk",
        ice_host_addresses=["127.0.0.1"],
        device=DeviceConfig(simulate=True, speech=False, **SMALL),
    )
    credential = DeviceCredential(server.url, seed.device_id, seed.patient_id, seed.device_token)
    core = KioskCore(config, credential=credential)
    await core.start()
    clinician = ClinicianPeer(
        server.url, seed.username, seed.password, camera=DeviceConfig(simulate=True, **SMALL)
    )
    await clinician.connect()
    try:
        await until(lambda: core.view.state == KioskState.IDLE, 20, "kiosk idle")
        core.button_down()
        core.button_up()
        await clinician.wait_for(lambda: seed.patient_id in clinician.waiting_seen_at, 10)
        # The probe ran while waiting (loopback: far more than the top rung needs).
        await until(lambda: core.link_estimate_bps, 10, "the link probe")
        call = await clinician.admit(seed.patient_id)
        await until(lambda: core.status()["frames_received"] > 20, 30, "kiosk frames")
        await clinician.wait_for(lambda: call.video_frames > 20, 30)

        report = await clinician.wait_for(lambda: call.link_reports and call.link_reports[-1], 10)
        assert report["patient_id"] == seed.patient_id and report["call_id"] == call.call_id
        assert report["quality"] in ("good", "fair", "poor")
        assert (report["width"], report["height"]) == (320, 180)
        assert report["video_kbps"] > 0 and 0 <= report["loss"] <= 1
        status = core.status()
        assert status["rung"] and status["link"] == status["link_quality"]
        assert core.view.link in ("good", "fair", "poor")

        # The clinician's side loses the connection; the kiosk notices the quiet, says so,
        # and gets the call back with a fresh offer for the same call.
        await clinician.drop_media()
        dropped_at = time.monotonic()
        await until(lambda: core.view.headline.startswith("Reconnecting"), 10, "reconnecting")
        assert core.view.link == "none"
        await clinician.wait_for(lambda: call.offers >= 2, 15)
        frames = call.video_frames
        await clinician.wait_for(lambda: call.video_frames > frames + 10, 20)
        await until(lambda: core.view.show_video, 10, "the kiosk's picture back")
        assert time.monotonic() - dropped_at < 15
        assert core.status()["call_id"] == call.call_id
        assert call.ended is None
    finally:
        await clinician.close()
        await core.stop()

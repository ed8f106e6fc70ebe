"""A whole call: KioskCore (simulated device, loopback ICE) and an aiortc clinician, through
the real hub. Frames must be decoded both ways; either side can end it; the kiosk goes home."""

from __future__ import annotations

import dataclasses

from porchlight.clinician_peer import CallRecord, ClinicianPeer
from porchlight.kiosk.config import KioskConfig
from porchlight.kiosk.core import KioskCore
from porchlight.kiosk.credential import save_credential
from porchlight.kiosk.view import KioskState

from .conftest import Hub, listed, wait_until


async def join(core: KioskCore, clinician: ClinicianPeer, patient_id: str) -> CallRecord:
    """Press the kiosk's button, and admit the patient once the clinician sees them."""
    await wait_until(lambda: not core.device.button.is_pressed, 1, "the button to be up")
    core.device.button.press()
    core.device.button.release()
    await wait_until(lambda: core.view.state == KioskState.WAITING, 2, "waiting")
    await listed(clinician, patient_id)
    call = await clinician.admit(patient_id)
    await clinician.wait_for(lambda: call.call_id, 10)  # set when the kiosk's offer arrives
    assert core.status()["call_id"] == call.call_id
    return call


async def media_both_ways(core: KioskCore, call: CallRecord, frames: int) -> dict:
    return await wait_until(
        lambda: (
            core.status()["frames_received"] >= frames
            and call.video_frames >= frames
            and core.status()
        ),
        30,
        f"{frames} decoded frames on each side",
    )


async def test_call_both_ways_then_each_side_hangs_up(
    hub: Hub, kiosk_config: KioskConfig, clinician: ClinicianPeer
) -> None:
    config = dataclasses.replace(kiosk_config, ending_s=0.5)
    save_credential(config.data_dir, hub.credential())
    patient_id = hub.seed.patient_id
    core = KioskCore(config)
    await core.start()
    try:
        await wait_until(lambda: core.view.state == KioskState.IDLE, 10, "idle")

        # --- call 1: video and audio both ways, then the patient holds the button to end it.
        call = await join(core, clinician, patient_id)
        status = await media_both_ways(core, call, frames=20)
        assert status["state"] == "in_call"
        assert status["frames_sent"] >= 20
        # The camera's whole picture: at once if the join probe finished before the admit,
        # else after the ladder's first climbs from its no-probe start (180p: 240x180).
        await wait_until(lambda: call.frame_size == (320, 240), 20, "the camera's full size")
        await wait_until(lambda: core.view.show_video, 5, "the kiosk to show video")
        assert core.device.light.pattern == "breathing"
        await wait_until(
            lambda: (
                core.status()["audio_frames_received"] > 0
                and core.device.speaker.call_audio_frames > 0
                and call.audio_frames > 0
            ),
            10,
            "audio both ways (kiosk's tone to the clinician, clinician's tone to the speaker)",
        )
        # The clinician's picture and the self-view reach the screen as RGB arrays.
        seq, picture = core.remote_frames.latest()
        assert seq > 0 and picture is not None and picture.shape[2] == 3
        # The clinician twin adapts like the kiosk: its first rung may be below the camera's
        # 320x240, but the picture keeps the camera's 4:3 shape and never goes below 180 lines.
        height, width = picture.shape[:2]
        assert 180 <= height <= 240 and width * 3 == height * 4
        seq, self_view = core.local_frames.latest()
        assert seq > 0 and self_view is not None and self_view.shape[2] == 3
        assert picture.std() > 1.0  # a moving test pattern, not a blank frame

        await core.device.button.hold(2.1)
        await clinician.wait_for(lambda: call.ended, 10)
        assert call.ended == "patient_ended"
        assert core.view.state in (KioskState.ENDING, KioskState.IDLE)
        await wait_until(lambda: core.view.state == KioskState.IDLE, 5, "home after the call")
        assert core.remote_frames.latest()[1] is None  # no stale picture left behind

        # --- call 2: the clinician ends it this time.
        call = await join(core, clinician, patient_id)
        await media_both_ways(core, call, frames=5)
        await clinician.hang_up()
        await wait_until(lambda: core.view.state == KioskState.ENDING, 5, "the call to end")
        assert core.view.headline == "Call ended — thank you"
        await wait_until(lambda: core.view.state == KioskState.IDLE, 5, "home after the call")
        assert core.status()["call_id"] is None
        await clinician.wait_for(lambda: patient_id not in clinician.waiting, 5)
    finally:
        await core.stop()


async def test_stopping_the_kiosk_mid_call_hangs_up_cleanly(
    hub: Hub, kiosk_config: KioskConfig, clinician: ClinicianPeer
) -> None:
    save_credential(kiosk_config.data_dir, hub.credential())
    core = KioskCore(kiosk_config)
    await core.start()
    try:
        await wait_until(lambda: core.view.state == KioskState.IDLE, 10, "idle")
        call = await join(core, clinician, hub.seed.patient_id)
        await media_both_ways(core, call, frames=5)
    finally:
        await core.stop()
    await clinician.wait_for(lambda: call.ended, 10)
    assert call.ended == "patient_ended"

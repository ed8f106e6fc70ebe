"""The close look, a prompt and a still in a real call: KioskCore (simulated device, a
1920x1080 test-pattern camera, loopback ICE) and the aiortc clinician twin, through the real
hub. The clinician's `view` reaches the kiosk; the frames the clinician decodes are the rung's
size and show the chosen region of the camera (testsrc2's six colour bars tell which part of
the frame a picture is), also after the call's media is connected afresh; the patient is
told and sees it in the self-view; `prompt` is shown and spoken; `take_still` puts a
full-resolution JPEG in the outbox and the hub relays it."""

from __future__ import annotations

import dataclasses
import hashlib
import io
from pathlib import Path

import av
import numpy
from kiosk.conftest import Hub, clinician_for, listed, wait_until

from porchlight.device.config import DeviceConfig
from porchlight.kiosk.config import KioskConfig
from porchlight.kiosk.core import KioskCore
from porchlight.kiosk.credential import save_credential
from porchlight.kiosk.ladder import DEFAULT_RUNGS
from porchlight.kiosk.records import RecordKind
from porchlight.kiosk.view import KioskState
from porchlight.kiosk.view_region import Crop, Region, crop_for

CAMERA = {"camera_width": 1920, "camera_height": 1080, "camera_fps": 10}
RUNG_SIZES = {(r.width, r.height) for r in DEFAULT_RUNGS if not r.audio_only}
# testsrc2: six vertical bars across the whole frame, in this order.
BARS = numpy.array(
    [(255, 0, 0), (0, 255, 0), (255, 255, 0), (0, 0, 255), (255, 0, 255), (0, 255, 255)], float
)
# Bottom left: red, green and yellow bars, clear of the clock in the top left corner.
REGION = Region(0.0, 0.55, 0.3, 0.4)


def bar_match(rgb: numpy.ndarray, crop: Crop, frame_w: int = 1920) -> float:
    """The share of sample points whose colour is the bar that `crop` puts there.

    Points near a bar's edge are skipped (the codec blurs edges); moving parts of the
    pattern (a sweeping band, a cross, a checkerboard) spoil a few points, never most."""
    h, w = rgb.shape[:2]
    bar_w = frame_w / 6
    hits = total = 0
    for fx in numpy.linspace(0.02, 0.98, 40):
        cam_x = crop.x + fx * crop.width
        if min(cam_x % bar_w, bar_w - cam_x % bar_w) < 0.06 * bar_w:
            continue
        want = int(cam_x // bar_w)
        for fy in numpy.linspace(0.55, 0.95, 8):
            colour = rgb[int(fy * (h - 1)), int(fx * (w - 1))].astype(float)
            got = int(numpy.abs(BARS - colour).sum(axis=1).argmin())
            hits += got == want
            total += 1
    return hits / total


def whole(frame_w: int = 1920, frame_h: int = 1080) -> Crop:
    return Crop(0, 0, frame_w, frame_h)


async def test_close_look_prompt_and_still_in_a_call(hub: Hub, tmp_path: Path) -> None:
    config = KioskConfig(
        data_dir=tmp_path / "k",
        ice_host_addresses=["127.0.0.1"],
        device=DeviceConfig(simulate=True, speaker="sim", **CAMERA),
    )
    save_credential(config.data_dir, hub.credential())
    patient_id = hub.seed.patient_id
    core = KioskCore(config)
    await core.start()
    try:
        async with clinician_for(hub) as clinician:
            await wait_until(lambda: core.view.state == KioskState.IDLE, 10, "idle")
            core.device.button.press()
            core.device.button.release()
            await listed(clinician, patient_id)
            call = await clinician.admit(patient_id)
            await wait_until(lambda: core.view.show_video, 30, "the call's picture")

            def decoded() -> numpy.ndarray | None:
                frame = clinician.last_video_frame
                return None if frame is None else frame.to_ndarray(format="rgb24")

            # The whole picture first: six bars.
            await clinician.wait_for(lambda: call.video_frames >= 3, 20)
            rgb = decoded()
            assert (rgb.shape[1], rgb.shape[0]) in RUNG_SIZES
            assert bar_match(rgb, whole()) > 0.8

            # --- the close look
            await clinician.request({"type": "view", "region": dataclasses.asdict(REGION)})

            def zoomed() -> tuple[int, int] | None:
                frame = clinician.last_video_frame
                if frame is None:
                    return None
                crop = crop_for(REGION, 1920, 1080, frame.width, frame.height)
                rgb = frame.to_ndarray(format="rgb24")
                return (frame.width, frame.height) if bar_match(rgb, crop) > 0.85 else None

            size = await clinician.wait_for(zoomed, 20)
            # At the rung's size, and not the whole picture squeezed: the bars are wider.
            assert size in RUNG_SIZES
            rgb = decoded()
            assert bar_match(rgb, whole()) < 0.7
            status = core.status()
            sent = core.call.media.scaled
            assert sent.crop == crop_for(REGION, 1920, 1080, *sent._look_box)
            assert sent.crop.width < 1920  # the camera gives more than the rung: a real zoom
            # The patient is told, in words and voice, and their self-view shows the region.
            await wait_until(lambda: core.view.close_look, 5, "the close-look words")
            assert core.view.close_look == "Your nurse is looking closely — please hold still"
            speaker = core.device.speaker
            await wait_until(
                lambda: any("looking closely" in s for s in speaker.said), 10, "it said so"
            )
            _, self_view = core.local_frames.latest()
            crop = sent.crop
            assert self_view.shape[1] == 320  # small, and shaped like the crop
            assert abs(self_view.shape[0] - 320 * crop.height / crop.width) <= 2
            assert bar_match(self_view, crop) > 0.85
            assert status["state"] == "in_call"

            # The call's media drops and comes back (a fresh connection): the look is kept.
            await clinician.drop_media()
            await clinician.wait_for(lambda: call.offers >= 2, 30)
            clinician.last_video_frame = None  # only pictures of the new connection count
            await clinician.wait_for(zoomed, 30)
            assert core.view.close_look

            # Back out: the whole picture again, and the words go.
            await clinician.request({"type": "view", "region": None})
            await clinician.wait_for(
                lambda: (f := decoded()) is not None and bar_match(f, whole()) > 0.8, 20
            )
            await wait_until(lambda: not core.view.close_look, 5, "the close look to end")

            # --- a prompt: shown large and spoken; null clears it
            await clinician.request({"type": "prompt", "prompt": "show_ankles"})
            await wait_until(lambda: core.view.prompt, 5, "the prompt")
            assert core.view.prompt == "Please show me your ankles"
            await wait_until(
                lambda: "Please show me your ankles." in speaker.said, 10, "the prompt spoken"
            )
            await clinician.request({"type": "prompt", "prompt": None})
            await wait_until(lambda: not core.view.prompt, 5, "the prompt cleared")

            # --- a still: full resolution, into the outbox, relayed to the clinician
            await clinician.request({"type": "take_still", "request_id": "page-1"})
            taken = await clinician.wait_for(
                lambda: next((m for m in clinician.stills if m["type"] == "still_taken"), None),
                20,
            )
            assert taken["request_id"] == "page-1" and taken["patient_id"] == patient_id
            still_id = taken["still_id"]
            records = core.records
            record = records.outbox.record(still_id)
            jpeg = records.outbox.still_bytes(still_id)
            assert record is not None and jpeg is not None
            assert record.kind is RecordKind.STILL
            assert record.body["call_id"] == call.call_id
            assert (record.body["width"], record.body["height"]) == (1920, 1080)
            assert record.body["size"] == len(jpeg) == taken["size"]
            assert record.body["sha256"] == hashlib.sha256(jpeg).hexdigest()
            picture = next(av.open(io.BytesIO(jpeg)).decode(video=0))
            assert (picture.width, picture.height) == (1920, 1080)
            # The whole camera frame, not the close look or the rung's picture.
            assert bar_match(picture.to_ndarray(format="rgb24"), whole()) > 0.8
            # During the call stills go up in the link's headroom (kiosk/still_pacing.py), set
            # at each of the ladder's decisions, never over the ladder's estimate.
            ladder = core.call.media.ladder
            decisions = len(core.call.media.decisions)
            await wait_until(
                lambda: (
                    len(core.call.media.decisions) > decisions
                    and core.still_pace is not None
                    and records.worker.upload_budget
                    == core.still_pace.budget_bps
                    < ladder.estimate_bps
                ),
                5,
                "the still budget to follow the ladder's decisions",
            )
            # The sync worker sends it; the hub checks it whole.
            ready = await clinician.wait_for(
                lambda: next((m for m in clinician.stills if m["type"] == "still_ready"), None),
                30,
            )
            assert ready["still_id"] == still_id
            assert (ready["width"], ready["height"]) == (1920, 1080)

            # The call ends: stills go up unpaced again.
            await clinician.hang_up()
            await wait_until(lambda: records.worker.upload_budget is None, 5, "no budget")
    finally:
        await core.stop()

"""The clinician's close look survives the kiosk's hub link dropping (issue 10): the real hub,
the real KioskCore (simulated device) and the aiortc clinician twin, with the kiosk's link to
the hub through a TCP relay the test cuts while the call's media carries on peer to peer.

What the clinician sets while the kiosk's socket is down is lost with the socket; the hub
keeps the call's look and sends it again when the kiosk is back in the call. The look ends
with the call: the next call starts with the whole picture. A prompt is sent again while
fresh, not said twice, and not shown when it turns up late (hub/waiting_room.py
`look_again`)."""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from pathlib import Path

from kiosk.conftest import SMALL_CAMERA, clinician_for, listed, wait_until

from porchlight.hub.waiting_room import PROMPT_FRESH
from porchlight.kiosk.core import KioskCore
from porchlight.kiosk.view_region import Region, crop_for

from .look_support import (
    MovableClock,
    handled,
    hub_with_clock,
    in_a_call,
    kiosk_away,
    kiosk_back,
    kiosk_through,
    tcp_proxy_class,
)

# Larger than the call's top rung (720p), so a close look is a real crop; few frames a second
# keep the machine's two cores for the rest.
CAMERA = {"camera_width": 1920, "camera_height": 1080, "camera_fps": 5}
REGION = Region(0.0, 0.55, 0.3, 0.4)
ANKLES = "Please show me your ankles"
HAND = "Please hold your hand up to the camera"


def cropping_to(core: KioskCore, region: Region | None) -> bool:
    """The kiosk's outgoing picture is cut from the camera as `region` says (None: whole)."""
    call = core.call
    sent = call.media.scaled if call is not None else None
    if sent is None or sent.source_size is None:  # no camera frame through it yet
        return False
    return sent.crop == crop_for(region, 1920, 1080, *sent._look_box)


async def test_a_look_set_while_the_kiosk_is_away_reaches_it_and_ends_with_the_call(
    tmp_path: Path,
) -> None:
    with (
        hub_with_clock(tmp_path, MovableClock()) as hub,
        tcp_proxy_class()(hub.server.port) as proxy,
    ):
        patient_id = hub.seed.patient_id
        core = await kiosk_through(hub, proxy, tmp_path / "k", CAMERA)
        try:
            async with clinician_for(hub) as clinician:
                await in_a_call(core, clinician, patient_id)
                await wait_until(lambda: cropping_to(core, None), 20, "the whole picture")

                # The clinician zooms in while the kiosk's link is down.
                await kiosk_away(core, proxy, clinician, patient_id)
                await clinician.request({"type": "view", "region": dataclasses.asdict(REGION)})
                await handled(clinician)
                assert cropping_to(core, None) and not core.view.close_look

                # Back: the kiosk crops to it, and the patient is told, as the page shows it.
                await kiosk_back(core, proxy, clinician, patient_id)
                await wait_until(lambda: cropping_to(core, REGION), 10, "the close look")
                assert core.call.media.scaled.crop.width < 1920  # a real zoom
                await wait_until(lambda: core.view.close_look, 5, "the close-look words")

                # The call ends; the next one starts with the whole picture, and stays so
                # when the kiosk's link drops and comes back in it.
                await clinician.hang_up()
                await wait_until(lambda: core.call is None, 10, "the call to end")
                await in_a_call(core, clinician, patient_id)
                assert core.call.call_id == clinician.call.call_id
                await kiosk_away(core, proxy, clinician, patient_id)
                await kiosk_back(core, proxy, clinician, patient_id)
                # A prompt asked for now reaches the kiosk after anything the hub sent it on
                # its return; then a few more frames are cut from the camera.
                await clinician.request({"type": "prompt", "prompt": "show_ankles"})
                await wait_until(lambda: core.view.prompt, 10, "the prompt")
                assert not core.view.close_look
                sent = core.status()["frames_sent"]
                await wait_until(lambda: core.status()["frames_sent"] > sent + 2, 10, "frames")
                assert cropping_to(core, None)
        finally:
            await core.stop()


async def test_a_prompt_comes_back_while_fresh_once_and_not_late(tmp_path: Path) -> None:
    clock = MovableClock()
    with hub_with_clock(tmp_path, clock) as hub, tcp_proxy_class()(hub.server.port) as proxy:
        patient_id = hub.seed.patient_id
        core = await kiosk_through(hub, proxy, tmp_path / "k", SMALL_CAMERA)
        speaker = core.device.speaker
        try:
            async with clinician_for(hub) as clinician:
                await in_a_call(core, clinician, patient_id)

                # Asked for while the kiosk is away, back soon after: shown and said.
                await kiosk_away(core, proxy, clinician, patient_id)
                await clinician.request({"type": "prompt", "prompt": "show_ankles"})
                await handled(clinician)
                await kiosk_back(core, proxy, clinician, patient_id)
                await wait_until(lambda: core.view.prompt == ANKLES, 10, "the prompt")
                await wait_until(lambda: f"{ANKLES}." in speaker.said, 10, "the prompt said")

                # Away and back again while it is still fresh and shown: not said twice.
                await kiosk_away(core, proxy, clinician, patient_id)
                await kiosk_back(core, proxy, clinician, patient_id)
                # A view after the return reaches the kiosk after what the hub sent again.
                await clinician.request({"type": "view", "region": dataclasses.asdict(REGION)})
                await wait_until(lambda: core.view.close_look, 10, "the close look")
                assert core.view.prompt == ANKLES
                assert speaker.said.count(f"{ANKLES}.") == 1

                # A new prompt while the kiosk is away, back only after it is stale: the
                # patient is not shown it late, and the one it replaced goes.
                await kiosk_away(core, proxy, clinician, patient_id)
                await clinician.request({"type": "prompt", "prompt": "hand_to_camera"})
                await handled(clinician)
                clock.ahead += PROMPT_FRESH + timedelta(seconds=1)
                await kiosk_back(core, proxy, clinician, patient_id)
                await wait_until(lambda: not core.view.prompt, 10, "the old prompt to go")
                assert f"{HAND}." not in speaker.said
                await listed(clinician, patient_id, state="in_call", online=True)

                # Asked for again now, it is shown and said at once.
                await clinician.request({"type": "prompt", "prompt": "hand_to_camera"})
                await wait_until(lambda: core.view.prompt == HAND, 10, "the prompt asked again")
                await wait_until(lambda: f"{HAND}." in speaker.said, 10, "it said")
        finally:
            await core.stop()

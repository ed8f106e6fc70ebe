"""The kiosk (KioskCore with the simulated device) against the real hub: the patient's plan
(language pushed by the nurse, reminders from a booking), a ring answered by itself after the
countdown, a hold for help that reaches the care team, and a whole call followed by the
rating and the call's quality, which the evidence figures then count."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from datetime import UTC, datetime, timedelta

import pytest
import requests
import websockets
from kiosk.conftest import Hub, clinician_for, listed, seeded_hub, wait_until

from porchlight.hub.patient_settings import KioskSettings, put_settings
from porchlight.kiosk.config import KioskConfig
from porchlight.kiosk.core import KioskCore
from porchlight.kiosk.credential import save_credential
from porchlight.kiosk.view import KioskState
from porchlight.protocol import SESSION_COOKIE


@pytest.fixture
def hub(tmp_path):
    with seeded_hub(tmp_path) as h:
        yield h


class Clock:
    """Monotonic time the test can jump forward (countdowns, holds) without sleeping."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        import time

        return time.monotonic() + self.offset


def session(hub: Hub, username: str) -> requests.Session:
    s = requests.Session()
    r = s.post(f"{hub.url}/api/login", json={"username": username, "password": hub.seed.password})
    assert r.status_code == 200, r.text
    return s


async def started(hub: Hub, config: KioskConfig, **kwargs) -> KioskCore:
    save_credential(config.data_dir, hub.credential())
    core = KioskCore(config, **kwargs)
    await core.start()
    await wait_until(lambda: core.view.state == KioskState.IDLE, 10, "the kiosk at home")
    return core


def said(core: KioskCore) -> list[str]:
    return core.device.speaker.said


async def test_the_nurse_changes_the_language_and_the_kiosk_speaks_it_at_once(hub, kiosk_config):
    core = await started(hub, kiosk_config)
    try:
        assert core.view.headline == "Press the button to call your nurse"
        nurse = session(hub, "nurse")
        r = await asyncio.to_thread(
            nurse.put,
            f"{hub.url}/api/patients/{hub.seed.patient_id}/kiosk-settings",
            json={"language": "cy", "spoken_prompts": True, "auto_answer": False},
        )
        assert r.status_code == 200
        await wait_until(lambda: core.view.language == "cy", 5, "Welsh on the screen")
        assert core.view.headline == "Pwyswch y botwm i ffonio eich nyrs"
        assert core.device.speaker.voice == "cy"  # espeak-ng's Welsh voice
        # The plan is kept on the device: a restart without the hub still speaks Welsh.
        plan = json.loads((kiosk_config.data_dir / "plan.json").read_text())
        assert plan["settings"]["language"] == "cy"
    finally:
        await core.stop()


async def test_a_booking_ten_minutes_ahead_is_shown_and_reminded(hub, kiosk_config):
    nurse = session(hub, "nurse")
    starts = datetime.now(UTC) + timedelta(minutes=10)
    r = nurse.post(
        f"{hub.url}/api/appointments",
        json={"patient_id": hub.seed.patient_id, "starts_at": starts.isoformat()},
    )
    assert r.status_code == 201, r.text
    core = await started(hub, kiosk_config)
    try:
        # The team's only clinician will call, named as the team shows them to patients.
        await wait_until(
            lambda: core.view.headline.startswith("Nurse Priya Shah will call you at"),
            5,
            "the line",
        )
        await core.device.speaker.wait_until(
            lambda s: any(
                t.startswith("Nurse Priya Shah will call you at") and "minutes. Press" in t
                for t in s.said
            ),
            5,
        )
        assert core.device.light.pattern == "reminder"
    finally:
        await core.stop()


async def test_a_ring_with_auto_answer_connects_after_the_spoken_countdown(hub, kiosk_config):
    put_settings(
        hub.server.store.engine,
        hub.seed.patient_id,
        KioskSettings(auto_answer=True),
        by="nurse",
        now=datetime.now(UTC),
    )
    clock = Clock()
    core = await started(hub, kiosk_config, clock=clock)
    try:
        assert core.care is not None
        await wait_until(lambda: core.care.plan.auto_answer, 5, "the plan from the hub")
        clinician = session(hub, "clinician")
        cookie = f"{SESSION_COOKIE}={clinician.cookies[SESSION_COOKIE]}"
        url = hub.url.replace("http", "ws") + "/ws/clinic"
        async with websockets.connect(url, additional_headers={"Cookie": cookie}) as page:
            await page.send(json.dumps({"type": "hello"}))
            await page.send(json.dumps({"type": "ring", "patient_id": hub.seed.patient_id}))
            await wait_until(lambda: core.view.state == KioskState.RINGING, 5, "ringing")
            assert core.view.countdown == 10
            assert core.device.light.pattern == "ringing"
            await core.device.speaker.wait_until(
                lambda s: "The call will start by itself in 10 seconds." in " ".join(s.said), 5
            )
            clock.offset += 10.0  # the countdown runs out
            await wait_until(
                lambda: core.view.state in (KioskState.JOINING, KioskState.IN_CALL), 5, "answer"
            )
            kinds = []
            while "offer" not in kinds:
                message = json.loads(await asyncio.wait_for(page.recv(), 10))
                kinds.append(message["type"])
            assert kinds.index("ringing") < kinds.index("call_started") < kinds.index("offer")
            assert core.view.state == KioskState.IN_CALL
    finally:
        await core.stop()


async def test_holding_for_help_reaches_the_care_team(hub, kiosk_config):
    clock = Clock()
    core = await started(hub, kiosk_config, clock=clock)
    try:
        core.button_down()
        await wait_until(lambda: core.view.state == KioskState.WAITING, 5, "joined at once")
        clock.offset += 3.2
        await wait_until(lambda: core.view.state == KioskState.IDLE, 5, "help asked")
        core.button_up()
        assert core.view.headline == "Your care team has been asked to call you"
        await core.device.speaker.wait_until(
            lambda s: any(t.startswith("I have asked your care team") for t in s.said), 5
        )
        clinician = session(hub, "clinician")

        def asked() -> list:
            return clinician.get(f"{hub.url}/api/help-requests").json()

        found = await wait_until(lambda: asked(), 10, "the help request on the hub")
        assert found[0]["patient_name"] == hub.seed.patient_name
        assert hub.server.store.team_of_patient(hub.seed.patient_id) is not None
    finally:
        await core.stop()


async def test_a_whole_call_then_the_rating_and_the_quality_reach_the_evidence(hub, kiosk_config):
    config = dataclasses.replace(kiosk_config, ending_s=0.3)
    core = await started(hub, config)
    try:
        async with clinician_for(hub) as peer:
            core.button_down()
            core.button_up()
            await listed(peer, hub.seed.patient_id)
            call = await peer.admit(hub.seed.patient_id)
            await wait_until(lambda: core.view.show_video, 30, "picture and sound")
            await wait_until(lambda: core.status()["frames_received"] >= 10, 20, "frames")
            await peer.hang_up()
        await wait_until(lambda: core.view.step == "faces", 10, "How was your call?")
        core.survey_face(5)
        core.survey_again(True)
        assert core.view.headline == "Thank you for your answers"
        clinician = session(hub, "clinician")
        month = datetime.now().astimezone().strftime("%Y-%m")

        def figures() -> dict:
            r = clinician.get(f"{hub.url}/api/evidence", params={"month": month})
            return r.json()["figures"]

        got = await wait_until(
            lambda: (f := figures())["ratings"] == 1 and f["calls_measured"] == 1 and f,
            15,
            "the rating and the call's quality in the evidence",
        )
        assert got["satisfaction"]["5"] == 1 and got["would_use_again"] == 1.0
        assert got["unscheduled_calls"] == 1
        assert 0 <= got["median_join_s"] < 30
        assert got["share_360p_or_better"] == pytest.approx(0.0)  # the test camera is 240p
        assert call.call_id
    finally:
        await core.stop()

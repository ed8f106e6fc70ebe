"""A clinician rings the practice patient and gets a real call: the hub starts the practice
kiosk (a real KioskCore in its own process, test-pattern camera and tone), the kiosk answers,
frames are decoded on both sides, the scripted check-in is there, the call ends with an
outcome — and the month's evidence counts nothing of it."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import delete, select

from porchlight.clinician_peer import CallRecord, ClinicianPeer
from porchlight.device.sim_control import sim_request
from porchlight.hub.appointments import appointments, call_log
from porchlight.hub.evidence import month_bounds, team_month
from porchlight.hub.evidence_figures import figures
from porchlight.hub.inbox import records
from porchlight.hub.practice import practice_patients
from porchlight.hub.seed import DEMO_PASSWORD
from porchlight.protocol import ClinicianSays

from .conftest import OTHER_CLINICIAN, Hub


class RingingClinician(ClinicianPeer):
    """The aiortc clinician twin, calling a patient at home as the clinic page's Call does."""

    async def ring(self, patient_id: str) -> CallRecord:
        self.call = CallRecord(call_id="", patient_id=patient_id, admitted_at=time.monotonic())
        await self._send({"type": ClinicianSays.RING, "patient_id": patient_id})
        return self.call


async def wait_until(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = await asyncio.to_thread(predicate)
        if last:
            return last
        await asyncio.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}; last: {last!r}")


def kiosk_status(sock: Path) -> dict:
    try:
        return sim_request(sock, "status")
    except OSError:
        return {}


async def test_ring_the_practice_patient_then_the_evidence_counts_none_of_it(hub: Hub) -> None:
    session = hub.session("clinician")
    practice = session.get(f"{hub.url}/api/practice", timeout=10).json()[0]
    patient_id, team_id = practice["patient_id"], practice["team_id"]
    started = await asyncio.to_thread(
        session.post, f"{hub.url}/api/practice/{patient_id}/start", timeout=90
    )
    assert started.status_code == 200, started.text
    assert started.json() == {"patient_id": patient_id, "connected": True}
    folder = hub.server.config.data_dir / "practice" / patient_id
    sock = hub.server.app.state.practice.sim_socket(team_id)
    assert (folder / "credential.json").stat().st_mode & 0o077 == 0  # private to the hub
    assert session.get(f"{hub.url}/api/practice", timeout=10).json()[0]["running"] is True

    # Another team's clinician cannot ring it (the same answer as for a kiosk that is away).
    async with RingingClinician(hub.url, OTHER_CLINICIAN, DEMO_PASSWORD) as other:
        await other.ring(patient_id)
        await other.wait_for(lambda: getattr(other, "last_error", None), 10)
        assert other.last_error["code"] == "device_offline"
    assert kiosk_status(sock)["state"] == "idle"

    # The scripted check-in reached the hub through the kiosk's outbox.
    def today() -> dict:
        reply = session.get(f"{hub.url}/api/patients/{patient_id}/today", timeout=10).json()
        return reply if reply["answers"] and reply["vitals"] else {}

    summary = await wait_until(today, 30, "the practice check-in")
    assert {i["link_id"] for i in summary["answers"][-1]["items"]} >= {"breathing", "feeling"}
    assert {r["key"] for r in summary["vitals"][-1]["readings"]} == {"spo2", "pulse", "temperature"}
    assert summary["flag_count"] == 0

    async with RingingClinician(hub.url, "clinician", DEMO_PASSWORD) as clinician:
        call = await clinician.ring(patient_id)
        await clinician.wait_for(lambda: call.video_frames > 30 and call.audio_frames > 30, 60)
        status = await wait_until(
            lambda: (s := kiosk_status(sock)).get("frames_received", 0) > 30 and s,
            30,
            "the practice kiosk to decode the clinician's video",
        )
        assert status["state"] == "in_call"
        assert call.frame_size is not None and call.frame_size[0] > 0
        call_id = call.call_id
        await clinician.hang_up()
    await wait_until(lambda: kiosk_status(sock).get("state") == "idle", 30, "the kiosk home")

    outcome = session.post(
        f"{hub.url}/api/calls/{call_id}/outcome", json={"outcome": "completed"}, timeout=10
    )
    assert outcome.status_code == 200, outcome.text
    assert outcome.json()["status"] == "completed"

    # The practice patient rated the call and measured it, as a patient's kiosk does.
    engine = hub.server.store.engine

    def rated() -> bool:
        with engine.connect() as conn:
            kinds = conn.execute(
                select(records.c.kind).where(records.c.patient_id == patient_id)
            ).scalars()
            return {"survey", "call_quality"} <= set(kinds)

    await wait_until(rated, 30, "the practice kiosk's rating and call quality")

    # The evidence for this month counts none of it ...
    month = datetime.now(UTC).astimezone().strftime("%Y-%m")
    evidence = session.get(f"{hub.url}/api/evidence", params={"month": month}, timeout=10)
    assert evidence.status_code == 200, evidence.text
    assert evidence.json()["figures"] == json.loads(json.dumps(figures([], {}, {})))
    # ... though the call, its appointment and its records are all there: only the practice
    # flag keeps them out.
    start, end = month_bounds(month, datetime.now(UTC))
    with engine.begin() as conn:
        assert conn.execute(select(call_log).where(call_log.c.call_id == call_id)).first()
        assert (
            conn.execute(
                select(appointments.c.outcome).where(appointments.c.call_id == call_id)
            ).scalar_one()
            == "completed"
        )
        conn.execute(delete(practice_patients).where(practice_patients.c.patient_id == patient_id))
    unflagged = team_month(engine, team_id, start, end)
    assert (unflagged["calls"], unflagged["outcomes"]["completed"], unflagged["ratings"]) == (
        1,
        1,
        1,
    )

    # The hub stops its practice kiosks when it stops.
    hub.server.stop()
    await wait_until(lambda: not kiosk_status(sock), 15, "the practice kiosk to stop")


async def test_put_the_practice_patient_in_the_waiting_room_and_admit_them(hub: Hub) -> None:
    session = hub.session("clinician")
    patient_id = session.get(f"{hub.url}/api/practice", timeout=10).json()[0]["patient_id"]
    async with RingingClinician(hub.url, "clinician", DEMO_PASSWORD) as clinician:
        put = await asyncio.to_thread(
            session.post, f"{hub.url}/api/practice/{patient_id}/waiting-room", timeout=90
        )
        assert put.status_code == 200, put.text
        # Its kiosk pressed its button: the practice patient waits to be admitted.
        await clinician.wait_for(
            lambda: clinician.waiting.get(patient_id, {}).get("state") == "waiting", 20
        )
        call = await clinician.admit(patient_id)
        await clinician.wait_for(lambda: call.video_frames > 30 and call.audio_frames > 30, 60)
        await clinician.hang_up()


async def test_the_practice_kiosk_stops_when_unused_and_starts_again_when_wanted(hub: Hub) -> None:
    session = hub.session("clinician")
    practice = session.get(f"{hub.url}/api/practice", timeout=10).json()[0]
    start = f"{hub.url}/api/practice/{practice['patient_id']}/start"
    kiosks = hub.server.app.state.practice
    kiosks.quiet_s = 2.0  # instead of 10 minutes
    assert not kiosks.running(practice["team_id"])  # nothing runs until someone asks
    first = await asyncio.to_thread(session.post, start, timeout=90)
    assert first.status_code == 200, first.text
    assert kiosks.running(practice["team_id"])
    await wait_until(lambda: not kiosks.running(practice["team_id"]), 30, "the quiet kiosk to stop")
    again = await asyncio.to_thread(session.post, start, timeout=90)
    assert again.status_code == 200, again.text
    assert kiosks.running(practice["team_id"])

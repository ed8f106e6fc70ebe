"""Two hub processes on one PostgreSQL: a call across them, records through either one, and
a waiting patient who survives their instance dying."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import UTC, datetime

import httpx
import psycopg
import websockets

from porchlight.clinician_peer import ClinicianPeer
from porchlight.device.config import DeviceConfig
from porchlight.kiosk.config import KioskConfig
from porchlight.kiosk.core import KioskCore
from porchlight.kiosk.credential import DeviceCredential
from porchlight.kiosk.outbox import new_record_id
from porchlight.kiosk.records import vitals_record
from porchlight.protocol import CLINIC_WS_PATH, DEVICE_WS_PATH, SESSION_COOKIE

from .conftest import login


async def wait_until(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while not (value := predicate()):
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)
    return value


async def test_kiosk_on_one_instance_and_clinician_on_the_other_complete_a_call(
    cluster_db, hub_process, tmp_path
):
    first = hub_process(cluster_db.url)
    second = hub_process(cluster_db.url)
    demo = cluster_db.demo
    credential = DeviceCredential(first.url, demo.device_id, demo.patient_id, demo.device_token)
    config = KioskConfig(
        data_dir=tmp_path / "kiosk",
        ice_host_addresses=["127.0.0.1"],
        ending_s=0.0,
        device=DeviceConfig(simulate=True, speech=False),
    )
    config.data_dir.mkdir(parents=True)
    core = KioskCore(config, credential=credential)
    await core.start()
    try:
        async with ClinicianPeer(second.url, demo.username, demo.password) as clinician:
            await wait_until(lambda: core.status()["state"] == "idle", 30, "kiosk idle")
            core.button_down()
            core.button_up()
            # The kiosk joined on instance 1; the clinician on instance 2 sees it.
            await clinician.wait_for(lambda: demo.patient_id in clinician.waiting_seen_at, 15)
            await wait_until(lambda: core.status()["state"] == "waiting", 15, "waiting")
            call = await clinician.admit(demo.patient_id)
            await wait_until(
                lambda: (
                    (s := core.status())["call_id"] == call.call_id
                    and s.get("frames_received", 0) > 0
                ),
                30,
                "video at the kiosk",
            )
            await clinician.wait_for(lambda: call.first_video_frame_at is not None, 30)
            await clinician.wait_for(lambda: call.audio_frames > 0, 30)
            await clinician.hang_up()
            await wait_until(lambda: core.status()["state"] == "idle", 20, "kiosk home")
            await clinician.wait_for(lambda: demo.patient_id not in clinician.waiting_seen_at, 15)
    finally:
        await core.stop()


def vitals(patient_id: str, pulse: int = 70) -> dict:
    return vitals_record(
        {"spo2": 97, "pulse": pulse},
        record_id=new_record_id(),
        patient_id=patient_id,
        now=datetime.now(UTC),
    ).to_wire()


def test_records_synced_through_one_instance_are_seen_through_the_other(cluster_db, hub_process):
    first = hub_process(cluster_db.url)
    second = hub_process(cluster_db.url)
    demo = cluster_db.demo
    device = {"Authorization": f"Bearer {demo.device_token}"}
    batch = [vitals(demo.patient_id, pulse) for pulse in (61, 62, 63)]
    answer = httpx.post(first.url + "/api/records", json={"records": batch}, headers=device)
    assert [r["status"] for r in answer.json()["results"]] == ["stored"] * 3
    # The same batch again, through the other instance: each id is already there.
    again = httpx.post(second.url + "/api/records", json={"records": batch}, headers=device)
    assert [r["status"] for r in again.json()["results"]] == ["duplicate"] * 3
    with login(second.url) as clinician:
        today = clinician.get(f"/api/patients/{demo.patient_id}/today").json()
    assert sorted(v["record_id"] for v in today["vitals"]) == sorted(r["id"] for r in batch)


async def _kiosk_hello(url: str, token: str, **hello) -> tuple[object, dict]:
    ws = await websockets.connect(
        url + DEVICE_WS_PATH, additional_headers={"Authorization": f"Bearer {token}"}
    )
    await ws.send(json.dumps({"type": "hello", **hello}))
    welcome = json.loads(await ws.recv())
    assert welcome["type"] == "welcome"
    return ws, welcome


async def _next(ws, type_: str, timeout: float = 10.0) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        message = json.loads(await asyncio.wait_for(ws.recv(), deadline - time.monotonic()))
        if message["type"] == type_:
            return message


async def _clinic(url: str) -> object:
    with login(url) as client:
        cookie = client.cookies[SESSION_COOKIE]
    ws = await websockets.connect(
        url.replace("http", "ws") + CLINIC_WS_PATH,
        additional_headers={"Cookie": f"{SESSION_COOKIE}={cookie}", "Origin": url},
    )
    await ws.send(json.dumps({"type": "hello"}))
    return ws


async def _room_where(ws, predicate, timeout: float = 15.0) -> list[dict]:
    deadline = time.monotonic() + timeout
    while True:
        message = await _next(ws, "waiting_room", deadline - time.monotonic())
        if predicate(message["patients"]):
            return message["patients"]


async def test_a_waiting_patient_outlives_their_instance(cluster_db, hub_process):
    """SIGKILL the kiosk's instance: the clinician (on the other) still sees the patient, who
    reconnects to the survivor and keeps their place and original `since`."""
    doomed = hub_process(cluster_db.url)
    survivor = hub_process(cluster_db.url)
    demo = cluster_db.demo
    clinic = await _clinic(survivor.url)
    kiosk, _ = await _kiosk_hello(doomed.ws_url, demo.device_token, state="idle")
    await kiosk.send(json.dumps({"type": "join"}))
    since = (await _next(kiosk, "waiting"))["since"]
    await _room_where(clinic, lambda rows: any(r["patient_id"] == demo.patient_id for r in rows))

    doomed.kill()
    # The kiosk sees its link drop and reconnects elsewhere (the load balancer's job).
    kiosk2, _ = await _kiosk_hello(survivor.ws_url, demo.device_token, state="waiting", since=since)
    assert (await _next(kiosk2, "waiting"))["since"] == since
    rows = await _room_where(
        clinic,
        lambda rows: any(r["patient_id"] == demo.patient_id and r["device_online"] for r in rows),
    )
    (row,) = [r for r in rows if r["patient_id"] == demo.patient_id]
    assert (row["state"], row["since"]) == ("waiting", since)
    # The survivor can admit them.
    await clinic.send(json.dumps({"type": "admit", "patient_id": demo.patient_id}))
    started = await _next(clinic, "call_started")
    assert (await _next(kiosk2, "admitted"))["call_id"] == started["call_id"]
    await kiosk2.close()
    await clinic.close()


async def test_graceful_shutdown_sends_kiosks_elsewhere(cluster_db, hub_process):
    leaving = hub_process(cluster_db.url)
    staying = hub_process(cluster_db.url)
    demo = cluster_db.demo
    kiosk, _ = await _kiosk_hello(leaving.ws_url, demo.device_token, state="idle")
    await kiosk.send(json.dumps({"type": "join"}))
    since = (await _next(kiosk, "waiting"))["since"]
    assert await asyncio.to_thread(leaving.terminate)
    try:
        await asyncio.wait_for(kiosk.recv(), 10)
    except websockets.ConnectionClosed as closed:
        # 1012 "service restart": reconnect (the load balancer sends it to another instance).
        assert closed.rcvd is not None and closed.rcvd.code == 1012
    else:
        raise AssertionError("the kiosk socket stayed open through the shutdown")
    clinic = await _clinic(staying.url)
    rows = await _room_where(clinic, lambda rows: bool(rows))
    # Its place is kept (offline, within the grace period) until it comes back.
    assert [(r["patient_id"], r["since"], r["device_online"]) for r in rows] == [
        (demo.patient_id, since, False)
    ]
    kiosk2, _ = await _kiosk_hello(staying.ws_url, demo.device_token, state="waiting", since=since)
    await _room_where(clinic, lambda rows: rows and rows[0]["device_online"])
    await kiosk2.close()
    await clinic.close()


def _in_room(dsn: str, patient_id: str) -> bool:
    with psycopg.connect(dsn) as conn:
        found = conn.execute(
            "SELECT 1 FROM room_presence WHERE patient_id = %s", (patient_id,)
        ).fetchone()
    return found is not None


async def test_a_dead_instances_kiosks_count_as_dropped(cluster_db, hub_process):
    """Nobody reconnects: the survivor notices the silent instance and shows its patient
    offline (their grace period running), keeping their place and `since`."""
    fast = {"PORCHLIGHT_HUB_INSTANCE_DEAD_AFTER_S": "2"}
    doomed = hub_process(cluster_db.url, **fast)
    survivor = hub_process(cluster_db.url, **fast)
    demo = cluster_db.demo
    clinic = await _clinic(survivor.url)
    kiosk, _ = await _kiosk_hello(doomed.ws_url, demo.device_token, state="idle")
    await kiosk.send(json.dumps({"type": "join"}))
    since = (await _next(kiosk, "waiting"))["since"]
    await _room_where(
        clinic,
        lambda rows: any(r["patient_id"] == demo.patient_id and r["device_online"] for r in rows),
    )
    # Messages go out before the room's change is committed (a kill in between loses the
    # join, which the kiosk's next hello restores); here, kill once it is in the database.
    dsn = cluster_db.url.replace("postgresql+psycopg", "postgresql")
    deadline = time.monotonic() + 10
    while not _in_room(dsn, demo.patient_id):
        assert time.monotonic() < deadline, "the join never reached the database"
        await asyncio.sleep(0.01)
    doomed.kill()
    rows = await _room_where(
        clinic,
        lambda rows: any(
            r["patient_id"] == demo.patient_id and not r["device_online"] for r in rows
        ),
        timeout=20,
    )
    assert [(r["state"], r["since"]) for r in rows] == [("waiting", since)]
    await clinic.send(json.dumps({"type": "admit", "patient_id": demo.patient_id}))
    assert (await _next(clinic, "error"))["code"] == "device_offline"
    await clinic.close()

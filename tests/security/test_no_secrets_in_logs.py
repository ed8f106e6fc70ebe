"""Every log line written during a full enrolment, sync and call (hub at DEBUG, kiosk at
DEBUG, every library at DEBUG) is searched for credentials, codes, keys and anything that
identifies a patient. None may appear."""

from __future__ import annotations

import asyncio
import json
import logging
import shutil
import urllib.request
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import func, select

from porchlight.clinician_peer import ClinicianPeer
from porchlight.device.config import DeviceConfig
from porchlight.hub.config import HubConfig
from porchlight.hub.enrolment import enrolment_uri
from porchlight.hub.inbox import records
from porchlight.hub.server import HubServer
from porchlight.kiosk.config import KioskConfig
from porchlight.kiosk.core import KioskCore
from porchlight.kiosk.credential import load_credential
from porchlight.kiosk.records import vitals_record
from porchlight.kiosk.runner import run_kiosk
from porchlight.kiosk.view import KioskState
from porchlight.provisioning.enrol import key_path
from porchlight.provisioning.usb import ENROL_FILE

from .world import PASSWORD

pytestmark = [pytest.mark.timeout(120), pytest.mark.slow]


class Person:
    """The nurse's and clinician's browsers, through urllib (which logs nothing itself), so
    every line captured comes from the hub, the kiosk or the libraries they use."""

    def __init__(self, hub_url: str, username: str) -> None:
        self.hub_url = hub_url
        self.session = ""
        reply = self.call("POST", "/api/login", {"username": username, "password": PASSWORD})
        assert reply.status == 200
        cookie = reply.headers["set-cookie"]
        self.session = cookie.split(";", 1)[0].split("=", 1)[1]

    def call(self, method: str, path: str, body: object = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.hub_url + path, data=data, method=method)
        request.add_header("Content-Type", "application/json")
        if self.session:
            request.add_header("Cookie", f"porchlight_session={self.session}")
        with urllib.request.urlopen(request, timeout=10) as reply:
            reply.body = json.loads(reply.read() or b"null")
            return reply


SMALL = {"camera_width": 320, "camera_height": 240, "camera_fps": 15}


async def until(predicate, what: str, timeout: float = 20.0) -> None:
    try:
        async with asyncio.timeout(timeout):
            while not predicate():
                await asyncio.sleep(0.02)
    except TimeoutError:
        raise AssertionError(f"timed out waiting for {what}") from None


async def test_no_credential_code_key_or_patient_identifier_in_any_log(world, tmp_path, caplog):
    caplog.set_level(logging.DEBUG)  # the root logger: everything, from every library
    folder = tmp_path / "hub"
    folder.mkdir()
    shutil.copy(world.db_file, folder / "hub.db")
    data_dir = tmp_path / "kiosk"
    config = KioskConfig(
        data_dir=data_dir,
        ice_host_addresses=["127.0.0.1"],
        device=DeviceConfig(simulate=True, speech=False, **SMALL),
    )
    secrets: dict[str, str] = {
        "password": PASSWORD,
        "patient id": world.patient_a,
        "patient name": "Alice Able",
        "NHS number": "9434765919",
        "NHS number as shown": "943 476 5919",
        **{f"token of {actor}": token for actor, token in world.tokens.items()},
    }
    with HubServer(HubConfig(data_dir=folder, host="127.0.0.1"), port=0, log_level="debug") as hub:
        nurse = await asyncio.to_thread(Person, hub.url, "nurse_x")
        secrets["nurse session"] = nurse.session
        # The nurse's page calls: the patient list, making a code, the device list.
        await asyncio.to_thread(nurse.call, "GET", "/api/nurse/patients")
        made = (
            await asyncio.to_thread(
                nurse.call, "POST", f"/api/nurse/patients/{world.patient_a}/enrolments"
            )
        ).body
        secrets["enrolment code"] = made["code"]
        secrets["enrolment code as shown"] = made["code_display"]
        stick = data_dir / "usb" / "STICK"
        stick.mkdir(parents=True)
        (stick / ENROL_FILE).write_text(enrolment_uri(hub.url, made["code"]) + "\n")

        cores: list[KioskCore] = []
        stop = asyncio.Event()
        runner = asyncio.create_task(
            run_kiosk(config, ui=False, stop=stop, on_started=cores.append)
        )
        try:
            # Enrol (USB stick) → setup self-test → kiosk running.
            await until(lambda: cores and cores[0].view.state is KioskState.IDLE, "enrolled")
            core = cores[0]
            credential = load_credential(data_dir)
            secrets["device token"] = credential.token
            secrets["device key"] = key_path(data_dir).read_text().splitlines()[1]
            secrets["public key"] = hub.store.device_public_key(credential.device_id) or "?"

            # Sync: a vitals record through the outbox to the hub.
            assert core.records is not None
            record = vitals_record(
                {"spo2": 96, "pulse": 71},
                record_id=str(uuid.uuid4()),
                patient_id=credential.patient_id,
                now=datetime.now(UTC),
            )
            await asyncio.to_thread(core.records.save, [record])
            core.records.kick()

            def stored() -> int:
                with hub.store.engine.connect() as conn:
                    return conn.execute(
                        select(func.count()).select_from(records).where(records.c.id == record.id)
                    ).scalar_one()

            await until(lambda: stored() == 1, "the record at the hub")
            clinical = await asyncio.to_thread(Person, hub.url, "clin_x")
            for path in (
                f"/api/patients/{world.patient_a}/today",
                f"/fhir/Observation?patient={world.patient_a}",
            ):
                await asyncio.to_thread(clinical.call, "GET", path)
            secrets["clinician session"] = clinical.session

            # Call: the patient presses, a clinician admits, video flows, the clinician ends.
            async with ClinicianPeer(
                hub.url, "clin_x", PASSWORD, camera=DeviceConfig(simulate=True, **SMALL)
            ) as clinician:
                core.button_down()
                core.button_up()
                await clinician.wait_for(lambda: world.patient_a in clinician.waiting, 10)
                call = await clinician.admit(world.patient_a)
                await clinician.wait_for(lambda: call.video_frames >= 5, 20)
                await until(lambda: core.view.show_video, "video on the kiosk")
                await clinician.hang_up()
                await until(lambda: core.view.state is not KioskState.IN_CALL, "call over")

            # The nurse withdraws the kiosk (the revocation path logs too).
            await asyncio.to_thread(
                nurse.call, "POST", f"/api/devices/{credential.device_id}/revoke"
            )
            await asyncio.to_thread(nurse.call, "GET", "/api/nurse/devices")
            await until(lambda: not (data_dir / "credential.json").exists(), "set aside")
        finally:
            stop.set()
            await asyncio.wait_for(runner, 20)

    text = "\n".join(
        f"{r.name} {r.levelname} {r.getMessage()} {r.exc_text or ''}" for r in caplog.records
    )
    assert len(caplog.records) > 50, "too few log lines: the capture is not working"
    assert "GET /api/" in text or "kiosk enrolled" in text  # access and app logs were seen
    leaked = {what: value for what, value in secrets.items() if value and value in text}
    lines = [
        f"{r.name}: {r.getMessage()[:200]}"
        for r in caplog.records
        if any(v in f"{r.getMessage()} {r.exc_text or ''}" for v in leaked.values())
    ]
    assert not leaked, f"found in the logs: {sorted(leaked)}, e.g. {lines[:5]}"

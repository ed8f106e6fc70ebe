"""The whole kiosk life through `run_kiosk` (headless, simulated hardware, real hub): no
credential → setup (USB stick) → running → withdrawn by the nurse → setup again →
re-enrolled with a fresh credential → running."""

from __future__ import annotations

import asyncio
import shutil

import pytest
import requests
from security.world import PASSWORD

from porchlight.device.config import DeviceConfig
from porchlight.hub.config import HubConfig
from porchlight.hub.enrolment import enrolment_uri
from porchlight.hub.server import HubServer
from porchlight.kiosk.config import KioskConfig
from porchlight.kiosk.core import KioskCore
from porchlight.kiosk.credential import credential_path, load_credential
from porchlight.kiosk.runner import run_kiosk
from porchlight.kiosk.view import KioskState
from porchlight.provisioning.usb import ENROL_FILE

pytestmark = pytest.mark.timeout(90)


async def until(predicate, what: str, timeout: float = 20.0) -> None:
    try:
        async with asyncio.timeout(timeout):
            while not predicate():
                await asyncio.sleep(0.02)
    except TimeoutError:
        raise AssertionError(f"timed out waiting for {what}") from None


async def test_enrol_run_revoke_and_re_enrol(world, tmp_path):
    folder = tmp_path / "hub"
    folder.mkdir()
    shutil.copy(world.db_file, folder / "hub.db")
    data_dir = tmp_path / "kiosk"
    stick = data_dir / "usb" / "STICK"
    config = KioskConfig(
        data_dir=data_dir,
        ice_host_addresses=["127.0.0.1"],
        device=DeviceConfig(simulate=True, speech=False),
    )
    with HubServer(HubConfig(data_dir=folder, host="127.0.0.1"), port=0) as hub:
        nurse = requests.Session()
        assert nurse.post(
            hub.url + "/api/login", json={"username": "nurse_x", "password": PASSWORD}
        ).ok

        def usb_file() -> None:
            made = nurse.post(f"{hub.url}/api/nurse/patients/{world.patient_a}/enrolments")
            stick.mkdir(parents=True, exist_ok=True)
            (stick / ENROL_FILE).write_text(enrolment_uri(hub.url, made.json()["code"]) + "\n")

        cores: list[KioskCore] = []
        stop = asyncio.Event()
        runner = asyncio.create_task(
            run_kiosk(config, ui=False, stop=stop, on_started=cores.append)
        )
        try:
            await asyncio.to_thread(usb_file)
            await until(lambda: cores and cores[-1].view.state is KioskState.IDLE, "enrolled")
            first = load_credential(data_dir)
            assert hub.store.latest_self_test(first.device_id) is not None

            revoked = await asyncio.to_thread(
                nurse.post, f"{hub.url}/api/devices/{first.device_id}/revoke"
            )
            assert revoked.status_code == 200
            # The kiosk hears it at once (its socket is closed) and goes back to setup.
            await until(lambda: not credential_path(data_dir).exists(), "setup again")
            assert (data_dir / "credential.json.refused").exists()

            await asyncio.to_thread(usb_file)
            await until(lambda: len(cores) == 2, "a second start")
            await until(lambda: cores[1].view.state is KioskState.IDLE, "running again")
            second = load_credential(data_dir)
            assert second.device_id != first.device_id and second.token != first.token
            assert second.patient_id == first.patient_id == world.patient_a
        finally:
            stop.set()
            await asyncio.wait_for(runner, 20)
            nurse.close()

"""The running kiosk keeps status.json current for the update agent's health check."""

from __future__ import annotations

import asyncio
import dataclasses

from porchlight.device.sim_control import sim_request
from porchlight.kiosk.core import KioskCore
from porchlight.kiosk.credential import save_credential
from porchlight.kiosk.runner import run_kiosk
from porchlight.kiosk.view import KioskState
from porchlight.provisioning.kiosk_status import read_status
from tests.kiosk.conftest import wait_until


async def test_a_running_kiosk_reports_healthy_then_busy_when_the_patient_joins(hub, kiosk_config):
    save_credential(kiosk_config.data_dir, hub.credential())
    config = dataclasses.replace(kiosk_config, hub_url=hub.url)
    stop = asyncio.Event()
    cores: list[KioskCore] = []
    runner = asyncio.create_task(run_kiosk(config, ui=False, stop=stop, on_started=cores.append))
    sock = config.data_dir / "sim.sock"
    try:
        status = await wait_until(
            lambda: (s := read_status(config.data_dir)) and s.hub == "reached" and s,
            15,
            "a status file saying the hub is reached",
        )
        assert status.problems() == []
        assert status.activity == "idle" and status.last_touch_at is None
        assert status.screen_drawn and status.button_ok and status.light_ok

        await asyncio.to_thread(sim_request, sock, "press")
        await asyncio.to_thread(sim_request, sock, "release")
        await wait_until(lambda: cores[0].view.state is KioskState.WAITING, 5, "waiting")
        busy = await wait_until(
            lambda: (s := read_status(config.data_dir)) and s.activity == "call" and s,
            5,
            "the status file to say the patient is busy",
        )
        assert busy.last_touch_at is not None
        assert busy.updated_at >= status.updated_at
        assert hub.seed.device_token not in (config.data_dir / "status.json").read_text()
    finally:
        stop.set()
        await asyncio.wait_for(runner, 10)

"""KioskCore headless, with the simulated device and the real hub on 127.0.0.1."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
from collections.abc import AsyncIterator

from porchlight.clinician_peer import ClinicianPeer
from porchlight.device.sim_control import sim_request
from porchlight.kiosk.config import KioskConfig
from porchlight.kiosk.core import KioskCore
from porchlight.kiosk.credential import DeviceCredential, save_credential
from porchlight.kiosk.runner import run_kiosk
from porchlight.kiosk.view import KioskState, KioskView

from .conftest import Hub, clinician_for, listed, wait_until


@contextlib.asynccontextmanager
async def running(
    config: KioskConfig, credential: DeviceCredential | None
) -> AsyncIterator[KioskCore]:
    if credential is not None:
        save_credential(config.data_dir, credential)
    core = KioskCore(config)
    await core.start()
    try:
        yield core
    finally:
        await core.stop()


async def until_state(core: KioskCore, state: KioskState, timeout: float = 10) -> None:
    try:
        await wait_until(lambda: core.view.state == state, timeout, f"the kiosk to be {state}")
    except AssertionError as exc:
        raise AssertionError(f"{exc}; the kiosk is {core.status()}") from None


async def test_press_joins_the_waiting_room_with_instant_feedback(
    hub: Hub, kiosk_config: KioskConfig, clinician: ClinicianPeer
) -> None:
    async with running(kiosk_config, hub.credential()) as core:
        await until_state(core, KioskState.IDLE)
        assert core.status()["hub_connected"] is True
        assert core.device.light.pattern == "steady"
        views: list[KioskView] = []
        core.subscribe(views.append)
        speaker = core.device.speaker

        pressed_at = time.monotonic()
        core.device.button.press()  # a (mock) GPIO edge: the path a real press takes
        await wait_until(lambda: speaker.beeps, 0.5, "a beep")
        await wait_until(lambda: any(v.pressed for v in views), 0.5, "visible feedback")
        assert speaker.beeps[0].at - pressed_at < 0.2
        core.device.button.release()

        await until_state(core, KioskState.WAITING, timeout=1.0)
        assert time.monotonic() - pressed_at < 1.0
        await listed(clinician, hub.seed.patient_id, online=True)
        assert core.device.light.pattern == "slow_blink"
        await wait_until(
            lambda: "Your nurse knows you are waiting." in speaker.said, 2, "the spoken prompt"
        )


async def test_on_screen_button_takes_the_same_path(hub: Hub, kiosk_config: KioskConfig) -> None:
    async with running(kiosk_config, hub.credential()) as core:
        await until_state(core, KioskState.IDLE)
        core.button_down()
        assert core.view.state == KioskState.JOINING and core.view.pressed  # at once
        core.button_up()
        await until_state(core, KioskState.WAITING, timeout=1.0)


async def test_hub_restart_puts_the_waiting_patient_back_in_the_room(
    hub: Hub, kiosk_config: KioskConfig
) -> None:
    async with running(kiosk_config, hub.credential()) as core:
        await until_state(core, KioskState.IDLE)
        core.button_down()
        core.button_up()
        await until_state(core, KioskState.WAITING)
        since = core._machine.since
        assert since

        await hub.stop()
        await until_state(core, KioskState.OFFLINE, timeout=5)
        assert "back in the waiting room" in core.view.detail
        assert core.device.light.pattern == "heartbeat"
        # A press while offline still beeps and shows at once.
        beeps = len(core.device.speaker.beeps)
        core.button_down()
        assert core.view.pressed
        core.button_up()
        await wait_until(lambda: len(core.device.speaker.beeps) > beeps, 0.5, "an offline beep")

        await hub.start()
        await until_state(core, KioskState.WAITING, timeout=10)
        assert core.status()["hub_connected"]
        # The clinician (a fresh page after the restart) sees them, with their original time.
        async with clinician_for(hub) as page:
            row = await listed(page, hub.seed.patient_id, online=True)
            assert row["since"] == since


async def test_missing_credential_means_needs_setup_and_no_link(kiosk_config: KioskConfig) -> None:
    async with running(kiosk_config, None) as core:
        status = core.status()
        assert status["needs_setup"] is True and status["hub_connected"] is False
        assert "not set up" in status["last_error"]
        assert core.view.headline == "This kiosk needs setting up"
        core.button_down()
        core.button_up()
        await wait_until(lambda: core.device.speaker.beeps, 0.5, "a beep")
        assert core.view.state == KioskState.OFFLINE


async def test_refused_credential_means_needs_setup(hub: Hub, kiosk_config: KioskConfig) -> None:
    async with running(kiosk_config, hub.credential(token="revoked-or-wrong")) as core:
        await wait_until(lambda: core.status()["needs_setup"], 10, "needs setup")
        assert core.view.headline == "This kiosk needs setting up"
        assert "refused" in core.status()["last_error"]
        assert "revoked-or-wrong" not in str(core.status())
        assert core._link is not None and core._link.stats.attempts == 1


async def test_run_kiosk_headless_with_sim_control(hub: Hub, kiosk_config: KioskConfig) -> None:
    save_credential(kiosk_config.data_dir, hub.credential())
    config = dataclasses.replace(kiosk_config, hub_url=hub.url)
    stop = asyncio.Event()
    cores: list[KioskCore] = []
    runner = asyncio.create_task(run_kiosk(config, ui=False, stop=stop, on_started=cores.append))
    sock = config.data_dir / "sim.sock"
    try:
        await wait_until(lambda: cores and sock.exists(), 10, "the kiosk to start")

        def status() -> dict:
            return sim_request(sock, "status", timeout=5)

        await wait_until(lambda: cores[0].view.state == KioskState.IDLE, 10, "idle")
        assert (await asyncio.to_thread(status))["state"] == "idle"
        await asyncio.to_thread(sim_request, sock, "press")
        await asyncio.to_thread(sim_request, sock, "release")
        await until_state(cores[0], KioskState.WAITING, timeout=2)
        reply = await asyncio.to_thread(status)
        assert reply["state"] == "waiting" and reply["hub_connected"] is True
        assert hub.seed.device_token not in str(reply)
        # Holding the button for 2 s leaves again (once the last release is past its debounce;
        # a press within 30 ms of a release is contact bounce, not a new press).
        await wait_until(lambda: not cores[0].device.button.is_pressed, 1, "the release")
        await asyncio.to_thread(sim_request, sock, "hold", seconds=2.2)
        await until_state(cores[0], KioskState.IDLE, timeout=2)
    finally:
        stop.set()
        await asyncio.wait_for(runner, 10)
    assert not sock.exists()

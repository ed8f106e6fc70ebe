"""SetupSession: runs the setup screen's flow (kiosk/setup_flow.py) against the real world.

It watches the camera for QR codes and the USB mounts for an enrolment file, enrols with the
hub, writes Wi-Fi connections and runs the self-test, each off the event loop, and tells
subscribers (the UI) when the view changes. `done` is set when the nurse presses Finish;
`enrolled` then holds the new credential.

    session = SetupSession(config, device, wifi=FileWifi(folder))
    await session.start(); ...; await session.done.wait(); await session.stop()
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from porchlight.errors import PorchlightError
from porchlight.kiosk.config import KioskConfig
from porchlight.kiosk.credential import credential_path
from porchlight.kiosk.setup_flow import (
    ApplyWifi,
    Effect,
    Enrol,
    Finish,
    ResultLine,
    RunSelfTest,
    ScanWifi,
    SetupFlow,
    SetupView,
    Step,
)
from porchlight.provisioning import selftest
from porchlight.provisioning.enrol import Enrolled, enrol_device, key_path
from porchlight.provisioning.qr_scan import QrScanner
from porchlight.provisioning.usb import MOUNT_ROOTS, UsbEnrolment, UsbWatcher
from porchlight.provisioning.wifi import WifiBackend

log = logging.getLogger(__name__)

BUTTON_WAIT_S = 20.0


class SetupSession:
    def __init__(
        self,
        config: KioskConfig,
        device: Any,
        *,
        wifi: WifiBackend,
        usb_roots: Iterable[Path] = MOUNT_ROOTS,
        open_camera: Callable[[], Any] | None = None,
        button_wait_s: float | None = BUTTON_WAIT_S,
        usb_interval_s: float = 1.0,
    ) -> None:
        self.config = config
        self.device = device
        self.wifi = wifi
        self.flow = SetupFlow()
        self.view: SetupView = self.flow.view
        self.done = asyncio.Event()
        self.enrolled: Enrolled | None = None
        self._open_camera = open_camera or device.open_camera
        self._button_wait_s = button_wait_s
        self._subscribers: list[Callable[[SetupView], None]] = []
        self._scanner: QrScanner | None = None
        self._usb = UsbWatcher(
            self._on_usb, self._on_usb_error, roots=usb_roots, interval_s=usb_interval_s
        )
        self._tasks: set[asyncio.Task[Any]] = set()

    # ---------------------------------------------------------------- lifecycle

    async def start(self) -> None:
        self._start_scanner()
        self._usb.start()

    async def stop(self) -> None:
        await self._stop_scanner()
        await self._usb.stop()
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    def _start_scanner(self) -> None:
        try:
            track = self._open_camera()
        except Exception as exc:  # no camera: the keypad and USB still work
            log.warning("no camera for QR codes: %s", type(exc).__name__)
            return
        self._scanner = QrScanner(track, lambda text: self.act("qr_text", text))
        self._scanner.start()

    async def _stop_scanner(self) -> None:
        scanner, self._scanner = self._scanner, None
        if scanner is not None:
            await scanner.stop()

    # ---------------------------------------------------------------- inputs

    def subscribe(self, fn: Callable[[SetupView], None]) -> Callable[[], None]:
        self._subscribers.append(fn)
        return lambda: self._subscribers.remove(fn) if fn in self._subscribers else None

    def act(self, action: str, *args: Any) -> None:
        """Call the flow's `action` (e.g. "key", "A") and carry out what it asks for."""
        effects: list[Effect] = getattr(self.flow, action)(*args)
        self._changed()
        for effect in effects:
            self._spawn(self._carry_out(effect))

    def _on_usb(self, found: UsbEnrolment) -> None:
        self.act("usb_file", found.ticket, found.wifi)

    def _on_usb_error(self, exc: PorchlightError) -> None:
        self.act("refused", str(exc))

    def _changed(self) -> None:
        view = self.flow.view
        if view == self.view:
            return
        self.view = view
        for fn in list(self._subscribers):
            try:
                fn(view)
            except Exception:
                log.exception("a setup view subscriber failed")

    # ---------------------------------------------------------------- effects

    async def _carry_out(self, effect: Effect) -> None:
        match effect:
            case Enrol(ticket=ticket):
                try:
                    enrolled = await asyncio.to_thread(
                        enrol_device,
                        ticket,
                        data_dir=self.config.data_dir,
                        hub_url=self.config.hub_url,
                    )
                except PorchlightError as exc:
                    self.act("enrol_failed", str(exc))
                    return
                self.enrolled = enrolled
                self.act("enrolled", enrolled.display_name)
            case ApplyWifi(network=network):
                try:
                    await asyncio.to_thread(self.wifi.apply, network)
                except PorchlightError as exc:
                    self.act("wifi_failed", str(exc))
                    return
                self.act("wifi_done", network.ssid)
            case ScanWifi():
                try:
                    networks = await asyncio.to_thread(self.wifi.scan)
                except PorchlightError as exc:
                    self.act("wifi_failed", str(exc))
                    return
                self.act("networks_found", networks)
            case RunSelfTest():
                await self._self_test()
            case Finish():
                self.done.set()

    async def _self_test(self) -> None:
        await self._stop_scanner()  # the self-test needs the camera
        credential = self.enrolled.credential if self.enrolled else None
        probe = (
            selftest.HubProbe(self.config.hub_url or credential.hub_url, credential.token)
            if credential is not None
            else None
        )
        try:
            report = await selftest.run_self_test(
                self.device,
                probe,
                trigger="setup",
                wait_for_press=None
                if self._button_wait_s is None  # nobody there to press it
                else selftest.press_waiter(self.device.button, self._button_wait_s),
            )
            await asyncio.to_thread(selftest.record_run, self.config.data_dir, report.ran_at)
            if probe is not None:
                try:
                    await asyncio.to_thread(probe.send_report, report)
                except PorchlightError as exc:
                    log.warning("the self-test report was not sent: %s", exc)
        finally:
            if probe is not None:
                probe.close()
        self.act("self_test_done", [ResultLine(r.words, r.status.value) for r in report.results])

    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


# ---------------------------------------------------------------- running it

REVOKED_SUFFIX = ".refused"


def set_aside_credential(data_dir: Path) -> Path | None:
    """Move a refused credential (and its key) out of the way, so the kiosk starts in setup.

    Kept, not deleted: support can still see which device it was."""
    moved = None
    for path in (credential_path(data_dir), key_path(data_dir)):
        if path.exists():
            target = path.with_name(path.name + REVOKED_SUFFIX)
            path.replace(target)
            moved = moved or target
    return moved


async def run_setup(config: Any, *, ui: bool = True, stop: Any = None) -> bool:
    """Show the setup screen until the nurse finishes (True) or `stop` is set (False).

    Real hardware and NetworkManager on a Raspberry Pi; simulated ones elsewhere (Wi-Fi
    connections are then written to <data_dir>/wifi, USB sticks looked for in <data_dir>/usb).
    """
    from porchlight.device.hardware import open_device, should_simulate
    from porchlight.provisioning.wifi import FileWifi, NmcliWifi

    stop = stop or asyncio.Event()
    device_config = config.device_config()
    simulate = should_simulate(device_config)
    device = open_device(device_config, loop=asyncio.get_running_loop())
    data_dir = Path(config.data_dir)
    session = SetupSession(
        config,
        device,
        wifi=FileWifi(data_dir / "wifi") if simulate else NmcliWifi(),
        usb_roots=[data_dir / "usb"] if simulate else MOUNT_ROOTS,
        button_wait_s=BUTTON_WAIT_S if ui else None,
    )
    if not ui:
        # No screen, nobody to press Finish: done once enrolled and checked (QR or USB).
        session.subscribe(lambda view: session.act("finish") if view.step is Step.DONE else None)
    await session.start()
    app = None
    if ui:
        from porchlight.kiosk.ui_setup import SetupApp  # Kivy only when there is a screen

        app = SetupApp(session)
    tasks = [asyncio.ensure_future(session.done.wait()), asyncio.ensure_future(stop.wait())]
    if app is not None:
        tasks.append(asyncio.ensure_future(app.async_run(async_lib="asyncio")))
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        return session.done.is_set()
    finally:
        if app is not None:
            app.stop()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await session.stop()
        await device.close()

"""Running the kiosk: core + device + (optionally) the Kivy UI on one asyncio loop.

`run_kiosk(config)` is the coroutine the demo and tests use; `main(config)` is the blocking
entry point behind `porchlight kiosk`. systemd is told READY once the kiosk is really usable:
headless as soon as the core runs, with the UI once it has drawn its first screen (the app
calls `core.on_ui_ready()`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Callable
from typing import Any

from porchlight import config as config_loader
from porchlight.device import watchdog
from porchlight.kiosk.config import KioskConfig
from porchlight.kiosk.core import KioskCore
from porchlight.kiosk.credential import credential_path, load_credential
from porchlight.kiosk.setup_session import run_setup, set_aside_credential
from porchlight.kiosk.status_report import StatusReporter
from porchlight.kiosk.view import KioskState
from porchlight.protocol import CLOSE_NOT_AUTHORISED
from porchlight.provisioning import selftest

log = logging.getLogger(__name__)

# Refusals that mean the credential is dead (revoked or unknown), not a passing problem.
REVOKED = frozenset({401, CLOSE_NOT_AUTHORISED})


async def run_kiosk(
    config: KioskConfig,
    *,
    ui: bool = True,
    stop: asyncio.Event | None = None,
    on_started: Callable[[KioskCore], None] | None = None,
) -> None:
    """Run until `stop` is set (or, with a UI, until the window closes).

    `on_started(core)` is called once the core is running (tests use it to reach the core).
    With no credential the kiosk starts in setup (kiosk/ui_setup.py); when the hub refuses
    the credential for good (revoked: 401/4401) the credential is set aside and setup shows
    again, so a nurse can enrol the kiosk afresh.
    """
    stop = stop or asyncio.Event()
    while not stop.is_set():
        if not credential_path(config.data_dir).exists() and not await run_setup(
            config, ui=ui, stop=stop
        ):
            return
        if not await _run_enrolled(config, ui=ui, stop=stop, on_started=on_started):
            return
        set_aside_credential(config.data_dir)
        log.warning("the hub refused this kiosk's credential; showing setup again")


async def _run_enrolled(
    config: KioskConfig,
    *,
    ui: bool,
    stop: asyncio.Event,
    on_started: Callable[[KioskCore], None] | None,
) -> bool:
    """Run the enrolled kiosk; True when it stopped because its credential was revoked."""
    revoked = asyncio.Event()
    core = KioskCore(config)
    await core.start()
    # Headless there is no screen to draw, so "drawn" cannot be what keeps it unhealthy.
    reporter = StatusReporter(
        core, config.data_dir, screen=lambda: not ui or core.ui_ready.is_set()
    )
    reporter.start()
    core.subscribe(lambda _view: revoked.set() if core.refused_status in REVOKED else None)
    pinger = watchdog.Watchdog()
    pinger.start()
    tasks: list[asyncio.Task[object]] = []
    try:
        if on_started is not None:
            on_started(core)
        revoked_task = asyncio.create_task(revoked.wait(), name="kiosk-revoked")
        stop_task = asyncio.create_task(stop.wait(), name="kiosk-stop")
        daily_task = asyncio.create_task(_daily_self_test(core, config), name="kiosk-selftest")
        tasks = [revoked_task, stop_task, daily_task]
        if not ui:
            watchdog.notify(ready=True, status="kiosk running (no screen)")
            await asyncio.wait({revoked_task, stop_task}, return_when=asyncio.FIRST_COMPLETED)
            return revoked.is_set()
        app = _make_app(core, config)
        ui_task = asyncio.create_task(app.async_run(async_lib="asyncio"), name="kiosk-ui")
        ready_task = asyncio.create_task(_ready_when_drawn(core, reporter), name="kiosk-ready")
        tasks += [ui_task, ready_task]
        await asyncio.wait({ui_task, stop_task, revoked_task}, return_when=asyncio.FIRST_COMPLETED)
        if not ui_task.done():
            app.stop()
            await ui_task
        elif ui_task.exception() is not None:
            raise ui_task.exception()  # type: ignore[misc]
        return revoked.is_set()
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        watchdog.notify(stopping=True)
        await pinger.stop()
        await reporter.stop()
        await core.stop()


async def _daily_self_test(core: KioskCore, config: KioskConfig) -> None:
    """The once-a-day self-test, while the kiosk sits on its home screen."""
    credential = load_credential(config.data_dir)
    hub_url = config.hub_url or credential.hub_url
    daily = selftest.DailySelfTest(
        core.device,
        lambda: selftest.HubProbe(hub_url, credential.token),
        data_dir=config.data_dir,
        is_idle=lambda: core.view.state is KioskState.IDLE,
    )
    await daily.run_forever()


def _make_app(core: KioskCore, config: KioskConfig) -> Any:
    # Kivy is imported only when there is a screen to draw (and after the CLI set its env).
    from porchlight.kiosk.app import KioskApp
    from porchlight.kiosk.ui_config import UiConfig

    ui_config = config_loader.load(
        UiConfig,
        "ui",
        width=config.window_width,
        height=config.window_height,
        fullscreen=config.fullscreen,
    )
    return KioskApp(core, ui_config, hold_to_leave_s=core.hold_to_leave_s)


async def _ready_when_drawn(core: KioskCore, reporter: StatusReporter) -> None:
    await core.ui_ready.wait()
    reporter.changed()
    watchdog.notify(ready=True, status="kiosk running")


def main(config: KioskConfig, *, ui: bool = True) -> None:
    """Blocking entry point (`porchlight kiosk`): runs until SIGINT/SIGTERM or the window closes."""

    async def _main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, stop.set)
        await run_kiosk(config, ui=ui, stop=stop)

    asyncio.run(_main())

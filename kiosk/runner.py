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

log = logging.getLogger(__name__)


async def run_kiosk(
    config: KioskConfig,
    *,
    ui: bool = True,
    stop: asyncio.Event | None = None,
    on_started: Callable[[KioskCore], None] | None = None,
) -> None:
    """Run until `stop` is set (or, with a UI, until the window closes).

    `on_started(core)` is called once the core is running (tests use it to reach the core).
    """
    stop = stop or asyncio.Event()
    core = KioskCore(config)
    await core.start()
    pinger = watchdog.Watchdog()
    pinger.start()
    tasks: list[asyncio.Task[object]] = []
    try:
        if on_started is not None:
            on_started(core)
        if not ui:
            watchdog.notify(ready=True, status="kiosk running (no screen)")
            await stop.wait()
            return
        app = _make_app(core, config)
        ui_task = asyncio.create_task(app.async_run(async_lib="asyncio"), name="kiosk-ui")
        stop_task = asyncio.create_task(stop.wait(), name="kiosk-stop")
        ready_task = asyncio.create_task(_ready_when_drawn(core), name="kiosk-ready")
        tasks = [ui_task, stop_task, ready_task]
        await asyncio.wait({ui_task, stop_task}, return_when=asyncio.FIRST_COMPLETED)
        if not ui_task.done():
            app.stop()
            await ui_task
        elif ui_task.exception() is not None:
            raise ui_task.exception()  # type: ignore[misc]
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        watchdog.notify(stopping=True)
        await pinger.stop()
        await core.stop()


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


async def _ready_when_drawn(core: KioskCore) -> None:
    await core.ui_ready.wait()
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

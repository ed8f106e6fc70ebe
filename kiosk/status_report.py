"""The running kiosk reports on itself to the update agent through `status.json`.

The agent (root) decides from this file whether a new version is healthy and whether the
patient is busy (provisioning/kiosk_status.py). The kiosk writes it when its screen is first
drawn, whenever its view changes, and every `refresh_s` so a hung kiosk shows as stale.
Writes are atomic and fsynced, so they go to a thread; changes in between are coalesced.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from porchlight import __version__
from porchlight.kiosk.view import KioskState, KioskView
from porchlight.provisioning.kiosk_status import KioskStatus, write_status

log = logging.getLogger(__name__)

# What the agent must wait for: anything where the patient is with us.
_ACTIVITY = {
    KioskState.JOINING: "call",
    KioskState.WAITING: "call",
    KioskState.IN_CALL: "call",
    KioskState.ENDING: "call",
}


def kiosk_status(
    core: Any,
    *,
    started_at: float,
    now: float,
    screen_drawn: bool,
    pid: int,
    last_touch_at: float | None = None,
) -> KioskStatus:
    """Pure: the status record for what `core` shows now (no patient data: states only)."""
    view: KioskView = core.view
    status = core.status()
    device = getattr(core, "device", None)
    light = getattr(device, "light", None)
    button = getattr(device, "button", None)
    if status.get("hub_connected"):
        hub = "reached"
    elif view.state is KioskState.OFFLINE:
        hub = "offline"  # the offline screen is up: handled
    else:
        hub = "failing"
    activity = "setup" if status.get("needs_setup") else _ACTIVITY.get(view.state, "idle")
    records = getattr(core, "records", None)
    depth = None
    if records is not None:
        with contextlib.suppress(Exception):  # a broken outbox is reported elsewhere
            depth = records.outbox.status(now).unsent
    return KioskStatus(
        version=__version__,
        pid=pid,
        started_at=started_at,
        updated_at=now,
        screen_drawn=screen_drawn,
        button_ok=button is not None and getattr(button, "pin", None) is not None,
        light_ok=light is not None and getattr(light, "pattern", None) == view.light,
        hub=hub,
        activity=activity,
        last_touch_at=last_touch_at,
        outbox_depth=depth,
    )


class StatusReporter:
    """Keeps `<data_dir>/status.json` current for as long as it runs."""

    def __init__(
        self,
        core: Any,
        data_dir: Path,
        *,
        screen: Callable[[], bool],
        refresh_s: float = 30.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._core = core
        self._data_dir = Path(data_dir)
        self._screen = screen
        self._refresh_s = refresh_s
        self._clock = clock
        self._started_at = clock()
        self._changed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._unsubscribe: Callable[[], None] | None = None
        self._last_touch_at: float | None = None
        self.writes = 0

    def start(self) -> None:
        self._unsubscribe = self._core.subscribe(self._on_view)
        self._changed.set()
        self._task = asyncio.create_task(self._run(), name="kiosk-status")

    def _on_view(self, view: KioskView) -> None:
        if view.pressed:
            self._last_touch_at = self._clock()
        self._changed.set()

    def changed(self) -> None:
        """Something outside the view changed (e.g. the screen was drawn)."""
        self._changed.set()

    async def stop(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), self._refresh_s)
            self._changed.clear()
            status = kiosk_status(
                self._core,
                started_at=self._started_at,
                now=self._clock(),
                screen_drawn=self._screen(),
                pid=os.getpid(),
                last_touch_at=self._last_touch_at,
            )
            try:
                await asyncio.to_thread(write_status, self._data_dir, status)
                self.writes += 1
            except OSError as exc:
                log.warning("cannot write the kiosk status file: %s", exc.strerror)

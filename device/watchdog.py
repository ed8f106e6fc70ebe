"""systemd service notifications (sd_notify) and the watchdog keep-alive.

The kiosk runs as a systemd service with Type=notify and WatchdogSec=: it says READY=1 once
it is up, and sends WATCHDOG=1 regularly from the event loop, so a hung loop gets the kiosk
restarted. Outside systemd (NOTIFY_SOCKET unset) everything here does nothing.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections.abc import Callable, Mapping

log = logging.getLogger(__name__)


def _address(env: Mapping[str, str]) -> str | None:
    path = env.get("NOTIFY_SOCKET")
    if not path:
        return None
    # "@name" is a Linux abstract socket: the name starts with a NUL byte.
    return "\0" + path[1:] if path.startswith("@") else path


def notify(
    *,
    ready: bool = False,
    status: str | None = None,
    watchdog: bool = False,
    stopping: bool = False,
    env: Mapping[str, str] | None = None,
) -> bool:
    """Send one notification to systemd; True if it was sent, False if there is no socket.

    Never raises: a lost notification must not take the kiosk down (systemd's own timeouts
    deal with a kiosk that never reports).
    """
    env = os.environ if env is None else env
    address = _address(env)
    if address is None:
        return False
    fields = []
    if ready:
        fields.append("READY=1")
    if stopping:
        fields.append("STOPPING=1")
    if status is not None:
        fields.append("STATUS=" + " ".join(status.split()))  # one line
    if watchdog:
        fields.append("WATCHDOG=1")
    if not fields:
        return False
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.setblocking(False)  # a full queue must not stall the event loop
            sock.sendto("\n".join(fields).encode(), address)
    except OSError as exc:
        log.warning("cannot notify systemd: %s", exc)
        return False
    return True


def watchdog_interval(env: Mapping[str, str] | None = None) -> float | None:
    """Seconds between keep-alives (half of WATCHDOG_USEC), or None if no watchdog is set."""
    env = os.environ if env is None else env
    if _address(env) is None:
        return None
    pid = env.get("WATCHDOG_PID")
    if pid and pid.strip() != str(os.getpid()):
        return None  # the watchdog is meant for another process
    try:
        usec = int(env.get("WATCHDOG_USEC", "0"))
    except ValueError:
        return None
    return usec / 2_000_000 if usec > 0 else None


class Watchdog:
    """Pings systemd's watchdog from the asyncio loop while `healthy()` says so.

    Because the pings run on the loop, a blocked or dead loop stops them and systemd restarts
    the kiosk. `healthy` can veto pings for other failures (e.g. the UI stopped drawing).
    """

    def __init__(
        self,
        *,
        env: Mapping[str, str] | None = None,
        healthy: Callable[[], bool] | None = None,
    ) -> None:
        self._env = dict(os.environ if env is None else env)
        self._healthy = healthy
        self.interval = watchdog_interval(self._env)
        self.pings = 0
        self._task: asyncio.Task[None] | None = None

    @property
    def enabled(self) -> bool:
        return self.interval is not None

    def start(self) -> None:
        """Start pinging (no-op without a watchdog). Call from the running loop."""
        if self.interval is None or self._task is not None:
            return
        self._task = asyncio.get_running_loop().create_task(self._run(self.interval))

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def _run(self, interval: float) -> None:
        while True:
            try:
                ok = self._healthy is None or self._healthy()
            except Exception:
                log.exception("watchdog health check failed")
                ok = False
            if ok and notify(watchdog=True, env=self._env):
                self.pings += 1
            await asyncio.sleep(interval)

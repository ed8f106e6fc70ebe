"""The kiosk started the way systemd starts it on the Pi: the unit's own ExecStart and
Environment, from the release venv in the staging root, under a real NOTIFY_SOCKET, until it
says READY=1 and then feeds the watchdog.

Only what this machine lacks is changed: the display (offscreen instead of KMS/DRM), the GPIO
pin factory (gpiozero's mock instead of lgpio), and the device paths (moved under the staging
root and a temporary data folder). A real hub runs on 127.0.0.1 with the demo device enrolled.
"""

from __future__ import annotations

import select
import shlex
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from porchlight import atomic
from porchlight.provisioning.layout import DeviceLayout

from .staging import UNIT_DIR, StagedRoot, read_unit, unit_value, unit_values

READY_TIMEOUT_S = 90.0  # the unit's TimeoutStartSec
WATCHDOG_USEC = 4_000_000  # shorter than the unit's 30 s, so the test sees pings quickly

# systemd's clean environment for a system service (no DISPLAY, nothing from this shell).
SYSTEMD_BASE_ENV = {
    "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "LANG": "C.UTF-8",
}
NOT_ON_THIS_MACHINE = {
    "SDL_VIDEODRIVER": "offscreen",
    "GPIOZERO_PIN_FACTORY": "mock",
}


class NotifySocket:
    """The receiving end of sd_notify, as systemd's manager holds it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.messages: list[dict[str, str]] = []

    def wait_for(self, key: str, value: str, proc: subprocess.Popen, timeout: float) -> float:
        """Seconds until a message with key=value arrived; fails if the process dies first."""
        start = time.monotonic()
        deadline = start + timeout
        while True:
            for message in self.messages:
                if message.get(key) == value:
                    self.messages.remove(message)
                    return time.monotonic() - start
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                pytest.fail(f"no {key}={value} within {timeout:.0f} s")
            if proc.poll() is not None:
                pytest.fail(f"the kiosk exited with {proc.returncode} before {key}={value}")
            ready, _, _ = select.select([self.sock], [], [], min(remaining, 0.5))
            if ready:
                data = self.sock.recv(4096).decode()
                self.messages.append(
                    dict(line.split("=", 1) for line in data.splitlines() if "=" in line)
                )

    def close(self) -> None:
        self.sock.close()


def _remap(value: str, layout: DeviceLayout, staged: DeviceLayout, data_dir: Path) -> str:
    """Move a device path under the staging root (the kiosk's data folder to a temp one)."""
    device_data = str(layout.kiosk_data_dir)
    if value == device_data or value.startswith(device_data + "/"):
        return str(data_dir) + value[len(device_data) :]
    if value.startswith(("/opt/", "/etc/", "/usr/")):
        return str(staged.root) + value
    return value


@pytest.fixture
def hub_credential(tmp_path: Path) -> Iterator[dict]:
    from porchlight.hub.config import HubConfig
    from porchlight.hub.seed import seed_demo
    from porchlight.hub.server import HubServer

    with HubServer(HubConfig(data_dir=tmp_path / "hub"), port=0) as hub:
        seed = seed_demo(hub.store)
        yield seed.device_credential(hub.url)


def test_kiosk_reports_ready_and_feeds_the_watchdog(
    staged: StagedRoot, tmp_path: Path, hub_credential: dict
) -> None:
    unit = read_unit(UNIT_DIR / "porchlight-kiosk.service")
    device = DeviceLayout()
    data_dir = tmp_path / "kiosk-data"
    data_dir.mkdir(mode=0o700)
    atomic.write_json(data_dir / "credential.json", hub_credential, mode=0o600)

    argv = [
        _remap(arg, device, staged.layout, data_dir)
        for arg in shlex.split(unit_value(unit, "Service", "ExecStart"))
    ]
    assert Path(argv[0]) == staged.layout.current_entry_point
    env = dict(SYSTEMD_BASE_ENV)
    for assignment in unit_values(unit, "Service", "Environment"):
        for item in shlex.split(assignment):
            key, _, value = item.partition("=")
            env[key] = _remap(value, device, staged.layout, data_dir)
    assert env["PORCHLIGHT_DATA_DIR"] == str(data_dir)
    env.update(NOT_ON_THIS_MACHINE)
    notify = NotifySocket(tmp_path / "notify")
    env["NOTIFY_SOCKET"] = str(notify.path)
    env["WATCHDOG_USEC"] = str(WATCHDOG_USEC)
    cwd = _remap(unit_value(unit, "Service", "WorkingDirectory"), device, staged.layout, data_dir)

    log_path = tmp_path / "kiosk.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(argv, env=env, cwd=cwd, stdout=log, stderr=subprocess.STDOUT)
    try:
        try:
            notify.wait_for("READY", "1", proc, READY_TIMEOUT_S)
            # Pings at half of WATCHDOG_USEC; allow one full period for the first.
            notify.wait_for("WATCHDOG", "1", proc, WATCHDOG_USEC / 1e6)
            notify.wait_for("WATCHDOG", "1", proc, WATCHDOG_USEC / 1e6)
        except BaseException:
            print(log_path.read_text(errors="replace")[-4000:])
            raise
        # systemctl stop: SIGTERM, then SIGKILL after TimeoutStopSec.
        proc.send_signal(signal.SIGTERM)
        stop_timeout = float(unit_value(unit, "Service", "TimeoutStopSec"))
        try:
            proc.wait(timeout=stop_timeout)
        except subprocess.TimeoutExpired:
            pytest.fail(f"the kiosk did not stop within TimeoutStopSec={stop_timeout:.0f}")
        assert proc.returncode in (0, -signal.SIGTERM), log_path.read_text(errors="replace")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        notify.close()

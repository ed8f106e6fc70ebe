"""Restarting the kiosk and counting its crashes: systemd on a device, twins elsewhere.

- `SystemdKiosk`: `systemctl restart porchlight-kiosk.service`; crashes are systemd's
  automatic restarts (`NRestarts`) since ours.
- `ProcessKiosk`: plays systemd for a simulated device: runs `current/venv/bin/porchlight
  kiosk` as a process of its own, restarts it when it dies (Restart=always) and counts that
  as a crash. Its pid is kept in a file, so a new agent (after a power cut) finds it.
- `SimulatedKiosk`: no process at all; on restart it writes the status a kiosk of that
  version would write (healthy or not, as told). For fleets of simulated devices.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from porchlight.errors import DeviceFault
from porchlight.provisioning.kiosk_status import KioskStatus, write_status
from porchlight.provisioning.layout import DeviceLayout
from porchlight.provisioning.release_install import link_version

KIOSK_UNIT = "porchlight-kiosk.service"


class KioskControl(Protocol):
    def restart(self) -> None:
        """Stop the running kiosk (if any) and start the one `current` points at."""

    def crashes(self) -> int:
        """How many times the kiosk died on its own since the last restart()."""


class SystemdKiosk:
    def __init__(self, unit: str = KIOSK_UNIT) -> None:
        self.unit = unit
        self._baseline = 0

    def _restarts(self) -> int:
        result = subprocess.run(
            ["systemctl", "show", "-p", "NRestarts", "--value", self.unit],
            capture_output=True,
            text=True,
            check=False,
            timeout=30,
        )
        try:
            return int(result.stdout.strip())
        except ValueError:
            return 0

    def restart(self) -> None:
        result = subprocess.run(
            ["systemctl", "restart", "--no-block", self.unit],
            capture_output=True,
            text=True,
            check=False,
            timeout=60,
        )
        if result.returncode != 0:
            raise DeviceFault(f"could not restart {self.unit}: {result.stderr.strip()[-200:]}")
        self._baseline = self._restarts()

    def crashes(self) -> int:
        return max(0, self._restarts() - self._baseline)


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


class ProcessKiosk:
    """systemd's part for a simulated device (Restart=always, a crash counter)."""

    def __init__(
        self,
        layout: DeviceLayout,
        *,
        env: dict[str, str] | None = None,
        stop_timeout_s: float = 5.0,
    ) -> None:
        self.layout = layout
        self.env = env
        self.stop_timeout_s = stop_timeout_s
        self.pid_file = layout.update_dir / "sim-kiosk.pid"
        self._proc: subprocess.Popen[bytes] | None = None
        self._crashes = 0

    def _pid(self) -> int | None:
        try:
            return int(self.pid_file.read_text())
        except (OSError, ValueError):
            return None

    def _start(self) -> None:
        self.layout.kiosk_data_dir.mkdir(parents=True, exist_ok=True)
        self._proc = subprocess.Popen(
            [
                str(self.layout.current_entry_point),
                "kiosk",
                "--data-dir",
                str(self.layout.kiosk_data_dir),
            ],
            env=self.env,
            start_new_session=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.pid_file.write_text(str(self._proc.pid))

    def stop(self) -> None:
        pid = self._pid()
        if pid is not None and _alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + self.stop_timeout_s
            while _alive(pid) and time.monotonic() < deadline:
                if self._proc is not None and self._proc.pid == pid:
                    with contextlib.suppress(subprocess.TimeoutExpired):
                        self._proc.wait(timeout=0.05)
                else:
                    time.sleep(0.05)  # not our child: nothing to wait on but its /proc entry
            if _alive(pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        if self._proc is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._proc.wait(timeout=self.stop_timeout_s)
        self._proc = None
        with contextlib.suppress(FileNotFoundError):
            self.pid_file.unlink()

    def restart(self) -> None:
        self.stop()
        self._crashes = 0
        self._start()

    def crashes(self) -> int:
        if self._proc is not None and self._proc.poll() is not None:
            self._crashes += 1
            self._start()
        elif self._proc is None:
            pid = self._pid()
            if pid is None or not _alive(pid):
                self._crashes += 1
                self._start()
        return self._crashes


class SimulatedKiosk:
    """A kiosk that is only its status file: healthy or not as `healthy(version)` says."""

    def __init__(
        self,
        layout: DeviceLayout,
        clock: Callable[[], float],
        healthy: Callable[[str], bool] = lambda _version: True,
    ) -> None:
        self.layout = layout
        self.clock = clock
        self.healthy = healthy
        self.restarts = 0

    def restart(self) -> None:
        self.restarts += 1
        version = link_version(self.layout, self.layout.current_link) or "unknown"
        ok = self.healthy(version)
        now = self.clock()
        write_status(
            self.layout.kiosk_data_dir,
            KioskStatus(
                version=version,
                pid=0,
                started_at=now,
                updated_at=now,
                screen_drawn=True,
                button_ok=ok,
                light_ok=True,
                hub="reached",
            ),
        )

    def crashes(self) -> int:
        return 0

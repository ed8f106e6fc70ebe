"""Restarting the kiosk and counting its crashes: systemd on a device, twins elsewhere.

- `SystemdKiosk`: `systemctl restart --no-block porchlight-kiosk.service`; crashes are
  systemd's automatic restarts (`NRestarts`, flushed by our restart) once the restart began
  (a new `InvocationID`). Needs systemd as PID 1: not exercised on the CI machines.
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


def parse_show(text: str) -> dict[str, str]:
    """`systemctl show -p A -p B UNIT` output (`A=value` lines) as a dict."""
    return dict(line.split("=", 1) for line in text.splitlines() if "=" in line)


def crashes_since(before_invocation: str | None, props: dict[str, str]) -> int:
    """systemd's automatic restarts of the unit since our restart, from `systemctl show`.

    A restart we ask for flushes `NRestarts` to 0 when its start runs (systemd's service.c:
    a stop that will not auto-restart sets flush_n_restarts; the next start clears it), and
    every start gets a new `InvocationID`. Until the invocation changes our restart has not
    begun and the old count means nothing; after it, `NRestarts` is the crash count. With no
    `before` (a new agent after a power cut) the count runs from the last manual start, which
    was the agent's own restart at the switch, or boot."""
    if before_invocation is not None and props.get("InvocationID", "") == before_invocation:
        return 0
    try:
        return int(props.get("NRestarts", "0"))
    except ValueError:
        return 0


class SystemdKiosk:
    """The real kiosk control: `systemctl` (as root, over systemd's private socket)."""

    def __init__(self, unit: str = KIOSK_UNIT, systemctl: str = "systemctl") -> None:
        self.unit = unit
        self.systemctl = systemctl
        self._before: str | None = None

    def _run(self, *args: str) -> str:
        try:
            result = subprocess.run(
                [self.systemctl, *args],
                capture_output=True,
                text=True,
                check=False,
                timeout=60,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise DeviceFault(f"could not run {self.systemctl} for {self.unit}: {exc}") from None
        if result.returncode != 0:
            raise DeviceFault(
                f"systemctl {args[0]} {self.unit} failed ({result.stderr.strip()[-200:]}); "
                "the agent needs systemd as the init system to restart the kiosk"
            )
        return result.stdout

    def _show(self) -> dict[str, str]:
        return parse_show(self._run("show", "-p", "InvocationID", "-p", "NRestarts", self.unit))

    def restart(self) -> None:
        before = self._show().get("InvocationID", "")
        # --no-block: a release that crashes at start would fail a blocking restart; the
        # health check, not systemctl, decides whether the new release is good.
        self._run("restart", "--no-block", self.unit)
        self._before = before

    def crashes(self) -> int:
        return crashes_since(self._before, self._show())


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

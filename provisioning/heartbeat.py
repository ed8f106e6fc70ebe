"""The device's side of the fleet: heartbeat + inventory, diagnostics bundles, and one
update check as the timer runs it (heartbeat → install what the hub names → heartbeat).

Inventory is technical only: versions, uptime, outbox depth, last call quality, disk, CPU
temperature, last self-test, update state. Diagnostics bundles are scrubbed here, on the
device, before they leave: e-mail addresses, long digit runs (NHS and phone numbers),
tokens and key-like strings are replaced, and configuration keys that look secret dropped.

The bundle goes up with a plain authenticated POST (`/api/fleet/diagnostics`): the kiosk's
outbox carries patient records only (its Record kinds), not bulk technical files.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

from porchlight.errors import HubRefused, TransportFailed
from porchlight.provisioning.kiosk_status import read_status
from porchlight.provisioning.layout import DeviceLayout
from porchlight.provisioning.update_agent import CheckResult, UpdateAgent

REPORTED_OUTCOMES = ("installed", "rolled_back", "rejected", "refused")
THERMAL_ZONE = Path("/sys/class/thermal/thermal_zone0/temp")
_SECRET_KEY = re.compile(r"token|secret|password|passwd|credential|key", re.IGNORECASE)
_SCRUB = (
    (re.compile(r"[\w.+-]+@[\w-]+\.[\w.-]+"), "<email>"),
    (re.compile(r"(?i)bearer\s+\S+"), "Bearer <token>"),
    (re.compile(r"[A-Za-z0-9_\-]{32,}"), "<secret>"),
    (re.compile(r"\d(?:[\s-]?\d){8,}"), "<number>"),
)


def scrub(text: str) -> str:
    for pattern, replacement in _SCRUB:
        text = pattern.sub(replacement, text)
    return text


def _uptime_s() -> float | None:
    try:
        return float(Path("/proc/uptime").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def _cpu_temp_c(path: Path) -> float | None:
    try:
        return int(path.read_text().strip()) / 1000.0
    except (OSError, ValueError):
        return None


def collect_inventory(
    layout: DeviceLayout, agent: UpdateAgent, *, thermal: Path = THERMAL_ZONE
) -> dict[str, Any]:
    status = read_status(layout.kiosk_data_dir)
    disk_at = layout.data_dir if layout.data_dir.exists() else layout.root
    usage = shutil.disk_usage(disk_at)
    update = agent.status()
    return {
        "uptime_s": _uptime_s(),
        "outbox_depth": status.outbox_depth if status else None,
        "last_call_quality": status.last_call_quality if status else None,
        "disk_free_bytes": usage.free,
        "disk_total_bytes": usage.total,
        "cpu_temp_c": _cpu_temp_c(thermal),
        # The self-test reports itself to the hub (hub/devices.py); the fleet page reads it there.
        "last_self_test": None,
        "kiosk_problems": status.problems() if status else ["kiosk not running"],
        "kiosk_activity": status.activity if status else None,
        "update": {
            k: update[k]
            for k in ("current", "previous", "phase", "target", "last_result", "failed")
        },
    }


def journal_logs(lines: int = 300) -> str:
    """The kiosk's recent log (journald on a device)."""
    try:
        result = subprocess.run(
            [
                "journalctl",
                "-u",
                "porchlight-kiosk.service",
                "-n",
                str(lines),
                "--no-pager",
                "-o",
                "short-iso",
            ],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return result.stdout


def safe_config(path: Path) -> dict[str, Any]:
    """The device's configuration with every secret-looking key removed."""

    def clean(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: clean(v) for k, v in value.items() if not _SECRET_KEY.search(k)}
        return value

    try:
        return clean(tomllib.loads(Path(path).read_text()))
    except (OSError, tomllib.TOMLDecodeError):
        return {}


def diagnostics_bundle(
    layout: DeviceLayout, agent: UpdateAgent, *, logs: Callable[[], str] = journal_logs
) -> dict[str, Any]:
    status = read_status(layout.kiosk_data_dir)
    return {
        "logs": scrub(logs())[-200_000:],
        "config": safe_config(layout.config_file),
        "self_test": None,  # placeholder until the enrolment self-test lands
        "kiosk_status": status.to_json() if status else None,
        "update": agent.status(),
        "versions": {
            "python": sys.version.split()[0],
            "platform": sys.platform,
            "kernel": os.uname().release,
        },
    }


@dataclass
class HubClient:
    """The device's authenticated calls to the hub's fleet API."""

    hub_url: str
    token: str
    session: requests.Session | None = None
    timeout_s: float = 15.0

    def __post_init__(self) -> None:
        self.session = self.session or requests.Session()

    def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        assert self.session is not None
        try:
            response = self.session.post(
                self.hub_url.rstrip("/") + path,
                data=json.dumps(body),
                headers={
                    "Authorization": f"Bearer {self.token}",
                    "Content-Type": "application/json",
                },
                timeout=self.timeout_s,
            )
        except requests.RequestException as exc:
            raise TransportFailed(f"cannot reach the hub ({type(exc).__name__})") from None
        if response.status_code >= 400:
            try:
                message = response.json().get("message", "")
            except ValueError:
                message = ""
            raise HubRefused(f"the hub refused {path}: {message}", response.status_code)
        return response.json()

    def heartbeat(self, inventory: dict[str, Any]) -> dict[str, Any]:
        return self._post("/api/fleet/heartbeat", inventory)

    def upload_diagnostics(self, bundle: dict[str, Any]) -> str:
        return str(self._post("/api/fleet/diagnostics", {"bundle": bundle})["id"])


def check_with_hub(
    agent: UpdateAgent,
    hub: HubClient,
    *,
    inventory: Callable[[], dict[str, Any]],
    bundle: Callable[[], dict[str, Any]] | None = None,
) -> CheckResult | None:
    """One timer run: finish any cut job, tell the hub how we are, do what it says, and tell
    it how that went. Returns the check's result (None when the hub named nothing)."""
    settled = agent.recover()
    reply = hub.heartbeat(inventory())
    result = settled
    wanted = (reply.get("update") or {}).get("version")
    if wanted:
        result = agent.check(wanted, rollout_id=reply["update"].get("rollout_id"))
    if reply.get("diagnostics_requested") and bundle is not None:
        hub.upload_diagnostics(bundle())
    if result is not None and result.outcome in REPORTED_OUTCOMES:
        hub.heartbeat(inventory())  # the result, at once: the rollout waits on it
    return result

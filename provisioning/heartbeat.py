"""The device's side of the fleet: heartbeat + inventory, diagnostics bundles, and the
update agent's loop (`porchlight update run`): a heartbeat every minute, whose reply names
the release to run, asks for diagnostics, or carries support's "check for updates now".

Why the heartbeat and not the kiosk's WebSocket for "check now": the agent is its own process
(root, apart from the kiosk), and support most needs it when the kiosk is broken; the
heartbeat is the agent's own channel, needs no kiosk, and a lost reply is simply repeated.

Inventory is technical only: versions, uptime, outbox depth, last call quality, disk, CPU
temperature, last self-test, update state. Diagnostics bundles are scrubbed here, on the
device, before they leave: e-mail addresses, long digit runs (NHS and phone numbers),
tokens and key-like strings are replaced, and configuration keys that look secret dropped.

The bundle goes up with a plain authenticated POST (`/api/fleet/diagnostics`): the kiosk's
outbox carries patient records only (its Record kinds), not bulk technical files.
"""

from __future__ import annotations

import json
import logging
import os
import random
import re
import shutil
import subprocess
import sys
import threading
import time
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
from porchlight.provisioning.update_policy import next_check_at

log = logging.getLogger(__name__)

REPORTED_OUTCOMES = ("installed", "rolled_back", "rejected", "refused")
# Often enough that "check now" from support lands within a minute; cheap for the hub.
HEARTBEAT_INTERVAL_S = 60.0
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
            for k in (
                "current",
                "previous",
                "phase",
                "target",
                "last_result",
                "last_check",
                "failed",
            )
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


class UpdateLoop:
    """The agent as a service: a heartbeat every `interval_s`; a check when the schedule says
    (every 30 min ± 10, `next_check_at`), at the next beat after a deferral, or at once when
    support asks. The agent's own guards still hold: never while the patient is busy."""

    def __init__(
        self,
        agent: UpdateAgent,
        hub: HubClient,
        *,
        inventory: Callable[[], dict[str, Any]],
        bundle: Callable[[], dict[str, Any]] | None = None,
        interval_s: float = HEARTBEAT_INTERVAL_S,
        clock: Callable[[], float] = time.time,
        rng: Callable[[], float] = random.random,
    ) -> None:
        self.agent, self.hub = agent, hub
        self.inventory, self.bundle = inventory, bundle
        self.interval_s = interval_s
        self.clock, self.rng = clock, rng
        # Across restarts of the service the schedule goes on from the last check.
        self.last_check = agent.journal().last_check_at
        self.jitter = rng()
        self.retry = False  # the last check was deferred: try again at the next beat

    def beat(self, *, force: bool = False) -> CheckResult | None:
        """One heartbeat and whatever it makes due. `force`: check now whatever the schedule
        (the one-shot `porchlight update check`)."""
        settled = self.agent.recover()
        reply = self.hub.heartbeat(self.inventory())
        journal = self.agent.journal()
        request = reply.get("check_requested")
        answered = (journal.last_check or {}).get("request_id")
        pending = request if request and request != answered else None
        now = self.clock()
        due = force or self.retry or pending is not None
        due = due or now >= next_check_at(
            self.last_check, now, self.jitter, self.agent.config.policy
        )
        directive = reply.get("update") or {}
        wanted = directive.get("version")
        result = settled
        if due:
            if wanted or pending:
                result = self.agent.check(
                    wanted, rollout_id=directive.get("rollout_id"), request_id=pending
                )
            self.retry = result is not None and result.outcome == "deferred"
            if not self.retry:
                self.last_check, self.jitter = now, self.rng()
        if reply.get("diagnostics_requested") and self.bundle is not None:
            self.hub.upload_diagnostics(self.bundle())
        reported = result is not None and result.outcome in REPORTED_OUTCOMES
        if reported or pending is not None:
            self.hub.heartbeat(self.inventory())  # at once: the rollout and support wait on it
        return result

    def run(self, stop: threading.Event) -> CheckResult | None:
        """Beat until `stop` is set, or until a new release is committed: the service then
        exits so systemd starts the agent again from the release now current."""
        while not stop.is_set():
            # A steady beat: the interval runs from the start of one beat to the next.
            next_beat = time.monotonic() + self.interval_s
            try:
                result = self.beat()
            except (TransportFailed, HubRefused) as exc:
                log.warning("heartbeat failed, trying again in %.0f s: %s", self.interval_s, exc)
            else:
                if result is not None and result.outcome == "installed":
                    return result
            stop.wait(max(0.0, next_beat - time.monotonic()))
        return None


def check_with_hub(
    agent: UpdateAgent,
    hub: HubClient,
    *,
    inventory: Callable[[], dict[str, Any]],
    bundle: Callable[[], dict[str, Any]] | None = None,
) -> CheckResult | None:
    """One run, now: finish any cut job, tell the hub how we are, do what it says, and tell
    it how that went. Returns the check's result (None when the hub named nothing)."""
    return UpdateLoop(agent, hub, inventory=inventory, bundle=bundle).beat(force=True)

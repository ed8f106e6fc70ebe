"""The kiosk's status file: what the running kiosk says about itself, for the update agent.

The kiosk (unprivileged) writes `<kiosk data dir>/status.json` atomically when its first
screen is drawn and whenever something below changes; the agent (root) only reads it. It is
the one channel between them, used three ways:

- health check after an update: the new version is up, its screen drawn, button and light
  answering, and the hub reached or the offline screen shown;
- never update while the patient is busy: in a call, answering a questionnaire, or touching
  the screen;
- inventory for the heartbeat: outbox depth, last call quality.

No patient data goes in here: states, counts and times only.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from porchlight import atomic

STATUS_FILE = "status.json"
MAX_STATUS_BYTES = 16 * 1024

# What the kiosk is doing; the agent waits while it is anything but idle (or setup).
ACTIVITIES = ("idle", "setup", "call", "questionnaire")
# "reached": the hub answered; "offline": no link, and the offline screen is shown (handled).
HUB_STATES = ("reached", "offline", "failing")


@dataclass(frozen=True)
class KioskStatus:
    version: str
    pid: int
    started_at: float  # epoch seconds the kiosk process started
    updated_at: float
    screen_drawn: bool = False
    button_ok: bool = False
    light_ok: bool = False
    hub: str = "failing"
    activity: str = "idle"
    last_touch_at: float | None = None
    outbox_depth: int | None = None
    # Placeholder until adaptive video lands: a 0-5 score or None.
    last_call_quality: float | None = None

    def problems(self) -> list[str]:
        """What keeps this kiosk from being healthy, in plain words (empty when healthy)."""
        found = []
        if not self.screen_drawn:
            found.append("screen not drawn")
        if not self.button_ok:
            found.append("button not answering")
        if not self.light_ok:
            found.append("light not answering")
        if self.hub not in ("reached", "offline"):
            found.append("hub neither reached nor offline handled")
        return found

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def status_path(kiosk_data_dir: Path) -> Path:
    return Path(kiosk_data_dir) / STATUS_FILE


def write_status(kiosk_data_dir: Path, status: KioskStatus) -> None:
    # 0644: root's agent reads it; nothing in it is secret.
    atomic.write_bytes(
        status_path(kiosk_data_dir), json.dumps(status.to_json()).encode(), mode=0o644
    )


def read_status(kiosk_data_dir: Path) -> KioskStatus | None:
    """The kiosk's last status, or None when there is none or it is unreadable (a kiosk that
    writes garbage is not healthy)."""
    path = status_path(kiosk_data_dir)
    try:
        with open(path, "rb") as handle:
            if os.fstat(handle.fileno()).st_size > MAX_STATUS_BYTES:
                return None
            data = json.loads(handle.read())
        known = {f.name for f in fields(KioskStatus)}
        status = KioskStatus(**{k: v for k, v in data.items() if k in known})
    except (OSError, ValueError, TypeError):
        return None
    if status.activity not in ACTIVITIES or status.hub not in HUB_STATES:
        return None
    return status

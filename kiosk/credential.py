"""The kiosk's device credential: `<data_dir>/credential.json`, mode 0600, written atomically.

Holds the hub address, the device and patient ids and the bearer token (docs/protocol.md).
The token never appears in a repr, a log line or an error message.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from porchlight import atomic
from porchlight.errors import BadInput, NotAuthorised

CREDENTIAL_FILE = "credential.json"
SETUP_HINT = "ask the nurse to enrol this kiosk with the hub again (or run `porchlight demo`)"


@dataclass(frozen=True)
class DeviceCredential:
    hub_url: str
    device_id: str
    patient_id: str
    token: str = field(repr=False)

    def to_json(self) -> dict[str, str]:
        return {
            "hub_url": self.hub_url,
            "device_id": self.device_id,
            "patient_id": self.patient_id,
            "token": self.token,
        }


def credential_path(data_dir: Path) -> Path:
    return Path(data_dir) / CREDENTIAL_FILE


def save_credential(data_dir: Path, credential: DeviceCredential) -> Path:
    """Write the credential atomically with mode 0600; return its path."""
    _check(credential.to_json(), credential_path(data_dir))
    path = credential_path(data_dir)
    atomic.write_json(path, credential.to_json(), mode=0o600)
    return path


def load_credential(data_dir: Path) -> DeviceCredential:
    """Read the credential; missing → NotAuthorised, unreadable or malformed → BadInput."""
    path = credential_path(data_dir)
    try:
        raw = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise NotAuthorised(f"this kiosk is not set up: there is no {path}; {SETUP_HINT}") from None
    except OSError as exc:
        raise BadInput(
            f"cannot read the kiosk credential {path} ({exc.strerror}); {SETUP_HINT}"
        ) from None
    try:
        data = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise BadInput(f"the kiosk credential {path} is damaged (not JSON); {SETUP_HINT}") from None
    _check(data, path)
    return DeviceCredential(
        hub_url=data["hub_url"],
        device_id=data["device_id"],
        patient_id=data["patient_id"],
        token=data["token"],
    )


def _check(data: object, path: Path) -> None:
    if not isinstance(data, dict):
        raise BadInput(f"the kiosk credential {path} is damaged (not an object); {SETUP_HINT}")
    bad = [
        key
        for key in ("hub_url", "device_id", "patient_id", "token")
        if not isinstance(data.get(key), str) or not data[key].strip()
    ]
    if bad:
        raise BadInput(f"the kiosk credential {path} is missing {', '.join(bad)}; {SETUP_HINT}")
    if not data["hub_url"].startswith(("http://", "https://", "ws://", "wss://")):
        raise BadInput(
            f"the kiosk credential {path} has a hub_url that is not an http(s) address; "
            f"{SETUP_HINT}"
        )

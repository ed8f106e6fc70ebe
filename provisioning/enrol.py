"""Enrolment, device side: make a key pair, prove it with the one-time code, keep the answer.

    credential = enrol_device(ticket, data_dir=..., hub_url=...)

The device makes a fresh Ed25519 key pair for every enrolment (a re-enrolled kiosk never
reuses the key of its withdrawn self), sends the public key and its signature of the code to
`POST /api/enrol`, and gets back its device id, patient and bearer token. The private key
(`device_key.pem`) and the credential (`credential.json`) are written atomically with mode
0600, key first, so a crash between the two leaves a kiosk that simply asks for setup again.
Nothing here logs the code, the token or the key.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from porchlight import atomic
from porchlight.errors import BadInput, HubRefused, TransportFailed
from porchlight.hub.enrolment import (
    EnrolmentTicket,
    b64encode,
    check_hub_url,
    normalise_code,
    proof_message,
)
from porchlight.kiosk.credential import DeviceCredential, save_credential

log = logging.getLogger(__name__)

KEY_FILE = "device_key.pem"
ENROL_PATH = "/api/enrol"
TIMEOUT_S = 10.0


@dataclass(frozen=True)
class Enrolled:
    credential: DeviceCredential
    display_name: str  # the patient's name as the hub shows it, for the nurse to confirm


def new_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


def public_key_bytes(key: Ed25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def key_path(data_dir: Path) -> Path:
    return Path(data_dir) / KEY_FILE


def save_key(data_dir: Path, key: Ed25519PrivateKey) -> Path:
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    path = key_path(data_dir)
    atomic.write_bytes(path, pem, mode=0o600)
    return path


def load_key(data_dir: Path) -> Ed25519PrivateKey:
    try:
        key = serialization.load_pem_private_key(key_path(data_dir).read_bytes(), password=None)
    except FileNotFoundError:
        raise BadInput("This kiosk has no device key yet; enrol it first.") from None
    except ValueError:
        raise BadInput("The kiosk's device key is damaged; enrol the kiosk again.") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise BadInput("The kiosk's device key is not an Ed25519 key; enrol the kiosk again.")
    return key


def enrol_request_body(code: str, key: Ed25519PrivateKey) -> dict[str, str]:
    """What `POST /api/enrol` takes: the code, the public key and the key's proof."""
    code = normalise_code(code)
    public = public_key_bytes(key)
    return {
        "code": code,
        "public_key": b64encode(public),
        "proof": b64encode(key.sign(proof_message(code, public))),
    }


def _hub_message(response: requests.Response) -> str:
    try:
        message = response.json().get("message")
    except ValueError:
        message = None
    return message if isinstance(message, str) and message else f"HTTP {response.status_code}"


def enrol_device(
    ticket: EnrolmentTicket,
    *,
    data_dir: Path,
    hub_url: str | None = None,
    session: requests.Session | None = None,
    timeout_s: float = TIMEOUT_S,
) -> Enrolled:
    """Enrol this kiosk with the hub (blocking: call it off the event loop).

    The hub is the ticket's (from a QR code or USB file), else `hub_url` (the kiosk's
    configured hub, for a typed code). Raises BadInput (no hub known), HubRefused (the hub
    said no: wrong, used or expired code; too many tries) or TransportFailed (no answer).
    """
    base = ticket.hub_url or hub_url
    if not base:
        raise BadInput(
            "This kiosk does not know its hub's address yet. Hold the QR code from the "
            "enrolment sheet up to the camera instead of typing the code."
        )
    base = check_hub_url(base)
    key = new_key()
    body = enrol_request_body(ticket.code, key)
    http = session or requests.Session()
    try:
        response = http.post(base + ENROL_PATH, json=body, timeout=timeout_s)
    except requests.RequestException as exc:
        raise TransportFailed(
            "Cannot reach the clinic's hub. Check the Wi-Fi is connected, then try again."
        ) from exc
    finally:
        if session is None:
            http.close()
    if response.status_code != 200:
        raise HubRefused(_hub_message(response), response.status_code)
    try:
        answer = response.json()
        credential = DeviceCredential(
            hub_url=base,
            device_id=answer["device_id"],
            patient_id=answer["patient_id"],
            token=answer["token"],
        )
        display_name = str(answer.get("display_name", ""))
    except (ValueError, KeyError, TypeError):
        raise HubRefused("The hub's answer to the enrolment was not understood.", 200) from None
    save_key(data_dir, key)
    save_credential(data_dir, credential)
    log.info("kiosk enrolled")
    return Enrolled(credential, display_name)

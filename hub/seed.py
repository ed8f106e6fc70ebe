"""Demo data and device credentials.

`seed_demo` makes the accounts, patient and kiosk credential that `porchlight demo` prints.
The names are made up; the password is printed on purpose (it is a demo).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from porchlight.errors import BadInput
from porchlight.hub import auth
from porchlight.hub.store import Role, Store

DEMO_PASSWORD = "porchlight-demo"
DEMO_PATIENT_NAME = "Margaret Jones"
# Fixed ids so every run of the demo finds the same patient and device again.
DEMO_PATIENT_ID = str(uuid.uuid5(uuid.NAMESPACE_URL, "porchlight:demo:patient"))
DEMO_DEVICE_ID = str(uuid.uuid5(uuid.NAMESPACE_URL, "porchlight:demo:device"))

DEMO_PEOPLE = (
    ("clinician", "Nurse Priya Shah", Role.CLINICIAN),
    ("nurse", "Nurse Tom Evans", Role.NURSE),
    ("support", "Support Alex Kim", Role.SUPPORT),
    ("admin", "Admin Jo Park", Role.ADMIN),
)


@dataclass(frozen=True)
class DemoSeed:
    username: str
    password: str
    patient_id: str
    patient_name: str
    device_id: str
    device_token: str

    def device_credential(self, hub_url: str) -> dict[str, Any]:
        """The kiosk's credential.json contents (docs/protocol.md)."""
        return {
            "hub_url": hub_url,
            "device_id": self.device_id,
            "patient_id": self.patient_id,
            "token": self.device_token,
        }


def _now() -> datetime:
    return datetime.now(UTC)


def create_device_credential(store: Store, patient_id: str) -> tuple[str, str]:
    """Register a new device for `patient_id`; returns (device_id, token). Only the hash is kept."""
    if store.get_patient(patient_id) is None:
        raise BadInput("no such patient; create the patient first")
    token = auth.new_token()
    device = store.add_device(patient_id, auth.hash_token(token), now=_now())
    return device.id, token


def ensure_person(
    store: Store, username: str, display_name: str, role: Role, password: str
) -> None:
    """Create the account, or bring an existing one back to this name, role and password."""
    person = store.get_person(username)
    if person is None:
        store.add_person(username, display_name, role, auth.hash_password(password), now=_now())
        return
    if not store.teams_of_person(username):  # an account from before care teams existed
        store.set_person_teams(username, [store.ensure_default_team(now=_now()).id])
    store.update_person(
        username,
        display_name=display_name,
        role=role,
        password_hash=None
        if auth.verify_password(person.password_hash, password)
        else auth.hash_password(password),
    )


def seed_demo(store: Store) -> DemoSeed:
    """Create (or refresh) the demo accounts, patient and device. Safe to run again.

    Each call gives the device a new token: the old one cannot be recovered from its hash.
    """
    for username, display_name, role in DEMO_PEOPLE:
        ensure_person(store, username, display_name, role, DEMO_PASSWORD)
    if store.get_patient(DEMO_PATIENT_ID) is None:
        store.add_patient(DEMO_PATIENT_NAME, now=_now(), patient_id=DEMO_PATIENT_ID)
    elif store.team_of_patient(DEMO_PATIENT_ID) is None:  # a demo database from before teams
        store.set_patient_team(DEMO_PATIENT_ID, store.ensure_default_team(now=_now()).id)
    token = auth.new_token()
    if store.get_device(DEMO_DEVICE_ID) is None:
        store.add_device(
            DEMO_PATIENT_ID, auth.hash_token(token), now=_now(), device_id=DEMO_DEVICE_ID
        )
    else:
        store.set_device_token(DEMO_DEVICE_ID, auth.hash_token(token))
    return DemoSeed(
        username=DEMO_PEOPLE[0][0],
        password=DEMO_PASSWORD,
        patient_id=DEMO_PATIENT_ID,
        patient_name=DEMO_PATIENT_NAME,
        device_id=DEMO_DEVICE_ID,
        device_token=token,
    )

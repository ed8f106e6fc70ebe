"""A small hub world for security tests: two care teams, a patient and a kiosk in each, and
one person of every role (nurses in both teams), each with a live session.

Built once per test session into a SQLite file (argon2 is slow on purpose), then copied for
each test so tests can change it freely.
"""

from __future__ import annotations

import shutil
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from porchlight.hub import auth, enrolment
from porchlight.hub.app import create_app
from porchlight.hub.config import HubConfig
from porchlight.hub.store import Role, Store
from porchlight.protocol import SESSION_COOKIE

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    from fastapi.testclient import TestClient

START = datetime(2025, 3, 4, 9, 30, tzinfo=UTC)
PASSWORD = "correct horse battery"

# name: (role, team)
PEOPLE = {
    "clin_x": (Role.CLINICIAN, "X"),
    "clin_y": (Role.CLINICIAN, "Y"),
    "nurse_x": (Role.NURSE, "X"),
    "nurse_y": (Role.NURSE, "Y"),
    "support": (Role.SUPPORT, None),
    "admin": (Role.ADMIN, None),
}
ACTORS = ("anon", "device_a", "device_b", *PEOPLE)


class FakeClock:
    def __init__(self, start: datetime = START) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> datetime:
        self.now += timedelta(seconds=seconds)
        return self.now


@dataclass(frozen=True)
class World:
    db_file: Path
    team_x: str
    team_y: str
    patient_a: str  # in team X
    patient_b: str  # in team Y
    device_a: str
    device_b: str
    tokens: dict[str, str]  # actor → bearer token (devices) or session token (people)
    code_a: str  # a live enrolment code for patient A
    enrolment_a: str

    def auth(self, client: TestClient, actor: str) -> dict[str, str]:
        """Give `client` this actor's credential; returns headers to send (devices)."""
        client.cookies.clear()
        if actor.startswith("device_"):
            return {"Authorization": f"Bearer {self.tokens[actor]}"}
        if actor in PEOPLE:
            client.cookies.set(SESSION_COOKIE, self.tokens[actor])
        return {}


def build_world(folder: Path) -> World:
    store = Store.open(f"sqlite:///{folder / 'hub.db'}")
    now = START
    x = store.add_team("Team X", now=now)
    y = store.add_team("Team Y", now=now)
    teams = {"X": x.id, "Y": y.id}
    tokens: dict[str, str] = {}
    password_hash = auth.hash_password(PASSWORD)
    for username, (role, team) in PEOPLE.items():
        store.add_person(
            username,
            username.replace("_", " ").title(),
            role,
            password_hash,
            now=now,
            teams=[teams[team]] if team else [],
        )
        tokens[username] = auth.new_token()
        store.add_session(
            auth.hash_token(tokens[username]),
            username,
            now=now,
            expires=now + timedelta(hours=8),
        )
    a = store.add_patient("Alice Able", now=now, team_id=x.id, nhs_number="9434765919")
    b = store.add_patient("Bob Baker", now=now, team_id=y.id)
    devices = {}
    for actor, patient in (("device_a", a.id), ("device_b", b.id)):
        tokens[actor] = auth.new_token()
        devices[actor] = store.add_device(patient, auth.hash_token(tokens[actor]), now=now).id
    code = enrolment.new_code()
    made = store.add_enrolment(
        enrolment.code_hash(code), a.id, by="nurse_x", now=now, expires=enrolment.expires_at(now)
    )
    store.close()
    return World(
        folder / "hub.db",
        x.id,
        y.id,
        a.id,
        b.id,
        devices["device_a"],
        devices["device_b"],
        tokens,
        code,
        made.id,
    )


@contextmanager
def hub_client(world: World, folder: Path, clock: FakeClock | None = None) -> Iterator[TestClient]:
    """A TestClient on a fresh copy of the world (`client.app.state.services` reaches in)."""
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(world.db_file, folder / "hub.db")
    config = HubConfig(data_dir=folder)
    store = Store.open(config.resolved_database_url())
    try:
        app = create_app(config, store=store, clock=clock or FakeClock())
        with TestClient(app, base_url="http://hub.test") as client:
            yield client
    finally:
        store.close()

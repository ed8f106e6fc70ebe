"""The hub's one store interface: every read and write of hub data goes through `Store`.

Methods are synchronous and short; async code calls them through a worker thread
(FastAPI's threadpool or `anyio.to_thread`). Time is passed in so tests control it.
Only portable SQLAlchemy Core is used, so the same code runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from sqlalchemy import Engine, delete, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from porchlight.errors import BadInput
from porchlight.hub import db
from porchlight.hub.db import devices, patients, people, sessions

# A device's last_seen is refreshed at most this often, so authenticated requests stay reads.
LAST_SEEN_RESOLUTION = timedelta(seconds=60)


class Role(StrEnum):
    CLINICIAN = "clinician"
    NURSE = "nurse"
    SUPPORT = "support"
    ADMIN = "admin"


@dataclass(frozen=True)
class Patient:
    id: str
    display_name: str
    created: datetime


@dataclass(frozen=True)
class Device:
    id: str
    patient_id: str
    token_sha256: str
    created: datetime
    revoked_at: datetime | None
    last_seen: datetime | None

    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None


@dataclass(frozen=True)
class Person:
    username: str
    display_name: str
    role: Role
    password_hash: str
    created: datetime


@dataclass(frozen=True)
class Session:
    id_sha256: str
    username: str
    created: datetime
    expires: datetime


def _check_sha256(value: str) -> None:
    if len(value) != 64 or any(c not in "0123456789abcdef" for c in value):
        raise BadInput("expected a SHA-256 hex digest (64 lower-case hex characters)")


class Store:
    """Patients, devices, people and sessions over one SQLAlchemy engine."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @classmethod
    def open(cls, database_url: str) -> Store:
        """Connect to `database_url` and create any missing tables."""
        engine = db.make_engine(database_url)
        db.create_all(engine)
        return cls(engine)

    def close(self) -> None:
        self.engine.dispose()

    # -- patients ------------------------------------------------------------------------

    def add_patient(
        self, display_name: str, *, now: datetime, patient_id: str | None = None
    ) -> Patient:
        display_name = _check_display_name(display_name)
        patient = Patient(
            id=patient_id or str(uuid.uuid4()), display_name=display_name, created=now
        )
        try:
            with self.engine.begin() as conn:
                conn.execute(
                    insert(patients).values(
                        id=patient.id, display_name=patient.display_name, created=now
                    )
                )
        except IntegrityError:
            raise BadInput("a patient with this id already exists") from None
        return patient

    def get_patient(self, patient_id: str) -> Patient | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(patients).where(patients.c.id == patient_id)).first()
        return Patient(**row._mapping) if row else None

    def rename_patient(self, patient_id: str, display_name: str) -> None:
        display_name = _check_display_name(display_name)
        with self.engine.begin() as conn:
            result = conn.execute(
                update(patients)
                .where(patients.c.id == patient_id)
                .values(display_name=display_name)
            )
        if result.rowcount != 1:
            raise BadInput("no such patient")

    # -- devices -------------------------------------------------------------------------

    def add_device(
        self, patient_id: str, token_sha256: str, *, now: datetime, device_id: str | None = None
    ) -> Device:
        _check_sha256(token_sha256)
        device = Device(
            id=device_id or str(uuid.uuid4()),
            patient_id=patient_id,
            token_sha256=token_sha256,
            created=now,
            revoked_at=None,
            last_seen=None,
        )
        try:
            with self.engine.begin() as conn:
                conn.execute(
                    insert(devices).values(
                        id=device.id,
                        patient_id=patient_id,
                        token_sha256=token_sha256,
                        created=now,
                    )
                )
        except IntegrityError:
            raise BadInput(
                "cannot add the device: unknown patient, or the device id or token is taken"
            ) from None
        return device

    def get_device(self, device_id: str) -> Device | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(devices).where(devices.c.id == device_id)).first()
        return Device(**row._mapping) if row else None

    def device_by_token_hash(self, token_sha256: str) -> tuple[Device, Patient] | None:
        """The device holding this token hash (revoked or not) and its patient."""
        query = (
            select(devices, patients.c.display_name, patients.c.created.label("p_created"))
            .join(patients, patients.c.id == devices.c.patient_id)
            .where(devices.c.token_sha256 == token_sha256)
        )
        with self.engine.connect() as conn:
            row = conn.execute(query).first()
        if row is None:
            return None
        m = row._mapping
        device = Device(**{c.name: m[c.name] for c in devices.c})
        return device, Patient(m["patient_id"], m["display_name"], m["p_created"])

    def devices_for_patient(self, patient_id: str) -> list[Device]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(devices)
                .where(devices.c.patient_id == patient_id)
                .order_by(devices.c.created)
            ).all()
        return [Device(**row._mapping) for row in rows]

    def set_device_token(self, device_id: str, token_sha256: str) -> None:
        """Replace a device's token hash (the old token stops working at once)."""
        _check_sha256(token_sha256)
        with self.engine.begin() as conn:
            result = conn.execute(
                update(devices).where(devices.c.id == device_id).values(token_sha256=token_sha256)
            )
        if result.rowcount != 1:
            raise BadInput("no such device")

    def revoke_device(self, device_id: str, *, now: datetime) -> None:
        with self.engine.begin() as conn:
            result = conn.execute(
                update(devices)
                .where(devices.c.id == device_id, devices.c.revoked_at.is_(None))
                .values(revoked_at=now)
            )
        if result.rowcount != 1 and self.get_device(device_id) is None:
            raise BadInput("no such device")

    def touch_device(self, device_id: str, *, now: datetime) -> None:
        """Record that the device was seen; skipped when it was seen very recently."""
        with self.engine.begin() as conn:
            conn.execute(
                update(devices)
                .where(
                    devices.c.id == device_id,
                    or_(
                        devices.c.last_seen.is_(None),
                        devices.c.last_seen < now - LAST_SEEN_RESOLUTION,
                    ),
                )
                .values(last_seen=now)
            )

    # -- people --------------------------------------------------------------------------

    def add_person(
        self,
        username: str,
        display_name: str,
        role: Role | str,
        password_hash: str,
        *,
        now: datetime,
    ) -> Person:
        person = Person(
            username=_check_username(username),
            display_name=_check_display_name(display_name),
            role=_check_role(role),
            password_hash=password_hash,
            created=now,
        )
        try:
            with self.engine.begin() as conn:
                conn.execute(
                    insert(people).values(
                        username=person.username,
                        display_name=person.display_name,
                        role=person.role.value,
                        password_hash=password_hash,
                        created=now,
                    )
                )
        except IntegrityError:
            raise BadInput("that username is taken; choose another") from None
        return person

    def get_person(self, username: str) -> Person | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(people).where(people.c.username == username)).first()
        if row is None:
            return None
        m = dict(row._mapping)
        m["role"] = Role(m["role"])
        return Person(**m)

    def update_person(
        self,
        username: str,
        *,
        display_name: str | None = None,
        role: Role | str | None = None,
        password_hash: str | None = None,
    ) -> None:
        values: dict[str, str] = {}
        if display_name is not None:
            values["display_name"] = _check_display_name(display_name)
        if role is not None:
            values["role"] = _check_role(role).value
        if password_hash is not None:
            values["password_hash"] = password_hash
        if not values:
            return
        with self.engine.begin() as conn:
            result = conn.execute(
                update(people).where(people.c.username == username).values(**values)
            )
        if result.rowcount != 1:
            raise BadInput("no such person")

    def count_people(self) -> int:
        with self.engine.connect() as conn:
            return conn.execute(select(func.count()).select_from(people)).scalar_one()

    # -- sessions ------------------------------------------------------------------------

    def add_session(
        self, id_sha256: str, username: str, *, now: datetime, expires: datetime
    ) -> Session:
        _check_sha256(id_sha256)
        with self.engine.begin() as conn:
            conn.execute(
                insert(sessions).values(
                    id_sha256=id_sha256, username=username, created=now, expires=expires
                )
            )
        return Session(id_sha256, username, now, expires)

    def get_session(self, id_sha256: str) -> tuple[Session, Person] | None:
        """The session with this id hash (expired or not) and the person it belongs to."""
        query = (
            select(
                sessions,
                people.c.display_name,
                people.c.role,
                people.c.password_hash,
                people.c.created.label("p_created"),
            )
            .join(people, people.c.username == sessions.c.username)
            .where(sessions.c.id_sha256 == id_sha256)
        )
        with self.engine.connect() as conn:
            row = conn.execute(query).first()
        if row is None:
            return None
        m = row._mapping
        session = Session(m["id_sha256"], m["username"], m["created"], m["expires"])
        person = Person(
            m["username"], m["display_name"], Role(m["role"]), m["password_hash"], m["p_created"]
        )
        return session, person

    def delete_session(self, id_sha256: str) -> bool:
        with self.engine.begin() as conn:
            result = conn.execute(delete(sessions).where(sessions.c.id_sha256 == id_sha256))
        return result.rowcount == 1

    def delete_expired_sessions(self, *, now: datetime) -> int:
        with self.engine.begin() as conn:
            result = conn.execute(delete(sessions).where(sessions.c.expires <= now))
        return result.rowcount

    def delete_sessions_of(self, username: str) -> int:
        with self.engine.begin() as conn:
            result = conn.execute(delete(sessions).where(sessions.c.username == username))
        return result.rowcount


def _check_username(username: str) -> str:
    username = username.strip()
    if not username or len(username) > 64 or any(c.isspace() for c in username):
        raise BadInput("a username is 1 to 64 characters without spaces")
    return username


def _check_display_name(display_name: str) -> str:
    display_name = display_name.strip()
    if not display_name or len(display_name) > 200:
        raise BadInput("a display name is 1 to 200 characters")
    return display_name


def _check_role(role: Role | str) -> Role:
    try:
        return Role(role)
    except ValueError:
        raise BadInput(
            f"role must be one of {', '.join(r.value for r in Role)}, not {role!r}"
        ) from None

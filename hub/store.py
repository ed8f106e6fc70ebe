"""The hub's one store interface: every read and write of hub data goes through `Store`.

Methods are synchronous and short; async code calls them through a worker thread
(FastAPI's threadpool or `anyio.to_thread`). Time is passed in so tests control it.
Only portable SQLAlchemy Core is used, so the same code runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    Column,
    Connection,
    Engine,
    ForeignKey,
    Index,
    String,
    Table,
    Text,
    delete,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError

from porchlight.errors import BadInput
from porchlight.hub import db, schema
from porchlight.hub.db import UTCDateTime, devices, metadata, patients, people, sessions
from porchlight.hub.teams import DEFAULT_TEAM_ID, DEFAULT_TEAM_NAME

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


# -- tables added by enrolment and care teams (portable Core types, as in db.py) -----------

teams = Table(
    "teams",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("name", String(200), nullable=False, unique=True),
    Column("created", UTCDateTime(), nullable=False),
)

# People in teams (a person may be in several).
team_people = Table(
    "team_people",
    metadata,
    Column(
        "username",
        String(64),
        ForeignKey("people.username", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("team_id", String(36), ForeignKey("teams.id", ondelete="CASCADE"), primary_key=True),
)

# Each patient's one care team.
team_patients = Table(
    "team_patients",
    metadata,
    Column(
        "patient_id",
        String(36),
        ForeignKey("patients.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column(
        "team_id",
        String(36),
        ForeignKey("teams.id", ondelete="RESTRICT"),
        nullable=False,
        index=True,
    ),
)

# The NHS number, when the nurse gave one: the only identifier kept besides the name.
patient_identifiers = Table(
    "patient_identifiers",
    metadata,
    Column(
        "patient_id",
        String(36),
        ForeignKey("patients.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("nhs_number", String(10), nullable=False, unique=True),
)

# The Ed25519 public key each enrolled device made for itself.
device_keys = Table(
    "device_keys",
    metadata,
    Column(
        "device_id",
        String(36),
        ForeignKey("devices.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("public_key", String(64), nullable=False),  # URL-safe base64 of 32 bytes
    Column("created", UTCDateTime(), nullable=False),
)

# One-time enrolment codes: only their SHA-256 is kept.
enrolments = Table(
    "enrolments",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("code_sha256", String(64), nullable=False, unique=True),
    Column(
        "patient_id",
        String(36),
        ForeignKey("patients.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("created_by", String(64), nullable=False),
    Column("created", UTCDateTime(), nullable=False),
    Column("expires", UTCDateTime(), nullable=False),
    Column("used_at", UTCDateTime(), nullable=True),
    Column("device_id", String(36), nullable=True),
    Column("cancelled_at", UTCDateTime(), nullable=True),
)
Index("ix_enrolments_patient", enrolments.c.patient_id)

# The latest self-test each device reported (plain-words results as JSON).
self_tests = Table(
    "self_tests",
    metadata,
    Column(
        "device_id",
        String(36),
        ForeignKey("devices.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("ran_at", UTCDateTime(), nullable=False),
    Column("received_at", UTCDateTime(), nullable=False),
    Column("trigger", String(16), nullable=False),
    Column("results", Text, nullable=False),
)


@dataclass(frozen=True)
class Team:
    id: str
    name: str


@dataclass(frozen=True)
class PatientRecord:
    """A patient as the nurse page lists them (minimum data: name, team, NHS number)."""

    id: str
    display_name: str
    team_id: str | None
    nhs_number: str | None
    created: datetime


@dataclass(frozen=True)
class Enrolment:
    id: str
    patient_id: str
    created_by: str
    created: datetime
    expires: datetime
    used_at: datetime | None
    device_id: str | None
    cancelled_at: datetime | None


@dataclass(frozen=True)
class SelfTest:
    device_id: str
    ran_at: datetime
    received_at: datetime
    trigger: str
    results: list[dict[str, Any]]


@dataclass(frozen=True)
class DeviceRow:
    """A device with what the nurse and support pages show about it."""

    device: Device
    team_id: str | None
    patient_name: str
    has_key: bool
    self_test: SelfTest | None


def _check_sha256(value: str) -> None:
    if len(value) != 64 or any(c not in "0123456789abcdef" for c in value):
        raise BadInput("expected a SHA-256 hex digest (64 lower-case hex characters)")


class Store:
    """Patients, devices, people and sessions over one SQLAlchemy engine."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @classmethod
    def open(cls, database_url: str) -> Store:
        """Connect to `database_url` and bring its schema up to date (hub/schema.py)."""
        engine = db.make_engine(database_url)
        schema.upgrade(engine)
        return cls(engine)

    def close(self) -> None:
        self.engine.dispose()

    # -- patients ------------------------------------------------------------------------

    def add_patient(
        self,
        display_name: str,
        *,
        now: datetime,
        patient_id: str | None = None,
        team_id: str | None = None,
        nhs_number: str | None = None,
    ) -> Patient:
        """Add a patient in `team_id` (default: the default team, made if missing).

        `nhs_number` must already be validated (porchlight.hub.nhs_number)."""
        display_name = _check_display_name(display_name)
        patient = Patient(
            id=patient_id or str(uuid.uuid4()), display_name=display_name, created=now
        )
        if team_id is None:
            team_id = self.ensure_default_team(now=now).id
        elif self.get_team(team_id) is None:
            raise BadInput("no such care team; choose one of your teams")
        try:
            with self.engine.begin() as conn:
                conn.execute(
                    insert(patients).values(
                        id=patient.id, display_name=patient.display_name, created=now
                    )
                )
                conn.execute(insert(team_patients).values(patient_id=patient.id, team_id=team_id))
                if nhs_number is not None:
                    conn.execute(
                        insert(patient_identifiers).values(
                            patient_id=patient.id, nhs_number=nhs_number
                        )
                    )
        except IntegrityError:
            raise BadInput(
                "this patient is already registered (same id or NHS number); "
                "find them in the list instead"
            ) from None
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
        self,
        patient_id: str,
        token_sha256: str,
        *,
        now: datetime,
        device_id: str | None = None,
        public_key: str | None = None,
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
                _insert_device(conn, device, public_key)
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
        teams: list[str] | None = None,
    ) -> Person:
        """Add an account; `teams` None puts the person in the default team."""
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
        if teams is None:
            teams = [self.ensure_default_team(now=now).id]
        self.set_person_teams(person.username, teams)
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

    # -- care teams ----------------------------------------------------------------------

    def add_team(self, name: str, *, now: datetime, team_id: str | None = None) -> Team:
        team = Team(team_id or str(uuid.uuid4()), _check_display_name(name))
        try:
            with self.engine.begin() as conn:
                conn.execute(insert(teams).values(id=team.id, name=team.name, created=now))
        except IntegrityError:
            raise BadInput("a care team with this name already exists; choose another") from None
        return team

    def ensure_default_team(self, *, now: datetime) -> Team:
        team = self.get_team(DEFAULT_TEAM_ID)
        if team is not None:
            return team
        try:
            return self.add_team(DEFAULT_TEAM_NAME, now=now, team_id=DEFAULT_TEAM_ID)
        except BadInput:  # made by a concurrent request in between
            team = self.get_team(DEFAULT_TEAM_ID)
            if team is None:
                raise
            return team

    def get_team(self, team_id: str) -> Team | None:
        with self.engine.connect() as conn:
            row = conn.execute(
                select(teams.c.id, teams.c.name).where(teams.c.id == team_id)
            ).first()
        return Team(*row) if row else None

    def list_teams(self) -> list[Team]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(teams.c.id, teams.c.name).order_by(teams.c.name)).all()
        return [Team(*row) for row in rows]

    def set_person_teams(self, username: str, team_ids: list[str]) -> None:
        """Make `team_ids` exactly the teams this person is in."""
        wanted = sorted(set(team_ids))
        known = {t.id for t in self.list_teams()}
        unknown = [t for t in wanted if t not in known]
        if unknown:
            raise BadInput("no such care team; choose from the hub's teams")
        with self.engine.begin() as conn:
            if (
                conn.execute(select(people.c.username).where(people.c.username == username)).first()
                is None
            ):
                raise BadInput("no such person")
            conn.execute(delete(team_people).where(team_people.c.username == username))
            for team_id in wanted:
                conn.execute(insert(team_people).values(username=username, team_id=team_id))

    def teams_of_person(self, username: str) -> frozenset[str]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(team_people.c.team_id).where(team_people.c.username == username)
            ).all()
        return frozenset(r[0] for r in rows)

    def set_patient_team(self, patient_id: str, team_id: str) -> None:
        if self.get_team(team_id) is None:
            raise BadInput("no such care team; choose one of your teams")
        with self.engine.begin() as conn:
            done = conn.execute(
                update(team_patients)
                .where(team_patients.c.patient_id == patient_id)
                .values(team_id=team_id)
            )
            if done.rowcount == 0:
                if (
                    conn.execute(select(patients.c.id).where(patients.c.id == patient_id)).first()
                    is None
                ):
                    raise BadInput("no such patient")
                conn.execute(insert(team_patients).values(patient_id=patient_id, team_id=team_id))

    def team_of_patient(self, patient_id: str) -> str | None:
        with self.engine.connect() as conn:
            return conn.execute(
                select(team_patients.c.team_id).where(team_patients.c.patient_id == patient_id)
            ).scalar_one_or_none()

    def patients_in_teams(self, team_ids: frozenset[str] | set[str]) -> list[PatientRecord]:
        query = (
            select(
                patients.c.id,
                patients.c.display_name,
                team_patients.c.team_id,
                patient_identifiers.c.nhs_number,
                patients.c.created,
            )
            .join(team_patients, team_patients.c.patient_id == patients.c.id)
            .outerjoin(patient_identifiers, patient_identifiers.c.patient_id == patients.c.id)
            .where(team_patients.c.team_id.in_(sorted(team_ids)))
            .order_by(patients.c.display_name, patients.c.id)
        )
        with self.engine.connect() as conn:
            return [PatientRecord(*row) for row in conn.execute(query).all()]

    # -- enrolment -----------------------------------------------------------------------

    def add_enrolment(
        self, code_sha256: str, patient_id: str, *, by: str, now: datetime, expires: datetime
    ) -> Enrolment:
        _check_sha256(code_sha256)
        enrolment = Enrolment(str(uuid.uuid4()), patient_id, by, now, expires, None, None, None)
        try:
            with self.engine.begin() as conn:
                conn.execute(
                    insert(enrolments).values(
                        id=enrolment.id,
                        code_sha256=code_sha256,
                        patient_id=patient_id,
                        created_by=by,
                        created=now,
                        expires=expires,
                    )
                )
        except IntegrityError:
            raise BadInput("could not make a unique code; try again") from None
        return enrolment

    def enrolment_by_code_hash(self, code_sha256: str) -> Enrolment | None:
        with self.engine.connect() as conn:
            row = conn.execute(
                select(enrolments).where(enrolments.c.code_sha256 == code_sha256)
            ).first()
        return _enrolment(row._mapping) if row else None

    def get_enrolment(self, enrolment_id: str) -> Enrolment | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(enrolments).where(enrolments.c.id == enrolment_id)).first()
        return _enrolment(row._mapping) if row else None

    def enrolments_for_patients(self, patient_ids: list[str]) -> list[Enrolment]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(enrolments)
                .where(enrolments.c.patient_id.in_(patient_ids))
                .order_by(enrolments.c.created)
            ).all()
        return [_enrolment(r._mapping) for r in rows]

    def cancel_enrolment(self, enrolment_id: str, *, now: datetime) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                update(enrolments)
                .where(
                    enrolments.c.id == enrolment_id,
                    enrolments.c.used_at.is_(None),
                    enrolments.c.cancelled_at.is_(None),
                )
                .values(cancelled_at=now)
            )

    def enrol_device(
        self,
        enrolment_id: str,
        token_sha256: str,
        public_key: str,
        *,
        now: datetime,
    ) -> Device | None:
        """Use the enrolment once and register its device, in one transaction.

        The conditional UPDATE is what makes a code single-use under concurrent requests:
        only one of them changes the row; the others get None and nothing is added.
        """
        _check_sha256(token_sha256)
        device_id = str(uuid.uuid4())
        with self.engine.begin() as conn:
            used = conn.execute(
                update(enrolments)
                .where(
                    enrolments.c.id == enrolment_id,
                    enrolments.c.used_at.is_(None),
                    enrolments.c.cancelled_at.is_(None),
                    enrolments.c.expires > now,
                )
                .values(used_at=now, device_id=device_id)
            )
            if used.rowcount != 1:
                return None
            patient_id = conn.execute(
                select(enrolments.c.patient_id).where(enrolments.c.id == enrolment_id)
            ).scalar_one()
            device = Device(device_id, patient_id, token_sha256, now, None, None)
            _insert_device(conn, device, public_key)
        return device

    def device_public_key(self, device_id: str) -> str | None:
        with self.engine.connect() as conn:
            return conn.execute(
                select(device_keys.c.public_key).where(device_keys.c.device_id == device_id)
            ).scalar_one_or_none()

    def device_rows(
        self, team_ids: frozenset[str] | set[str] | None, *, device_id: str | None = None
    ) -> list[DeviceRow]:
        """Devices of patients in `team_ids` (None: every device), newest first; only the
        one with `device_id` when given."""
        query = (
            select(
                devices,
                patients.c.display_name,
                team_patients.c.team_id,
                device_keys.c.public_key,
                self_tests.c.ran_at.label("st_ran_at"),
                self_tests.c.received_at.label("st_received_at"),
                self_tests.c.trigger.label("st_trigger"),
                self_tests.c.results.label("st_results"),
            )
            .join(patients, patients.c.id == devices.c.patient_id)
            .outerjoin(team_patients, team_patients.c.patient_id == devices.c.patient_id)
            .outerjoin(device_keys, device_keys.c.device_id == devices.c.id)
            .outerjoin(self_tests, self_tests.c.device_id == devices.c.id)
            .order_by(devices.c.created.desc(), devices.c.id)
        )
        if team_ids is not None:
            query = query.where(team_patients.c.team_id.in_(sorted(team_ids)))
        if device_id is not None:
            query = query.where(devices.c.id == device_id)
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        out = []
        for row in rows:
            m = row._mapping
            device = Device(**{c.name: m[c.name] for c in devices.c})
            test = None
            if m["st_ran_at"] is not None:
                test = SelfTest(
                    device.id,
                    m["st_ran_at"],
                    m["st_received_at"],
                    m["st_trigger"],
                    json.loads(m["st_results"]),
                )
            out.append(
                DeviceRow(
                    device, m["team_id"], m["display_name"], m["public_key"] is not None, test
                )
            )
        return out

    # -- self-tests ----------------------------------------------------------------------

    def save_self_test(
        self,
        device_id: str,
        *,
        ran_at: datetime,
        trigger: str,
        results: list[dict[str, Any]],
        now: datetime,
    ) -> None:
        """Keep this as the device's latest self-test (an older report never replaces it)."""
        values = {
            "ran_at": ran_at,
            "received_at": now,
            "trigger": trigger,
            "results": json.dumps(results, sort_keys=True, separators=(",", ":")),
        }
        with self.engine.begin() as conn:
            done = conn.execute(
                update(self_tests)
                .where(self_tests.c.device_id == device_id, self_tests.c.ran_at <= ran_at)
                .values(**values)
            )
            if done.rowcount == 0 and (
                conn.execute(
                    select(self_tests.c.device_id).where(self_tests.c.device_id == device_id)
                ).first()
                is None
            ):
                conn.execute(insert(self_tests).values(device_id=device_id, **values))

    def latest_self_test(self, device_id: str) -> SelfTest | None:
        with self.engine.connect() as conn:
            row = conn.execute(
                select(self_tests).where(self_tests.c.device_id == device_id)
            ).first()
        if row is None:
            return None
        m = row._mapping
        return SelfTest(
            m["device_id"], m["ran_at"], m["received_at"], m["trigger"], json.loads(m["results"])
        )

    def list_people(self) -> list[tuple[Person, frozenset[str]]]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(people).order_by(people.c.username)).all()
            memberships = conn.execute(select(team_people)).all()
        by_person: dict[str, set[str]] = {}
        for username, team_id in memberships:
            by_person.setdefault(username, set()).add(team_id)
        out = []
        for row in rows:
            m = dict(row._mapping)
            m["role"] = Role(m["role"])
            out.append((Person(**m), frozenset(by_person.get(m["username"], ()))))
        return out


def _insert_device(conn: Connection, device: Device, public_key: str | None) -> None:
    conn.execute(
        insert(devices).values(
            id=device.id,
            patient_id=device.patient_id,
            token_sha256=device.token_sha256,
            created=device.created,
        )
    )
    if public_key is not None:
        conn.execute(
            insert(device_keys).values(
                device_id=device.id, public_key=public_key, created=device.created
            )
        )


def _enrolment(m: Any) -> Enrolment:
    return Enrolment(
        m["id"],
        m["patient_id"],
        m["created_by"],
        m["created"],
        m["expires"],
        m["used_at"],
        m["device_id"],
        m["cancelled_at"],
    )


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

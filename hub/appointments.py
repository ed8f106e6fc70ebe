"""Video appointments: booked by the care team, attended or not, and how each one ended.

- A clinician or nurse of the patient's care team books an appointment (`starts_at`) and names
  the clinician who will call (`clinician`): the booker when they are a clinician, otherwise
  one of the team's clinicians (the only one may be left implicit). Someone outside the
  patient's team is refused and nothing is booked. The kiosk hears of it in its plan
  (hub/device_plan.py), with the caller's display name ("Nurse Patel"), and reminds the patient.
- The hub notes when the patient joins (the waiting room, or answering a ring) and logs every
  call (table `call_log`, written from signalling through `CallEvents`). A join or call within
  `link_window_min` of an appointment's start counts for it; a call with no appointment near
  becomes an "unscheduled" one, so every call can have an outcome.
- Not joined `dna_after_min` after the start: the appointment is recorded as did-not-attend
  (`mark_did_not_attend`, run before every read; a conditional UPDATE, so two hubs doing it at
  once agree). A call that still takes place later (the clinician was late) clears it.
- The clinician records the outcome: `completed`, `home_visit` (creates a follow-up for the
  team), or `technical_failure` with a reason.

Everything is kept per care team: the team is written on the appointment when it is booked, so
the evidence (hub/evidence.py) stays with the team that did the work.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from enum import StrEnum
from typing import Annotated, Any

import anyio
from fastapi import APIRouter, Depends, HTTPException, Request
from pydantic import BaseModel, Field
from sqlalchemy import (
    Column,
    Connection,
    Engine,
    ForeignKey,
    Index,
    String,
    Table,
    func,
    insert,
    or_,
    select,
    update,
)
from starlette.concurrency import run_in_threadpool

from porchlight.config import load as load_config
from porchlight.errors import BadInput
from porchlight.hub.auth import PersonIdentity, require_patient_access, require_person
from porchlight.hub.bus import device_topic
from porchlight.hub.db import UTCDateTime, metadata, patients, people
from porchlight.hub.services import Clock, services
from porchlight.hub.store import Role, Store, team_people
from porchlight.hub.teams import can_see

log = logging.getLogger(__name__)

PLAN_CHANGED = {"type": "plan_changed"}


@dataclass(frozen=True)
class AppointmentRules:
    """`[appointments]` / PORCHLIGHT_APPOINTMENTS_*."""

    dna_after_min: float = 15.0  # not joined this long after the start: did not attend
    link_window_min: float = 60.0  # a join or call this close to the start counts for it
    max_ahead_days: int = 366

    @property
    def dna_after(self) -> timedelta:
        return timedelta(minutes=self.dna_after_min)

    @property
    def link_window(self) -> timedelta:
        return timedelta(minutes=self.link_window_min)


class Kind(StrEnum):
    BOOKED = "booked"
    UNSCHEDULED = "unscheduled"  # a call that no appointment was near: outcomes still count


class Outcome(StrEnum):
    COMPLETED = "completed"
    HOME_VISIT = "home_visit"  # switched to an in-person visit: a follow-up for the team
    TECHNICAL_FAILURE = "technical_failure"
    DID_NOT_ATTEND = "did_not_attend"  # set by the hub only


CLINICIAN_OUTCOMES = (Outcome.COMPLETED, Outcome.HOME_VISIT, Outcome.TECHNICAL_FAILURE)

appointments = Table(
    "appointments",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("patient_id", String(36), ForeignKey("patients.id", ondelete="CASCADE"), nullable=False),
    Column("team_id", String(36), nullable=False),  # the patient's team when booked
    Column("starts_at", UTCDateTime(), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("booked_by", String(64), nullable=True),
    Column("clinician", String(64), nullable=True),  # username of who will call (migration 0009)
    Column("booked_at", UTCDateTime(), nullable=False),
    Column("cancelled_at", UTCDateTime(), nullable=True),
    Column("joined_at", UTCDateTime(), nullable=True),  # first join in the window
    Column("call_id", String(64), nullable=True),  # the call that served it
    Column("outcome", String(24), nullable=True),
    Column("outcome_reason", String(500), nullable=True),
    Column("outcome_by", String(64), nullable=True),
    Column("outcome_at", UTCDateTime(), nullable=True),
)
Index("ix_appointments_patient_starts", appointments.c.patient_id, appointments.c.starts_at)
Index("ix_appointments_team_starts", appointments.c.team_id, appointments.c.starts_at)

# Every call, as signalling saw it (no content: who, when, how it started and ended).
call_log = Table(
    "call_log",
    metadata,
    Column("call_id", String(64), primary_key=True),
    Column("patient_id", String(36), nullable=False, index=True),
    Column("team_id", String(36), nullable=True),
    Column("appointment_id", String(36), nullable=True),
    Column("clinician", String(64), nullable=True),
    Column("how", String(16), nullable=False),  # "admitted" (from the room) or "rang"
    Column("started_at", UTCDateTime(), nullable=False),
    Column("ended_at", UTCDateTime(), nullable=True),
    Column("end_reason", String(32), nullable=True),
)

# Work the team owes after a call: for now, home visits.
follow_ups = Table(
    "follow_ups",
    metadata,
    Column("id", String(36), primary_key=True),
    Column(
        "appointment_id",
        String(36),
        ForeignKey("appointments.id", ondelete="CASCADE"),
        nullable=False,
        unique=True,
    ),
    Column("patient_id", String(36), ForeignKey("patients.id", ondelete="CASCADE"), nullable=False),
    Column("team_id", String(36), nullable=False, index=True),
    Column("kind", String(16), nullable=False),
    Column("note", String(500), nullable=True),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("created_by", String(64), nullable=False),
    Column("done_at", UTCDateTime(), nullable=True),
)


@dataclass(frozen=True)
class Appointment:
    id: str
    patient_id: str
    team_id: str
    starts_at: datetime
    kind: str
    booked_by: str | None
    clinician: str | None
    booked_at: datetime
    cancelled_at: datetime | None
    joined_at: datetime | None
    call_id: str | None
    outcome: str | None
    outcome_reason: str | None
    outcome_by: str | None
    outcome_at: datetime | None

    def status(self, now: datetime) -> str:
        """One word for the clinic page: booked, joined, cancelled, or the outcome."""
        if self.cancelled_at is not None:
            return "cancelled"
        if self.outcome is not None:
            return self.outcome
        if self.call_id is not None:
            return "called"
        if self.joined_at is not None:
            return "joined"
        return "booked" if now < self.starts_at else "due"


def _row(m: Any) -> Appointment:
    return Appointment(**{c.name: m[c.name] for c in appointments.c})


# -- the store's side --------------------------------------------------------------------


def book(
    engine: Engine,
    patient_id: str,
    team_id: str,
    starts_at: datetime,
    *,
    by: str | None,
    now: datetime,
    kind: Kind = Kind.BOOKED,
    clinician: str | None = None,
) -> Appointment:
    values = {
        "id": str(uuid.uuid4()),
        "patient_id": patient_id,
        "team_id": team_id,
        "starts_at": starts_at,
        "kind": kind.value,
        "booked_by": by,
        "clinician": clinician,
        "booked_at": now,
    }
    with engine.begin() as conn:
        conn.execute(insert(appointments).values(**values))
        row = conn.execute(select(appointments).where(appointments.c.id == values["id"])).one()
    return _row(row._mapping)


def get(engine: Engine, appointment_id: str) -> Appointment | None:
    with engine.connect() as conn:
        row = conn.execute(select(appointments).where(appointments.c.id == appointment_id)).first()
    return _row(row._mapping) if row else None


def mark_did_not_attend(engine: Engine, now: datetime, rules: AppointmentRules) -> int:
    """Record every booked appointment nobody joined in time as did-not-attend."""
    with engine.begin() as conn:
        done = conn.execute(
            update(appointments)
            .where(
                appointments.c.kind == Kind.BOOKED.value,
                appointments.c.cancelled_at.is_(None),
                appointments.c.outcome.is_(None),
                appointments.c.joined_at.is_(None),
                appointments.c.call_id.is_(None),
                appointments.c.starts_at <= now - rules.dna_after,
            )
            .values(outcome=Outcome.DID_NOT_ATTEND.value, outcome_at=now)
        )
    return done.rowcount


def _nearest(
    conn: Connection, patient_id: str, now: datetime, rules: AppointmentRules, *extra: Any
) -> str | None:
    """The patient's live appointment whose start is nearest to `now`, within the window."""
    rows = conn.execute(
        select(appointments.c.id, appointments.c.starts_at).where(
            appointments.c.patient_id == patient_id,
            appointments.c.kind == Kind.BOOKED.value,
            appointments.c.cancelled_at.is_(None),
            appointments.c.starts_at >= now - rules.link_window,
            appointments.c.starts_at <= now + rules.link_window,
            *extra,
        )
    ).all()
    if not rows:
        return None
    return min(rows, key=lambda r: (abs(r.starts_at - now), r.id)).id


def note_joined(engine: Engine, patient_id: str, now: datetime, rules: AppointmentRules) -> None:
    """The patient joined (the room, or answered a ring): the appointment near now is attended."""
    with engine.begin() as conn:
        appt = _nearest(
            conn,
            patient_id,
            now,
            rules,
            appointments.c.joined_at.is_(None),
            appointments.c.outcome.is_(None),
        )
        if appt is not None:
            conn.execute(
                update(appointments)
                .where(appointments.c.id == appt, appointments.c.joined_at.is_(None))
                .values(joined_at=now)
            )


def log_call_started(
    engine: Engine,
    call_id: str,
    patient_id: str,
    team_id: str | None,
    clinician: str | None,
    how: str,
    now: datetime,
    rules: AppointmentRules,
) -> str:
    """Log the call and tie it to the appointment near now (or a new unscheduled one);
    returns the appointment id. A late call clears a did-not-attend: the patient was there."""
    with engine.begin() as conn:
        appt = _nearest(
            conn,
            patient_id,
            now,
            rules,
            appointments.c.call_id.is_(None),
            or_(
                appointments.c.outcome.is_(None),
                appointments.c.outcome == Outcome.DID_NOT_ATTEND.value,
            ),
        )
        if appt is None:
            appt = str(uuid.uuid4())
            conn.execute(
                insert(appointments).values(
                    id=appt,
                    patient_id=patient_id,
                    team_id=team_id or "",
                    starts_at=now,
                    kind=Kind.UNSCHEDULED.value,
                    booked_by=None,
                    booked_at=now,
                    joined_at=now,
                    call_id=call_id,
                )
            )
        else:
            conn.execute(
                update(appointments)
                .where(appointments.c.id == appt)
                .values(
                    call_id=call_id,
                    joined_at=func.coalesce(appointments.c.joined_at, now),
                    outcome=None,
                    outcome_at=None,
                )
                .where(
                    or_(
                        appointments.c.outcome.is_(None),
                        appointments.c.outcome == Outcome.DID_NOT_ATTEND.value,
                    )
                )
            )
        conn.execute(
            insert(call_log).values(
                call_id=call_id,
                patient_id=patient_id,
                team_id=team_id,
                appointment_id=appt,
                clinician=clinician,
                how=how,
                started_at=now,
            )
        )
    return appt


def log_call_ended(engine: Engine, call_id: str, reason: str, now: datetime) -> None:
    with engine.begin() as conn:
        conn.execute(
            update(call_log)
            .where(call_log.c.call_id == call_id, call_log.c.ended_at.is_(None))
            .values(ended_at=now, end_reason=reason[:32])
        )


def record_outcome(
    engine: Engine,
    appointment_id: str,
    outcome: Outcome,
    reason: str | None,
    *,
    by: str,
    now: datetime,
) -> Appointment:
    """Record how the appointment ended; a home visit makes a follow-up for the team.

    Once recorded, an outcome stays (BadInput): the evidence must not change under a team's
    feet. A did-not-attend the hub recorded may be replaced by the clinician."""
    if outcome not in CLINICIAN_OUTCOMES:
        raise BadInput("outcome must be completed, home_visit or technical_failure")
    reason = (reason or "").strip() or None
    if outcome is Outcome.TECHNICAL_FAILURE and not reason:
        raise BadInput("say what went wrong (reason) for a technical failure")
    if reason is not None and len(reason) > 500:
        raise BadInput("the reason is at most 500 characters")
    with engine.begin() as conn:
        appt = conn.execute(select(appointments).where(appointments.c.id == appointment_id)).first()
        if appt is None:
            raise LookupError(appointment_id)
        current = _row(appt._mapping)
        if current.cancelled_at is not None:
            raise BadInput("this appointment was cancelled; it has no outcome")
        if outcome is Outcome.COMPLETED and current.call_id is None:
            raise BadInput("no call took place for this appointment, so it cannot be completed")
        done = conn.execute(
            update(appointments)
            .where(
                appointments.c.id == appointment_id,
                or_(
                    appointments.c.outcome.is_(None),
                    appointments.c.outcome == Outcome.DID_NOT_ATTEND.value,
                ),
            )
            .values(outcome=outcome.value, outcome_reason=reason, outcome_by=by, outcome_at=now)
        )
        if done.rowcount != 1:
            raise BadInput(f"the outcome is already recorded ({current.outcome})")
        if outcome is Outcome.HOME_VISIT:
            conn.execute(
                insert(follow_ups).values(
                    id=str(uuid.uuid4()),
                    appointment_id=appointment_id,
                    patient_id=current.patient_id,
                    team_id=current.team_id,
                    kind="home_visit",
                    note=reason,
                    created_at=now,
                    created_by=by,
                )
            )
        row = conn.execute(select(appointments).where(appointments.c.id == appointment_id)).one()
    return _row(row._mapping)


def move(
    engine: Engine,
    appointment_id: str,
    starts_at: datetime | None = None,
    clinician: str | None = None,
) -> bool:
    """Move an appointment nobody has joined, called or cancelled to a new time and/or a new
    clinician who will call (None leaves that part as it is)."""
    values: dict[str, Any] = {}
    if starts_at is not None:
        values["starts_at"] = starts_at
    if clinician is not None:
        values["clinician"] = clinician
    with engine.begin() as conn:
        done = conn.execute(
            update(appointments)
            .where(
                appointments.c.id == appointment_id,
                appointments.c.kind == Kind.BOOKED.value,
                appointments.c.cancelled_at.is_(None),
                appointments.c.outcome.is_(None),
                appointments.c.call_id.is_(None),
                appointments.c.joined_at.is_(None),
            )
            .values(**values)
        )
    return done.rowcount == 1


def cancel(engine: Engine, appointment_id: str, now: datetime) -> bool:
    with engine.begin() as conn:
        done = conn.execute(
            update(appointments)
            .where(
                appointments.c.id == appointment_id,
                appointments.c.cancelled_at.is_(None),
                appointments.c.outcome.is_(None),
                appointments.c.call_id.is_(None),
            )
            .values(cancelled_at=now)
        )
    return done.rowcount == 1


@dataclass(frozen=True)
class Caller:
    """A clinician who may call a patient: the username for the hub, the display name (as
    the team wants patients to see it, e.g. "Nurse Patel") for the kiosk."""

    username: str
    display_name: str


def team_clinicians(engine: Engine, team_id: str) -> list[Caller]:
    """The clinicians of one care team, by display name."""
    query = (
        select(people.c.username, people.c.display_name)
        .join(team_people, team_people.c.username == people.c.username)
        .where(team_people.c.team_id == team_id, people.c.role == Role.CLINICIAN.value)
        .order_by(people.c.display_name, people.c.username)
    )
    with engine.connect() as conn:
        return [Caller(*row) for row in conn.execute(query).all()]


def caller_names(engine: Engine, usernames: set[str]) -> dict[str, str]:
    """username → display name, for the clinicians named on appointments."""
    if not usernames:
        return {}
    query = select(people.c.username, people.c.display_name).where(
        people.c.username.in_(sorted(usernames))
    )
    with engine.connect() as conn:
        return {row.username: row.display_name for row in conn.execute(query).all()}


def choose_caller(
    clinicians: list[Caller], wanted: str | None, booker: str, booker_role: Role
) -> str | None:
    """Who will call: `wanted` if it is one of the team's clinicians; else the booker when
    they are a clinician of the team; else the team's only clinician. Pure; BadInput says
    what to do. None only for a team with no clinician (the kiosk then says "your nurse")."""
    names = {c.username for c in clinicians}
    if wanted is not None:
        if wanted not in names:
            raise BadInput(
                "The clinician who will call must be a clinician in this patient's care team. "
                "Choose one of the team's clinicians; nothing was booked or changed."
            )
        return wanted
    if booker_role is Role.CLINICIAN and booker in names:
        return booker
    if len(clinicians) <= 1:
        return clinicians[0].username if clinicians else None
    raise BadInput("Choose who will call (one of the care team's clinicians).")


def appointments_between(
    engine: Engine, team_ids: frozenset[str], start: datetime, end: datetime
) -> list[tuple[Appointment, str]]:
    """The teams' appointments starting in [start, end), with each patient's name."""
    query = (
        select(appointments, patients.c.display_name)
        .join(patients, patients.c.id == appointments.c.patient_id)
        .where(
            appointments.c.team_id.in_(sorted(team_ids)),
            appointments.c.starts_at >= start,
            appointments.c.starts_at < end,
        )
        .order_by(appointments.c.starts_at, appointments.c.id)
    )
    with engine.connect() as conn:
        return [(_row(r._mapping), r.display_name) for r in conn.execute(query).all()]


def upcoming_for_patient(
    engine: Engine, patient_id: str, now: datetime, rules: AppointmentRules, days: int = 7
) -> list[Appointment]:
    """What the kiosk is told: booked, not cancelled, not over, starting in the next `days`."""
    query = (
        select(appointments)
        .where(
            appointments.c.patient_id == patient_id,
            appointments.c.kind == Kind.BOOKED.value,
            appointments.c.cancelled_at.is_(None),
            appointments.c.outcome.is_(None),
            appointments.c.call_id.is_(None),
            appointments.c.starts_at > now - rules.dna_after,
            appointments.c.starts_at < now + timedelta(days=days),
        )
        .order_by(appointments.c.starts_at)
    )
    with engine.connect() as conn:
        return [_row(r._mapping) for r in conn.execute(query).all()]


def open_follow_ups(engine: Engine, team_ids: frozenset[str]) -> list[dict[str, Any]]:
    query = (
        select(follow_ups, patients.c.display_name)
        .join(patients, patients.c.id == follow_ups.c.patient_id)
        .where(follow_ups.c.team_id.in_(sorted(team_ids)), follow_ups.c.done_at.is_(None))
        .order_by(follow_ups.c.created_at)
    )
    with engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(query).all()]


# -- signalling's side -------------------------------------------------------------------


class CallEvents:
    """What signalling tells the appointment book: joins, calls starting and ending.

    Each is written on a worker thread (never on the event loop) and a failure is only
    logged: a database hiccup must never cost a patient their call."""

    def __init__(self, store: Store, clock: Clock, rules: AppointmentRules | None = None) -> None:
        self._store, self._clock = store, clock
        self.rules = rules or load_config(AppointmentRules, "appointments")

    async def _run(self, what: str, fn: Any, *args: Any) -> None:
        try:
            await anyio.to_thread.run_sync(fn, *args)
        except Exception as exc:
            log.error("appointment book: could not note %s (%s)", what, type(exc).__name__)

    async def joined(self, patient_id: str) -> None:
        await self._run(
            "a join", note_joined, self._store.engine, patient_id, self._clock(), self.rules
        )

    async def call_started(
        self, call_id: str, patient_id: str, clinician: str | None, how: str
    ) -> None:
        def work() -> None:
            team = self._store.team_of_patient(patient_id)
            log_call_started(
                self._store.engine,
                call_id,
                patient_id,
                team,
                clinician,
                how,
                self._clock(),
                self.rules,
            )

        await self._run("a call starting", work)

    async def call_ended(self, call_id: str, reason: str) -> None:
        await self._run(
            "a call ending", log_call_ended, self._store.engine, call_id, reason, self._clock()
        )


class NoCallEvents:
    """For a Signalling built without an appointment book (tests, tools)."""

    async def joined(self, patient_id: str) -> None:
        pass

    async def call_started(
        self, call_id: str, patient_id: str, clinician: str | None, how: str
    ) -> None:
        pass

    async def call_ended(self, call_id: str, reason: str) -> None:
        pass


# -- HTTP --------------------------------------------------------------------------------

router = APIRouter()
CareTeam = Annotated[PersonIdentity, Depends(require_person(Role.CLINICIAN, Role.NURSE))]
Clinician = Annotated[PersonIdentity, Depends(require_person(Role.CLINICIAN))]


def rules_of(request: Request) -> AppointmentRules:
    """The app's rules (read once per app from config and environment)."""
    state = request.app.state
    if getattr(state, "appointment_rules", None) is None:
        state.appointment_rules = load_config(AppointmentRules, "appointments")
    return state.appointment_rules


class BookIn(BaseModel):
    patient_id: str = Field(min_length=1, max_length=64)
    starts_at: datetime = Field(description="ISO 8601 with a time zone")
    clinician: str | None = Field(
        default=None,
        min_length=1,
        max_length=64,
        description="username of the care team's clinician who will call; default: you if "
        "you are one, else the team's only clinician",
    )


class OutcomeIn(BaseModel):
    outcome: Outcome = Field(description="completed, home_visit or technical_failure")
    reason: str | None = Field(
        default=None, max_length=500, description="what went wrong (needed for technical_failure)"
    )


class AppointmentOut(BaseModel):
    appointment_id: str
    patient_id: str
    patient_name: str
    starts_at: datetime
    kind: str = Field(description='"booked", or "unscheduled" for a call with no booking')
    status: str = Field(
        description="booked, due, joined, called, cancelled, or the outcome: completed, "
        "home_visit, technical_failure, did_not_attend"
    )
    outcome_reason: str | None
    call_id: str | None
    joined_at: datetime | None
    clinician: str | None = Field(description="username of who will call (None: not named)")
    clinician_name: str | None = Field(
        description='who will call, as the patient sees it (e.g. "Nurse Patel")'
    )


class FollowUpOut(BaseModel):
    follow_up_id: str
    appointment_id: str
    patient_id: str
    patient_name: str
    kind: str
    note: str | None
    created_at: datetime
    created_by: str


def _out(appt: Appointment, name: str, now: datetime, callers: dict[str, str]) -> AppointmentOut:
    return AppointmentOut(
        appointment_id=appt.id,
        patient_id=appt.patient_id,
        patient_name=name,
        starts_at=appt.starts_at,
        kind=appt.kind,
        status=appt.status(now),
        outcome_reason=appt.outcome_reason,
        call_id=appt.call_id,
        joined_at=appt.joined_at,
        clinician=appt.clinician,
        clinician_name=callers.get(appt.clinician or ""),
    )


def _callers_of(engine: Engine, appts: list[Appointment]) -> dict[str, str]:
    return caller_names(engine, {a.clinician for a in appts if a.clinician})


def local_day_bounds(day: date, now: datetime) -> tuple[datetime, datetime]:
    """Midnight to midnight of `day` in the hub's local time zone."""
    zone = now.astimezone().tzinfo
    start = datetime.combine(day, time(0), tzinfo=zone)
    return start, datetime.combine(day + timedelta(days=1), time(0), tzinfo=zone)


def check_start(starts: datetime, now: datetime, rules: AppointmentRules) -> datetime:
    """A start time a person may book: with a zone, not over, not too far ahead."""
    if starts.tzinfo is None:
        raise BadInput("starts_at needs a time zone (e.g. 2025-03-04T14:30:00Z)")
    if starts < now - rules.dna_after:
        raise BadInput("That time is in the past. Choose a date and time still to come.")
    if starts > now + timedelta(days=rules.max_ahead_days):
        raise BadInput(
            f"That is too far ahead: book at most {rules.max_ahead_days} days from today."
        )
    return starts


def _visible(store: Store, person: PersonIdentity, appointment_id: str) -> Appointment:
    """The appointment, if it belongs to one of the person's teams; else 404 (other teams'
    appointments are not acknowledged to exist)."""
    appt = get(store.engine, appointment_id) if len(appointment_id) <= 64 else None
    if appt is None or not can_see(person.teams, appt.team_id):
        raise HTTPException(404, "No such appointment in your care teams.")
    return appt


@router.post(
    "/api/appointments",
    status_code=201,
    response_model=AppointmentOut,
    summary="Book a video appointment for a patient of your care team",
)
async def book_appointment(body: BookIn, request: Request, person: CareTeam) -> AppointmentOut:
    hub = services(request)
    rules = rules_of(request)

    def work() -> AppointmentOut:
        now = hub.clock()
        patient = hub.store.get_patient(body.patient_id)
        team = hub.store.team_of_patient(body.patient_id)
        if patient is None or not can_see(person.teams, team):
            raise HTTPException(404, "No such patient in your care teams.")
        starts = check_start(body.starts_at, now, rules)
        assert team is not None
        engine = hub.store.engine
        caller = choose_caller(
            team_clinicians(engine, team), body.clinician, person.username, person.role
        )
        appt = book(engine, patient.id, team, starts, by=person.username, now=now, clinician=caller)
        return _out(appt, patient.display_name, now, _callers_of(engine, [appt]))

    out = await run_in_threadpool(work)
    await hub.signalling.bus.publish(device_topic(out.patient_id), PLAN_CHANGED)
    return out


@router.get(
    "/api/appointments",
    response_model=list[AppointmentOut],
    summary="Your care teams' appointments on one day (default today, the hub's local time)",
)
def list_appointments(
    request: Request, person: CareTeam, day: date | None = None
) -> list[AppointmentOut]:
    hub = services(request)
    now = hub.clock()
    if day is not None and not 2000 <= day.year <= 2999:
        raise BadInput("day must be a date like 2025-03-04")
    mark_did_not_attend(hub.store.engine, now, rules_of(request))
    start, end = local_day_bounds(day or now.astimezone().date(), now)
    rows = appointments_between(hub.store.engine, person.teams, start, end)
    callers = _callers_of(hub.store.engine, [appt for appt, _ in rows])
    return [_out(appt, name, now, callers) for appt, name in rows]


@router.post(
    "/api/appointments/{appointment_id}/cancel",
    response_model=AppointmentOut,
    summary="Cancel an appointment that has not happened",
)
async def cancel_appointment(
    appointment_id: str, request: Request, person: CareTeam
) -> AppointmentOut:
    hub = services(request)

    def work() -> AppointmentOut:
        appt = _visible(hub.store, person, appointment_id)
        if not cancel(hub.store.engine, appt.id, hub.clock()):
            raise BadInput("this appointment has already happened or been cancelled")
        return _named(hub.store, appt.id, hub.clock())

    out = await run_in_threadpool(work)
    await hub.signalling.bus.publish(device_topic(out.patient_id), PLAN_CHANGED)
    return out


class MoveIn(BaseModel):
    starts_at: datetime | None = Field(
        default=None, description="the new start, ISO 8601 with a time zone"
    )
    clinician: str | None = Field(
        default=None,
        min_length=1,
        max_length=64,
        description="username of the care team's clinician who will call instead",
    )


@router.post(
    "/api/appointments/{appointment_id}/move",
    response_model=AppointmentOut,
    summary="Move an appointment to another time and/or change who will call (not once "
    "joined, called or cancelled)",
)
async def move_appointment(
    appointment_id: str, body: MoveIn, request: Request, person: CareTeam
) -> AppointmentOut:
    hub = services(request)
    rules = rules_of(request)

    def work() -> AppointmentOut:
        appt = _visible(hub.store, person, appointment_id)
        if body.starts_at is None and body.clinician is None:
            raise BadInput("Give a new time (starts_at), a new clinician who will call, or both.")
        starts = None
        if body.starts_at is not None:
            starts = check_start(body.starts_at, hub.clock(), rules)
        if body.clinician is not None:
            clinicians = team_clinicians(hub.store.engine, appt.team_id)
            choose_caller(clinicians, body.clinician, person.username, person.role)
        if not move(hub.store.engine, appt.id, starts, body.clinician):
            raise BadInput(
                "This appointment has already started, happened or been cancelled; "
                "book a new one instead."
            )
        return _named(hub.store, appt.id, hub.clock())

    out = await run_in_threadpool(work)
    await hub.signalling.bus.publish(device_topic(out.patient_id), PLAN_CHANGED)
    return out


PatientCareTeam = Annotated[
    PersonIdentity, Depends(require_patient_access(Role.CLINICIAN, Role.NURSE))
]


@router.get(
    "/api/patients/{patient_id}/appointments",
    response_model=list[AppointmentOut],
    summary="A patient's appointments still to come (booked, not cancelled, not over)",
)
def patient_appointments(
    patient_id: str, request: Request, person: PatientCareTeam
) -> list[AppointmentOut]:
    hub = services(request)
    rules = rules_of(request)
    now = hub.clock()
    patient = hub.store.get_patient(patient_id) if len(patient_id) <= 64 else None
    if patient is None:
        raise HTTPException(404, "No such patient in your care teams.")
    rows = upcoming_for_patient(
        hub.store.engine, patient.id, now, rules, days=rules.max_ahead_days + 1
    )
    callers = _callers_of(hub.store.engine, rows)
    return [_out(appt, patient.display_name, now, callers) for appt in rows]


class CallerOut(BaseModel):
    username: str
    display_name: str = Field(description="as the patient sees it on the kiosk")


@router.get(
    "/api/patients/{patient_id}/clinicians",
    response_model=list[CallerOut],
    summary="The clinicians of a patient's care team (who may be named to call)",
)
def patient_clinicians(
    patient_id: str, request: Request, person: PatientCareTeam
) -> list[CallerOut]:
    hub = services(request)
    team = hub.store.team_of_patient(patient_id) if len(patient_id) <= 64 else None
    if team is None:
        raise HTTPException(404, "No such patient in your care teams.")
    return [
        CallerOut(username=c.username, display_name=c.display_name)
        for c in team_clinicians(hub.store.engine, team)
    ]


class CarePatientOut(BaseModel):
    patient_id: str
    display_name: str
    team_id: str | None
    team_name: str | None


@router.get(
    "/api/care/patients",
    response_model=list[CarePatientOut],
    summary="Your care teams' patients (to book an appointment for one)",
)
def care_patients(request: Request, person: CareTeam) -> list[CarePatientOut]:
    hub = services(request)
    names = {t.id: t.name for t in hub.store.list_teams()}
    return [
        CarePatientOut(
            patient_id=p.id,
            display_name=p.display_name,
            team_id=p.team_id,
            team_name=names.get(p.team_id or ""),
        )
        for p in hub.store.patients_in_teams(person.teams)
    ]


def _named(store: Store, appointment_id: str, now: datetime) -> AppointmentOut:
    appt = get(store.engine, appointment_id)
    assert appt is not None
    patient = store.get_patient(appt.patient_id)
    callers = _callers_of(store.engine, [appt])
    return _out(appt, patient.display_name if patient else "", now, callers)


def _record(
    store: Store, person: PersonIdentity, appointment_id: str, body: OutcomeIn, now: datetime
) -> AppointmentOut:
    appt = _visible(store, person, appointment_id)
    record_outcome(store.engine, appt.id, body.outcome, body.reason, by=person.username, now=now)
    return _named(store, appt.id, now)


@router.post(
    "/api/appointments/{appointment_id}/outcome",
    response_model=AppointmentOut,
    summary="Record how an appointment ended (clinicians of the care team)",
)
def appointment_outcome(
    appointment_id: str, body: OutcomeIn, request: Request, person: Clinician
) -> AppointmentOut:
    hub = services(request)
    return _record(hub.store, person, appointment_id, body, hub.clock())


@router.post(
    "/api/calls/{call_id}/outcome",
    response_model=AppointmentOut,
    summary="Record how a call's appointment ended (the clinic page, right after the call)",
)
def call_outcome(
    call_id: str, body: OutcomeIn, request: Request, person: Clinician
) -> AppointmentOut:
    hub = services(request)
    with hub.store.engine.connect() as conn:
        appointment_id = conn.execute(
            select(call_log.c.appointment_id).where(call_log.c.call_id == call_id[:64])
        ).scalar_one_or_none()
    if appointment_id is None:
        raise HTTPException(404, "No such call in your care teams.")
    return _record(hub.store, person, appointment_id, body, hub.clock())


@router.get(
    "/api/follow-ups",
    response_model=list[FollowUpOut],
    summary="Your care teams' open follow-ups (home visits after a video appointment)",
)
def list_follow_ups(request: Request, person: CareTeam) -> list[FollowUpOut]:
    hub = services(request)
    return [
        FollowUpOut(
            follow_up_id=r["id"],
            appointment_id=r["appointment_id"],
            patient_id=r["patient_id"],
            patient_name=r["display_name"],
            kind=r["kind"],
            note=r["note"],
            created_at=r["created_at"],
            created_by=r["created_by"],
        )
        for r in open_follow_ups(hub.store.engine, person.teams)
    ]

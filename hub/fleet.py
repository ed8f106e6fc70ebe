"""The fleet: device heartbeats and inventory, staged rollouts, diagnostics, the /support page.

Devices (bearer token) post a heartbeat every check; the reply says which release the device
should run (from the rollout policy, `porchlight.hub.rollouts`) and whether support asked for
diagnostics. The update result a device carries in its heartbeat (installed, rolled back and
why) is its report to the rollout, so a lost reply costs nothing: the next heartbeat repeats it.

Support and admin see every device's technical state and nothing clinical: no patient names,
no records, only device ids, versions, health and counts.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import FileResponse
from packaging.version import InvalidVersion, Version
from pydantic import BaseModel, Field
from sqlalchemy import (
    Column,
    Connection,
    Engine,
    Float,
    ForeignKey,
    Integer,
    String,
    Table,
    Text,
    delete,
    insert,
    or_,
    select,
    text,
    update,
)
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect

from porchlight.config import load as load_config
from porchlight.errors import BadInput
from porchlight.hub import rollouts
from porchlight.hub.auth import DeviceIdentity, PersonIdentity, require_device, require_person
from porchlight.hub.check_requests import CheckRequestRules, describe, is_expired
from porchlight.hub.db import UTCDateTime, devices, metadata
from porchlight.hub.practice import not_practice
from porchlight.hub.services import services
from porchlight.hub.store import Role
from porchlight.provisioning.layout import check_version

STATIC_DIR = Path(__file__).parent / "static"
# Two missed 30-minute checks plus their jitter: the device is not reaching us.
STALE_AFTER = timedelta(minutes=75)
MAX_INVENTORY_BYTES = 16 * 1024
MAX_BUNDLE_BYTES = 1024 * 1024
FAILED_OUTCOMES = ("rolled_back", "rejected", "refused")
# pg_advisory_xact_lock key: one new rollout at a time across hub instances ("roll" in ASCII).
_NEW_ROLLOUT_LOCK = 0x726F6C6C

# Latest heartbeat per device.
fleet_devices = Table(
    "fleet_devices",
    metadata,
    Column("device_id", String(36), ForeignKey("devices.id", ondelete="CASCADE"), primary_key=True),
    Column("received_at", UTCDateTime(), nullable=False),
    Column("version", String(64), nullable=True),
    Column("phase", String(16), nullable=True),
    Column("inventory", Text, nullable=False),  # JSON, technical only
    Column("diagnostics_requested_at", UTCDateTime(), nullable=True),
    Column("diagnostics_requested_by", String(64), nullable=True),
    # Support asked for an update check now: the id goes out in every heartbeat reply until
    # the device's heartbeat reports a check that answered it (a lost reply costs nothing).
    Column("check_request_id", String(36), nullable=True),
    Column("check_requested_at", UTCDateTime(), nullable=True),
    Column("check_requested_by", String(64), nullable=True),
)

rollouts_table = Table(
    "rollouts",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("version", String(64), nullable=False),
    Column("from_version", String(64), nullable=True),
    Column("plan", Text, nullable=False),  # JSON: canaries, stages, thresholds
    Column("status", String(16), nullable=False),
    Column("stage", Integer, nullable=False),
    Column("reason", Text, nullable=False),
    Column("stage_started_at", Float, nullable=False),
    Column("created", UTCDateTime(), nullable=False),
    Column("created_by", String(64), nullable=False),
    Column("updated", UTCDateTime(), nullable=False),
)

rollout_reports = Table(
    "rollout_reports",
    metadata,
    Column(
        "rollout_id", String(36), ForeignKey("rollouts.id", ondelete="CASCADE"), primary_key=True
    ),
    Column("device_id", String(36), primary_key=True),
    Column("ok", Integer, nullable=False),
    Column("reason", Text, nullable=False),
    Column("at", UTCDateTime(), nullable=False),
)

diagnostics = Table(
    "diagnostics",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("device_id", String(36), ForeignKey("devices.id", ondelete="CASCADE"), index=True),
    Column("received_at", UTCDateTime(), nullable=False),
    Column("bundle", Text, nullable=False),
)

router = APIRouter(tags=["fleet"])
Device = Annotated[DeviceIdentity, Depends(require_device)]
Support = Annotated[PersonIdentity, Depends(require_person(Role.SUPPORT, Role.ADMIN))]


# -- wire models --------------------------------------------------------------------------


class LastResult(BaseModel):
    version: str | None = Field(None, max_length=64)
    outcome: str = Field(max_length=32)
    reason: str = Field("", max_length=1000)
    at: float | None = None
    rollout_id: str | None = Field(None, max_length=36)


class LastCheck(BaseModel):
    """The device's last update check: when (its clock), how it ended, which request it
    answered (if support asked for it)."""

    at: float | None = None
    outcome: str = Field(max_length=32)
    version: str | None = Field(None, max_length=64)
    reason: str = Field("", max_length=1000)
    request_id: str | None = Field(None, max_length=36)


class UpdateInfo(BaseModel):
    current: str | None = Field(None, max_length=64)
    previous: str | None = Field(None, max_length=64)
    phase: str = Field("idle", max_length=16)
    target: str | None = Field(None, max_length=64)
    last_result: LastResult | None = None
    last_check: LastCheck | None = None
    failed: dict[str, str] = Field(default_factory=dict, max_length=20)


class Heartbeat(BaseModel):
    """What a device says about itself: technical state only, never patient data."""

    uptime_s: float | None = Field(None, ge=0)
    outbox_depth: int | None = Field(None, ge=0)
    last_call_quality: float | None = None  # placeholder until adaptive video reports it
    disk_free_bytes: int | None = Field(None, ge=0)
    disk_total_bytes: int | None = Field(None, ge=0)
    cpu_temp_c: float | None = Field(None, ge=-50, le=150)
    last_self_test: dict[str, Any] | None = None  # placeholder until the self-test lands
    kiosk_problems: list[str] = Field(default_factory=list, max_length=10)
    kiosk_activity: str | None = Field(None, max_length=16)
    update: UpdateInfo = Field(default_factory=UpdateInfo)


class UpdateDirective(BaseModel):
    version: str
    rollout_id: str


class HeartbeatReply(BaseModel):
    update: UpdateDirective | None
    diagnostics_requested: bool
    # Support asked for a check now: the request's id, until a heartbeat reports it answered.
    check_requested: str | None = None


class RolloutIn(BaseModel):
    version: str = Field(max_length=64)
    replaces: str | None = Field(
        None,
        max_length=36,
        description=(
            "The id of the open rollout this one replaces, as the caller last saw it (null: "
            "none was open). If another was started meanwhile: 409, nothing changes. Left "
            "out: replace whatever is open."
        ),
    )
    from_version: str | None = Field(None, max_length=64)
    canaries: list[str] = Field(default_factory=list, max_length=100)
    stages: list[float] = Field(default_factory=lambda: [10.0, 50.0, 100.0], max_length=20)
    advance_fraction: float = 0.8
    max_failure_rate: float = 0.2
    min_reports: int = 3


class CheckRequestIn(BaseModel):
    """Which devices should check for updates now: the listed ones, or every one."""

    device_ids: list[str] = Field(default_factory=list, max_length=5000)
    all: bool = False


class DiagnosticsIn(BaseModel):
    bundle: dict[str, Any]


# -- helpers --------------------------------------------------------------------------------


def _lock(request: Request) -> threading.Lock:
    # One per app. Between hub instances the database serialises rollout decisions (see
    # _decision); this keeps an instance's own requests from queueing on the row lock, each
    # holding a pooled connection while it waits, and serialises a device's own heartbeats
    # (the fleet row is read, then written). (Starlette's State keeps its values in `_state`.)
    return request.app.state._state.setdefault("fleet_lock", threading.Lock())


@contextmanager
def _decision(engine: Engine) -> Iterator[Connection]:
    """One transaction for a read-decide-write of rollout state, serialised between hub
    instances. On PostgreSQL the caller reads the rollout row FOR UPDATE (`_locked_rollout`):
    another instance deciding on it waits, then reads what this one wrote. SQLite has one
    writer; BEGIN IMMEDIATE takes it before the first read, not at the first write, so what was
    read cannot change before the decision is written."""
    with engine.begin() as conn:
        if conn.dialect.name == "sqlite":
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        yield conn


def _locked_rollout(conn: Connection, rollout_id: str) -> Any:
    return conn.execute(
        select(rollouts_table).where(rollouts_table.c.id == rollout_id).with_for_update()
    ).first()


def _version_key(text: str | None) -> tuple[int, Version | str]:
    try:
        return (1, Version(text or ""))
    except InvalidVersion:
        return (0, text or "")


def _plan(row: Any) -> rollouts.Plan:
    spec = json.loads(row.plan)
    return rollouts.Plan(
        id=row.id,
        version=row.version,
        from_version=row.from_version,
        canaries=tuple(spec["canaries"]),
        stages=tuple(spec["stages"]),
        advance_fraction=spec["advance_fraction"],
        max_failure_rate=spec["max_failure_rate"],
        min_reports=spec["min_reports"],
    )


def _state(row: Any) -> rollouts.State:
    return rollouts.State(rollouts.Status(row.status), row.stage, row.reason, row.stage_started_at)


def _active_rollout(engine: Engine) -> Any:
    with engine.connect() as conn:
        return conn.execute(
            select(rollouts_table)
            .where(rollouts_table.c.status != rollouts.Status.SUPERSEDED.value)
            .order_by(rollouts_table.c.created.desc())
            .limit(1)
        ).first()


def _fleet_ids(db: Engine | Connection) -> list[str]:
    if isinstance(db, Engine):
        with db.connect() as conn:
            return _fleet_ids(conn)
    return [
        r.id
        for r in db.execute(
            # Practice kiosks (hub/practice.py) run the hub's own code, never a release.
            select(devices.c.id).where(
                devices.c.revoked_at.is_(None), not_practice(devices.c.patient_id)
            )
        )
    ]


def _reports(conn: Connection, rollout_id: str) -> dict[str, rollouts.Report]:
    rows = conn.execute(select(rollout_reports).where(rollout_reports.c.rollout_id == rollout_id))
    return {r.device_id: rollouts.Report(bool(r.ok), r.reason) for r in rows}


def _save_state(conn: Connection, rollout_id: str, state: rollouts.State, now: datetime) -> None:
    conn.execute(
        update(rollouts_table)
        .where(rollouts_table.c.id == rollout_id)
        .values(
            status=state.status.value,
            stage=state.stage,
            reason=state.reason,
            stage_started_at=state.stage_started_at,
            updated=now,
        )
    )


def _record_result(
    engine: Engine, rollout: Any, device_id: str, result: LastResult, now: datetime
) -> None:
    if result.rollout_id != rollout.id or result.version != rollout.version:
        return
    if result.outcome == "installed":
        ok = True
    elif result.outcome in FAILED_OUTCOMES:
        ok = False
    else:
        return
    with engine.begin() as conn:
        conn.execute(
            delete(rollout_reports).where(
                (rollout_reports.c.rollout_id == rollout.id)
                & (rollout_reports.c.device_id == device_id)
            )
        )
        conn.execute(
            insert(rollout_reports).values(
                rollout_id=rollout.id,
                device_id=device_id,
                ok=int(ok),
                reason=result.reason[:1000],
                at=now,
            )
        )


Decide = Callable[[Connection, rollouts.Plan, rollouts.State], rollouts.State]


def _decide(
    engine: Engine, rollout_id: str, now: datetime, decide: Decide
) -> tuple[rollouts.Plan, rollouts.State] | None:
    """Read the rollout under its lock, decide its next state, save it if it changed: one
    transaction (None: no such rollout). `decide` may raise BadInput; nothing is saved then."""
    with _decision(engine) as conn:
        row = _locked_rollout(conn, rollout_id)
        if row is None:
            return None
        plan, state = _plan(row), _state(row)
        new = decide(conn, plan, state)
        if new != state:
            _save_state(conn, rollout_id, new, now)
        return plan, new


def _judge(now: datetime) -> Decide:
    def judge(conn: Connection, plan: rollouts.Plan, state: rollouts.State) -> rollouts.State:
        fleet, reports = _fleet_ids(conn), _reports(conn, plan.id)
        return rollouts.evaluate(plan, state, fleet, reports, now.timestamp())

    return judge


def _evaluate(
    engine: Engine, rollout_id: str, now: datetime
) -> tuple[rollouts.Plan, rollouts.State] | None:
    """The rollout's plan and state after judging the reports so far; saved if it changed.

    Most heartbeats change nothing and judge without a lock. One whose judgement would change
    the state judges again under the lock, from the state and reports as they are then: another
    instance may have moved it meanwhile (halted, paused, advanced), and a decision made from
    the state before must not overwrite that."""
    with engine.connect() as conn:
        row = conn.execute(select(rollouts_table).where(rollouts_table.c.id == rollout_id)).first()
        if row is None:
            return None
        plan, state = _plan(row), _state(row)
        if _judge(now)(conn, plan, state) == state:
            return plan, state
    return _decide(engine, rollout_id, now, _judge(now))


# -- devices --------------------------------------------------------------------------------


def check_rules_of(request: Request) -> CheckRequestRules:
    """The app's rules for check requests (read once per app from config and environment)."""
    state = request.app.state
    if getattr(state, "check_request_rules", None) is None:
        state.check_request_rules = load_config(CheckRequestRules, "check_requests")
    return state.check_request_rules


def heartbeat_work(request: Request, device: DeviceIdentity, beat: Heartbeat) -> HeartbeatReply:
    hub = services(request)
    engine, now = hub.store.engine, hub.clock()
    rules = check_rules_of(request)
    inventory = beat.model_dump_json()
    if len(inventory) > MAX_INVENTORY_BYTES:
        raise BadInput("the heartbeat is too large; send less detail")
    version = beat.update.current
    with _lock(request):
        with engine.begin() as conn:
            found = conn.execute(
                select(fleet_devices).where(fleet_devices.c.device_id == device.device_id)
            ).first()
            values: dict[str, Any] = {
                "received_at": now,
                "version": version,
                "phase": beat.update.phase,
                "inventory": inventory,
            }
            check_request = found.check_request_id if found is not None else None
            answered = beat.update.last_check and beat.update.last_check.request_id
            expired = (
                check_request is not None
                and found.check_requested_at is not None
                and is_expired(found.check_requested_at, now, rules)
            )
            # Answered, or expired (back after so long, the device's own 30-minute schedule
            # checks soon enough): the hub stops asking.
            if check_request is not None and (answered == check_request or expired):
                values.update(check_request_id=None, check_requested_at=None)
                values.update(check_requested_by=None)
                check_request = None
            if found is None:
                conn.execute(insert(fleet_devices).values(device_id=device.device_id, **values))
            else:
                conn.execute(
                    update(fleet_devices)
                    .where(fleet_devices.c.device_id == device.device_id)
                    .values(**values)
                )
        requested = found is not None and found.diagnostics_requested_at is not None
        directive = None
        rollout = _active_rollout(engine)
        if rollout is not None:
            if beat.update.last_result is not None:
                _record_result(engine, rollout, device.device_id, beat.update.last_result, now)
            judged = _evaluate(engine, rollout.id, now)
            if judged is not None:
                plan, state = judged
                target = rollouts.target_for(plan, state, device.device_id, version)
                if target is not None and target != version:
                    directive = UpdateDirective(version=target, rollout_id=plan.id)
    return HeartbeatReply(
        update=directive, diagnostics_requested=requested, check_requested=check_request
    )


@router.post("/api/fleet/heartbeat", response_model=HeartbeatReply)
def post_heartbeat(request: Request, device: Device, beat: Heartbeat) -> HeartbeatReply:
    """A device's heartbeat and inventory; the reply says what it should run."""
    return heartbeat_work(request, device, beat)


async def _read_limited(request: Request, limit: int) -> bytes:
    chunks, size = [], 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise BadInput(f"the diagnostics bundle is over {limit} bytes; send less log")
            chunks.append(chunk)
    except ClientDisconnect:
        raise BadInput("the upload was cut off; send it again") from None
    return b"".join(chunks)


@router.post("/api/fleet/diagnostics")
async def post_diagnostics(request: Request, device: Device) -> dict[str, str]:
    """A diagnostics bundle support asked for (scrubbed on the device: no patient data)."""
    body = await _read_limited(request, MAX_BUNDLE_BYTES)
    try:
        bundle = DiagnosticsIn.model_validate_json(body).bundle
    except ValueError:
        raise BadInput('the diagnostics bundle is not a JSON object {"bundle": {...}}') from None
    hub = services(request)

    def work() -> str:
        bundle_id, now = str(uuid.uuid4()), hub.clock()
        with hub.store.engine.begin() as conn:
            conn.execute(
                insert(diagnostics).values(
                    id=bundle_id,
                    device_id=device.device_id,
                    received_at=now,
                    bundle=json.dumps(bundle),
                )
            )
            conn.execute(
                update(fleet_devices)
                .where(fleet_devices.c.device_id == device.device_id)
                .values(diagnostics_requested_at=None, diagnostics_requested_by=None)
            )
        return bundle_id

    return {"id": await run_in_threadpool(work)}


# -- support ------------------------------------------------------------------------------


def _device_row(
    row: Any, now: datetime, newest: str | None, has_bundle: bool, rules: CheckRequestRules
) -> dict[str, Any]:
    inventory = json.loads(row.inventory) if row.inventory else {}
    update_info = inventory.get("update", {})
    last = update_info.get("last_result") or {}
    stale = row.received_at is None or now - row.received_at > STALE_AFTER
    failing = bool(inventory.get("kiosk_problems")) or last.get("outcome") in FAILED_OUTCOMES
    return {
        "device_id": row.device_id,
        "last_seen": row.received_at.isoformat() if row.received_at else None,
        "version": row.version,
        "phase": row.phase,
        "uptime_s": inventory.get("uptime_s"),
        "outbox_depth": inventory.get("outbox_depth"),
        "last_call_quality": inventory.get("last_call_quality"),
        "disk_free_bytes": inventory.get("disk_free_bytes"),
        "disk_total_bytes": inventory.get("disk_total_bytes"),
        "cpu_temp_c": inventory.get("cpu_temp_c"),
        "kiosk_problems": inventory.get("kiosk_problems", []),
        "last_result": last or None,
        "stale": stale,
        "failing": failing,
        "old_version": newest is not None and _version_key(row.version) < _version_key(newest),
        "diagnostics_requested": row.diagnostics_requested_at is not None,
        "check_requested_at": (
            row.check_requested_at.isoformat() if row.check_requested_at else None
        ),
        # Where the open request stands: waiting (heard lately), offline, or expired.
        "check_request": (
            describe(row.check_requested_at, row.received_at, now, rules).to_json()
            if row.check_requested_at and row.check_request_id
            else None
        ),
        "last_check": update_info.get("last_check"),
        "has_diagnostics": has_bundle,
    }


def _self_test_summary(test: Any) -> dict[str, Any] | None:
    """When the last self-test ran and which checks found a problem (their names only)."""
    if test is None:
        return None
    problems = [r.get("check", "?") for r in test.results if r.get("status") == "problem"]
    return {"ran_at": test.ran_at.isoformat(), "trigger": test.trigger, "problems": problems}


@router.get("/api/fleet/devices")
def list_devices(request: Request, _person: Support, filter: str | None = None) -> dict[str, Any]:
    """Every device that has sent a heartbeat; `filter` = stale, failing or old."""
    if filter not in (None, "", "stale", "failing", "old"):
        raise BadInput("filter must be stale, failing or old")
    hub = services(request)
    now = hub.clock()
    with hub.store.engine.connect() as conn:
        rows = list(conn.execute(select(fleet_devices).order_by(fleet_devices.c.device_id)))
        with_bundle = {r[0] for r in conn.execute(select(diagnostics.c.device_id).distinct())}
    newest = max((r.version for r in rows if r.version), key=_version_key, default=None)
    rules = check_rules_of(request)
    listed = [_device_row(r, now, newest, r.device_id in with_bundle, rules) for r in rows]
    for device in listed:
        device["last_self_test"] = _self_test_summary(
            hub.store.latest_self_test(device["device_id"])
        )
    key = {"stale": "stale", "failing": "failing", "old": "old_version"}.get(filter or "")
    if key:
        listed = [d for d in listed if d[key]]
    return {"devices": listed, "newest_version": newest, "count": len(listed)}


def _rollout_json(engine: Engine, row: Any) -> dict[str, Any]:
    plan, state = _plan(row), _state(row)
    with engine.connect() as conn:
        fleet, reports = _fleet_ids(conn), _reports(conn, plan.id)
    stages = rollouts.progress(plan, fleet, reports)
    return {
        "id": plan.id,
        "version": plan.version,
        "from_version": plan.from_version,
        "status": state.status.value,
        "stage": state.stage,
        "stage_name": rollouts.stage_name(plan, state.stage),
        "reason": state.reason,
        "canaries": list(plan.canaries),
        "max_failure_rate": plan.max_failure_rate,
        "advance_fraction": plan.advance_fraction,
        "created": row.created.isoformat(),
        "created_by": row.created_by,
        "stages": [s.__dict__ for s in stages],
        "failures": [
            {"device_id": d, "reason": r.reason} for d, r in sorted(reports.items()) if not r.ok
        ][:50],
    }


@router.get("/api/fleet/rollouts")
def list_rollouts(request: Request, _person: Support) -> dict[str, Any]:
    engine = services(request).store.engine
    with engine.connect() as conn:
        rows = list(
            conn.execute(select(rollouts_table).order_by(rollouts_table.c.created.desc()).limit(20))
        )
    return {"rollouts": [_rollout_json(engine, r) for r in rows]}


def _replaced_meanwhile(conn: Connection, open_id: str | None) -> str:
    """Why a new rollout is refused: the open one is not the one its caller meant to replace."""
    if open_id is None:
        return (
            "The rollout you meant to replace is no longer open and no other is. "
            "Look at the rollouts again, then start yours if it is still wanted."
        )
    row = conn.execute(select(rollouts_table).where(rollouts_table.c.id == open_id)).one()
    return (
        f"Another rollout was started meanwhile: {row.version}, by {row.created_by}. "
        "Look at it, then start yours again if it is still wanted."
    )


@router.post("/api/fleet/rollouts", status_code=201)
def create_rollout(request: Request, person: Support, body: RolloutIn) -> dict[str, Any]:
    """Start a staged rollout; it replaces the open one. With `replaces`, only if that is the
    open one (null: none is open); otherwise 409 and nothing changes."""
    hub = services(request)
    engine, now = hub.store.engine, hub.clock()
    check_version(body.version)
    if body.from_version is not None:
        check_version(body.from_version)
    rollout_id = str(uuid.uuid4())
    with _lock(request), _decision(engine) as conn:
        if conn.dialect.name == "postgresql":
            # Rows FOR UPDATE cannot serialise this: with none open there is no row to lock,
            # and a rollout another instance inserts while this one waits is not in what this
            # statement sees. Every read after this lock sees what the previous one committed.
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _NEW_ROLLOUT_LOCK})
        open_id = conn.execute(
            select(rollouts_table.c.id)
            .where(rollouts_table.c.status != rollouts.Status.SUPERSEDED.value)
            .order_by(rollouts_table.c.created.desc())
            .limit(1)
        ).scalar()
        if "replaces" in body.model_fields_set and body.replaces != open_id:
            raise HTTPException(409, _replaced_meanwhile(conn, open_id))
        from_version = body.from_version
        if from_version is None:
            versions = [r[0] for r in conn.execute(select(fleet_devices.c.version)) if r[0]]
            # What most of the fleet runs now is what a roll back returns to.
            from_version = max(set(versions), key=versions.count) if versions else None
        plan = rollouts.Plan(
            rollout_id,
            body.version,
            from_version,
            tuple(body.canaries),
            tuple(body.stages),
            body.advance_fraction,
            body.max_failure_rate,
            body.min_reports,
        )
        spec = {
            "canaries": list(plan.canaries),
            "stages": list(plan.stages),
            "advance_fraction": plan.advance_fraction,
            "max_failure_rate": plan.max_failure_rate,
            "min_reports": plan.min_reports,
        }
        # No canaries: stage 0 is empty and opens stage 1 at once.
        state = _judge(now)(conn, plan, rollouts.State(stage_started_at=now.timestamp()))
        # Superseding takes each open row's lock: a decision on one in flight finishes first,
        # and the next one reads it superseded and leaves it so.
        conn.execute(
            update(rollouts_table)
            .where(rollouts_table.c.status != rollouts.Status.SUPERSEDED.value)
            .values(status=rollouts.Status.SUPERSEDED.value, updated=now)
        )
        conn.execute(
            insert(rollouts_table).values(
                id=rollout_id,
                version=plan.version,
                from_version=from_version,
                plan=json.dumps(spec),
                status=state.status.value,
                stage=state.stage,
                reason=state.reason,
                stage_started_at=state.stage_started_at,
                created=now,
                created_by=person.username,
                updated=now,
            )
        )
    return _rollout_json(engine, _rollout_row(engine, rollout_id))


def _rollout_row(engine: Engine, rollout_id: str) -> Any:
    with engine.connect() as conn:
        return conn.execute(select(rollouts_table).where(rollouts_table.c.id == rollout_id)).first()


@router.post("/api/fleet/rollouts/{rollout_id}/{action}")
def act_on_rollout(
    request: Request, _person: Support, rollout_id: str, action: str
) -> dict[str, Any]:
    """pause, resume or rollback a rollout by hand."""
    if action not in ("pause", "resume", "rollback"):
        raise BadInput("the action must be pause, resume or rollback")
    hub = services(request)
    engine, now = hub.store.engine, hub.clock()

    def act(_conn: Connection, plan: rollouts.Plan, state: rollouts.State) -> rollouts.State:
        if action == "pause":
            return rollouts.pause(state)
        if action == "resume":
            return rollouts.resume(state, now.timestamp())
        return rollouts.roll_back(plan, state)

    with _lock(request):
        if _decide(engine, rollout_id, now, act) is None:
            raise HTTPException(404, "There is no rollout with that id.")
    return _rollout_json(engine, _rollout_row(engine, rollout_id))


@router.post("/api/fleet/devices/{device_id}/diagnostics-request")
def request_diagnostics(request: Request, person: Support, device_id: str) -> dict[str, bool]:
    """Ask a device for a diagnostics bundle; it sees the request in its next heartbeat reply."""
    hub = services(request)
    with hub.store.engine.begin() as conn:
        done = conn.execute(
            update(fleet_devices)
            .where(fleet_devices.c.device_id == device_id)
            .values(diagnostics_requested_at=hub.clock(), diagnostics_requested_by=person.username)
        ).rowcount
    if not done:
        raise HTTPException(404, "That device has not sent a heartbeat yet; nothing to ask.")
    return {"requested": True}


@router.post("/api/fleet/check-requests")
def request_checks(request: Request, person: Support, body: CheckRequestIn) -> dict[str, Any]:
    """Ask devices to check for updates now (the listed ones, or `all`). Each sees the request
    in its next heartbeat reply (every minute) and checks at once, unless the patient is busy."""
    if body.all == bool(body.device_ids):
        raise BadInput("name the devices to check (device_ids) or ask for all of them, not both")
    hub = services(request)
    now = hub.clock()
    rules = check_rules_of(request)
    with hub.store.engine.begin() as conn:
        query = select(fleet_devices.c.device_id)
        if not body.all:
            query = query.where(fleet_devices.c.device_id.in_(body.device_ids))
        known = [r.device_id for r in conn.execute(query)]
        for device_id in known:
            # A request still open keeps its id: the device may be answering it right now.
            # An expired one is replaced: asked again, it is a new request.
            conn.execute(
                update(fleet_devices)
                .where(fleet_devices.c.device_id == device_id)
                .where(
                    or_(
                        fleet_devices.c.check_request_id.is_(None),
                        fleet_devices.c.check_requested_at <= now - rules.expire_after,
                    )
                )
                .values(check_request_id=str(uuid.uuid4()))
            )
        if known:
            conn.execute(
                update(fleet_devices)
                .where(fleet_devices.c.device_id.in_(known))
                .values(check_requested_at=now, check_requested_by=person.username)
            )
    unknown = sorted(set(body.device_ids) - set(known))
    if not known:
        raise HTTPException(404, "None of those devices has sent a heartbeat yet; nothing to ask.")
    return {"requested": sorted(known), "unknown": unknown}


@router.get("/api/fleet/devices/{device_id}/diagnostics")
def latest_diagnostics(request: Request, _person: Support, device_id: str) -> dict[str, Any]:
    hub = services(request)
    with hub.store.engine.connect() as conn:
        row = conn.execute(
            select(diagnostics)
            .where(diagnostics.c.device_id == device_id)
            .order_by(diagnostics.c.received_at.desc())
            .limit(1)
        ).first()
    if row is None:
        raise HTTPException(404, "No diagnostics from that device yet; request them first.")
    return {
        "device_id": device_id,
        "received_at": row.received_at.isoformat(),
        "bundle": json.loads(row.bundle),
    }


@router.get("/support", include_in_schema=False)
async def support_page() -> FileResponse:
    return FileResponse(STATIC_DIR / "support.html", media_type="text/html")

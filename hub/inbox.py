"""The hub's sync inbox: kiosks post batches of records; each record id is stored once.

Per record, never per batch: new → "stored"; an identical resend → "duplicate" (success,
nothing added); the same id with different content → "conflict" (nothing overwritten, the
attempt kept in `record_conflicts` and flagged); a record that fails validation → "invalid";
a record for another patient than the device's → "forbidden". The primary key on the record
id makes this hold under concurrent requests (INSERT … ON CONFLICT DO NOTHING), not a check
in code that two requests could both pass.

The batch as a whole is refused only when the request itself is unreadable (not JSON, wrong
shape, too large): 400/413/415 with the protocol's error body.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, time
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from sqlalchemy import (
    Column,
    Engine,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
    func,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect

from porchlight.errors import BadInput
from porchlight.hub.auth import DeviceIdentity
from porchlight.hub.db import UTCDateTime, metadata
from porchlight.hub.help_alerts import announce, newly_stored_help
from porchlight.hub.questionnaires import Clinician, Device, known_questionnaire
from porchlight.hub.services import services
from porchlight.hub.stills import (
    StillFiles,
    final_still,
    ready_message,
    still_files,
    stills,
    tell_clinician,
)
from porchlight.kiosk.questionnaire import Level, Questionnaire
from porchlight.kiosk.records import VITALS, Record, RecordKind, check_vitals, parse_time

MAX_BATCH_RECORDS = 1000
MAX_BODY_BYTES = 2 * 1024 * 1024  # as sent (possibly gzip)
MAX_JSON_BYTES = 8 * 1024 * 1024  # after decompression: a gzip bomb stops here

records = Table(
    "records",
    metadata,
    # The device-made UUID. Being the primary key is what makes a resend idempotent.
    Column("id", String(36), primary_key=True),
    Column(
        "patient_id",
        String(36),
        ForeignKey("patients.id", ondelete="RESTRICT"),
        nullable=False,
    ),
    Column("device_id", String(36), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("recorded_at", UTCDateTime(), nullable=False),
    Column("content_sha256", String(64), nullable=False),
    Column("content", Text, nullable=False),  # the canonical JSON the device sent
    Column("flags", Text, nullable=False),  # JSON list of keys the clinician should look at
    Column("received_at", UTCDateTime(), nullable=False),
)
Index("ix_records_patient_recorded", records.c.patient_id, records.c.recorded_at)

# Attempts to store different content under an id already taken: kept, never applied.
record_conflicts = Table(
    "record_conflicts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("record_id", String(36), nullable=False, index=True),
    Column("device_id", String(36), nullable=False),
    Column("content_sha256", String(64), nullable=False),
    Column("received_at", UTCDateTime(), nullable=False),
    UniqueConstraint("record_id", "content_sha256", name="uq_record_conflicts_record_content"),
)


def _insert_ignoring_conflict(engine: Engine, table: Table, conflict_on: list[str]) -> Any:
    """INSERT … ON CONFLICT DO NOTHING in the engine's dialect (SQLite and PostgreSQL)."""
    dialect = postgresql if engine.dialect.name == "postgresql" else sqlite
    return dialect.insert(table).on_conflict_do_nothing(index_elements=conflict_on)


def hub_flags(record: Record, questionnaire: Questionnaire | None) -> list[str]:
    """The keys the clinician should look at, by the hub's own rules plus what the patient
    confirmed as unusual on the kiosk."""
    flags = set(record.flags)
    if record.kind is RecordKind.VITALS:
        for f in check_vitals(record.body["values"]):
            if f.level in (Level.CHECK, Level.FLAG):
                flags.add(f.link_id)
    elif record.kind is RecordKind.ANSWERS and questionnaire is not None:
        for link_id, value in record.body["answers"].items():
            if questionnaire.item(link_id).check(value).level in (Level.CHECK, Level.FLAG):
                flags.add(link_id)
    elif record.kind is RecordKind.DEVICE_FAULT:
        flags.add("code")
    return sorted(flags)


@dataclass(frozen=True)
class Result:
    id: str | None
    status: str  # stored | duplicate | conflict | invalid | forbidden | error (still bytes)
    message: str = ""

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.id, "status": self.status}
        if self.message:
            out["message"] = self.message
        return out


def store_records(
    engine: Engine,
    device: DeviceIdentity,
    items: list[Any],
    *,
    now: datetime,
    lookup: Callable[[str], Questionnaire | None],
    stills_here: StillFiles | None = None,
) -> list[Result]:
    """Validate and store each record; one result per item, in order.

    A `still` record is stored only when `stills_here` has all its bytes and they match
    (then the still is final, in the same transaction); otherwise its result is `error`.
    """
    results: list[Result | None] = [None] * len(items)
    valid: list[tuple[int, Record, str, list[str]]] = []
    still_sha1: dict[str, str] = {}
    for i, raw in enumerate(items):
        rid = raw.get("id") if isinstance(raw, dict) and isinstance(raw.get("id"), str) else None
        rid = rid if rid is None or len(rid) <= 64 else None
        try:
            record = Record.from_wire(raw, questionnaires=lookup)
        except BadInput as exc:
            results[i] = Result(rid, "invalid", str(exc))
            continue
        if record.patient_id != device.patient_id:
            results[i] = Result(
                rid, "forbidden", "This device may only send records of its own patient."
            )
            continue
        questionnaire = (
            lookup(record.body["questionnaire"]) if record.kind is RecordKind.ANSWERS else None
        )
        digest = hashlib.sha256(record.content()).hexdigest()
        if record.kind is RecordKind.STILL and not _already_stored(engine, record.id):
            problem = _check_still_bytes(stills_here, record)
            if isinstance(problem, Result):
                results[i] = problem
                continue
            still_sha1[record.id] = problem
        valid.append((i, record, digest, hub_flags(record, questionnaire)))
    if valid:
        # RETURNING, not rowcount: psycopg reports -1 for INSERT … ON CONFLICT DO NOTHING.
        insert_record = _insert_ignoring_conflict(engine, records, ["id"]).returning(records.c.id)
        insert_conflict = _insert_ignoring_conflict(
            engine, record_conflicts, ["record_id", "content_sha256"]
        )
        with engine.begin() as conn:
            # In id order: concurrent batches then lock rows in one order and cannot deadlock
            # (PostgreSQL waits on another transaction's uncommitted row with the same id).
            for i, record, digest, flags in sorted(valid, key=lambda v: v[1].id):
                done = conn.execute(
                    insert_record,
                    {
                        "id": record.id,
                        "patient_id": record.patient_id,
                        "device_id": device.device_id,
                        "kind": record.kind.value,
                        "recorded_at": parse_time(record.recorded_at),
                        "content_sha256": digest,
                        "content": record.content().decode(),
                        "flags": json.dumps(flags),
                        "received_at": now,
                    },
                )
                if done.first() is not None:
                    if record.id in still_sha1:  # the record commits the still's bytes
                        conn.execute(
                            update(stills)
                            .where(stills.c.id == record.id)
                            .values(
                                StillFiles.finalise_values(
                                    dict(record.body),
                                    parse_time(record.recorded_at),
                                    still_sha1[record.id],
                                )
                            )
                        )
                    results[i] = Result(record.id, "stored")
                    continue
                stored = conn.execute(
                    select(records.c.content_sha256).where(records.c.id == record.id)
                ).scalar_one()
                if stored == digest:
                    results[i] = Result(record.id, "duplicate")
                    continue
                conn.execute(
                    insert_conflict,
                    {
                        "record_id": record.id,
                        "device_id": device.device_id,
                        "content_sha256": digest,
                        "received_at": now,
                    },
                )
                results[i] = Result(
                    record.id,
                    "conflict",
                    "A different record is already stored under this id; nothing was changed.",
                )
    return [r for r in results if r is not None]


def _already_stored(engine: Engine, record_id: str) -> bool:
    with engine.connect() as conn:
        found = conn.execute(select(records.c.id).where(records.c.id == record_id)).first()
    return found is not None


def _check_still_bytes(files: StillFiles | None, record: Record) -> Result | str:
    """The SHA-1 (base64) of a still's bytes when they are all here and match, else an
    `error` result saying what to do (the kiosk keeps the record and tries again)."""
    if files is None:
        return Result(record.id, "error", "This hub does not take stills here.")
    body = record.body
    check = files.check_bytes(record.id, record.patient_id, body["size"], body["sha256"])
    if not check.ok:
        return Result(record.id, "error", check.message or "The still's bytes do not match.")
    return check.sha1_b64


def _stored_stills(items: list[Any], results: list[Result]) -> list[str]:
    kinds = {i.get("id"): i.get("kind") for i in items if isinstance(i, dict)}
    return [
        r.id
        for r in results
        if r.status == "stored" and r.id and kinds.get(r.id) == RecordKind.STILL.value
    ]


class _BadBatch(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def parse_batch(body: bytes, encoding: str | None) -> list[Any]:
    """The list of records in a request body, or _BadBatch saying what is wrong with it."""
    encoding = (encoding or "identity").strip().lower()
    if encoding == "gzip":
        try:
            body = _gunzip(body, MAX_JSON_BYTES)
        except (OSError, EOFError, zlib.error):
            raise _BadBatch(400, "bad_input", "The body is not valid gzip.") from None
    elif encoding != "identity":
        raise _BadBatch(415, "unsupported_encoding", "Send the body plain or gzip-compressed.")
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise _BadBatch(400, "bad_input", "The body is not JSON.") from None
    if not isinstance(data, dict) or not isinstance(data.get("records"), list):
        raise _BadBatch(400, "bad_input", 'The body must be {"records": [ ... ]}.')
    items = data["records"]
    if not items:
        raise _BadBatch(400, "bad_input", "The batch is empty; send at least one record.")
    if len(items) > MAX_BATCH_RECORDS:
        raise _BadBatch(
            413,
            "too_large",
            f"At most {MAX_BATCH_RECORDS} records per batch; split the batch.",
        )
    return items


def _gunzip(data: bytes, limit: int) -> bytes:
    """Decompress, refusing to produce more than `limit` bytes."""
    inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    out = inflater.decompress(data, limit + 1)
    if len(out) > limit or inflater.unconsumed_tail:
        raise _BadBatch(413, "too_large", "The batch is too large once decompressed; split it.")
    if not inflater.eof:
        raise zlib.error("truncated")
    return out


router = APIRouter(tags=["records"])


def _error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error": code, "message": message}, status_code=status)


async def _read_body(request: Request, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise _BadBatch(
                    413, "too_large", "The request body is too large; send smaller batches."
                )
            chunks.append(chunk)
    except ClientDisconnect:  # the link dropped mid-upload: nothing was stored, nobody waits
        raise _BadBatch(400, "bad_input", "The request body was cut off.") from None
    return b"".join(chunks)


@router.post(
    "/api/records",
    summary="Store a batch of records from this device (idempotent per record id)",
    description='Body: `{"records": [record, ...]}`, JSON, optionally gzip '
    '(Content-Encoding: gzip). Answer: `{"results": [{"id", "status", "message"?}]}` '
    "with status stored | duplicate | conflict | invalid | forbidden, one per record.",
)
async def post_records(request: Request, device: Device) -> Response:
    hub = services(request)
    try:
        body = await _read_body(request, MAX_BODY_BYTES)
    except _BadBatch as exc:
        return _error(exc.status, exc.code, exc.message)

    alerts: list[tuple[str, dict[str, Any]]] = []  # help requests to push to the care team
    files = still_files(request)
    stored_stills: list[str] = []  # stills now whole and checked: tell the clinician

    def work() -> Response:
        try:
            items = parse_batch(body, request.headers.get("content-encoding"))
        except _BadBatch as exc:
            return _error(exc.status, exc.code, exc.message)
        engine = hub.store.engine
        lookup = _memo(lambda canonical: known_questionnaire(engine, canonical))
        now = hub.clock()
        results = store_records(engine, device, items, now=now, lookup=lookup, stills_here=files)
        stored_stills.extend(_stored_stills(items, results))
        stored = {r.id for r in results if r.status == "stored" and r.id is not None}
        alerts.extend(newly_stored_help(hub.store, device.patient_id, items, stored, now))
        answer = json.dumps({"results": [r.to_json() for r in results]}, separators=(",", ":"))
        if "gzip" in request.headers.get("accept-encoding", "") and len(answer) > 1024:
            # Rural links are slow both ways; the per-record answers compress ~5x.
            return Response(
                gzip.compress(answer.encode(), compresslevel=6),
                media_type="application/json",
                headers={"Content-Encoding": "gzip", "Vary": "Accept-Encoding"},
            )
        return Response(answer, media_type="application/json")

    response = await run_in_threadpool(work)
    await announce(hub.signalling.bus, alerts)
    for still_id in stored_stills:
        still = await run_in_threadpool(final_still, hub.store.engine, still_id)
        if still is not None:
            await tell_clinician(
                hub.signalling, device.patient_id, still.call_id, ready_message(still)
            )
    return response


def _memo(fn: Callable[[str], Questionnaire | None]) -> Callable[[str], Questionnaire | None]:
    """Look each questionnaire up once per batch, not once per record."""
    seen: dict[str, Questionnaire | None] = {}

    def lookup(key: str) -> Questionnaire | None:
        if key not in seen:
            seen[key] = fn(key)
        return seen[key]

    return lookup


# --- what the clinician sees -------------------------------------------------------------


def _vital_rows(values: dict[str, Any], flags: list[str]) -> list[dict[str, Any]]:
    rows = []
    for key in [k for k in VITALS if k in values]:  # the usual order, not the stored one
        value = values[key]
        item = VITALS[key].item
        rows.append(
            {
                "key": key,
                "label": item.label,
                "value": value,
                "unit": item.unit_display,
                "usual": list(item.usual) if item.usual else None,
                "flag": key in flags,
            }
        )
    return rows


def _answer_rows(
    answers: dict[str, Any], flags: list[str], questionnaire: Questionnaire | None
) -> list[dict[str, Any]]:
    rows = []
    order = [i.link_id for i in questionnaire.items] if questionnaire else sorted(answers)
    for link_id in [k for k in order if k in answers]:  # the questionnaire's order
        value = answers[link_id]
        text, shown = link_id, value
        if questionnaire is not None:
            item = questionnaire.item(link_id)
            text = item.text
            if item.options:
                option = item.option(value)
                shown = option.display if option else value
            elif isinstance(value, bool):
                shown = "Yes" if value else "No"
        rows.append(
            {
                "link_id": link_id,
                "text": text,
                "answer": value,
                "shown": shown,
                "flag": link_id in flags,
            }
        )
    return rows


def patient_records(
    engine: Engine,
    patient_id: str,
    *,
    since: datetime | None = None,
    kinds: tuple[str, ...] | None = None,
) -> list[tuple[Record, list[str]]]:
    """A patient's records (recorded at or after `since`), oldest first, with their flags."""
    query = (
        select(records.c.content, records.c.flags)
        .where(records.c.patient_id == patient_id)
        .order_by(records.c.recorded_at, records.c.id)
    )
    if since is not None:
        query = query.where(records.c.recorded_at >= since)
    if kinds:
        query = query.where(records.c.kind.in_(kinds))
    with engine.connect() as conn:
        rows = conn.execute(query).all()
    return [(Record.from_wire(json.loads(c)), json.loads(f)) for c, f in rows]


def start_of_local_day(now: datetime) -> datetime:
    """Midnight today in the hub's local time zone (what "today" means on a clinic's wall)."""
    local = now.astimezone()
    return datetime.combine(local.date(), time(0), tzinfo=local.tzinfo)


def today_summary(engine: Engine, patient_id: str, now: datetime) -> dict[str, Any]:
    since = start_of_local_day(now)
    lookup = _memo(lambda canonical: known_questionnaire(engine, canonical))
    vitals, answers = [], []
    for record, flags in patient_records(engine, patient_id, since=since):
        if record.kind is RecordKind.VITALS:
            vitals.append(
                {
                    "record_id": record.id,
                    "recorded_at": record.recorded_at,
                    "readings": _vital_rows(dict(record.body["values"]), flags),
                    "flags": flags,
                }
            )
        elif record.kind is RecordKind.ANSWERS:
            questionnaire = lookup(record.body["questionnaire"])
            answers.append(
                {
                    "record_id": record.id,
                    "recorded_at": record.recorded_at,
                    "questionnaire": record.body["questionnaire"],
                    "title": questionnaire.title if questionnaire else None,
                    "items": _answer_rows(dict(record.body["answers"]), flags, questionnaire),
                    "flags": flags,
                }
            )
    with engine.connect() as conn:
        conflicts = conn.execute(
            select(func.count())
            .select_from(record_conflicts)
            .join(records, records.c.id == record_conflicts.c.record_id)
            .where(records.c.patient_id == patient_id, record_conflicts.c.received_at >= since)
        ).scalar_one()
    flagged = sum(len(v["flags"]) for v in vitals) + sum(len(a["flags"]) for a in answers)
    return {
        "patient_id": patient_id,
        "since": since.isoformat(),
        "vitals": vitals,
        "answers": answers,
        "flag_count": flagged,
        "conflicts": conflicts,
    }


@router.get(
    "/api/patients/{patient_id}/today",
    summary="Today's check-in answers and vitals for one patient, with flags",
)
def patient_today(patient_id: str, request: Request, person: Clinician) -> JSONResponse:
    hub = services(request)
    if hub.store.get_patient(patient_id) is None:
        return _error(404, "not_found", "No such patient. Check the patient id.")
    return JSONResponse(today_summary(hub.store.engine, patient_id, hub.clock()))

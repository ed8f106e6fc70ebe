"""Stills (issue 10): full-resolution photos a kiosk takes in a call. Bytes go up first, then
the `still` record commits them (docs/protocol.md, "The close look, stills and prompts").

Upload: `PUT /api/device/stills/{still_id}` in `Content-Range` chunks, resumable
(`GET` says how much the hub has). The bytes live in one file per still under
`<data_dir>/stills/`; the `stills` table keeps who it belongs to and how far the upload got.
A chunk is written at its offset, truncated there and fsynced before the table moves
`received` on, so a crash in between only leaves bytes the next chunk overwrites.

The `still` record (hub/inbox.py) is stored only when exactly `size` bytes whose SHA-256
matches are there; then the still is final and readable by the care team
(`GET /api/stills/{id}`, `GET /api/patients/{id}/stills`, FHIR Media in hub/fhir.py).

Limits per device, so a broken kiosk cannot fill the disk (`StillLimits`): at most 8 uploads
unfinished at once, 60 stills and 256 MiB started in any 24 hours; beyond that 429. A
part-uploaded still left for 7 days is dropped when that kiosk starts another.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import logging
import os
import re
import threading
import time
import uuid
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import anyio
from fastapi import APIRouter, Depends, Request
from fastapi.responses import FileResponse, JSONResponse, Response
from sqlalchemy import (
    Column,
    Engine,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    func,
    insert,
    select,
    update,
)
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect

from porchlight.errors import BadInput
from porchlight.hub.auth import (
    DeviceIdentity,
    PersonIdentity,
    check_patient_in_teams,
    require_device,
    require_patient_access,
)
from porchlight.hub.db import UTCDateTime, metadata
from porchlight.hub.services import services
from porchlight.hub.store import Role
from porchlight.hub.throttle import Throttled
from porchlight.protocol import DEVICE_STILLS_PATH, MAX_STILL_BYTES, HubToClinician

if TYPE_CHECKING:
    from porchlight.hub.signalling import Signalling

log = logging.getLogger(__name__)

UPLOADING = "uploading"
FINAL = "final"

stills = Table(
    "stills",
    metadata,
    Column("id", String(36), primary_key=True),  # the still record's UUID
    Column(
        "patient_id",
        String(36),
        ForeignKey("patients.id", ondelete="RESTRICT"),
        nullable=False,
    ),
    Column("device_id", String(36), nullable=True),
    Column("call_id", String(64), nullable=True),
    Column("request_id", String(64), nullable=True),  # the clinic page's id for its request
    Column("size", Integer, nullable=True),  # total bytes, from the first chunk
    Column("received", Integer, nullable=False),
    Column("state", String(16), nullable=False),  # uploading | final
    Column("width", Integer, nullable=True),
    Column("height", Integer, nullable=True),
    Column("content_type", String(32), nullable=True),
    Column("sha256", String(64), nullable=True),
    Column("sha1_b64", String(32), nullable=True),  # FHIR Attachment.hash
    Column("taken_at", UTCDateTime(), nullable=True),
    Column("created", UTCDateTime(), nullable=False),
    Column("started", UTCDateTime(), nullable=True),  # first chunk: what the limits count
)
Index("ix_stills_patient_taken", stills.c.patient_id, stills.c.taken_at)
Index("ix_stills_device_started", stills.c.device_id, stills.c.started)

# -- pure parts -----------------------------------------------------------------------------

_RANGE = re.compile(r"^bytes (\d{1,12})-(\d{1,12})/(\d{1,12})$")


@dataclass(frozen=True)
class ContentRange:
    start: int
    end: int  # inclusive, as HTTP has it
    total: int

    @property
    def length(self) -> int:
        return self.end - self.start + 1


class TooLarge(BadInput):
    """The still is larger than the hub takes (413)."""


def parse_content_range(header: str | None) -> ContentRange:
    """`bytes <start>-<end>/<total>`; BadInput (400) or TooLarge (413) saying what is wrong."""
    match = _RANGE.match((header or "").strip())
    if match is None:
        raise BadInput("Send each chunk with Content-Range: bytes <start>-<end>/<total>.")
    start, end, total = (int(g) for g in match.groups())
    if total > MAX_STILL_BYTES:
        raise TooLarge(f"A still may be at most {MAX_STILL_BYTES} bytes.")
    if not start <= end < total:
        raise BadInput("The Content-Range must lie inside the still: start ≤ end < total.")
    return ContentRange(start, end, total)


def parse_still_id(value: str) -> str:
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise BadInput("A still id is the still record's UUID.") from None


@dataclass(frozen=True)
class StillLimits:
    """What one device may have the hub keep (a broken kiosk cannot fill the disk)."""

    max_unfinished: int = 8
    max_per_day: int = 60
    max_bytes_per_day: int = 256 * 1024 * 1024
    # A part-uploaded still untouched this long is dropped (the kiosk still has it and
    # starts again from 0 when it comes back).
    stale_after: timedelta = timedelta(days=7)

    def refusal(self, unfinished: int, started_today: int, bytes_today: int, size: int) -> str:
        """Why a new upload of `size` bytes is refused ("" when it is not)."""
        if unfinished >= self.max_unfinished:
            return "This kiosk has too many stills half uploaded; finish those first."
        if started_today >= self.max_per_day:
            return "This kiosk has sent as many stills as the hub takes in a day; try later."
        if bytes_today + size > self.max_bytes_per_day:
            return "This kiosk has sent as many still bytes as the hub takes in a day; try later."
        return ""


@dataclass
class ProgressThrottle:
    """At most `per_second` progress messages per still. One held back is sent when its turn
    comes (so a paused upload shows where it really is); the last (complete) always goes."""

    per_second: float = 4.0
    _last: dict[str, float] = field(default_factory=dict)
    _held: dict[str, dict[str, Any]] = field(default_factory=dict)

    def offer(
        self, still_id: str, message: dict[str, Any], now: float, complete: bool
    ) -> tuple[dict[str, Any] | None, float | None]:
        """(the message to send now, or None; seconds until `flush` should run, or None)."""
        if complete:
            self._last.pop(still_id, None)
            self._held.pop(still_id, None)
            return message, None
        gap = 1.0 / self.per_second
        last = self._last.get(still_id)
        if last is None or now - last >= gap:
            if len(self._last) > 10_000:  # uploads abandoned half way: forget the oldest
                self._last.pop(next(iter(self._last)))
            self._last[still_id] = now
            self._held.pop(still_id, None)
            return message, None
        first = still_id not in self._held
        self._held[still_id] = message
        return None, (last + gap - now) if first else None

    def flush(self, still_id: str, now: float) -> dict[str, Any] | None:
        """The newest message held back for this still, if any (it counts as sent now)."""
        message = self._held.pop(still_id, None)
        if message is not None:
            self._last[still_id] = now
        return message


# -- upload state and files ------------------------------------------------------------------


@dataclass(frozen=True)
class UploadState:
    received: int
    size: int | None
    conflict: bool = False  # the chunk did not start where the hub is (409)

    @property
    def complete(self) -> bool:
        return self.size is not None and self.received == self.size

    def to_json(self) -> dict[str, Any]:
        return {"received": self.received, "size": self.size, "complete": self.complete}


class NoSuchStill(BadInput):
    """Unknown still, or another patient's (404: nothing to learn from the difference)."""


class _KeyedLocks:
    """One lock per still id within this process, dropped when nobody holds it."""

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._locks: dict[str, tuple[threading.Lock, list[int]]] = {}

    @contextlib.contextmanager
    def hold(self, key: str) -> Iterator[None]:
        with self._guard:
            lock, users = self._locks.setdefault(key, (threading.Lock(), [0]))
            users[0] += 1
        try:
            with lock:
                yield
        finally:
            with self._guard:
                users[0] -= 1
                if users[0] == 0:
                    del self._locks[key]


@dataclass(frozen=True)
class BytesCheck:
    """What the record check found: ok (with the SHA-1 FHIR wants) or why not."""

    ok: bool
    message: str = ""
    sha1_b64: str = ""


class StillFiles:
    """The still bytes of one hub: files under `folder`, their state in the `stills` table."""

    def __init__(self, engine: Engine, folder: Path, limits: StillLimits | None = None) -> None:
        self.engine = engine
        self.folder = folder
        self.limits = limits or StillLimits()
        self.progress = ProgressThrottle()
        self._locks = _KeyedLocks()
        self._tasks: set[asyncio.Task[None]] = set()  # held-back progress on its way

    def spawn(self, work: Coroutine[Any, Any, None]) -> None:
        """Run `work` on the event loop without awaiting it (kept until it is done)."""
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def path(self, still_id: str) -> Path:
        return self.folder / still_id

    # Blocking (SQL and file I/O): call these from a worker thread.

    def state(self, still_id: str, patient_id: str) -> UploadState:
        row = self._row(still_id)
        if row is None:
            return UploadState(0, None)
        if row.patient_id != patient_id:
            raise NoSuchStill("There is no such still for this kiosk.")
        return UploadState(row.received, row.size)

    def note_taken(
        self,
        still_id: str,
        device: DeviceIdentity,
        *,
        call_id: str | None,
        request_id: str,
        now: datetime,
    ) -> None:
        """The kiosk says it took this still (still_taken): remember the call it belongs to."""
        with self._locks.hold(still_id), self.engine.begin() as conn:
            row = conn.execute(select(stills).where(stills.c.id == still_id)).first()
            if row is None:
                conn.execute(
                    insert(stills).values(
                        id=still_id,
                        patient_id=device.patient_id,
                        device_id=device.device_id,
                        call_id=call_id,
                        request_id=request_id,
                        received=0,
                        state=UPLOADING,
                        created=now,
                    )
                )
            elif row.patient_id == device.patient_id:
                conn.execute(
                    update(stills)
                    .where(stills.c.id == still_id)
                    .values(call_id=row.call_id or call_id, request_id=request_id)
                )

    def put_chunk(
        self, still_id: str, device: DeviceIdentity, span: ContentRange, data: bytes, now: datetime
    ) -> UploadState:
        if len(data) != span.length:
            raise BadInput("The chunk's length is not what its Content-Range says.")
        with self._locks.hold(still_id):
            row = self._row(still_id)
            if row is not None and row.patient_id != device.patient_id:
                raise NoSuchStill("There is no such still for this kiosk.")
            if row is None or row.size is None:
                self._drop_stale(device.device_id, now)
                self._check_limits(device.device_id, span.total, now)
                self._begin(still_id, device, span.total, now, exists=row is not None)
                received, size, state = 0, span.total, UPLOADING
            else:
                received, size, state = row.received, row.size, row.state
            if size != span.total:
                raise BadInput(
                    "The still's total size changed; upload it again under a new record id."
                )
            if state == FINAL or span.start != received:
                return UploadState(received, size, conflict=True)
            self._write(still_id, span.start, data)
            with self.engine.begin() as conn:
                conn.execute(
                    update(stills)
                    .where(stills.c.id == still_id, stills.c.received == received)
                    .values(received=span.end + 1, device_id=device.device_id)
                )
            return UploadState(span.end + 1, size)

    def check_bytes(self, still_id: str, patient_id: str, size: int, sha256: str) -> BytesCheck:
        """Are exactly `size` bytes with this SHA-256 here? A mismatch drops them."""
        with self._locks.hold(still_id):
            row = self._row(still_id)
            if row is None or row.patient_id != patient_id or row.size is None:
                return BytesCheck(False, "The still's bytes have not arrived; upload them first.")
            if row.state == FINAL:
                return BytesCheck(row.sha256 == sha256, "", row.sha1_b64 or "")
            if row.received < row.size:
                return BytesCheck(
                    False,
                    f"Only {row.received} of the still's {row.size} bytes have arrived; "
                    "upload the rest, then send the record again.",
                )
            digest256, digest1 = hashlib.sha256(), hashlib.sha1(usedforsecurity=False)
            with self.path(still_id).open("rb") as file:
                got = 0
                while chunk := file.read(1 << 20):
                    got += len(chunk)
                    digest256.update(chunk)
                    digest1.update(chunk)
            if got == size == row.size and digest256.hexdigest() == sha256:
                return BytesCheck(True, sha1_b64=base64.b64encode(digest1.digest()).decode())
            self._drop(still_id)
            return BytesCheck(
                False,
                "The still's bytes do not match its record; they were dropped. "
                "Upload them again from the start.",
            )

    @staticmethod
    def finalise_values(record_body: dict[str, Any], taken_at: datetime, sha1_b64: str) -> dict:
        values = {
            "state": FINAL,
            "width": record_body["width"],
            "height": record_body["height"],
            "content_type": record_body["content_type"],
            "sha256": record_body["sha256"],
            "sha1_b64": sha1_b64,
            "taken_at": taken_at,
        }
        if record_body["call_id"] is not None:  # else the call still_taken told us of stays
            values["call_id"] = record_body["call_id"]
        return values

    # -- inside

    def _row(self, still_id: str) -> Any:
        with self.engine.connect() as conn:
            return conn.execute(select(stills).where(stills.c.id == still_id)).first()

    def _drop_stale(self, device_id: str, now: datetime) -> None:
        """This device's uploads begun long ago and never finished: free their space."""
        with self.engine.connect() as conn:
            stale = list(
                conn.execute(
                    select(stills.c.id).where(
                        stills.c.device_id == device_id,
                        stills.c.state == UPLOADING,
                        stills.c.started < now - self.limits.stale_after,
                    )
                ).scalars()
            )
        for still_id in stale:
            self._drop(still_id)

    def _check_limits(self, device_id: str, size: int, now: datetime) -> None:
        since = now - timedelta(hours=24)
        mine = stills.c.device_id == device_id
        with self.engine.connect() as conn:
            unfinished = conn.execute(
                select(func.count()).where(
                    mine,
                    stills.c.state == UPLOADING,
                    stills.c.started.is_not(None),
                    stills.c.received < stills.c.size,
                )
            ).scalar_one()
            count, total = conn.execute(
                select(func.count(), func.coalesce(func.sum(stills.c.size), 0)).where(
                    mine, stills.c.started >= since
                )
            ).one()
        refusal = self.limits.refusal(unfinished, count, int(total), size)
        if refusal:
            raise Throttled(refusal, retry_after_s=600.0)

    def _begin(
        self, still_id: str, device: DeviceIdentity, size: int, now: datetime, *, exists: bool
    ) -> None:
        with self.engine.begin() as conn:
            if exists:
                conn.execute(
                    update(stills)
                    .where(stills.c.id == still_id)
                    .values(size=size, received=0, started=now, device_id=device.device_id)
                )
            else:
                conn.execute(
                    insert(stills).values(
                        id=still_id,
                        patient_id=device.patient_id,
                        device_id=device.device_id,
                        size=size,
                        received=0,
                        state=UPLOADING,
                        created=now,
                        started=now,
                    )
                )

    def _write(self, still_id: str, offset: int, data: bytes) -> None:
        self.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(self.path(still_id), os.O_WRONLY | os.O_CREAT, 0o600)
        try:
            os.pwrite(fd, data, offset)
            os.ftruncate(fd, offset + len(data))
            os.fsync(fd)
        finally:
            os.close(fd)

    def _drop(self, still_id: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                update(stills)
                .where(stills.c.id == still_id)
                .values(received=0, size=None, started=None)
            )
        self.path(still_id).unlink(missing_ok=True)


def still_files(request: Request) -> StillFiles:
    """This app's StillFiles (made on first use: the data dir is touched only when needed)."""
    state = request.app.state
    files = getattr(state, "still_files", None)
    if files is None:
        hub = services(request)
        files = StillFiles(hub.store.engine, Path(hub.config.data_dir) / "stills")
        state.still_files = files
    return files


# -- reading ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Still:
    id: str
    patient_id: str
    call_id: str | None
    width: int
    height: int
    content_type: str
    size: int
    sha1_b64: str
    taken_at: datetime

    @property
    def url(self) -> str:
        return f"/api/stills/{self.id}"

    def to_json(self) -> dict[str, Any]:
        from porchlight.hub.messages import iso

        return {
            "still_id": self.id,
            "url": self.url,
            "call_id": self.call_id,
            "width": self.width,
            "height": self.height,
            "size": self.size,
            "taken_at": iso(self.taken_at),
        }


def _still(row: Any) -> Still:
    return Still(
        row.id,
        row.patient_id,
        row.call_id,
        row.width,
        row.height,
        row.content_type,
        row.size,
        row.sha1_b64,
        row.taken_at,
    )


def final_still(engine: Engine, still_id: str) -> Still | None:
    with engine.connect() as conn:
        row = conn.execute(
            select(stills).where(stills.c.id == still_id, stills.c.state == FINAL)
        ).first()
    return None if row is None else _still(row)


def patient_stills(engine: Engine, patient_id: str) -> list[Still]:
    """A patient's final stills, oldest first."""
    with engine.connect() as conn:
        rows = conn.execute(
            select(stills)
            .where(stills.c.patient_id == patient_id, stills.c.state == FINAL)
            .order_by(stills.c.taken_at, stills.c.id)
        ).all()
    return [_still(r) for r in rows]


# -- telling the clinician ---------------------------------------------------------------------


def progress_message(still_id: str, state: UploadState) -> dict[str, Any]:
    return {
        "type": HubToClinician.STILL_PROGRESS.value,
        "still_id": still_id,
        "received": state.received,
        "size": state.size,
    }


def ready_message(still: Still) -> dict[str, Any]:
    from porchlight.hub.messages import iso

    return {
        "type": HubToClinician.STILL_READY.value,
        "still_id": still.id,
        "url": still.url,
        "width": still.width,
        "height": still.height,
        "taken_at": iso(still.taken_at),
    }


async def tell_clinician(
    signalling: Signalling, patient_id: str, call_id: str | None, message: dict[str, Any]
) -> None:
    """Send `message` to the clinic page in this patient's call (the still's call if known).

    A still whose call has ended (or whose clinician has gone) is told to nobody: it is
    stored all the same and listed with the patient's record.
    """
    call = signalling.room.call(call_id) if call_id else None
    if call is None:
        call = next((c for c in signalling.room.calls if c.patient_id == patient_id), None)
    if call is None or call.patient_id != patient_id or call.clinician_conn is None:
        return
    from porchlight.hub.bus import clinician_topic

    await signalling.bus.publish(clinician_topic(call.clinician_conn), message)


# -- routes ------------------------------------------------------------------------------------

router = APIRouter(tags=["stills"])
Device = Annotated[DeviceIdentity, Depends(require_device)]
CareTeam = Annotated[PersonIdentity, Depends(require_patient_access(Role.CLINICIAN, Role.NURSE))]


def _error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error": code, "message": message}, status_code=status)


async def _read_chunk(request: Request, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BadInput("The chunk is longer than its Content-Range says.")
        chunks.append(chunk)
    return b"".join(chunks)


@router.put(
    DEVICE_STILLS_PATH + "/{still_id}",
    summary="Upload a chunk of a still's bytes (resumable; the still record commits them)",
    description="Body: the chunk, `application/octet-stream`, with `Content-Range: bytes "
    "<start>-<end>/<total>`. 200 `{received, size, complete}`; 409 with the same body when "
    "`start` is not what the hub has (resume from `received`); 413 when `total` is over the "
    "limit; 400 for a bad or changed range; 429 when this kiosk is over its still limits.",
)
async def put_still_chunk(still_id: str, request: Request, device: Device) -> Response:
    still_id = parse_still_id(still_id)
    try:
        span = parse_content_range(request.headers.get("content-range"))
    except TooLarge as exc:
        return _error(413, "too_large", str(exc))
    try:
        data = await _read_chunk(request, span.length)
    except ClientDisconnect:  # the link dropped mid-chunk: nothing was written
        return _error(400, "bad_input", "The chunk was cut off; send it again.")
    files = still_files(request)
    hub = services(request)
    try:
        state = await run_in_threadpool(files.put_chunk, still_id, device, span, data, hub.clock())
    except NoSuchStill as exc:
        return _error(404, "not_found", str(exc))
    if state.conflict:
        body = {
            **state.to_json(),
            "error": "conflict",
            "message": "The chunk does not start where the hub is; resume from `received`.",
        }
        return JSONResponse(body, status_code=409)
    message, later = files.progress.offer(
        still_id, progress_message(still_id, state), time.monotonic(), state.complete
    )
    if message is not None or later is not None:
        call_id = await run_in_threadpool(_call_of, hub.store.engine, still_id)
        signalling = hub.signalling
        if message is not None:
            await tell_clinician(signalling, device.patient_id, call_id, message)
        if later is not None:

            async def flush() -> None:
                await anyio.sleep(later)
                held = files.progress.flush(still_id, time.monotonic())
                if held is not None:
                    await tell_clinician(signalling, device.patient_id, call_id, held)

            files.spawn(flush())
    return JSONResponse(state.to_json())


def _call_of(engine: Engine, still_id: str) -> str | None:
    with engine.connect() as conn:
        return conn.execute(select(stills.c.call_id).where(stills.c.id == still_id)).scalar()


@router.get(
    DEVICE_STILLS_PATH + "/{still_id}",
    summary="How much of a still's bytes the hub has (to resume an upload)",
    description="`{received, size}`: 0 and null for a still the hub has never seen.",
)
async def get_still_upload(still_id: str, request: Request, device: Device) -> Response:
    still_id = parse_still_id(still_id)
    files = still_files(request)
    try:
        state = await run_in_threadpool(files.state, still_id, device.patient_id)
    except NoSuchStill as exc:
        return _error(404, "not_found", str(exc))
    return JSONResponse({"received": state.received, "size": state.size})


def readable_still(request: Request, still_id: str, person: PersonIdentity) -> Still:
    """The final still, if the person's care team has its patient (404 / 403 otherwise)."""
    hub = services(request)
    try:
        still_id = parse_still_id(still_id)
    except BadInput:
        raise NoSuchStill("There is no such still.") from None
    still = final_still(hub.store.engine, still_id)
    if still is None:
        raise NoSuchStill("There is no such still.")
    check_patient_in_teams(hub.store, person, still.patient_id)
    return still


@router.get(
    "/api/stills/{still_id}",
    summary="A still's JPEG (clinicians and nurses of the patient's care team)",
    response_class=Response,
)
def get_still(still_id: str, request: Request, person: CareTeam) -> Response:
    try:
        still = readable_still(request, still_id, person)
    except NoSuchStill as exc:
        return _error(404, "not_found", str(exc))
    path = still_files(request).path(still.id)
    if not path.exists():
        log.error("a final still's file is missing from the data dir")
        return _error(404, "not_found", "The still's file is missing on the hub; tell support.")
    return FileResponse(path, media_type=still.content_type)


@router.get(
    "/api/patients/{patient_id}/stills",
    summary="A patient's stills, oldest first (clinicians and nurses of the care team)",
)
def list_stills(patient_id: str, request: Request, person: CareTeam) -> JSONResponse:
    hub = services(request)
    if hub.store.get_patient(patient_id) is None:
        return _error(404, "not_found", "No such patient. Check the patient id.")
    found = patient_stills(hub.store.engine, patient_id)
    return JSONResponse({"patient_id": patient_id, "stills": [s.to_json() for s in found]})

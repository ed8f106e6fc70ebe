"""The kiosk's outbox: every record the patient makes, kept on the device until the hub has
acknowledged it. SQLite through sqlite-utils, WAL, synchronous=FULL.

Lifecycle of an entry: pending → sending → acked (or held, when the hub refused it for good).
`sending` is written before a batch goes out; an entry still `sending` when the process died is
put back to `pending` when the worker opens the outbox (the hub is idempotent per record id, so
resending is safe). Acknowledged records are purged after `retention_s`.

A file SQLite cannot read is moved aside (`outbox.db.corrupt-<time>`), a fresh one is started,
and the fault is kept in the fresh file until the sync worker reports it to the hub as a
`device_fault` record. If not even a fresh file can be made (disk gone read-only), the outbox
runs in memory and says so (`durable` is False) rather than crash-loop.

A still (issue 10) keeps its JPEG in the `stills` table, written in the same transaction as its
record, with the offset the hub has confirmed (`uploaded`): its bytes go up first, resuming from
there after a restart, and its record enters batches only once the hub has every byte. The
bytes are deleted with the record when it is purged.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sqlite3
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import sqlite_utils
import uuid6

from porchlight.config import default_data_dir
from porchlight.errors import DeviceFault
from porchlight.kiosk.records import Record, RecordKind, fault_record
from porchlight.kiosk.sync_policy import Entry, EntryStatus

log = logging.getLogger(__name__)

OUTBOX_FILE = "outbox.db"
SCHEMA_VERSION = "2"  # 2: the stills table (issue 10); a version 1 file is upgraded in place
KNOWN_VERSIONS = frozenset({"1", SCHEMA_VERSION})


# Stills whose record the hub has not acknowledged, and their bytes it has not confirmed.
STILLS_LEFT_SQL = (
    "SELECT COUNT(*), COALESCE(SUM(s.size - s.uploaded), 0) FROM stills s "
    "JOIN outbox o ON o.record_id = s.record_id WHERE o.status IN ('pending', 'sending')"
)


def _default_path() -> Path:
    # Beside the kiosk's credential (KioskConfig.data_dir defaults to the same folder).
    return default_data_dir() / OUTBOX_FILE


@dataclass
class OutboxConfig:
    """`porchlight.config.load(OutboxConfig, "outbox")`: PORCHLIGHT_OUTBOX_PATH etc."""

    path: Path = field(default_factory=_default_path)
    # Acknowledged records stay this long (for the "sent" screen and support), then go.
    retention_s: float = 7 * 24 * 3600.0
    busy_timeout_ms: int = 5000


def new_record_id() -> str:
    """A time-ordered UUIDv7 made on the device: unique without asking the hub, and sorting by
    id sorts by creation time (good for the hub's indexes and for reading logs)."""
    return str(uuid6.uuid7())


@dataclass(frozen=True)
class StillUpload:
    """A still whose bytes are not all on the hub yet: what the worker needs to send them."""

    record_id: str
    size: int
    sha256: str
    uploaded: int  # bytes the hub has confirmed
    attempts: int


@dataclass(frozen=True)
class OutboxStatus:
    counts: dict[str, int]
    oldest_unsent_age_s: float | None
    durable: bool
    faults_waiting: int
    stills_pending: int = 0  # stills whose record the hub has not acknowledged yet
    still_bytes_left: int = 0  # of those, bytes the hub has not confirmed yet

    @property
    def unsent(self) -> int:
        return self.counts.get("pending", 0) + self.counts.get("sending", 0)


def _create_private(path: Path) -> None:
    """Patient data: the folder and file are the kiosk user's alone. SQLite gives the -wal and
    -shm files the database file's mode, so setting it here covers all three."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(path, os.O_CREAT | os.O_RDWR, 0o600)
    os.close(fd)


def _connect(path: Path | None, busy_timeout_ms: int) -> sqlite_utils.Database:
    if path is not None:
        _create_private(path)
    conn = sqlite3.connect(
        ":memory:" if path is None else str(path),
        isolation_level=None,  # we open transactions ourselves (BEGIN IMMEDIATE)
        check_same_thread=False,  # one connection shared under our own lock
        timeout=busy_timeout_ms / 1000,
    )
    db = sqlite_utils.Database(conn)
    db.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
    if path is not None:
        db.enable_wal()
    db.execute("PRAGMA synchronous=FULL")  # a commit survives a power cut
    db.execute("PRAGMA foreign_keys=ON")
    return db


def _create_schema(db: sqlite_utils.Database) -> None:
    db["records"].create(
        {
            "id": str,
            "patient_id": str,
            "kind": str,
            "recorded_at": str,
            "content": str,  # the canonical JSON that is sent, byte for byte
        },
        pk="id",
        not_null={"patient_id", "kind", "recorded_at", "content"},
        if_not_exists=True,
    )
    db["outbox"].create(
        {
            "seq": int,
            "record_id": str,
            "patient_id": str,
            "status": str,
            "size": int,
            "attempts": int,
            "next_try_at": float,
            "created_at": float,
            "sent_at": float,
            "acked_at": float,
            "note": str,
        },
        pk="seq",
        foreign_keys=[("record_id", "records", "id")],
        not_null={"record_id", "patient_id", "status", "size", "attempts", "created_at"},
        defaults={"attempts": 0, "next_try_at": 0.0},
        if_not_exists=True,
    )
    db["outbox"].create_index(["record_id"], unique=True, if_not_exists=True)
    db["outbox"].create_index(["status", "next_try_at"], if_not_exists=True)
    db["faults"].create(
        {"id": int, "code": str, "detail": str, "at": float}, pk="id", if_not_exists=True
    )
    db["meta"].create({"key": str, "value": str}, pk="key", if_not_exists=True)
    _create_stills(db)
    db.execute(
        "INSERT OR IGNORE INTO meta (key, value) VALUES ('schema_version', ?)", [SCHEMA_VERSION]
    )


def _create_stills(db: sqlite_utils.Database) -> None:
    db["stills"].create(
        {
            "record_id": str,
            "data": bytes,  # the JPEG, as the hub must receive it
            "size": int,
            "sha256": str,
            "uploaded": int,  # the offset the hub last confirmed: resume from here
        },
        pk="record_id",
        foreign_keys=[("record_id", "records", "id")],
        not_null={"data", "size", "sha256", "uploaded"},
        defaults={"uploaded": 0},
        if_not_exists=True,
    )


def _migrate(db: sqlite_utils.Database) -> None:
    """Bring a file of an older known version up to this one, in one transaction."""
    row = db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
    if row is None or row[0] == SCHEMA_VERSION:
        return
    db.execute("BEGIN IMMEDIATE")
    try:
        if row[0] == "1":
            _create_stills(db)
        db.execute("UPDATE meta SET value=? WHERE key='schema_version'", [SCHEMA_VERSION])
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")


class _Unreadable(Exception):
    """The file exists but is not a sound outbox: move it aside."""


# SQLite's own words for "this file is damaged" (as opposed to busy, locked or unopenable).
_CORRUPT = {"SQLITE_CORRUPT", "SQLITE_NOTADB", "SQLITE_IOERR_SHORT_READ"}


def _is_corrupt(exc: sqlite3.Error) -> bool:
    name = getattr(exc, "sqlite_errorname", "") or ""
    return name in _CORRUPT or name.startswith("SQLITE_CORRUPT")


def _readable(db: sqlite_utils.Database) -> None:
    """Raise _Unreadable unless the file is a sound outbox of a version we know."""
    try:
        row = db.execute("PRAGMA quick_check").fetchone()
        if row is None or row[0] != "ok":
            raise _Unreadable("quick_check failed")
        if "meta" in db.table_names():
            version = db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
            if version is not None and version[0] not in KNOWN_VERSIONS:
                raise _Unreadable("unknown outbox schema version")
    except sqlite3.Error as exc:
        if _is_corrupt(exc):
            raise _Unreadable(exc.sqlite_errorname) from None
        raise


def _move_aside(path: Path, now: float) -> Path:
    stamp = datetime.fromtimestamp(now, UTC).strftime("%Y%m%dT%H%M%SZ")
    target = path.with_name(f"{path.name}.corrupt-{stamp}")
    n = 1
    while target.exists():
        n += 1
        target = path.with_name(f"{path.name}.corrupt-{stamp}-{n}")
    for suffix in ("-wal", "-shm"):
        side = path.with_name(path.name + suffix)
        if side.exists():
            os.replace(side, target.with_name(target.name + suffix))
    if path.exists():
        os.replace(path, target)
    return target


class Outbox:
    """Thread-safe (one connection, one lock); several processes may share the file (the kiosk
    and `porchlight outbox add`), SQLite's locking and the busy timeout keep them apart."""

    def __init__(self, db: sqlite_utils.Database, path: Path | None, config: OutboxConfig) -> None:
        self._db = db
        self._path = path
        self._config = config
        self._lock = threading.RLock()

    # --- opening, recovery ---------------------------------------------------------------

    @classmethod
    def open(
        cls, config: OutboxConfig | None = None, *, now: float, resume: bool = False
    ) -> Outbox:
        """Open (or create) the outbox. Never raises for a bad file: it is moved aside.

        `resume=True` (only the process that runs the sync worker) puts entries left in
        `sending` by a dead process back to `pending`."""
        config = config or OutboxConfig()
        path = Path(config.path)
        db = cls._open_or_replace(path, config, now)
        outbox = cls(db, None if db is None else path, config)
        if db is None:
            outbox._db = _connect(None, config.busy_timeout_ms)
            _create_schema(outbox._db)
            outbox._path = None
            outbox._add_fault("outbox_unwritable", "outbox file could not be created", now)
        if resume:
            outbox.resume_in_flight()
        return outbox

    @staticmethod
    def _open_or_replace(
        path: Path, config: OutboxConfig, now: float
    ) -> sqlite_utils.Database | None:
        db = None
        try:
            db = _connect(path, config.busy_timeout_ms)
            _readable(db)
            _create_schema(db)
            _migrate(db)
            opened, db = db, None
            return opened
        except _Unreadable as exc:
            problem = str(exc)
        except sqlite3.Error as exc:
            if not _is_corrupt(exc):
                # Busy, locked, cannot open: the file may be fine. Do not touch it.
                log.error("cannot open the outbox (%s); keeping records in memory", exc)
                return None
            problem = exc.sqlite_errorname or type(exc).__name__
        except OSError as exc:
            log.error("cannot open the outbox (%s); keeping records in memory", exc.strerror)
            return None
        finally:
            if db is not None:  # opened but unusable: let go of it before moving the file
                with contextlib.suppress(Exception):
                    db.close()
        log.error("outbox file unreadable (%s): moving it aside and starting afresh", problem)
        try:
            moved = _move_aside(path, now)
            db = _connect(path, config.busy_timeout_ms)
            _create_schema(db)
        except (OSError, sqlite3.Error) as exc:
            log.error("cannot create a fresh outbox file (%s); keeping records in memory", exc)
            return None
        detail = f"outbox file unreadable ({problem}); moved aside to {moved.name}"
        Outbox(db, path, config)._add_fault("outbox_corrupt", detail, now)
        return db

    @property
    def durable(self) -> bool:
        return self._path is not None

    @property
    def path(self) -> Path | None:
        return self._path

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @contextlib.contextmanager
    def _write(self) -> Iterator[sqlite_utils.Database]:
        """One write transaction. IMMEDIATE takes the write lock up front, so a read followed
        by a write cannot fail half-way because another process wrote in between."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def _add_fault(self, code: str, detail: str, now: float) -> None:
        with self._write() as db:
            db["faults"].insert({"code": code, "detail": detail, "at": now})

    # --- writing -------------------------------------------------------------------------

    def add(self, record: Record, *, now: float) -> None:
        """Store the record and its outbox entry in one transaction (both or neither)."""
        self.add_many([record], now=now)

    def add_many(self, records: Iterable[Record], *, now: float) -> None:
        """Store several records (e.g. a peripheral's saved readings) in one transaction."""
        with self._saving() as db:
            for record in records:
                self._insert(db, record, now)

    @contextlib.contextmanager
    def _saving(self) -> Iterator[sqlite_utils.Database]:
        """A write transaction for new records, its SQLite errors said as DeviceFault."""
        try:
            with self._write() as db:
                yield db
        except sqlite3.IntegrityError:
            raise DeviceFault("a record with this id is already in the outbox") from None
        except sqlite3.DatabaseError as exc:
            raise DeviceFault(
                f"could not save to the outbox ({type(exc).__name__}); restart the kiosk so "
                "the outbox can recover"
            ) from None

    def add_still(self, record: Record, data: bytes, *, now: float) -> None:
        """Store a still's record, its outbox entry and its bytes in one transaction. The
        caller has checked that `record` (kind `still`) describes `data` (size, sha256)."""
        if record.kind is not RecordKind.STILL:
            raise DeviceFault("add_still takes a still record; use add for other records")
        with self._saving() as db:
            self._insert(db, record, now)
            db.execute(
                "INSERT INTO stills (record_id, data, size, sha256, uploaded) "
                "VALUES (?, ?, ?, ?, 0)",
                [record.id, sqlite3.Binary(data), len(data), record.body["sha256"]],
            )

    @staticmethod
    def _insert(db: sqlite_utils.Database, record: Record, now: float) -> None:
        content = record.content().decode()
        db.execute(
            "INSERT INTO records (id, patient_id, kind, recorded_at, content) "
            "VALUES (?, ?, ?, ?, ?)",
            [record.id, record.patient_id, record.kind.value, record.recorded_at, content],
        )
        db.execute(
            "INSERT INTO outbox (record_id, patient_id, status, size, attempts, "
            "next_try_at, created_at) VALUES (?, ?, 'pending', ?, 0, 0, ?)",
            [record.id, record.patient_id, len(content), now],
        )

    def faults_to_records(self, patient_id: str, now: float) -> list[Record]:
        """Turn faults noted at open into device_fault records, in the same transaction that
        clears them, so each fault is reported exactly once."""
        made: list[Record] = []
        with self._write() as db:
            for row in list(db.query("SELECT id, code, detail, at FROM faults ORDER BY id")):
                record = fault_record(
                    row["code"],
                    row["detail"],
                    record_id=new_record_id(),
                    patient_id=patient_id,
                    now=datetime.fromtimestamp(row["at"], UTC),
                )
                self._insert(db, record, now)
                db.execute("DELETE FROM faults WHERE id = ?", [row["id"]])
                made.append(record)
        return made

    # --- the sync worker's side ----------------------------------------------------------

    def resume_in_flight(self) -> int:
        """Entries a dead process left in `sending` go back to `pending`."""
        with self._write() as db:
            cur = db.execute("UPDATE outbox SET status='pending' WHERE status='sending'")
            return cur.rowcount

    def due_entries(self, now: float, limit: int) -> list[Entry]:
        with self._lock:
            rows = self._db.execute(
                "SELECT o.seq, o.record_id, o.patient_id, o.size, o.attempts, o.next_try_at, "
                "o.status FROM outbox o LEFT JOIN stills s ON s.record_id = o.record_id "
                "WHERE o.status='pending' AND o.next_try_at <= ? "
                "AND (s.record_id IS NULL OR s.uploaded >= s.size) ORDER BY o.seq LIMIT ?",
                [now, limit],
            ).fetchall()
        return [Entry(r[0], r[1], r[2], r[3], r[4], r[5], EntryStatus(r[6])) for r in rows]

    def next_upload(self, now: float) -> StillUpload | None:
        """The oldest due still whose bytes are not all on the hub yet."""
        with self._lock:
            row = self._db.execute(
                "SELECT o.record_id, s.size, s.sha256, s.uploaded, o.attempts FROM outbox o "
                "JOIN stills s ON s.record_id = o.record_id WHERE o.status='pending' "
                "AND o.next_try_at <= ? AND s.uploaded < s.size ORDER BY o.seq LIMIT 1",
                [now],
            ).fetchone()
        return None if row is None else StillUpload(*row)

    def still_backlog(self) -> int:
        """Bytes of stills not yet on the hub (due now or later)."""
        with self._lock:
            return max(0, int(self._db.execute(STILLS_LEFT_SQL).fetchone()[1]))

    def still_chunk(self, record_id: str, start: int, length: int) -> bytes:
        """Bytes [start, start + length) of a still (fewer at its end)."""
        with self._lock:
            row = self._db.execute(
                "SELECT substr(data, ?, ?) FROM stills WHERE record_id=?",
                [start + 1, length, record_id],
            ).fetchone()
        if row is None:
            raise DeviceFault("that still is no longer in the outbox")
        return bytes(row[0])

    def still_bytes(self, record_id: str) -> bytes | None:
        with self._lock:
            row = self._db.execute(
                "SELECT data FROM stills WHERE record_id=?", [record_id]
            ).fetchone()
        return None if row is None else bytes(row[0])

    def set_uploaded(self, record_id: str, offset: int) -> None:
        """The hub has confirmed `offset` bytes of this still (kept across restarts)."""
        with self._write() as db:
            db.execute(
                "UPDATE stills SET uploaded = MAX(0, MIN(size, ?)) WHERE record_id=?",
                [offset, record_id],
            )

    def forget_uploaded(self, record_ids: Iterable[str]) -> list[str]:
        """The hub could not commit these stills (bytes missing, or dropped as not matching):
        their bytes must be checked with the hub, and sent again, before the record is resent.
        Returns the ids that were stills."""
        stills: list[str] = []
        with self._write() as db:
            for rid in record_ids:
                if db.execute("UPDATE stills SET uploaded=0 WHERE record_id=?", [rid]).rowcount:
                    stills.append(rid)
        return stills

    def retry_upload(self, record_id: str, due_at: float, note: str) -> None:
        """The hub answered an upload with an error: this still alone tries again later."""
        with self._write() as db:
            db.execute(
                "UPDATE outbox SET attempts=attempts+1, next_try_at=?, note=? "
                "WHERE record_id=? AND status='pending'",
                [due_at, note[:200], record_id],
            )

    def next_due_at(self) -> float | None:
        with self._lock:
            row = self._db.execute(
                "SELECT MIN(next_try_at) FROM outbox WHERE status='pending'"
            ).fetchone()
        return None if row is None or row[0] is None else float(row[0])

    def claim(self, entries: Iterable[Entry], now: float) -> list[tuple[Entry, bytes]]:
        """Mark entries `sending` and return them with their content, in one transaction."""
        out: list[tuple[Entry, bytes]] = []
        with self._write() as db:
            for e in entries:
                cur = db.execute(
                    "UPDATE outbox SET status='sending', sent_at=? "
                    "WHERE record_id=? AND status='pending'",
                    [now, e.record_id],
                )
                if cur.rowcount != 1:
                    continue
                row = db.execute("SELECT content FROM records WHERE id=?", [e.record_id]).fetchone()
                out.append((e, row[0].encode()))
        return out

    def mark_acked(self, record_ids: Iterable[str], now: float) -> None:
        with self._write() as db:
            for rid in record_ids:
                db.execute(
                    "UPDATE outbox SET status='acked', acked_at=?, note=NULL WHERE record_id=?",
                    [now, rid],
                )

    def mark_held(self, held: Iterable[tuple[str, str]], now: float) -> None:
        """The hub refused these for good: keep them, out of the queue, with the reason."""
        with self._write() as db:
            for rid, note in held:
                db.execute(
                    "UPDATE outbox SET status='held', note=? WHERE record_id=?",
                    [note[:200], rid],
                )

    def mark_retry(self, retries: Iterable[tuple[str, float]], note: str) -> None:
        """Back to `pending`, due again at the given time, one more attempt counted."""
        with self._write() as db:
            for rid, due_at in retries:
                db.execute(
                    "UPDATE outbox SET status='pending', attempts=attempts+1, next_try_at=?, "
                    "note=? WHERE record_id=? AND status='sending'",
                    [due_at, note[:200], rid],
                )

    def release(self, record_ids: Iterable[str]) -> None:
        """A batch that never got an answer: back to `pending`, due at once (the link-level
        backoff decides when the next batch goes)."""
        with self._write() as db:
            for rid in record_ids:
                db.execute(
                    "UPDATE outbox SET status='pending', attempts=attempts+1 "
                    "WHERE record_id=? AND status='sending'",
                    [rid],
                )

    def purge(self, now: float) -> int:
        """Delete acknowledged records older than the retention period."""
        cutoff = now - self._config.retention_s
        with self._write() as db:
            gone = [
                r[0]
                for r in db.execute(
                    "SELECT record_id FROM outbox WHERE status='acked' AND acked_at < ?", [cutoff]
                ).fetchall()
            ]
            for rid in gone:
                db.execute("DELETE FROM outbox WHERE record_id=?", [rid])
                db.execute("DELETE FROM stills WHERE record_id=?", [rid])
                db.execute("DELETE FROM records WHERE id=?", [rid])
        return len(gone)

    # --- reading -------------------------------------------------------------------------

    def status(self, now: float) -> OutboxStatus:
        with self._lock:
            counts = {s.value: 0 for s in EntryStatus}
            for state, n in self._db.execute(
                "SELECT status, COUNT(*) FROM outbox GROUP BY status"
            ).fetchall():
                counts[state] = n
            oldest = self._db.execute(
                "SELECT MIN(created_at) FROM outbox WHERE status IN ('pending', 'sending')"
            ).fetchone()[0]
            faults = self._db.execute("SELECT COUNT(*) FROM faults").fetchone()[0]
            stills, left = self._db.execute(STILLS_LEFT_SQL).fetchone()
        age = None if oldest is None else max(0.0, now - oldest)
        return OutboxStatus(counts, age, self.durable, faults, stills, left)

    def entry_status(self, record_id: str) -> EntryStatus | None:
        with self._lock:
            row = self._db.execute(
                "SELECT status FROM outbox WHERE record_id=?", [record_id]
            ).fetchone()
        return None if row is None else EntryStatus(row[0])

    def record(self, record_id: str) -> Record | None:
        with self._lock:
            row = self._db.execute("SELECT content FROM records WHERE id=?", [record_id]).fetchone()
        return None if row is None else Record.from_wire(json.loads(row[0]))

    def get_meta(self, key: str) -> str | None:
        with self._lock:
            row = self._db.execute("SELECT value FROM meta WHERE key=?", [key]).fetchone()
        return None if row is None else row[0]

    def set_meta(self, key: str, value: str) -> None:
        with self._write() as db:
            db["meta"].upsert({"key": key, "value": value}, pk="key")

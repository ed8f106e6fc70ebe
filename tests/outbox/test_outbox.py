"""The outbox on a real SQLite file: one transaction per record, the status lifecycle,
resuming in-flight entries, retention, and recovery from a corrupt file."""

from __future__ import annotations

import json
import os
import sqlite3
import stat
import uuid

import pytest

from porchlight.errors import DeviceFault
from porchlight.kiosk.outbox import SCHEMA_VERSION, Outbox, OutboxConfig, new_record_id
from porchlight.kiosk.records import RecordKind
from porchlight.kiosk.sync_policy import EntryStatus

from .conftest import PATIENT, vitals


def test_ids_are_time_ordered_uuid7():
    ids = [new_record_id() for _ in range(200)]
    assert all(uuid.UUID(i).version == 7 for i in ids)
    assert ids == sorted(ids)
    assert len(set(ids)) == len(ids)


def test_file_is_wal_with_synchronous_full(outbox, outbox_config):
    con = sqlite3.connect(outbox_config.path)
    assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    con.close()
    assert outbox._db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL


def test_record_and_entry_are_written_together(outbox, outbox_config):
    rec = vitals()
    outbox.add(rec, now=1000.0)
    assert outbox.record(rec.id) == rec
    assert outbox.entry_status(rec.id) is EntryStatus.PENDING
    # Another process sees both rows (committed, durable).
    con = sqlite3.connect(outbox_config.path)
    assert con.execute("SELECT COUNT(*) FROM records").fetchone()[0] == 1
    assert con.execute("SELECT status FROM outbox").fetchone()[0] == "pending"
    con.close()


def test_a_failed_write_leaves_neither_row(outbox):
    rec = vitals()
    outbox.add(rec, now=1000.0)
    # Same id again: the record insert fails, so no second outbox entry appears either.
    with pytest.raises(DeviceFault, match="already in the outbox"):
        outbox.add(rec, now=1001.0)
    assert outbox.status(1001.0).counts["pending"] == 1
    # An outbox row whose insert fails after the record row went in rolls the record back.
    outbox._db.execute(
        "CREATE TRIGGER no_entries BEFORE INSERT ON outbox BEGIN SELECT RAISE(ABORT, 'x'); END"
    )
    other = vitals()
    with pytest.raises(DeviceFault):
        outbox.add(other, now=1002.0)
    assert outbox.record(other.id) is None


def test_lifecycle_pending_sending_acked_and_held(outbox):
    recs = [vitals(pulse=60 + i) for i in range(4)]
    for r in recs:
        outbox.add(r, now=1000.0)
    due = outbox.due_entries(1000.0, 10)
    assert [e.record_id for e in due] == [r.id for r in recs]
    claimed = outbox.claim(due, 1001.0)
    assert [json.loads(c)["id"] for _, c in claimed] == [r.id for r in recs]
    assert json.loads(claimed[0][1]) == recs[0].to_wire()
    assert outbox.status(1001.0).counts == {"pending": 0, "sending": 4, "acked": 0, "held": 0}
    assert outbox.claim(due, 1001.0) == []  # nothing is claimed twice
    outbox.mark_acked([recs[0].id], 1002.0)
    outbox.mark_held([(recs[1].id, "conflict: different record")], 1002.0)
    outbox.mark_retry([(recs[2].id, 1050.0)], "hub could not store it yet")
    outbox.release([recs[3].id])
    status = outbox.status(1003.0)
    assert status.counts == {"pending": 2, "sending": 0, "acked": 1, "held": 1}
    assert status.oldest_unsent_age_s == 3.0
    assert [e.record_id for e in outbox.due_entries(1003.0, 10)] == [recs[3].id]
    assert outbox.next_due_at() == 0.0
    assert [e.attempts for e in outbox.due_entries(1060.0, 10)] == [1, 1]


def test_entries_in_flight_when_the_process_died_are_resumed(outbox_config):
    box = Outbox.open(outbox_config, now=1000.0)
    rec = vitals()
    box.add(rec, now=1000.0)
    box.claim(box.due_entries(1000.0, 10), 1000.0)
    box.close()  # "dies" while sending
    reader = Outbox.open(outbox_config, now=1001.0)  # e.g. the CLI: does not resume
    assert reader.entry_status(rec.id) is EntryStatus.SENDING
    reader.close()
    worker = Outbox.open(outbox_config, now=1002.0, resume=True)
    assert worker.entry_status(rec.id) is EntryStatus.PENDING
    worker.close()


def test_acked_records_are_purged_after_retention_only(outbox):
    old, recent, unsent = vitals(), vitals(), vitals()
    for r in (old, recent, unsent):
        outbox.add(r, now=1000.0)
    outbox.claim(outbox.due_entries(1000.0, 10)[:2], 1000.0)
    outbox.mark_acked([old.id], 1000.0)
    outbox.mark_acked([recent.id], 4000.0)
    assert outbox.purge(4700.0) == 1  # retention 3600 s
    assert outbox.record(old.id) is None and outbox.entry_status(old.id) is None
    assert outbox.record(recent.id) == recent
    assert outbox.record(unsent.id) == unsent  # never purged, however old
    assert outbox.purge(10**9) == 1
    assert outbox.record(unsent.id) == unsent


def _fault_records(box):
    made = box.faults_to_records(PATIENT, 2000.0)
    assert box.faults_to_records(PATIENT, 2001.0) == []  # reported once
    return made


@pytest.mark.parametrize(
    "damage",
    [
        lambda p: p.write_bytes(b"this is not a database at all" * 100),
        lambda p: p.write_bytes(p.read_bytes()[:1500]),  # truncated mid-page
        lambda p: p.write_bytes(p.read_bytes()[:4096] + os.urandom(4096 * 3)),  # garbled pages
    ],
)
def test_a_corrupt_file_is_moved_aside_a_fresh_one_started_and_reported(outbox_config, damage):
    box = Outbox.open(outbox_config, now=1000.0)
    for _ in range(40):
        box.add(vitals(), now=1000.0)
    box._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    box.close()
    damage(outbox_config.path)

    fresh = Outbox.open(outbox_config, now=1_700_000_000.0, resume=True)
    assert fresh.durable
    assert fresh.status(0).counts["pending"] == 0
    aside = [p.name for p in outbox_config.path.parent.iterdir() if ".corrupt-" in p.name]
    assert aside and aside[0].startswith("outbox.db.corrupt-20231114T")
    assert fresh.status(0).faults_waiting == 1
    (fault,) = _fault_records(fresh)
    assert fault.kind is RecordKind.DEVICE_FAULT and fault.body["code"] == "outbox_corrupt"
    assert fresh.entry_status(fault.id) is EntryStatus.PENDING
    fresh.add(vitals(), now=2002.0)  # and it works
    fresh.close()
    # Opening again finds a sound file: nothing more is moved aside.
    again = Outbox.open(outbox_config, now=1_700_000_100.0)
    assert again.status(0).counts["pending"] == 2
    again.close()
    assert len([p for p in outbox_config.path.parent.iterdir() if ".corrupt-" in p.name]) == len(
        aside
    )


def test_an_unknown_schema_version_is_moved_aside_too(outbox_config):
    box = Outbox.open(outbox_config, now=1000.0)
    box.set_meta("schema_version", "99")
    box.close()
    fresh = Outbox.open(outbox_config, now=1000.0)
    assert fresh.get_meta("schema_version") == SCHEMA_VERSION
    assert fresh.status(0).faults_waiting == 1
    fresh.close()


def test_unusable_location_runs_in_memory_and_says_so(tmp_path):
    # A regular file where the folder should be: nothing can be created there, even as root.
    blocker = tmp_path / "kiosk"
    blocker.write_text("not a folder")
    box = Outbox.open(OutboxConfig(path=blocker / "outbox.db"), now=1000.0, resume=True)
    assert not box.durable
    rec = vitals()
    box.add(rec, now=1000.0)
    assert box.record(rec.id) == rec
    (fault,) = box.faults_to_records(PATIENT, 1000.0)
    assert fault.body["code"] == "outbox_unwritable"
    box.close()


def test_a_busy_file_is_not_mistaken_for_a_corrupt_one(outbox_config):
    box = Outbox.open(outbox_config, now=1000.0)
    box.add(vitals(), now=1000.0)
    box.close()
    holder = sqlite3.connect(outbox_config.path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")  # another process holds the write lock
    try:
        cfg = OutboxConfig(path=outbox_config.path, busy_timeout_ms=100)
        blocked = Outbox.open(cfg, now=1000.0)
        assert not blocked.durable  # could not use the file, so it ran in memory...
        blocked.close()
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert not [p for p in outbox_config.path.parent.iterdir() if ".corrupt-" in p.name]
    box = Outbox.open(outbox_config, now=1000.0)  # ...and the file was left alone, intact
    assert box.status(0).counts["pending"] == 1
    box.close()


def test_files_are_private_to_the_kiosk_user(outbox_config, outbox):
    outbox.add(vitals(), now=1000.0)
    for name in ("outbox.db", "outbox.db-wal"):
        mode = stat.S_IMODE((outbox_config.path.parent / name).stat().st_mode)
        assert mode & 0o077 == 0, (name, oct(mode))

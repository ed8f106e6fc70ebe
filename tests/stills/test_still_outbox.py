"""Stills in the outbox file: record, entry and bytes in one transaction; the hub-confirmed
offset kept across a restart; the schema upgrade of a version 1 file; purge; add_still's
validation; `porchlight outbox status`."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from datetime import UTC, datetime

import pytest
from click.testing import CliRunner

from porchlight.errors import BadInput, DeviceFault
from porchlight.kiosk.outbox import SCHEMA_VERSION, Outbox, new_record_id
from porchlight.kiosk.outbox_cli import outbox as outbox_cli
from porchlight.kiosk.records import RecordKind, vitals_record
from porchlight.kiosk.sync import still_record
from porchlight.kiosk.sync_policy import EntryStatus
from porchlight.protocol import MAX_STILL_BYTES

from .conftest import PATIENT, jpeg

NOW = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)


def vitals():
    return vitals_record(
        {"spo2": 97, "pulse": 72}, record_id=new_record_id(), patient_id=PATIENT, now=NOW
    )


def add_still(box, data, now=1000.0):
    rec = still_record(
        data,
        call_id="call-1",
        width=640,
        height=480,
        record_id=new_record_id(),
        patient_id=PATIENT,
        now=NOW,
    )
    box.add_still(rec, data, now=now)
    return rec


def test_add_still_keeps_record_and_bytes_and_describes_them(kiosk_records, outbox):
    data = jpeg()
    still_id = kiosk_records.add_still(data, call_id="call-7", width=640, height=480, now=NOW)
    record = outbox.record(still_id)
    assert record.kind is RecordKind.STILL
    assert record.patient_id == PATIENT
    assert dict(record.body) == {
        "call_id": "call-7",
        "width": 640,
        "height": 480,
        "content_type": "image/jpeg",
        "size": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
    }
    assert outbox.still_bytes(still_id) == data
    assert outbox.entry_status(still_id) is EntryStatus.PENDING
    # A call_id is optional (a still outside a call).
    other = kiosk_records.add_still(jpeg(seed=2), call_id=None, width=640, height=480, now=NOW)
    assert outbox.record(other).body["call_id"] is None


BAD_STILLS = {
    "png": (lambda: b"\x89PNG\r\n\x1a\n" + bytes(100), {}, "must be a JPEG"),
    "empty": (lambda: b"", {}, "must be a JPEG"),
    "too large": (lambda: b"\xff\xd8\xff" + bytes(MAX_STILL_BYTES), {}, "at most"),
    "narrow": (jpeg, {"width": 8}, "width"),
    "tall": (jpeg, {"height": 9000}, "height"),
    "width not whole": (jpeg, {"width": 640.0}, "width"),
    "empty call_id": (jpeg, {"call_id": ""}, "call_id"),
    "text": (lambda: "text", {}, "bytes"),
}


@pytest.mark.parametrize("case", list(BAD_STILLS))
def test_add_still_refuses_bad_stills_and_stores_nothing(kiosk_records, outbox, case):
    make, fields, match = BAD_STILLS[case]
    args = {"call_id": "call-1", "width": 640, "height": 480, **fields}
    with pytest.raises(BadInput, match=match):
        kiosk_records.add_still(make(), now=NOW, **args)
    assert outbox.status(1000.0).counts["pending"] == 0
    assert outbox._db.execute("SELECT COUNT(*) FROM stills").fetchone()[0] == 0


def test_the_largest_still_allowed_is_kept(kiosk_records, outbox):
    data = b"\xff\xd8\xff" + bytes(MAX_STILL_BYTES - 3)
    still_id = kiosk_records.add_still(data, call_id=None, width=4000, height=3000, now=NOW)
    assert outbox.still_bytes(still_id) == data


def test_record_entry_and_bytes_are_one_transaction(outbox):
    # The bytes' insert fails after the record and its entry went in: neither stays.
    outbox._db.execute(
        "CREATE TRIGGER no_stills BEFORE INSERT ON stills BEGIN SELECT RAISE(ABORT, 'x'); END"
    )
    with pytest.raises(DeviceFault):
        add_still(outbox, jpeg())
    assert outbox._db.execute("SELECT COUNT(*) FROM records").fetchone()[0] == 0
    assert outbox.status(1000.0).counts["pending"] == 0
    outbox._db.execute("DROP TRIGGER no_stills")
    rec = add_still(outbox, jpeg())
    with pytest.raises(DeviceFault, match="already in the outbox"):
        outbox.add_still(rec, jpeg(), now=1000.0)
    with pytest.raises(DeviceFault, match="takes a still record"):
        outbox.add_still(vitals(), jpeg(), now=1000.0)


def test_a_still_waits_for_its_bytes_before_it_joins_a_batch(outbox):
    before = vitals()
    outbox.add(before, now=1000.0)
    data = jpeg()
    rec = add_still(outbox, data)
    after = vitals()
    outbox.add(after, now=1000.0)
    # Ordinary records are due at once; the still's record is not, until its bytes are up.
    assert [e.record_id for e in outbox.due_entries(1000.0, 10)] == [before.id, after.id]
    upload = outbox.next_upload(1000.0)
    assert (upload.record_id, upload.size, upload.uploaded) == (rec.id, len(data), 0)
    assert upload.sha256 == hashlib.sha256(data).hexdigest()
    assert outbox.still_chunk(rec.id, 0, 5) == data[:5]
    assert outbox.still_chunk(rec.id, len(data) - 3, 100) == data[-3:]  # short at the end
    outbox.set_uploaded(rec.id, 70_000)
    assert outbox.next_upload(1000.0).uploaded == 70_000
    assert outbox.status(1000.0).still_bytes_left == len(data) - 70_000
    outbox.set_uploaded(rec.id, len(data))
    assert outbox.next_upload(1000.0) is None
    assert [e.record_id for e in outbox.due_entries(1000.0, 10)] == [before.id, rec.id, after.id]
    # The hub could not commit it (bytes dropped): back to uploading, not in batches.
    assert outbox.forget_uploaded([before.id, rec.id]) == [rec.id]
    assert rec.id not in [e.record_id for e in outbox.due_entries(1000.0, 10)]
    assert outbox.next_upload(1000.0).uploaded == 0


def test_an_upload_that_failed_backs_off_alone(outbox):
    first, second = add_still(outbox, jpeg(seed=1)), add_still(outbox, jpeg(seed=2))
    assert outbox.next_upload(1000.0).record_id == first.id
    outbox.retry_upload(first.id, 1010.0, "still upload: HTTP 503 to PUT")
    assert outbox.next_upload(1000.0).record_id == second.id
    assert outbox.next_due_at() <= 1000.0  # the second is due now
    upload = outbox.next_upload(1010.0)
    assert (upload.record_id, upload.attempts) == (first.id, 1)


def test_the_confirmed_offset_survives_a_restart(outbox_config):
    box = Outbox.open(outbox_config, now=1000.0, resume=True)
    data = jpeg()
    rec = add_still(box, data)
    box.set_uploaded(rec.id, 32_768)
    box.close()
    # Another process (e.g. after SIGKILL) opens the file: bytes and offset are there.
    again = Outbox.open(outbox_config, now=2000.0, resume=True)
    assert again.next_upload(2000.0).uploaded == 32_768
    assert again.still_bytes(rec.id) == data
    again.close()


def test_purge_deletes_the_bytes_with_the_record_and_never_unsent_ones(outbox):
    sent, unsent = add_still(outbox, jpeg(seed=1)), add_still(outbox, jpeg(seed=2))
    outbox.set_uploaded(sent.id, outbox.next_upload(1000.0).size)
    outbox.claim(outbox.due_entries(1000.0, 10), 1000.0)
    outbox.mark_acked([sent.id], 1000.0)
    assert outbox.purge(1000.0 + 3599) == 0
    assert outbox.purge(1000.0 + 3601) == 1
    assert outbox.still_bytes(sent.id) is None and outbox.record(sent.id) is None
    assert outbox.still_bytes(unsent.id) is not None
    assert outbox.entry_status(unsent.id) is EntryStatus.PENDING


def test_status_counts_stills_pending_and_bytes_left(outbox):
    a, b = jpeg(seed=1), jpeg(seed=2)
    ra, rb = add_still(outbox, a), add_still(outbox, b)
    outbox.add(vitals(), now=1000.0)
    outbox.set_uploaded(ra.id, 10_000)
    st = outbox.status(1000.0)
    assert (st.stills_pending, st.still_bytes_left) == (2, len(a) + len(b) - 10_000)
    assert st.counts["pending"] == 3
    outbox.mark_held([(rb.id, "the still is larger than the hub accepts (413)")], 1000.0)
    st = outbox.status(1000.0)
    assert (st.stills_pending, st.still_bytes_left) == (1, len(a) - 10_000)


def test_a_version_1_file_is_upgraded_in_place_keeping_its_records(outbox_config):
    box = Outbox.open(outbox_config, now=1000.0)
    old = vitals()
    box.add(old, now=1000.0)
    box.close()
    # Make it exactly what version 1 wrote: no stills table, version "1".
    con = sqlite3.connect(outbox_config.path)
    con.execute("DROP TABLE stills")
    con.execute("UPDATE meta SET value='1' WHERE key='schema_version'")
    con.commit()
    con.close()
    box = Outbox.open(outbox_config, now=1001.0, resume=True)
    assert box.get_meta("schema_version") == SCHEMA_VERSION == "2"
    assert box.record(old.id) == old and box.entry_status(old.id) is EntryStatus.PENDING
    assert box.status(1001.0).faults_waiting == 0  # not treated as corrupt
    assert not [p for p in outbox_config.path.parent.iterdir() if ".corrupt-" in p.name]
    rec = add_still(box, jpeg())
    assert box.next_upload(1001.0).record_id == rec.id
    box.close()


def test_a_newer_schema_is_moved_aside_as_unknown(outbox_config):
    box = Outbox.open(outbox_config, now=1000.0)
    add_still(box, jpeg())
    box.set_meta("schema_version", "3")
    box.close()
    fresh = Outbox.open(outbox_config, now=1000.0)
    assert fresh.status(0).faults_waiting == 1
    assert fresh.status(0).stills_pending == 0
    assert [p for p in outbox_config.path.parent.iterdir() if p.name.endswith(".corrupt-")] == []
    assert len([p for p in outbox_config.path.parent.iterdir() if ".corrupt-" in p.name]) == 1
    fresh.close()


def test_outbox_status_command_shows_stills(outbox_config):
    box = Outbox.open(outbox_config, now=1000.0)
    data = jpeg()
    rec = add_still(box, data)
    box.set_uploaded(rec.id, 2_058)
    box.close()
    folder = str(outbox_config.path.parent)
    runner = CliRunner()
    shown = runner.invoke(outbox_cli, ["status", "--data-dir", folder])
    assert shown.exit_code == 0, shown.output
    assert f"stills pending: 1 ({(len(data) - 2_058) / 1000:.1f} kB left to upload)" in shown.output
    shown = runner.invoke(outbox_cli, ["status", "--json", "--data-dir", folder])
    as_json = json.loads(shown.output)
    assert as_json["stills_pending"] == 1
    assert as_json["still_bytes_left"] == len(data) - 2_058

"""The sync worker against a real hub, through a TCP proxy that can cut the link."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime

from sqlalchemy import select

from porchlight.hub.inbox import records
from porchlight.kiosk.outbox import Outbox, OutboxConfig
from porchlight.kiosk.sync import SyncConfig, SyncWorker, current_questionnaire
from porchlight.kiosk.sync_policy import EntryStatus

from .conftest import vitals


def worker_for(hub, box, proxy, **cfg):
    return SyncWorker(
        box,
        hub_url=proxy.url,
        token=hub.token,
        patient_id=hub.patient_id,
        config=SyncConfig(**{"backoff_base_s": 0.2, "backoff_cap_s": 2.0, **cfg}),
    )


def hub_ids(hub, ids):
    with hub.server.store.engine.connect() as conn:
        rows = conn.execute(select(records.c.id).where(records.c.id.in_(ids))).all()
    return {r[0] for r in rows}


def fill(box, hub, n):
    recs = [vitals(pulse=60 + i % 40, patient=hub.patient_id) for i in range(n)]
    for r in recs:
        box.add(r, now=time.time())
    return [r.id for r in recs]


def test_drains_the_outbox_in_batches_and_keeps_order(hub, proxy, tmp_path):
    box = Outbox.open(OutboxConfig(path=tmp_path / "o.db"), now=time.time(), resume=True)
    ids = fill(box, hub, 600)
    worker = worker_for(hub, box, proxy, batch_max_records=100)
    worker.start()
    try:
        assert worker.wait_acked(ids, timeout=60)
    finally:
        worker.stop()
    assert hub_ids(hub, ids) == set(ids)
    assert box.status(time.time()).counts["acked"] == 600
    with hub.server.store.engine.connect() as conn:
        arrived = [
            r[0]
            for r in conn.execute(
                select(records.c.id)
                .where(records.c.id.in_(ids))
                .order_by(records.c.received_at, records.c.id)
            )
        ]
    assert arrived == ids  # the patient's records reached the hub in the order they were made
    box.close()


def test_link_cut_then_back_sends_within_two_seconds(hub, proxy, tmp_path):
    box = Outbox.open(OutboxConfig(path=tmp_path / "o.db"), now=time.time(), resume=True)
    worker = worker_for(hub, box, proxy, backoff_base_s=5.0, backoff_cap_s=300.0)
    worker.start()
    try:
        proxy.cut("refuse")
        ids = fill(box, hub, 20)
        worker.kick()
        assert not worker.wait_acked(ids, timeout=3)  # nothing gets through a cut link
        assert box.status(time.time()).counts["pending"] == 20
        assert worker.machine.state.value == "unreachable"
        proxy.restore()
        back = time.monotonic()
        assert worker.wait_acked(ids, timeout=10)
        took = time.monotonic() - back
        assert took <= 2.0, f"took {took:.2f} s after the hub was reachable again"
    finally:
        worker.stop()
    box.close()


def test_a_dead_link_that_times_out_is_retried_and_nothing_is_lost(hub, proxy, tmp_path):
    box = Outbox.open(OutboxConfig(path=tmp_path / "o.db"), now=time.time(), resume=True)
    worker = worker_for(hub, box, proxy, read_timeout_s=0.5, connect_timeout_s=0.5)
    proxy.cut("blackhole")
    ids = fill(box, hub, 10)
    worker.start()
    try:
        assert not worker.wait_acked(ids, timeout=1.5)
        proxy.restore()
        assert worker.wait_acked(ids, timeout=10)
    finally:
        worker.stop()
    assert hub_ids(hub, ids) == set(ids)
    box.close()


def test_kick_tries_at_once_even_during_a_long_backoff(hub, proxy, tmp_path):
    box = Outbox.open(OutboxConfig(path=tmp_path / "o.db"), now=time.time(), resume=True)
    # Probing off (once a minute) and a long backoff: only a kick can make it quick.
    worker = worker_for(
        hub, box, proxy, backoff_base_s=60.0, backoff_cap_s=600.0, probe_interval_s=60.0
    )
    proxy.cut("refuse")
    ids = fill(box, hub, 5)
    worker.start()
    try:
        assert not worker.wait_acked(ids, timeout=1.0)
        proxy.restore()
        assert not worker.wait_acked(ids, timeout=1.0)  # still backing off

        async def from_the_event_loop():
            started = time.perf_counter()
            worker.kick()  # what the kiosk core does when its WebSocket reconnects
            return time.perf_counter() - started

        assert asyncio.run(from_the_event_loop()) < 0.01  # never blocks the loop
        assert worker.wait_acked(ids, timeout=2.0)
    finally:
        worker.stop()
    box.close()


def test_records_the_hub_refuses_are_held_and_never_block_the_rest(hub, proxy, tmp_path):
    box = Outbox.open(OutboxConfig(path=tmp_path / "o.db"), now=time.time(), resume=True)
    good = fill(box, hub, 3)
    theirs = vitals(patient=hub.other_patient_id)  # e.g. left from before a re-enrolment
    box.add(theirs, now=time.time())
    good += fill(box, hub, 3)
    worker = worker_for(hub, box, proxy)
    worker.start()
    try:
        assert worker.wait_acked(good, timeout=20)
    finally:
        worker.stop()
    assert box.entry_status(theirs.id) is EntryStatus.HELD
    assert box.status(time.time()).counts == {"pending": 0, "sending": 0, "acked": 6, "held": 1}
    box.close()


def test_a_batch_too_large_for_the_hub_is_split(hub, proxy, tmp_path):
    box = Outbox.open(OutboxConfig(path=tmp_path / "o.db"), now=time.time(), resume=True)
    ids = fill(box, hub, 1200)
    # The hub takes at most 1000 per batch; this device is misconfigured to send 1500.
    worker = worker_for(hub, box, proxy, batch_max_records=1500, batch_max_bytes=10**8)
    worker.start()
    try:
        assert worker.wait_acked(ids, timeout=60)
    finally:
        worker.stop()
    assert worker.machine.batch_limit <= 1500
    assert box.status(time.time()).counts["held"] == 0
    box.close()


def test_a_corrupt_outbox_is_reported_to_the_hub(hub, proxy, tmp_path):
    path = tmp_path / "o.db"
    path.write_bytes(b"\x00garbage" * 1000)
    box = Outbox.open(OutboxConfig(path=path), now=time.time(), resume=True)
    worker = worker_for(hub, box, proxy)
    worker.start()
    try:
        with hub.server.store.engine.connect() as conn:
            deadline = time.monotonic() + 10
            found = []
            while not found and time.monotonic() < deadline:
                found = conn.execute(
                    select(records.c.content).where(
                        records.c.kind == "device_fault", records.c.patient_id == hub.patient_id
                    )
                ).all()
                conn.rollback()
                if not found:
                    worker.kick()
                    time.sleep(0.05)  # polling the hub's database, bounded by the deadline
        assert found and "outbox_corrupt" in found[-1][0]
    finally:
        worker.stop()
    box.close()


def test_the_assigned_questionnaire_is_kept_for_offline_use(hub, proxy, tmp_path):
    box = Outbox.open(OutboxConfig(path=tmp_path / "o.db"), now=time.time(), resume=True)
    assert current_questionnaire(box).title == "Daily check-in"
    worker = worker_for(hub, box, proxy)
    worker.step()  # idle step: fetches the questionnaire
    expected = hub.device().get(hub.url + "/api/device/questionnaire", timeout=5).json()
    assert current_questionnaire(box).title == expected["title"]
    worker.stop()
    box.close()


def test_status_age_of_oldest_unsent(tmp_path):
    box = Outbox.open(OutboxConfig(path=tmp_path / "o.db"), now=0, resume=True)
    box.add(vitals(), now=datetime(2026, 1, 1, tzinfo=UTC).timestamp())
    status = box.status(datetime(2026, 1, 1, 0, 5, tzinfo=UTC).timestamp())
    assert status.oldest_unsent_age_s == 300 and status.unsent == 1
    box.close()

"""An instance killed (SIGKILL) while a batch of records is being stored: the kiosk resends
what was not acknowledged through the other instance; nothing is lost or stored twice."""

from __future__ import annotations

import threading
import time

import httpx
import psycopg
from sqlalchemy import create_engine, func, select

from porchlight.hub.inbox import records

from .test_two_instances import vitals

BATCH = 1000
BATCHES = 4


def _storing_in_progress(dsn: str) -> bool:
    """True while some backend has an INSERT INTO records running or uncommitted."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE query ILIKE 'INSERT INTO records%%' "
            "AND state IN ('active', 'idle in transaction') AND pid <> pg_backend_pid()"
        ).fetchone()
    return bool(row and row[0])


def test_instance_killed_mid_sync_loses_and_duplicates_nothing(cluster_db, hub_process):
    first = hub_process(cluster_db.url)
    second = hub_process(cluster_db.url)
    demo = cluster_db.demo
    headers = {"Authorization": f"Bearer {demo.device_token}"}
    batches = [[vitals(demo.patient_id, 60 + i % 40) for i in range(BATCH)] for _ in range(BATCHES)]
    acknowledged: dict[str, str] = {}
    failures: list[str] = []

    def sync(hub_url: str, batch: list[dict]) -> bool:
        """Like the kiosk's sync worker: only an answer removes records from the device."""
        try:
            answer = httpx.post(
                hub_url + "/api/records", json={"records": batch}, headers=headers, timeout=30
            )
        except httpx.TransportError as exc:
            failures.append(type(exc).__name__)
            return False
        for result in answer.json()["results"]:
            acknowledged[result["id"]] = result["status"]
        return True

    assert sync(first.url, batches[0])
    # The second batch is in flight when its instance dies: kill it while rows are going in.
    in_flight = threading.Thread(target=sync, args=(first.url, batches[1]))
    in_flight.start()
    dsn = cluster_db.url.replace("postgresql+psycopg", "postgresql")
    deadline = time.monotonic() + 20
    while not _storing_in_progress(dsn):
        assert time.monotonic() < deadline, "the batch never reached the database"
        time.sleep(0.002)  # poll interval; bounded by the deadline
    first.kill()
    in_flight.join(timeout=30)
    assert failures, "the kill did not interrupt the batch"
    # The kiosk goes on through the other instance, resending everything unacknowledged.
    for batch in batches[1:]:
        pending = [r for r in batch if r["id"] not in acknowledged]
        assert sync(second.url, pending)

    sent = {r["id"] for batch in batches for r in batch}
    assert set(acknowledged) == sent
    assert set(acknowledged.values()) <= {"stored", "duplicate"}
    engine = create_engine(cluster_db.url)
    with engine.connect() as conn:
        total = conn.execute(select(func.count()).select_from(records)).scalar_one()
        stored = set(conn.execute(select(records.c.id)).scalars())
    engine.dispose()
    assert total == len(sent) == BATCH * BATCHES
    assert stored == sent

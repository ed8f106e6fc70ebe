"""Operations: readiness and liveness, Prometheus metrics, JSON logs without ids, and schema
migrations (both databases; packaged in the wheel)."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import zipfile
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import inspect, text

from porchlight.hub import schema
from porchlight.hub.app import create_app
from porchlight.hub.config import HubConfig
from porchlight.hub.db import make_engine
from porchlight.hub.logs import JsonFormatter
from porchlight.hub.seed import seed_demo
from porchlight.hub.store import Store
from porchlight.kiosk.outbox import new_record_id
from porchlight.kiosk.records import vitals_record
from porchlight.protocol import DEVICE_WS_PATH

ROOT = Path(__file__).resolve().parents[2]


def metric(body: str, name: str) -> float:
    for line in body.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[-1])
    raise AssertionError(f"{name} not in /metrics")


def test_health_and_metrics_count_sockets_room_and_records(tmp_path):
    from fastapi.testclient import TestClient

    config = HubConfig(data_dir=tmp_path)
    store = Store.open(config.resolved_database_url())
    demo = seed_demo(store)
    record = vitals_record(
        {"spo2": 97, "pulse": 70},
        record_id=new_record_id(),
        patient_id=demo.patient_id,
        now=datetime.now(UTC),
    ).to_wire()
    bad = {**record, "id": new_record_id(), "body": {"values": {"spo2": 140}}}
    headers = {"Authorization": f"Bearer {demo.device_token}"}
    with TestClient(create_app(config, store=store)) as client:
        assert client.get("/livez").json()["ok"] is True
        ready = client.get("/readyz")
        assert ready.status_code == 200 and ready.json()["ready"] is True
        client.post("/api/records", json={"records": [record, bad]}, headers=headers)
        client.post("/api/records", json={"records": [record]}, headers=headers)
        client.post("/api/records", content=b"not json", headers=headers)
        with client.websocket_connect(DEVICE_WS_PATH, headers=headers) as ws:
            ws.send_json({"type": "hello", "state": "idle"})
            ws.receive_json()
            ws.send_json({"type": "join"})
            assert ws.receive_json()["type"] == "waiting"
            body = client.get("/metrics").text
            assert metric(body, 'porchlight_websockets_open{kind="device"}') == 1
            assert metric(body, 'porchlight_waiting_patients{state="waiting"}') == 1
        body = client.get("/metrics").text
    store.close()
    assert metric(body, 'porchlight_websockets_open{kind="device"}') == 0
    assert metric(body, 'porchlight_sync_records_total{status="stored"}') == 1
    assert metric(body, 'porchlight_sync_records_total{status="duplicate"}') == 1
    assert metric(body, 'porchlight_sync_records_total{status="invalid"}') == 1
    assert metric(body, 'porchlight_sync_batches_total{outcome="refused"}') == 1
    assert (
        metric(
            body,
            'porchlight_http_request_duration_seconds_count{method="POST",'
            'route="/api/records",status="200"}',
        )
        == 2
    )
    # Route templates only: no patient id reaches a label.
    assert demo.patient_id not in body


def test_json_log_lines_mask_ids_and_tokens():
    formatter = JsonFormatter("hub-a")
    patient = "87a6886a-5e12-5080-8090-fd4844d6cea0"
    token = "ZjUjrtO1TxBDMH846spvWLYYul-3G8YWO7BrWEyrdg0"
    record = logging.LogRecord(
        "uvicorn.access",
        logging.INFO,
        __file__,
        1,
        "GET /api/patients/%s/today %s",
        (patient, token),
        None,
    )
    line = json.loads(formatter.format(record))
    assert line["message"] == "GET /api/patients/<id>/today <secret>"
    assert (line["level"], line["logger"], line["instance"]) == ("info", "uvicorn.access", "hub-a")


def test_migrations_make_exactly_what_the_code_declares(tmp_path):
    """Fails when a table or column is added without a migration: run
    `python -m porchlight.hub.schema revision -m "..."` and commit the new file."""
    engine = make_engine(f"sqlite:///{tmp_path / 'empty.db'}")
    assert schema.check(engine) == []
    engine.dispose()


def test_postgresql_upgrades_adopts_a_database_from_before_migrations(request):
    import pg_support

    url = pg_support.new_database(request)
    engine = make_engine(url)
    with engine.begin() as conn:
        from alembic import command

        command.upgrade(schema.alembic_config(conn), schema.BASELINE)
        conn.execute(text("DROP TABLE alembic_version"))  # as made by create_all, long ago
        conn.execute(
            text("INSERT INTO patients (id, display_name, created) VALUES ('p', 'P', now())")
        )
    store = Store.open(url)  # adopts it: stamps the baseline, upgrades to the newest
    with store.engine.connect() as conn:
        assert schema.current_revision(conn) == schema.head_revision()
        assert inspect(conn).has_table("room_presence")
    assert store.get_patient("p").display_name == "P"
    assert schema.differences(store.engine) == []
    store.close()
    Store.open(url).close()  # already current: nothing to do
    engine.dispose()


@pytest.mark.slow
def test_the_wheel_ships_the_migrations(tmp_path):
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path),
            str(ROOT),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (wheel,) = tmp_path.glob("porchlight-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for needed in (
        "porchlight/hub/migrations/env.py",
        "porchlight/hub/migrations/script.py.mako",
        "porchlight/hub/migrations/versions/0001_baseline.py",
        "porchlight/hub/schema.py",
    ):
        assert needed in names
    versions = {n for n in names if n.startswith("porchlight/hub/migrations/versions/0")}
    on_disk = {p.name for p in (ROOT / "hub" / "migrations" / "versions").glob("0*.py")}
    assert {Path(n).name for n in versions} == on_disk

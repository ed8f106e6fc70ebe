"""Fixtures for the outbox tests: records made through the real validation."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from porchlight.kiosk.outbox import Outbox, OutboxConfig, new_record_id
from porchlight.kiosk.records import Record, vitals_record

PATIENT = "patient-1"


def vitals(pulse: int = 72, patient: str = PATIENT, record_id: str | None = None) -> Record:
    return vitals_record(
        {"spo2": 97, "pulse": pulse},
        record_id=record_id or new_record_id(),
        patient_id=patient,
        now=datetime.now(UTC),
    )


@pytest.fixture
def outbox_config(tmp_path) -> OutboxConfig:
    return OutboxConfig(path=tmp_path / "kiosk" / "outbox.db", retention_s=3600)


@pytest.fixture
def outbox(outbox_config):
    box = Outbox.open(outbox_config, now=1000.0, resume=True)
    yield box
    box.close()

"""Fixtures for the outbox tests: records made through the real validation."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import pg_support
import pytest
import requests

from porchlight.hub.config import HubConfig
from porchlight.hub.seed import DEMO_PASSWORD, create_device_credential, seed_demo
from porchlight.hub.server import HubServer
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


# --- a real hub on 127.0.0.1 --------------------------------------------------------------


@dataclass
class RunningHub:
    server: HubServer
    url: str
    patient_id: str
    token: str
    other_patient_id: str
    other_token: str

    def device(self, token: str | None = None) -> requests.Session:
        s = requests.Session()
        s.headers["Authorization"] = f"Bearer {token or self.token}"
        return s

    def person(self, username: str = "clinician") -> requests.Session:
        s = requests.Session()
        r = s.post(self.url + "/api/login", json={"username": username, "password": DEMO_PASSWORD})
        r.raise_for_status()
        return s


def start_hub(folder, database_url: str | None = None) -> RunningHub:
    config = HubConfig(data_dir=folder, host="127.0.0.1", database_url=database_url)
    server = HubServer(config, port=0).start()
    demo = seed_demo(server.store)
    other = server.store.add_patient("Arthur Other", now=datetime.now(UTC))
    _device_id, other_token = create_device_credential(server.store, other.id)
    return RunningHub(server, server.url, demo.patient_id, demo.device_token, other.id, other_token)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    # test_inbox also runs on PostgreSQL (tests/pg_support.py).
    pg_support.parametrise(metafunc, scope="module")


@pytest.fixture(scope="module")
def hub_database(request: pytest.FixtureRequest) -> str:
    return getattr(request, "param", "sqlite")


@pytest.fixture(scope="module")
def hub(tmp_path_factory, request, hub_database):
    url = pg_support.new_database(request) if hub_database == "postgresql" else None
    running = start_hub(tmp_path_factory.mktemp("hub"), url)
    yield running
    running.server.stop()


def load_bench(name: str):
    """Import a helper from bench/ (a folder of scripts, not a package)."""
    import importlib.util
    import sys
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "bench" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"bench_{name}", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def proxy(hub):
    netlab = load_bench("netlab")
    with netlab.TcpProxy(hub.server.port) as p:
        yield p

"""Hub test fixtures: a seeded database (made once, copied per test), a controllable clock,
an app and its TestClient."""

from __future__ import annotations

import shutil
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from porchlight.hub import auth
from porchlight.hub.app import create_app
from porchlight.hub.config import HubConfig
from porchlight.hub.db import metadata
from porchlight.hub.seed import DEMO_PASSWORD, DemoSeed, ensure_person, seed_demo
from porchlight.hub.store import Role, Store

with warnings.catch_warnings():
    # Starlette asks for httpx2 in a deprecation warning; the TestClient works as it is.
    warnings.simplefilter("ignore", DeprecationWarning)
    from fastapi.testclient import TestClient

SECOND_CLINICIAN = "clinician2"


class FakeClock:
    """A clock tests move by hand."""

    def __init__(self, start: datetime | None = None) -> None:
        self.now = start or datetime(2025, 3, 4, 9, 30, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> datetime:
        self.now += timedelta(seconds=seconds)
        return self.now


@dataclass(frozen=True)
class Seeded:
    db_file: Path
    demo: DemoSeed


@pytest.fixture(scope="session")
def seeded_template(tmp_path_factory: pytest.TempPathFactory) -> Seeded:
    """The demo seed plus a second clinician, made once: argon2 is slow on purpose."""
    folder = tmp_path_factory.mktemp("hub-template")
    store = Store.open(f"sqlite:///{folder / 'hub.db'}")
    demo = seed_demo(store)
    ensure_person(store, SECOND_CLINICIAN, "Dr Ola Brown", Role.CLINICIAN, DEMO_PASSWORD)
    store.close()  # the last connection closing folds the WAL back into hub.db
    return Seeded(folder / "hub.db", demo)


@pytest.fixture
def config(tmp_path: Path) -> HubConfig:
    return HubConfig(data_dir=tmp_path / "hub")


@pytest.fixture
def store(config: HubConfig, seeded_template: Seeded) -> Iterator[Store]:
    config.data_dir.mkdir(parents=True, exist_ok=True)
    shutil.copy(seeded_template.db_file, config.data_dir / "hub.db")
    store = Store.open(config.resolved_database_url())
    yield store
    store.close()


@pytest.fixture
def demo(seeded_template: Seeded) -> DemoSeed:
    return seeded_template.demo


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def client(config: HubConfig, store: Store, clock: FakeClock) -> Iterator[TestClient]:
    with TestClient(create_app(config, store=store, clock=clock)) as client:
        yield client


def login(client: TestClient, username: str = "clinician", password: str = DEMO_PASSWORD) -> None:
    response = client.post("/api/login", json={"username": username, "password": password})
    assert response.status_code == 200, response.text


def device_headers(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def dump(store: Store) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table, to show that a refused request changed nothing."""
    with store.engine.connect() as conn:
        return {
            table.name: sorted(tuple(map(str, row)) for row in conn.execute(select(table)))
            for table in metadata.sorted_tables
        }


def new_device(store: Store, patient_id: str, now: datetime) -> str:
    token = auth.new_token()
    store.add_device(patient_id, auth.hash_token(token), now=now)
    return token

"""Hub test fixtures: a seeded database (made once, copied per test), a controllable clock,
an app and its TestClient. `hub_database` is "sqlite" or, for the tests tests/pg_support.py
picks, also "postgresql" (a database copied from a seeded template per test)."""

from __future__ import annotations

import shutil
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pg_support
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


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    pg_support.parametrise(metafunc)


@pytest.fixture
def hub_database(request: pytest.FixtureRequest) -> str:
    return getattr(request, "param", "sqlite")


def _seed(store: Store) -> DemoSeed:
    demo = seed_demo(store)
    ensure_person(store, SECOND_CLINICIAN, "Dr Ola Brown", Role.CLINICIAN, DEMO_PASSWORD)
    store.close()  # the last connection closing folds the WAL back into hub.db
    return demo


@pytest.fixture(scope="session")
def seeded_template(tmp_path_factory: pytest.TempPathFactory) -> Seeded:
    """The demo seed plus a second clinician, made once: argon2 is slow on purpose."""
    folder = tmp_path_factory.mktemp("hub-template")
    demo = _seed(Store.open(f"sqlite:///{folder / 'hub.db'}"))
    return Seeded(folder / "hub.db", demo)


@pytest.fixture(scope="session")
def postgres_template(request: pytest.FixtureRequest, seeded_template: Seeded) -> str:
    """The same seed in a PostgreSQL database that per-test databases are copied from."""
    url = pg_support.new_database(request)
    store = Store.open(url)
    with Store.open(f"sqlite:///{seeded_template.db_file}").engine.connect() as source:
        rows = {t.name: source.execute(select(t)).mappings().all() for t in metadata.sorted_tables}
    with store.engine.begin() as conn:
        for table in metadata.sorted_tables:
            conn.execute(table.delete())
        for table in metadata.sorted_tables:
            if rows[table.name]:
                conn.execute(table.insert(), [dict(r) for r in rows[table.name]])
    store.close()
    return url.rsplit("/", 1)[1]


@pytest.fixture
def empty_database_url(request: pytest.FixtureRequest, hub_database: str, tmp_path: Path) -> str:
    if hub_database == "postgresql":
        return pg_support.new_database(request)
    return f"sqlite:///{tmp_path / 'hub.db'}"


@pytest.fixture
def config(request: pytest.FixtureRequest, tmp_path: Path, hub_database: str) -> HubConfig:
    if hub_database == "postgresql":
        template = request.getfixturevalue("postgres_template")
        url = pg_support.new_database(request, template=template)
        return HubConfig(data_dir=tmp_path / "hub", database_url=url)
    return HubConfig(data_dir=tmp_path / "hub")


@pytest.fixture
def store(config: HubConfig, seeded_template: Seeded) -> Iterator[Store]:
    config.data_dir.mkdir(parents=True, exist_ok=True)
    if config.database_url is None:
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

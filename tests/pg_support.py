"""One throwaway PostgreSQL server per test session, shared by every test folder that needs it.

Hub tests run on SQLite, and a chosen subset also on PostgreSQL (a parametrised
`hub_database` fixture: ids end in [sqlite] / [postgresql]). PORCHLIGHT_TEST_POSTGRES picks:

- "subset" (default): the PostgreSQL parameter for the modules in POSTGRES_MODULES;
- "all": every hub test that takes the `hub_database` fixture, on both databases;
- "off": SQLite only (a machine without PostgreSQL's server).

The server starts on first use (initdb ~1 s), on a free port on 127.0.0.1 in a fresh folder
under /tmp, and stops when the session ends.
"""

from __future__ import annotations

import itertools
import os

import pytest

from porchlight.hub.pg_cluster import TemporaryPostgres

# Store, signalling (the shared room and LISTEN/NOTIFY bus) and inbox idempotency.
POSTGRES_MODULES = frozenset({"test_store", "test_signalling", "test_inbox"})
# Tests whose expectations are about one SQLite hub: with PostgreSQL the room outlives a
# restart (tests/scale covers that), and WAL pragmas are SQLite's.
SQLITE_ONLY = frozenset(
    {
        "test_sqlite_runs_in_wal_with_foreign_keys",
        "test_hub_restart_restores_the_waiting_patient_with_the_original_since",
        "test_hub_restart_mid_call_both_sides_rebind",
    }
)

_SERVER = pytest.StashKey[TemporaryPostgres]()
_NAMES = pytest.StashKey[itertools.count]()


def mode() -> str:
    return os.environ.get("PORCHLIGHT_TEST_POSTGRES", "subset").strip().lower()


def databases_for(metafunc: pytest.Metafunc) -> list[str]:
    """Which databases a test runs on (see the module docstring)."""
    name = metafunc.module.__name__.rsplit(".", 1)[-1]
    wanted = mode()
    if wanted == "off" or metafunc.function.__name__ in SQLITE_ONLY:
        return ["sqlite"]
    if wanted == "all" or name in POSTGRES_MODULES:
        return ["sqlite", "postgresql"]
    return ["sqlite"]


def parametrise(metafunc: pytest.Metafunc, scope: str = "function") -> None:
    """For conftests' pytest_generate_tests: parametrise `hub_database` when more than one."""
    if "hub_database" not in metafunc.fixturenames:
        return
    databases = databases_for(metafunc)
    if len(databases) > 1:
        metafunc.parametrize("hub_database", databases, indirect=True, scope=scope)


def server(request: pytest.FixtureRequest) -> TemporaryPostgres:
    """The session's PostgreSQL server, started on first use."""
    stash = request.config.stash
    if _SERVER not in stash:
        pg = TemporaryPostgres().start()
        request.config.add_cleanup(pg.stop)
        stash[_SERVER] = pg
        stash[_NAMES] = itertools.count(1)
    return stash[_SERVER]


def new_database(request: pytest.FixtureRequest, *, template: str | None = None) -> str:
    """A fresh database (a copy of `template` if given); returns its SQLAlchemy URL."""
    pg = server(request)
    name = f"t{next(request.config.stash[_NAMES])}"
    pg.create_database(name, template=template)
    # Dropped when the asking fixture's scope ends (each copy is ~8 MB on disk).
    request.addfinalizer(lambda: pg.drop_database(name))
    return pg.url(name, create=False)

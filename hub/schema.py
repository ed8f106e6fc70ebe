"""The hub's schema under Alembic: bring any database (SQLite or PostgreSQL) to the newest revision.

`upgrade(engine)` is what `Store.open` runs. It is cheap when the database is already current,
serialised between hub instances starting at once (a PostgreSQL advisory lock), and it adopts a
database made before migrations existed (it has the tables of the first revision, so it is
stamped with it and upgraded from there).

Tables that a feature has added to `metadata` but no migration creates yet are still created
(with a warning) so work in progress runs; `check()` — run by the tests — fails until a
migration covers them. Make one with:

    python -m porchlight.hub.schema revision -m "what changed"

which compares `metadata` with a scratch database migrated to the newest revision and writes the
difference as a new file in hub/migrations/versions/ (read it before committing).
"""

from __future__ import annotations

import argparse
import functools
import logging
import sys
import tempfile
from pathlib import Path
from typing import Any

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, MetaData, inspect, text

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
# The first revision: the tables the hub had before it used migrations.
BASELINE = "0001"
# pg_advisory_xact_lock key: one hub instance migrates at a time ("porc" in ASCII).
_MIGRATION_LOCK = 0x706F7263


def alembic_config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["connection"] = connection
    return config


@functools.cache
def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None, "hub/migrations/versions has no revision"
    return head


def target_metadata() -> MetaData:
    """`metadata` with every feature's tables on it (the app imports every feature module)."""
    import porchlight.hub.app  # noqa: F401  (registers the tables)
    from porchlight.hub.db import metadata

    return metadata


def render_item(type_: str, obj: Any, autogen_context: Any) -> str | bool:
    """Write UTCDateTime as the plain type it stores, so migrations never import hub code."""
    from porchlight.hub.db import UTCDateTime

    if type_ == "type" and isinstance(obj, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    return False


def current_revision(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


def upgrade(engine: Engine) -> None:
    """Bring the database to the newest revision, then create any table still lacking one."""
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK})
        current = current_revision(conn)
        if current != head_revision():
            config = alembic_config(conn)
            if current is None and inspect(conn).has_table("patients"):
                log.info("adopting a database made before migrations (revision %s)", BASELINE)
                command.stamp(config, BASELINE)
            command.upgrade(config, "head")
        metadata = target_metadata()
        missing = [t for t in metadata.sorted_tables if not inspect(conn).has_table(t.name)]
        if missing:
            log.warning(
                "creating tables that no migration creates yet: %s "
                "(add one: python -m porchlight.hub.schema revision -m '...')",
                ", ".join(t.name for t in missing),
            )
            metadata.create_all(conn, tables=missing)


def differences(engine: Engine) -> list[Any]:
    """What `metadata` has that the migrated database lacks (or the reverse); [] when equal."""
    with engine.connect() as conn:
        context = MigrationContext.configure(
            conn, opts={"compare_type": True, "render_item": render_item}
        )
        return [
            d
            for d in compare_metadata(context, target_metadata())
            # Alembic's own bookkeeping table is not on metadata.
            if not (d[0] == "remove_table" and d[1].name == "alembic_version")
        ]


def migrate_only(engine: Engine) -> None:
    """Run the migrations and nothing else (no create_all): what `check` compares."""
    with engine.begin() as conn:
        command.upgrade(alembic_config(conn), "head")


def check(engine: Engine) -> list[Any]:
    """Migrate an EMPTY database with migrations alone and compare it with `metadata`."""
    migrate_only(engine)
    return differences(engine)


def _scratch_engine(folder: str) -> Engine:
    from porchlight.hub.db import make_engine

    return make_engine(f"sqlite:///{folder}/scratch.db")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m porchlight.hub.schema", description=__doc__)
    sub = parser.add_subparsers(dest="action", required=True)
    up = sub.add_parser("upgrade", help="bring a database to the newest revision")
    up.add_argument("--url", required=True, help="SQLAlchemy database URL")
    sub.add_parser("check", help="exit 1 if metadata has changes no migration makes")
    rev = sub.add_parser("revision", help="write a new migration for what metadata has added")
    rev.add_argument("-m", "--message", required=True)
    args = parser.parse_args(argv)
    if args.action == "upgrade":
        from porchlight.hub.db import make_engine

        engine = make_engine(args.url)
        upgrade(engine)
        engine.dispose()
        print(f"database at revision {head_revision()}")
        return 0
    with tempfile.TemporaryDirectory(prefix="porchlight-schema-") as folder:
        engine = _scratch_engine(folder)
        try:
            if args.action == "check":
                diffs = check(engine)
                for diff in diffs:
                    print(diff)
                print("migrations match metadata" if not diffs else "migrations are behind")
                return 1 if diffs else 0
            migrate_only(engine)
            with engine.begin() as conn:
                config = alembic_config(conn)
                count = len(list(ScriptDirectory.from_config(config).walk_revisions()))
                command.revision(
                    config, message=args.message, autogenerate=True, rev_id=f"{count + 1:04d}"
                )
        finally:
            engine.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())

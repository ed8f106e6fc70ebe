"""The hub's database: engine, the one `metadata` every table belongs to, and the core tables.

Later features add their tables to `metadata` in their own modules (and Alembic migrations
will be generated from it), so keep table definitions portable: SQLAlchemy Core types only,
nothing SQLite-specific. The naming convention gives constraints stable names, which Alembic
needs to alter them later.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import (
    Column,
    DateTime,
    Engine,
    ForeignKey,
    Index,
    MetaData,
    String,
    Table,
    TypeDecorator,
    create_engine,
    event,
    make_url,
)
from sqlalchemy.pool import StaticPool

from porchlight.errors import ConfigError

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp that goes in and comes out as an aware UTC datetime on every backend.

    SQLite has no time zones and hands back naive values; PostgreSQL's timestamptz keeps them.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("timestamps given to the database must carry a time zone")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


# Patients: the minimum needed to show a name in the waiting room.
patients = Table(
    "patients",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("display_name", String(200), nullable=False),
    Column("created", UTCDateTime(), nullable=False),
)

# Devices (kiosks): each bound to one patient; only the SHA-256 of its bearer token is kept.
devices = Table(
    "devices",
    metadata,
    Column("id", String(36), primary_key=True),
    Column(
        "patient_id",
        String(36),
        ForeignKey("patients.id", ondelete="RESTRICT"),
        nullable=False,
        index=True,
    ),
    Column("token_sha256", String(64), nullable=False, unique=True),
    Column("created", UTCDateTime(), nullable=False),
    Column("revoked_at", UTCDateTime(), nullable=True),
    Column("last_seen", UTCDateTime(), nullable=True),
)

# People who log in to the hub's pages.
people = Table(
    "people",
    metadata,
    Column("username", String(64), primary_key=True),
    Column("display_name", String(200), nullable=False),
    Column("role", String(16), nullable=False),
    Column("password_hash", String(255), nullable=False),
    Column("created", UTCDateTime(), nullable=False),
)

# Login sessions: the cookie carries a random token, the table only its SHA-256.
sessions = Table(
    "sessions",
    metadata,
    Column("id_sha256", String(64), primary_key=True),
    Column(
        "username",
        String(64),
        ForeignKey("people.username", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("created", UTCDateTime(), nullable=False),
    Column("expires", UTCDateTime(), nullable=False),
)
Index("ix_sessions_expires", sessions.c.expires)


def _is_memory_sqlite(url: str) -> bool:
    parsed = make_url(url)
    return parsed.get_backend_name() == "sqlite" and parsed.database in (None, "", ":memory:")


def make_engine(url: str) -> Engine:
    """Create an engine for `url`; SQLite files get WAL, foreign keys and a busy timeout."""
    try:
        parsed = make_url(url)
    except Exception:
        raise ConfigError(
            "hub.database_url is not a database URL; use e.g. sqlite:///path/hub.db"
        ) from None
    if parsed.get_backend_name() != "sqlite":
        return create_engine(url, pool_pre_ping=True)
    if _is_memory_sqlite(url):
        # One shared connection, or every new connection would see an empty database.
        engine = create_engine(url, poolclass=StaticPool, connect_args={"check_same_thread": False})
    else:
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False})

    @event.listens_for(engine, "connect")
    def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=5000")
        if not _is_memory_sqlite(url):
            cursor.execute("PRAGMA journal_mode=WAL")
        # FULL: a committed row survives a power cut (WAL's default NORMAL may lose the last).
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.close()

    return engine


def create_all(engine: Engine) -> None:
    """Create every table registered on `metadata` that does not exist yet.

    Only tables whose modules have been imported exist on `metadata`. `porchlight.hub.app`
    imports every feature module (for its routes), so importing it before opening the store
    (as HubServer and serve do) creates them all.
    """
    metadata.create_all(engine)

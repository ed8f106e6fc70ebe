"""A throwaway PostgreSQL server for tests, benchmarks and trying the hub on one machine.

`TemporaryPostgres()` runs Debian's `initdb` and `pg_ctl` (as the `postgres` user when we
are root, since PostgreSQL refuses to run as root), listening on 127.0.0.1 only, on a free port,
with its socket in `folder`. Durability is turned down (no fsync) because the data is thrown
away; never point a real hub at it.

    with TemporaryPostgres() as pg:
        url = pg.url("hub")          # creates the database
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path
from types import TracebackType

from porchlight.errors import ConfigError, TransportFailed

SEARCH_DIRS = ("/usr/lib/postgresql",)


def find_bin_dir() -> Path:
    """The folder holding initdb and pg_ctl (newest installed major version first)."""
    on_path = shutil.which("initdb")
    if on_path:
        return Path(on_path).parent
    for base in SEARCH_DIRS:
        root = Path(base)
        if root.is_dir():
            versions = sorted(
                (p for p in root.iterdir() if (p / "bin" / "initdb").exists()),
                key=lambda p: int(p.name) if p.name.isdigit() else 0,
                reverse=True,
            )
            if versions:
                return versions[0] / "bin"
    raise ConfigError(
        "PostgreSQL's server programs (initdb, pg_ctl) are not installed; "
        "run `apt-get install postgresql` (Debian) and try again"
    )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class TemporaryPostgres:
    """One PostgreSQL cluster in `folder`, started by `start()` and removed by `stop()`."""

    def __init__(
        self, folder: Path | None = None, *, port: int | None = None, max_connections: int = 200
    ):
        self._bin = find_bin_dir()
        self._as_postgres = os.geteuid() == 0
        # As root the server runs as `postgres`, which must reach its folder: pytest's and
        # most private temporary folders are root-only, so use a fresh one under /tmp.
        self._made_folder = folder is None or self._as_postgres
        self.folder = (
            Path(tempfile.mkdtemp(prefix="porchlight-pg-")) if self._made_folder else Path(folder)
        )
        self.data_dir = self.folder / "pgdata"
        self.port = port or _free_port()
        self.max_connections = max_connections
        self.running = False

    def _run(self, *args: str) -> subprocess.CompletedProcess[str]:
        command = [str(self._bin / args[0]), *args[1:]]
        if self._as_postgres:
            command = ["runuser", "-u", "postgres", "--", *command]
        return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)

    def start(self) -> TemporaryPostgres:
        self.folder.mkdir(parents=True, exist_ok=True)
        if self._as_postgres:
            shutil.chown(self.folder, "postgres", "postgres")
        if not self.data_dir.exists():
            done = self._run("initdb", "-D", str(self.data_dir), "-A", "trust", "-U", "postgres")
            if done.returncode != 0:
                raise TransportFailed(f"initdb failed: {done.stderr.strip()[-500:]}")
        options = (
            f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.folder} "
            f"-c max_connections={self.max_connections} -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off"
        )
        done = self._run(
            "pg_ctl",
            "-D",
            str(self.data_dir),
            "-o",
            options,
            "-l",
            str(self.folder / "postgres.log"),
            "-w",
            "start",
        )
        if done.returncode != 0:
            raise TransportFailed(
                f"PostgreSQL did not start on 127.0.0.1:{self.port}: {done.stderr.strip()[-500:]}"
            )
        self.running = True
        return self

    def stop(self) -> None:
        if self.running:
            self._run("pg_ctl", "-D", str(self.data_dir), "-m", "fast", "-w", "stop")
            self.running = False
        if self._made_folder:
            shutil.rmtree(self.folder, ignore_errors=True)

    def url(self, database: str = "postgres", *, create: bool = True) -> str:
        """A SQLAlchemy URL (psycopg 3 driver) for `database`, creating it if asked."""
        if create and database != "postgres":
            self.create_database(database)
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str, *, template: str | None = None) -> None:
        import psycopg

        with psycopg.connect(self.dsn(), autocommit=True) as conn:
            exists = conn.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", (name,)
            ).fetchone()
            if exists:
                return
            suffix = f' TEMPLATE "{template}"' if template else ""
            conn.execute(f'CREATE DATABASE "{name}"{suffix}')

    def drop_database(self, name: str) -> None:
        import psycopg

        with psycopg.connect(self.dsn(), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def dsn(self, database: str = "postgres") -> str:
        """A libpq connection string (what psycopg takes directly)."""
        return f"host=127.0.0.1 port={self.port} user=postgres dbname={database}"

    def __enter__(self) -> TemporaryPostgres:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

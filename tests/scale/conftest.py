"""Several real hub processes on one PostgreSQL: the cluster as it runs in production.

`pg` is the session's throwaway PostgreSQL (tests/pg_support.py). `cluster_db` is a fresh,
seeded database; `hub_process(url)` starts `porchlight hub` as a subprocess on a free port on
127.0.0.1 and waits for /readyz; every process left running is killed at the end.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pg_support
import pytest

from porchlight.hub.seed import DEMO_PASSWORD, DemoSeed, seed_demo
from porchlight.hub.store import Store

START_TIMEOUT_S = 30.0


@dataclass
class HubProcess:
    process: subprocess.Popen[bytes]
    port: int
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs, as when a machine dies."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def terminate(self, timeout_s: float = 15.0) -> bool:
        """SIGTERM: a graceful shutdown. True when it ended by itself in time (uvicorn
        re-raises the signal after shutting down, so the exit status is -SIGTERM or 0)."""
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=timeout_s) in (0, -signal.SIGTERM)

    def output(self) -> str:
        return self.log.read_text(errors="replace")


@dataclass(frozen=True)
class ClusterDb:
    url: str
    demo: DemoSeed


@pytest.fixture
def cluster_db(request: pytest.FixtureRequest) -> ClusterDb:
    url = pg_support.new_database(request)
    store = Store.open(url)
    demo = seed_demo(store)
    store.close()
    return ClusterDb(url, demo)


def launch_hub(database_url: str, folder: Path, **env: str) -> HubProcess:
    """`porchlight hub` on a free port, its log and data under `folder`; not yet ready (see
    wait_ready): start several, then wait for each."""
    port = _free_port()
    log = folder / f"hub-{port}.log"
    environment = {
        **os.environ,
        "PORCHLIGHT_HUB_DATABASE_URL": database_url,
        "PORCHLIGHT_HUB_HOST": "127.0.0.1",
        "PORCHLIGHT_HUB_PORT": str(port),
        "PORCHLIGHT_HUB_DATA_DIR": str(folder / f"data-{port}"),
        **env,
    }
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-c", "from porchlight.cli import main; main()", "hub"],
            env=environment,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    return HubProcess(process, port, log)


@pytest.fixture
def hub_process(tmp_path: Path) -> Iterator[Callable[..., HubProcess]]:
    started: list[HubProcess] = []

    def start(database_url: str, **env: str) -> HubProcess:
        hub = launch_hub(database_url, tmp_path, **env)
        started.append(hub)
        wait_ready(hub)
        return hub

    yield start
    for hub in started:
        if hub.process.poll() is None:
            hub.kill()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_ready(hub: HubProcess) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    with httpx.Client(timeout=1.0) as client:
        while time.monotonic() < deadline:
            if hub.process.poll() is not None:
                raise RuntimeError(f"the hub exited while starting:\n{hub.output()[-2000:]}")
            try:
                if client.get(hub.url + "/readyz").status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.05)  # poll interval; the deadline bounds the wait
    raise TimeoutError(f"the hub was not ready within {START_TIMEOUT_S:.0f} s")


@contextlib.contextmanager
def login(
    url: str, username: str = "clinician", password: str = DEMO_PASSWORD
) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=url, timeout=10) as client:
        answer = client.post("/api/login", json={"username": username, "password": password})
        answer.raise_for_status()
        yield client

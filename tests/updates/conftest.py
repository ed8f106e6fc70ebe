"""Update tests: a signed repository served over HTTP on 127.0.0.1, simulated app releases
(tiny wheels built in milliseconds) and devices laid out under temporary roots."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
import uvicorn
from starlette.applications import Starlette
from starlette.routing import Mount

from porchlight.hub import auth, fleet, releases
from porchlight.hub.app import create_app
from porchlight.hub.config import HubConfig
from porchlight.hub.releases import MOUNT_PATH, release_files
from porchlight.hub.seed import DEMO_PASSWORD, ensure_person
from porchlight.hub.store import Role, Store
from porchlight.provisioning.fleet_sim import SimDevice, build_device
from porchlight.provisioning.heartbeat import UpdateLoop, collect_inventory
from porchlight.provisioning.kiosk_control import SimulatedKiosk
from porchlight.provisioning.layout import DeviceLayout
from porchlight.provisioning.release import build_release
from porchlight.provisioning.release_install import SimulatedInstaller, VenvInstaller, provision
from porchlight.provisioning.repository import Repository, RepositoryConfig, init_repository
from porchlight.provisioning.sim_release import build_sim_wheel, sim_requirement
from porchlight.provisioning.update_agent import AgentConfig, UpdateAgent
from porchlight.provisioning.update_policy import UpdatePolicy

# version -> how the simulated app behaves
RELEASES = {
    "1.0.0": "healthy",
    "1.1.0": "healthy",
    "1.2.0": "crash",
    "1.3.0": "unhealthy",
    "1.4.0": "healthy",
    "1.5.0": "healthy",
}


def utc_now() -> datetime:
    return datetime.now(UTC)


class Served:
    """An ASGI app served by uvicorn on a free 127.0.0.1 port, on a background thread."""

    def __init__(self, app: Any) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = uvicorn.Server(
            uvicorn.Config(app, log_level="warning", log_config=None, lifespan="on")
        )
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True
        )

    def __enter__(self) -> Served:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("test server did not start")
            time.sleep(0.01)  # poll with a deadline
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self.sock.close()


@pytest.fixture(scope="session")
def release_files_built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One release file per simulated version (built once: they are deterministic)."""
    folder = tmp_path_factory.mktemp("releases")
    built = {}
    for version, behaviour in RELEASES.items():
        # 1.1.0 weighs 1 MB, so download limits and resumes have something to bite on.
        padding = 1024 * 1024 if version == "1.1.0" else 0
        wheel = build_sim_wheel(version, behaviour, folder / "wheels" / version, padding=padding)
        built[version] = build_release(
            version, [wheel], folder / "out", requirement=sim_requirement(version), now=utc_now()
        )
    return built


@dataclass
class Repo:
    config: RepositoryConfig
    root: bytes
    files: dict[str, Path]

    def open(self) -> Repository:
        return Repository.open(self.config)

    def publish(
        self, *versions: str, now: datetime | None = None, min_version: str | None = None
    ) -> Repository:
        repo = self.open()
        for version in versions:
            repo.add_release(self.files[version], version)
        if min_version is not None:
            repo.set_min_version(min_version)
        repo.publish(now=now or utc_now())
        return repo

    def snapshot_files(self) -> dict[Path, bytes]:
        return {p: p.read_bytes() for p in self.config.path.rglob("*") if p.is_file()}

    def restore(self, files: dict[Path, bytes]) -> None:
        for path in list(self.config.path.rglob("*")):
            if path.is_file() and path not in files:
                path.unlink()
        for path, data in files.items():
            path.write_bytes(data)

    def target_path(self, version: str) -> Path:
        return next(self.config.targets_dir.glob(f"*.porchlight-{version}.tar"))


@pytest.fixture
def repo(tmp_path: Path, release_files_built: dict[str, Path]) -> Repo:
    config = RepositoryConfig(
        path=tmp_path / "served" / "releases",
        keys_dir=tmp_path / "keys" / "online",
        root_keys_dir=tmp_path / "keys" / "offline",
    )
    root = init_repository(config, now=utc_now())
    return Repo(config, root, release_files_built)


@pytest.fixture
def release_server(repo: Repo) -> Iterator[Served]:
    """The release tree served the way the hub serves it (same StaticFiles, same path)."""
    app = Starlette(routes=[Mount(MOUNT_PATH, release_files(repo.config.path))])
    with Served(app) as served:
        yield served


def make_device(
    root: Path,
    repo: Repo,
    url: str,
    *,
    first: str = "1.0.0",
    real: bool = False,
    policy: UpdatePolicy | None = None,
    **agent_kwargs: Any,
) -> DeviceLayout:
    """A device under `root` running release `first` and trusting `repo`'s root."""
    layout = DeviceLayout(root)
    layout.update_dir.mkdir(parents=True)
    layout.bootstrap_root_path.write_bytes(repo.root)
    installer = VenvInstaller(sys.executable) if real else SimulatedInstaller()
    provision(layout, installer, repo.files[first], first)
    return layout


def simulated_agent(layout: DeviceLayout, url: str, **config: Any) -> UpdateAgent:
    return UpdateAgent(
        layout,
        AgentConfig.for_hub(url, health_poll_s=0.01, **config),
        installer=SimulatedInstaller(),
        kiosk=SimulatedKiosk(layout, time.time),
    )


def days_ago(days: float) -> datetime:
    return utc_now() - timedelta(days=days)


def kill_sim_kiosk(layout: DeviceLayout) -> None:
    """Stop a simulated kiosk process a test (or a killed agent) left running."""
    pid_file = layout.update_dir / "sim-kiosk.pid"
    with contextlib.suppress(OSError, ValueError):
        os.kill(int(pid_file.read_text()), signal.SIGKILL)


# -- the real hub, with the fleet API, for rollout tests -------------------------------------

SUPPORT_USER = "support"


@dataclass
class FleetHub:
    url: str
    store: Store
    config: HubConfig
    support: requests.Session
    tokens: dict[str, str]  # device id -> bearer token

    def api(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.support.request(method, self.url + path, timeout=30, **kwargs)
        assert response.status_code < 400, response.text
        return response.json()

    def rollout(self, version: str, **plan: Any) -> dict[str, Any]:
        return self.api("POST", "/api/fleet/rollouts", json={"version": version, **plan})

    def devices(self, filter: str | None = None) -> dict[str, dict[str, Any]]:
        query = f"?filter={filter}" if filter else ""
        listed = self.api("GET", "/api/fleet/devices" + query)["devices"]
        return {d["device_id"]: d for d in listed}


def hub_app(config: HubConfig, store: Store, **kwargs: Any) -> Any:
    """The hub app with the fleet router and release files, wired or not in app.py yet."""
    app = create_app(config, store=store, **kwargs)
    paths = {getattr(route, "path", None) for route in app.routes}
    if "/api/fleet/heartbeat" not in paths:
        app.include_router(fleet.router)
    if MOUNT_PATH not in paths:
        releases.mount(app, config)
    return app


@pytest.fixture
def fleet_hub(tmp_path: Path, repo: Repo, request: pytest.FixtureRequest) -> Iterator[FleetHub]:
    """The hub serving `repo` as its releases, with `fleet_size` simulated devices enrolled
    (parametrise indirectly, or 1)."""
    size = getattr(request, "param", 1)
    config = HubConfig(data_dir=repo.config.path.parent)
    store = Store.open(config.resolved_database_url())
    ensure_person(store, SUPPORT_USER, "Support Sam", Role.SUPPORT, DEMO_PASSWORD)
    now = utc_now()
    tokens = {}
    for index in range(size):
        patient = store.add_patient(f"Sim patient {index}", now=now)
        token = auth.new_token()
        device_id = f"sim-{index:03d}"
        store.add_device(patient.id, auth.hash_token(token), now=now, device_id=device_id)
        tokens[device_id] = token
    with Served(hub_app(config, store)) as served:
        support = requests.Session()
        login = support.post(
            served.url + "/api/login",
            json={"username": SUPPORT_USER, "password": DEMO_PASSWORD},
            timeout=30,
        )
        assert login.status_code == 200, login.text
        yield FleetHub(served.url, store, config, support, tokens)
    store.close()


def sim_device(tmp_path: Path, repo: Repo, hub: FleetHub, device_id: str) -> SimDevice:
    """A simulated device enrolled on `hub` (as `device_id`), running release 1.0.0."""
    return build_device(
        tmp_path / device_id,
        device_id=device_id,
        token=hub.tokens[device_id],
        hub_url=hub.url,
        bootstrap_root=repo.root,
        first_release=repo.files["1.0.0"],
        first_version="1.0.0",
    )


def update_loop(device: SimDevice) -> UpdateLoop:
    """The agent's heartbeat loop on the device's own clock; rng 0.5: no jitter, so the
    schedule is exactly every 30 minutes."""
    return UpdateLoop(
        device.agent,
        device.hub,
        inventory=lambda: collect_inventory(device.layout, device.agent),
        clock=device.clock,
        rng=lambda: 0.5,
    )

"""Kiosk test fixtures: the real hub on 127.0.0.1, a seeded device, a kiosk config, and the
clinician's twin (an aiortc peer on the hub's clinic WebSocket)."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from porchlight.clinician_peer import ClinicianPeer
from porchlight.device.config import DeviceConfig
from porchlight.hub.config import HubConfig
from porchlight.hub.seed import DemoSeed, seed_demo
from porchlight.hub.server import HubServer
from porchlight.kiosk.config import KioskConfig
from porchlight.kiosk.credential import DeviceCredential

# Small pictures keep two VP8 encoders and decoders comfortable on a 2-core CI machine.
SMALL_CAMERA = {"camera_width": 320, "camera_height": 240, "camera_fps": 15}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def wait_until(predicate: Callable[[], Any], timeout: float, what: str) -> Any:
    """Check `predicate` until it is truthy; fail naming `what` at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}; last {value!r}")
        await asyncio.sleep(0.02)


async def wait_on(
    changed: asyncio.Event, predicate: Callable[[], Any], timeout: float, what: str
) -> Any:
    """Like wait_until, but woken by `changed` (set by whoever changes what is checked)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        changed.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(changed.wait(), left)


@dataclass
class Hub:
    """The real hub on a fixed free port, so it can be stopped and started again."""

    config: HubConfig
    server: HubServer
    seed: DemoSeed

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.config.port}"

    def credential(self, token: str | None = None) -> DeviceCredential:
        return DeviceCredential(
            hub_url=self.url,
            device_id=self.seed.device_id,
            patient_id=self.seed.patient_id,
            token=self.seed.device_token if token is None else token,
        )

    async def stop(self) -> None:
        await asyncio.to_thread(self.server.stop)

    async def start(self) -> None:
        self.server = HubServer(self.config, port=self.config.port)
        await asyncio.to_thread(self.server.start)


@contextlib.contextmanager
def seeded_hub(tmp_path: Path) -> Iterator[Hub]:
    """A real hub on a free 127.0.0.1 port with the demo accounts, stopped on the way out
    (whichever server the Hub holds then: tests may restart it)."""
    config = HubConfig(host="127.0.0.1", port=free_port(), data_dir=tmp_path / "hub")
    server = HubServer(config, port=config.port).start()
    assert server.store is not None
    h = Hub(config, server, seed_demo(server.store))
    try:
        yield h
    finally:
        h.server.stop()


@pytest.fixture
def hub(tmp_path: Path) -> Iterator[Hub]:
    with seeded_hub(tmp_path) as h:
        yield h


@pytest.fixture
def kiosk_config(tmp_path: Path) -> KioskConfig:
    return KioskConfig(
        data_dir=tmp_path / "k",
        ice_host_addresses=["127.0.0.1"],
        device=DeviceConfig(simulate=True, speaker="sim", **SMALL_CAMERA),
    )


@pytest.fixture
async def clinician(hub: Hub) -> AsyncIterator[ClinicianPeer]:
    """The clinician's twin (porchlight.clinician_peer), logged in and watching the room."""
    async with clinician_for(hub) as peer:
        yield peer


def clinician_for(hub: Hub) -> ClinicianPeer:
    return ClinicianPeer(
        hub.url,
        hub.seed.username,
        hub.seed.password,
        camera=DeviceConfig(simulate=True, **SMALL_CAMERA),
    )


async def listed(
    clinician: ClinicianPeer,
    patient_id: str,
    state: str = "waiting",
    online: bool | None = None,
    timeout: float = 10,
) -> dict[str, Any]:
    """Wait until the clinician's waiting room shows the patient like this; return the row."""

    def row() -> dict[str, Any] | None:
        found = clinician.waiting.get(patient_id)
        if found and found["state"] == state and online in (None, found["device_online"]):
            return found
        return None

    return await clinician.wait_for(row, timeout)

"""Kiosk test fixtures: the real hub on 127.0.0.1, a seeded device, a kiosk config, and an
aiortc peer that acts as the clinician through the hub's clinic WebSocket."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiortc.mediastreams import MediaStreamError
from websockets.asyncio.client import ClientConnection, connect

from porchlight.device.audio import open_microphone
from porchlight.device.camera import open_camera
from porchlight.device.config import DeviceConfig
from porchlight.hub.config import HubConfig
from porchlight.hub.seed import DemoSeed, seed_demo
from porchlight.hub.server import HubServer
from porchlight.kiosk import rtc
from porchlight.kiosk.config import KioskConfig
from porchlight.kiosk.credential import DeviceCredential
from porchlight.protocol import CLINIC_WS_PATH, SESSION_COOKIE

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


@pytest.fixture
def hub(tmp_path: Path) -> Iterator[Hub]:
    config = HubConfig(host="127.0.0.1", port=free_port(), data_dir=tmp_path / "hub")
    server = HubServer(config, port=config.port).start()
    assert server.store is not None
    seed = seed_demo(server.store)
    h = Hub(config, server, seed)
    try:
        yield h
    finally:
        h.server.stop()


@pytest.fixture
def kiosk_config(tmp_path: Path) -> KioskConfig:
    return KioskConfig(
        data_dir=tmp_path / "k",
        ice_host_addresses=["127.0.0.1"],
        device=DeviceConfig(simulate=True, speaker="sim", **SMALL_CAMERA),
    )


@dataclass
class Clinician:
    """A clinician's page, minus the page: the clinic WebSocket plus an aiortc peer."""

    hub: Hub
    ws: ClientConnection | None = None
    messages: list[dict[str, Any]] = field(default_factory=list)
    frames_received: int = 0
    audio_frames_received: int = 0
    call_id: str | None = None
    pc: Any = None
    _reader: asyncio.Task[None] | None = None
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)
    _tracks: list[Any] = field(default_factory=list)
    _changed: asyncio.Event = field(default_factory=asyncio.Event)

    async def open(self) -> None:
        async with httpx.AsyncClient(base_url=self.hub.url) as client:
            reply = await client.post(
                "/api/login",
                json={"username": self.hub.seed.username, "password": self.hub.seed.password},
            )
            reply.raise_for_status()
            cookie = reply.cookies[SESSION_COOKIE]
        self.ws = await connect(
            f"ws://127.0.0.1:{self.hub.config.port}{CLINIC_WS_PATH}",
            additional_headers={"Cookie": f"{SESSION_COOKIE}={cookie}"},
        )
        await self.send({"type": "hello"})
        self._reader = asyncio.create_task(self._read())

    async def send(self, message: dict[str, Any]) -> None:
        assert self.ws is not None
        await self.ws.send(json.dumps(message))

    async def _read(self) -> None:
        assert self.ws is not None
        with contextlib.suppress(Exception):
            async for raw in self.ws:
                message = json.loads(raw)
                self.messages.append(message)
                if message["type"] == "offer":
                    await self._answer(message)
                self._changed.set()

    async def wait_for(self, predicate: Callable[[dict[str, Any]], bool], timeout: float = 10):
        """The first message (seen so far or arriving) that matches."""

        def found() -> dict[str, Any] | None:
            return next((m for m in self.messages if predicate(m)), None)

        return await wait_on(self._changed, found, timeout, "a clinician message")

    def room(self) -> list[dict[str, Any]]:
        """The waiting room as the hub last pushed it."""
        rooms = [m for m in self.messages if m["type"] == "waiting_room"]
        return rooms[-1]["patients"] if rooms else []

    async def patient_listed(
        self, state: str = "waiting", online: bool | None = None, timeout: float = 10
    ) -> dict[str, Any]:
        """Wait until the latest waiting room shows the patient like this; return their row."""

        def row() -> dict[str, Any] | None:
            return next(
                (
                    r
                    for r in self.room()
                    if r["patient_id"] == self.hub.seed.patient_id
                    and r["state"] == state
                    and (online is None or r["device_online"] == online)
                ),
                None,
            )

        return await wait_on(self._changed, row, timeout, f"the patient listed as {state}")

    async def admit(self) -> str:
        await self.send({"type": "admit", "patient_id": self.hub.seed.patient_id})
        started = await self.wait_for(lambda m: m["type"] == "call_started")
        self.call_id = started["call_id"]
        return started["call_id"]

    async def _answer(self, offer: dict[str, Any]) -> None:
        await self._close_media()
        self.frames_received = self.audio_frames_received = 0
        self.pc = pc = rtc.new_peer_connection([])
        hardware = DeviceConfig(simulate=True, **SMALL_CAMERA)
        self._tracks = [open_camera(hardware), open_microphone(hardware)]
        for track in self._tracks:
            pc.addTrack(track)

        @pc.on("track")
        def on_track(track: Any) -> None:
            task = asyncio.create_task(self._pull(track))
            self._tasks.add(task)

        sdp = await rtc.complete_answer(pc, offer["sdp"], ["127.0.0.1"])
        await self.send({"type": "answer", "call_id": offer["call_id"], "sdp": sdp})

    async def _pull(self, track: Any) -> None:
        with contextlib.suppress(MediaStreamError):
            while True:
                await track.recv()
                if track.kind == "video":
                    self.frames_received += 1
                else:
                    self.audio_frames_received += 1

    async def hang_up(self) -> None:
        await self.send({"type": "hangup", "call_id": self.call_id})

    async def _close_media(self) -> None:
        for task in self._tasks:
            task.cancel()
        self._tasks.clear()
        if self.pc is not None:
            await self.pc.close()
        for track in self._tracks:
            track.stop()
        self._tracks = []

    async def close(self) -> None:
        await self._close_media()
        if self.ws is not None:
            await self.ws.close()
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader


@pytest.fixture
async def clinician(hub: Hub) -> AsyncIterator[Clinician]:
    c = Clinician(hub)
    await c.open()
    try:
        yield c
    finally:
        await c.close()

"""Video test fixtures: the real hub on 127.0.0.1 with the demo seed, and raw protocol sockets."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import websockets

from porchlight.hub.config import HubConfig
from porchlight.hub.seed import DemoSeed, seed_demo
from porchlight.hub.server import HubServer
from porchlight.protocol import CLINIC_WS_PATH, DEVICE_WS_PATH, SESSION_COOKIE


@pytest.fixture
def hub(tmp_path: Path) -> Iterator[tuple[HubServer, DemoSeed]]:
    server = HubServer(HubConfig(host="127.0.0.1", data_dir=tmp_path / "hub"), port=0).start()
    try:
        assert server.store is not None
        yield server, seed_demo(server.store)
    finally:
        server.stop()


class Socket:
    """A protocol socket with typed waits (messages of other types are kept, not lost)."""

    def __init__(self, ws: Any) -> None:
        self.ws = ws
        self.seen: list[dict[str, Any]] = []

    async def send(self, message: dict[str, Any]) -> None:
        await self.ws.send(json.dumps(message))

    async def expect(self, kind: str, timeout: float = 5.0) -> dict[str, Any]:
        for i, message in enumerate(self.seen):
            if message["type"] == kind:
                return self.seen.pop(i)

        async def read() -> dict[str, Any]:
            while True:
                message = json.loads(await self.ws.recv())
                if message["type"] == kind:
                    return message
                self.seen.append(message)

        return await asyncio.wait_for(read(), timeout)


async def device_socket(server: HubServer, seed: DemoSeed) -> Socket:
    ws = await websockets.connect(
        server.ws_url + DEVICE_WS_PATH,
        additional_headers={"Authorization": f"Bearer {seed.device_token}"},
    )
    sock = Socket(ws)
    await sock.send({"type": "hello", "state": "idle"})
    await sock.expect("welcome")
    return sock


async def clinic_socket(server: HubServer, seed: DemoSeed) -> Socket:
    def login() -> str:
        reply = requests.post(
            server.url + "/api/login",
            json={"username": seed.username, "password": seed.password},
            timeout=10,
        )
        reply.raise_for_status()
        return reply.cookies[SESSION_COOKIE]

    cookie = await asyncio.to_thread(login)
    ws = await websockets.connect(
        server.ws_url + CLINIC_WS_PATH,
        additional_headers={"Cookie": f"{SESSION_COOKIE}={cookie}", "Origin": server.url},
    )
    sock = Socket(ws)
    await sock.send({"type": "hello"})
    await sock.expect("waiting_room")
    return sock

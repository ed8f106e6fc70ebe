"""Small helpers for driving the hub's sockets and API as a kiosk and as clinic pages."""

from __future__ import annotations

import time
import uuid
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from security.world import World

from porchlight.protocol import CLINIC_WS_PATH, DEVICE_WS_PATH


def expect(ws, type_: str, **fields: Any) -> dict:
    message = ws.receive_json()
    assert message["type"] == type_, message
    for key, value in fields.items():
        assert message[key] == value, (key, message)
    return message


def expect_skipping(
    ws, type_: str, skip: tuple[str, ...] = ("waiting_room",), **fields: Any
) -> dict:
    """The next message of `type_`, passing over room updates pushed meanwhile."""
    for _ in range(10):
        message = ws.receive_json()
        if message["type"] in skip and message["type"] != type_:
            continue
        assert message["type"] == type_, message
        for key, value in fields.items():
            assert message[key] == value, (key, message)
        return message
    raise AssertionError(f"no {type_} message")


def as_person(client, world: World, actor: str) -> None:
    world.auth(client, actor)


@contextmanager
def kiosk(client, world: World, actor: str = "device_a", state: str = "idle"):
    headers = {"Authorization": f"Bearer {world.tokens[actor]}"}
    with client.websocket_connect(DEVICE_WS_PATH, headers=headers) as ws:
        ws.send_json({"type": "hello", "state": state})
        expect(ws, "welcome")
        yield ws


@contextmanager
def clinic(client, world: World, actor: str = "clin_x"):
    world.auth(client, actor)
    with client.websocket_connect(CLINIC_WS_PATH) as ws:
        ws.send_json({"type": "hello"})
        expect(ws, "waiting_room")
        yield ws


def device_headers(world: World, actor: str = "device_a") -> dict[str, str]:
    return {"Authorization": f"Bearer {world.tokens[actor]}"}


def post_records(client, world: World, records: list, actor: str = "device_a") -> list[dict]:
    client.cookies.clear()
    response = client.post(
        "/api/records",
        json={"records": [r.to_wire() for r in records]},
        headers=device_headers(world, actor),
    )
    assert response.status_code == 200, response.text
    return response.json()["results"]


def book(client, world: World, patient_id: str, starts: datetime, actor: str = "nurse_x"):
    world.auth(client, actor)
    return client.post(
        "/api/appointments", json={"patient_id": patient_id, "starts_at": starts.isoformat()}
    )


def new_id() -> str:
    return str(uuid.uuid4())


def until(read, timeout: float = 5.0):
    """`read()` once it is truthy: for what the hub writes on a worker thread after it has
    answered (the appointment book's notes). Fails after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not (value := read()):
        assert time.monotonic() < deadline, "the hub did not write it in time"
        time.sleep(0.01)
    return value

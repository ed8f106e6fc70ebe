"""The real hub under uvicorn (HubServer), with real WebSocket clients as kiosks and pages."""

from __future__ import annotations

import asyncio
import json
import logging
import socket
from collections.abc import Iterator

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from porchlight.errors import TransportFailed
from porchlight.hub.config import HubConfig
from porchlight.hub.seed import DEMO_PASSWORD
from porchlight.hub.server import HubServer
from porchlight.hub.store import Store
from porchlight.protocol import (
    CLINIC_WS_PATH,
    CLOSE_NOT_AUTHORISED,
    DEVICE_WS_PATH,
    SESSION_COOKIE,
)

RECEIVE_TIMEOUT_S = 5


@pytest.fixture
def hub(config: HubConfig, store: Store) -> Iterator[HubServer]:
    # `store` has put the seeded database in config.data_dir; the server opens its own.
    with HubServer(config, port=0) as server:
        yield server


def session_cookie(hub: HubServer, username: str = "clinician") -> str:
    response = httpx.post(
        hub.url + "/api/login", json={"username": username, "password": DEMO_PASSWORD}
    )
    response.raise_for_status()
    return response.cookies[SESSION_COOKIE]


async def _recv(ws: ClientConnection) -> str:
    return await asyncio.wait_for(ws.recv(), RECEIVE_TIMEOUT_S)


async def receive(ws: ClientConnection, type_: str) -> dict:
    """The next message of `type_`, passing over waiting-room pushes (the hub sends one on
    every change, and how many a step causes depends on who connected first)."""
    while True:
        message = json.loads(await _recv(ws))
        if message["type"] == type_ or message["type"] != "waiting_room":
            break
    assert message["type"] == type_, message
    return message


def clinic_headers(cookie: str) -> dict[str, str]:
    return {"Cookie": f"{SESSION_COOKIE}={cookie}"}


async def waiting_room_until(ws: ClientConnection, predicate) -> list[dict]:
    for _ in range(10):
        patients = (await receive(ws, "waiting_room"))["patients"]
        if predicate(patients):
            return patients
    raise AssertionError("the waiting room never reached the expected state")


def test_hub_server_starts_on_a_free_port_and_stops_cleanly(config, store):
    server = HubServer(config, port=0).start()
    port = server.port
    try:
        assert httpx.get(server.url + "/healthz").json()["ok"] is True
        assert server.url == f"http://127.0.0.1:{port}"
        with pytest.raises(TransportFailed):
            HubServer(config, port=port).start()  # the port is taken
    finally:
        server.stop()
    with pytest.raises(httpx.TransportError):
        httpx.get(f"http://127.0.0.1:{port}/healthz")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))  # released


async def test_call_over_real_sockets(hub, demo):
    cookie = session_cookie(hub)
    kiosk_headers = {"Authorization": f"Bearer {demo.device_token}"}
    async with (
        connect(hub.ws_url + CLINIC_WS_PATH, additional_headers=clinic_headers(cookie)) as clinic,
        connect(hub.ws_url + DEVICE_WS_PATH, additional_headers=kiosk_headers) as kiosk,
    ):
        await clinic.send(json.dumps({"type": "hello"}))
        await kiosk.send(json.dumps({"type": "hello", "state": "idle"}))
        assert (await receive(kiosk, "welcome"))["patient_id"] == demo.patient_id
        await kiosk.send(json.dumps({"type": "join"}))
        await receive(kiosk, "waiting")
        await waiting_room_until(
            clinic, lambda p: [r["patient_id"] for r in p] == [demo.patient_id]
        )

        await clinic.send(json.dumps({"type": "admit", "patient_id": demo.patient_id}))
        call_id = (await receive(clinic, "call_started"))["call_id"]
        assert (await receive(kiosk, "admitted"))["call_id"] == call_id
        await kiosk.send(json.dumps({"type": "offer", "call_id": call_id, "sdp": "v=0 o"}))
        await waiting_room_until(clinic, lambda p: p[0]["state"] == "in_call")
        assert (await receive(clinic, "offer"))["sdp"] == "v=0 o"
        await clinic.send(json.dumps({"type": "answer", "call_id": call_id, "sdp": "v=0 a"}))
        assert (await receive(kiosk, "answer"))["sdp"] == "v=0 a"
        await clinic.send(json.dumps({"type": "hangup", "call_id": call_id}))
        assert (await receive(kiosk, "ended"))["reason"] == "clinician_ended"


async def test_refused_kiosk_sees_close_code_4401(hub):
    async with connect(
        hub.ws_url + DEVICE_WS_PATH, additional_headers={"Authorization": "Bearer nope"}
    ) as kiosk:
        with pytest.raises(ConnectionClosed) as closed:
            await _recv(kiosk)
    assert closed.value.rcvd.code == CLOSE_NOT_AUTHORISED
    assert "not known" in closed.value.rcvd.reason


async def test_waiting_patient_survives_a_real_hub_restart(config, store, demo):
    kiosk_headers = {"Authorization": f"Bearer {demo.device_token}"}
    with HubServer(config, port=0) as first:
        async with connect(first.ws_url + DEVICE_WS_PATH, additional_headers=kiosk_headers) as k:
            await k.send(json.dumps({"type": "join"}))
            since = (await receive(k, "waiting"))["since"]
    with HubServer(config, port=0) as second:
        cookie = session_cookie(second)
        async with (
            connect(second.ws_url + DEVICE_WS_PATH, additional_headers=kiosk_headers) as k,
            connect(
                second.ws_url + CLINIC_WS_PATH, additional_headers=clinic_headers(cookie)
            ) as clinic,
        ):
            await clinic.send(json.dumps({"type": "hello"}))
            await receive(clinic, "waiting_room")
            await k.send(json.dumps({"type": "hello", "state": "waiting", "since": since}))
            await receive(k, "welcome")
            assert (await receive(k, "waiting"))["since"] == since
            patients = await waiting_room_until(clinic, lambda p: len(p) == 1)
            assert patients[0]["since"] == since and patients[0]["device_online"]


async def test_logs_carry_no_tokens_passwords_or_patient_data(config, store, demo, caplog):
    caplog.set_level(logging.DEBUG)
    kiosk_headers = {"Authorization": f"Bearer {demo.device_token}"}
    with HubServer(config, port=0, log_level="debug") as hub:
        cookie = session_cookie(hub)
        httpx.post(hub.url + "/api/login", json={"username": "clinician", "password": "wrong one"})
        httpx.get(hub.url + "/api/device/me", headers=kiosk_headers).raise_for_status()
        async with (
            connect(hub.ws_url + DEVICE_WS_PATH, additional_headers=kiosk_headers) as kiosk,
            connect(
                hub.ws_url + CLINIC_WS_PATH, additional_headers=clinic_headers(cookie)
            ) as clinic,
        ):
            await clinic.send(json.dumps({"type": "hello"}))
            await kiosk.send(json.dumps({"type": "join"}))
            await receive(kiosk, "waiting")
            await clinic.send(json.dumps({"type": "admit", "patient_id": demo.patient_id}))
            call_id = (await receive(kiosk, "admitted"))["call_id"]
    # What the hub logged (the test's own clients log their requests; they are not the hub).
    logged = "\n".join(
        record.getMessage()
        for record in caplog.records
        if record.name.startswith(("uvicorn", "porchlight"))
    )
    assert "GET /api/device/me" in logged  # the access log was on
    for secret in (
        demo.device_token,
        DEMO_PASSWORD,
        "wrong one",
        cookie,
        demo.patient_id,
        demo.patient_name,
        "Margaret",
        call_id,
    ):
        assert secret not in logged

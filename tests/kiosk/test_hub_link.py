"""kiosk/hub_link.py against the real hub on 127.0.0.1."""

from __future__ import annotations

import asyncio
import logging
import random
import time
from http import HTTPStatus
from typing import Any

import pytest
from websockets.asyncio.server import serve

from porchlight.errors import BadInput
from porchlight.kiosk.hub_link import (
    HubLink,
    LinkDown,
    LinkEvent,
    LinkMessage,
    LinkRefused,
    LinkTimings,
    LinkUp,
    backoff_delay,
    device_ws_url,
)
from porchlight.protocol import CLOSE_NOT_AUTHORISED

from .conftest import Hub, wait_on, wait_until


class Recorder:
    """Collects link events and lets a test wait for one."""

    def __init__(self) -> None:
        self.events: list[LinkEvent] = []
        self._changed = asyncio.Event()
        self.hello: dict[str, Any] = {"type": "hello", "state": "idle"}

    def __call__(self, event: LinkEvent) -> None:
        self.events.append(event)
        self._changed.set()

    def messages(self, kind: str) -> list[dict[str, Any]]:
        found = [e.message for e in self.events if isinstance(e, LinkMessage)]
        return [m for m in found if m["type"] == kind]

    async def wait(self, predicate, timeout: float = 10.0) -> None:
        await wait_on(self._changed, lambda: predicate(self), timeout, f"link events {self.events}")

    def count(self, kind: type) -> int:
        return sum(isinstance(e, kind) for e in self.events)


def make_link(hub: Hub, rec: Recorder, token: str | None = None, **timings: float) -> HubLink:
    cred = hub.credential(token)
    return HubLink(
        cred.hub_url,
        cred.token,
        hello=lambda: rec.hello,
        on_event=rec,
        timings=LinkTimings(**timings),
        rng=random.Random(1),
    )


def test_backoff_grows_jitters_and_is_capped() -> None:
    rng = random.Random(7)
    delays = [backoff_delay(n, rng, 0.25, 5.0) for n in range(12)]
    assert 0.125 <= delays[0] <= 0.25
    assert all(d <= 5.0 for d in delays)
    assert delays[-1] >= 2.5  # still near the cap, not back at the start
    assert len(set(delays)) == len(delays)  # jittered


def test_device_url() -> None:
    assert device_ws_url("http://127.0.0.1:8740") == "ws://127.0.0.1:8740/ws/device"
    assert device_ws_url("https://hub.example/clinic-a/") == "wss://hub.example/clinic-a/ws/device"
    with pytest.raises(BadInput):
        device_ws_url("127.0.0.1:8740")


async def test_hello_first_then_join_is_confirmed(hub: Hub, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    rec = Recorder()
    link = make_link(hub, rec)
    assert link.send({"type": "join"}) is False  # not connected yet: dropped, not queued
    await link.start()
    try:
        await rec.wait(lambda r: r.count(LinkUp) == 1)
        welcome = next(e for e in rec.events if isinstance(e, LinkUp)).welcome
        assert welcome["patient_id"] == hub.seed.patient_id
        assert welcome["ice_servers"] == []
        assert link.connected
        assert link.send({"type": "join"}) is True
        await rec.wait(lambda r: r.messages("waiting"))
        assert rec.messages("waiting")[0]["since"].endswith("Z")
        link.send({"type": "leave"})
        await rec.wait(lambda r: r.messages("left"))
    finally:
        await link.stop()
    # Neither the token nor the Authorization header reaches any log, even at DEBUG.
    assert hub.seed.device_token not in caplog.text
    assert "Bearer" not in caplog.text


async def test_refused_credential_is_reported_once_without_a_retry_storm(hub: Hub) -> None:
    rec = Recorder()
    link = make_link(hub, rec, token="not-a-real-token", backoff_first_s=0.01)
    await link.start()
    try:
        await rec.wait(lambda r: r.count(LinkRefused) == 1)
        refused = next(e for e in rec.events if isinstance(e, LinkRefused))
        assert refused.status == CLOSE_NOT_AUTHORISED
        assert "not-a-real-token" not in refused.message
        # Let well over a hot-retry back-off (0.01 s) pass: there must be no second attempt.
        await asyncio.sleep(0.6)
        assert link.stats.attempts == 1
        assert rec.count(LinkUp) == 0 and not link.connected
    finally:
        await link.stop()


async def test_reconnects_after_hub_restart_and_waiting_place_is_restored(hub: Hub) -> None:
    rec = Recorder()
    link = make_link(hub, rec)
    await link.start()
    try:
        await rec.wait(lambda r: r.count(LinkUp) == 1)
        link.send({"type": "join"})
        await rec.wait(lambda r: r.messages("waiting"))
        since = rec.messages("waiting")[0]["since"]
        rec.hello = {"type": "hello", "state": "waiting", "since": since}

        await hub.stop()
        await rec.wait(lambda r: r.count(LinkDown) == 1, timeout=5)
        assert not link.connected
        assert link.send({"type": "join"}) is False
        down_at = time.monotonic()
        await hub.start()
        await rec.wait(lambda r: r.count(LinkUp) == 2, timeout=10)
        # Back within the back-off cap (5 s) of the hub being reachable again.
        assert time.monotonic() - down_at < 8
        await rec.wait(lambda r: len(r.messages("waiting")) == 2)
        assert rec.messages("waiting")[1]["since"] == since
    finally:
        await link.stop()


async def test_stop_is_prompt_while_waiting_to_retry(hub: Hub) -> None:
    await hub.stop()
    rec = Recorder()
    link = make_link(hub, rec, backoff_first_s=5.0)
    await link.start()
    await wait_until(lambda: link.stats.attempts >= 1 and link.stats.last_error, 5, "a failure")
    started = time.monotonic()
    await link.stop()
    assert time.monotonic() - started < 1.0
    assert rec.count(LinkUp) == 0


class SilentLink:
    """A TCP relay to the hub that can go quiet without closing anything, like Wi-Fi that
    drops out: bytes stop flowing both ways but no FIN or RST ever arrives."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.silent = False
        self.port = 0
        self._server: asyncio.Server | None = None
        self._writers: list[asyncio.StreamWriter] = []

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._relay, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        self._writers += [writer, up_writer]

        async def pump(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            while data := await src.read(65536):
                if not self.silent:
                    dst.write(data)

        await asyncio.gather(
            pump(reader, up_writer), pump(up_reader, writer), return_exceptions=True
        )

    async def stop(self) -> None:
        for w in self._writers:
            w.close()
        if self._server is not None:
            self._server.close()


async def test_a_silent_link_is_noticed_by_keepalive_and_healed(hub: Hub) -> None:
    relay = SilentLink(hub.config.port)
    await relay.start()
    rec = Recorder()
    cred = hub.credential()
    link = HubLink(
        f"http://127.0.0.1:{relay.port}",
        cred.token,
        hello=lambda: rec.hello,
        on_event=rec,
        timings=LinkTimings(ping_interval_s=0.3, ping_timeout_s=0.3, open_timeout_s=1.0),
    )
    await link.start()
    try:
        await rec.wait(lambda r: r.count(LinkUp) == 1)
        relay.silent = True
        silent_at = time.monotonic()
        await rec.wait(lambda r: r.count(LinkDown) == 1, timeout=6)
        # interval + timeout + the close handshake's own timeout, with slack for CI.
        assert time.monotonic() - silent_at < 3.5
        relay.silent = False
        await rec.wait(lambda r: r.count(LinkUp) == 2, timeout=10)
    finally:
        await link.stop()
        await relay.stop()


async def test_http_401_at_the_upgrade_is_a_refusal_too() -> None:
    """A proxy or an older hub may refuse before the WebSocket opens (HTTP 401)."""

    def refuse(connection, request):
        return connection.respond(HTTPStatus.UNAUTHORIZED, '{"error": "not_authorised"}\n')

    async with serve(lambda ws: ws.wait_closed(), "127.0.0.1", 0, process_request=refuse) as srv:
        port = srv.sockets[0].getsockname()[1]
        rec = Recorder()
        link = HubLink(
            f"http://127.0.0.1:{port}",
            "some-token",
            hello=lambda: rec.hello,
            on_event=rec,
            timings=LinkTimings(backoff_first_s=0.01),
        )
        await link.start()
        try:
            await rec.wait(lambda r: r.count(LinkRefused) == 1)
            assert next(e for e in rec.events if isinstance(e, LinkRefused)).status == 401
            assert link.stats.attempts == 1
        finally:
            await link.stop()

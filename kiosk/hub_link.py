"""The kiosk's WebSocket to the hub (`/ws/device`): connect, hello, deliver, reconnect forever.

The link owns its lifecycle: `start()` launches one task that keeps a connection up, sending
`hello` (built by the caller from what the kiosk believes now) first on every connect, and
reporting what happens as `LinkEvent`s. Back-off is exponential with jitter and capped at a
few seconds, so the kiosk is ready soon after the hub returns. A refused credential is not
retried hot: it is reported once as `LinkRefused` and retried only slowly.

The bearer token goes only into the upgrade request header; the websockets library's debug
log (which would print headers and frames) is switched off for this connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus, InvalidURI

from porchlight.errors import BadInput
from porchlight.protocol import (
    CLOSE_FORBIDDEN,
    CLOSE_NOT_AUTHORISED,
    CLOSE_REPLACED,
    DEVICE_WS_PATH,
    HubToDevice,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LinkTimings:
    ping_interval_s: float = 10.0  # protocol: pings every 10 s
    ping_timeout_s: float = 10.0  # a dead link is noticed within interval + timeout ≈ 20 s
    open_timeout_s: float = 5.0
    welcome_timeout_s: float = 5.0
    backoff_first_s: float = 0.25
    backoff_cap_s: float = 5.0
    refused_retry_s: float = 60.0  # credential refused / replaced: try again, but slowly


def backoff_delay(attempt: int, rng: random.Random, first: float, cap: float) -> float:
    """Delay before reconnect `attempt` (0-based): exponential, capped, with jitter.

    The jitter (50-100 % of the step) spreads a fleet of kiosks out when a hub comes back.
    """
    step = min(cap, first * (2 ** min(attempt, 30)))
    return step * rng.uniform(0.5, 1.0)


# ---------------------------------------------------------------- what the link reports


@dataclass(frozen=True)
class LinkUp:
    welcome: dict[str, Any]


@dataclass(frozen=True)
class LinkDown:
    reason: str


@dataclass(frozen=True)
class LinkMessage:
    message: dict[str, Any]


@dataclass(frozen=True)
class LinkRefused:
    """The hub refused this kiosk's credential (HTTP 401/403, close 4401/4403) or replaced it."""

    status: int
    message: str


LinkEvent = LinkUp | LinkDown | LinkMessage | LinkRefused


def device_ws_url(hub_url: str) -> str:
    """`http://host:port[/prefix]` → `ws://host:port[/prefix]/ws/device` (https → wss)."""
    parts = urlsplit(hub_url)
    scheme = {"http": "ws", "https": "wss", "ws": "ws", "wss": "wss"}.get(parts.scheme)
    if scheme is None or not parts.netloc:
        raise BadInput("the hub address must look like http://host:port or https://host")
    path = parts.path.rstrip("/") + DEVICE_WS_PATH
    return urlunsplit((scheme, parts.netloc, path, "", ""))


class _NoDebug(logging.LoggerAdapter):
    """websockets logs request headers (the bearer token) and frames at DEBUG: never let it."""

    def isEnabledFor(self, level: int) -> bool:
        return level > logging.DEBUG and self.logger.isEnabledFor(level)


class _Refused(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class LinkStats:
    connects: int = 0  # welcomed connections
    attempts: int = 0
    refusals: int = 0
    last_error: str = ""  # a short, safe description (an exception class or close code)


class HubLink:
    """A self-healing WebSocket to the hub. Events go to `on_event` on the loop thread."""

    def __init__(
        self,
        hub_url: str,
        token: str,
        *,
        hello: Callable[[], dict[str, Any]],
        on_event: Callable[[LinkEvent], None],
        timings: LinkTimings | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self._url = device_ws_url(hub_url)
        self._token = token
        self._hello = hello
        self._on_event = on_event
        self._timings = timings or LinkTimings()
        self._rng = rng or random.Random()
        self._ws: ClientConnection | None = None
        self._outbox: asyncio.Queue[str] = asyncio.Queue()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self.stats = LinkStats()

    @property
    def connected(self) -> bool:
        """True once the hub has welcomed us on the current connection."""
        return self._ws is not None

    # ------------------------------------------------------------ public

    async def start(self) -> None:
        if self._task is None:
            self._stopping = False
            self._task = asyncio.create_task(self._run(), name="hub-link")

    async def stop(self, flush_s: float = 1.0) -> None:
        """Stop for good; first give messages already queued (a hangup) `flush_s` to go out."""
        self._stopping = True
        self._wake.set()
        ws = self._ws
        if ws is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._outbox.join(), flush_s)
            with contextlib.suppress(Exception):
                await asyncio.wait_for(ws.close(), flush_s)
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def send(self, message: dict[str, Any]) -> bool:
        """Queue a message for the hub; False (and dropped) when not connected."""
        if self._ws is None:
            return False
        self._outbox.put_nowait(json.dumps(message))
        return True

    def reconnect_now(self) -> None:
        """Skip the current back-off wait (someone pressed the button while offline)."""
        self._wake.set()

    # ------------------------------------------------------------ the loop

    async def _run(self) -> None:
        attempt = 0
        t = self._timings
        while not self._stopping:
            self.stats.attempts += 1
            delay: float
            try:
                welcomed = await self._session()
                # The hub closed normally (e.g. restarting): reconnect soon, unless it keeps
                # closing before it even welcomes us.
                attempt = 0 if welcomed else attempt + 1
                delay = backoff_delay(attempt, self._rng, t.backoff_first_s, t.backoff_cap_s)
            except _Refused as exc:
                self.stats.refusals += 1
                self.stats.last_error = f"refused ({exc.status})"
                log.warning("hub refused this kiosk (%s): %s", exc.status, exc)
                self._on_event(LinkRefused(exc.status, str(exc)))
                delay = t.refused_retry_s
            except asyncio.CancelledError:
                raise
            except (OSError, TimeoutError, InvalidHandshake, InvalidURI, ConnectionClosed) as exc:
                self.stats.last_error = type(exc).__name__
                log.info("hub link failed (%s); retrying", type(exc).__name__)
                delay = backoff_delay(attempt, self._rng, t.backoff_first_s, t.backoff_cap_s)
                attempt += 1
            except Exception as exc:  # a bug or a hub bug: keep the kiosk alive
                self.stats.last_error = type(exc).__name__
                log.exception("hub link error; retrying")
                delay = backoff_delay(attempt, self._rng, t.backoff_first_s, t.backoff_cap_s)
                attempt += 1
            if self._stopping:
                break
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), delay)
            if self._wake.is_set():
                attempt = 0

    async def _session(self) -> bool:
        """One connection, start to end; True if the hub welcomed us."""
        t = self._timings
        welcomed = False
        try:
            ws_cm = connect(
                self._url,
                additional_headers={"Authorization": f"Bearer {self._token}"},
                open_timeout=t.open_timeout_s,
                ping_interval=t.ping_interval_s,
                ping_timeout=t.ping_timeout_s,
                close_timeout=1,  # a dead link must not hold up noticing it
                logger=_NoDebug(logging.getLogger("websockets.client"), {}),
            )
            async with ws_cm as ws:
                welcomed = await self._serve(ws)
                code = ws.close_code
        except InvalidStatus as exc:
            status = exc.response.status_code
            if status in (401, 403):
                raise _Refused(status, _refusal_text(exc.response.body)) from None
            raise
        except ConnectionClosed as exc:
            code = exc.rcvd.code if exc.rcvd is not None else None
            _raise_if_refused(code, exc.rcvd.reason if exc.rcvd else "")
            raise
        _raise_if_refused(code, "")
        return welcomed

    async def _serve(self, ws: ClientConnection) -> bool:
        await ws.send(json.dumps(self._hello()))
        early: list[dict[str, Any]] = []
        async with asyncio.timeout(self._timings.welcome_timeout_s):
            while True:
                message = _decode(await ws.recv())
                if message is None:
                    continue
                if message["type"] == HubToDevice.WELCOME:
                    welcome = message
                    break
                early.append(message)
        # Fresh connection: nothing queued for an older one may go out on it.
        self._outbox = asyncio.Queue()
        self._ws = ws
        self.stats.connects += 1
        self.stats.last_error = ""
        log.info("connected to the hub")
        writer = asyncio.create_task(self._write(ws, self._outbox), name="hub-link-writer")
        try:
            self._on_event(LinkUp(welcome))
            for message in early:
                self._on_event(LinkMessage(message))
            async for raw in ws:
                message = _decode(raw)
                if message is not None:
                    self._on_event(LinkMessage(message))
        finally:
            self._ws = None
            writer.cancel()
            with contextlib.suppress(asyncio.CancelledError, ConnectionClosed):
                await writer
            if not self._stopping:
                self._on_event(LinkDown("closed"))
        return True

    @staticmethod
    async def _write(ws: ClientConnection, outbox: asyncio.Queue[str]) -> None:
        while True:
            data = await outbox.get()
            try:
                await ws.send(data)
            finally:
                outbox.task_done()


def _raise_if_refused(code: int | None, reason: str) -> None:
    if code in (CLOSE_NOT_AUTHORISED, CLOSE_FORBIDDEN):
        raise _Refused(code, reason or "the hub refused this kiosk's credential")
    if code == CLOSE_REPLACED:
        # Another kiosk is using this credential; hot retries would make them fight.
        raise _Refused(code, reason or "another device connected with this kiosk's credential")


def _refusal_text(body: bytes | None) -> str:
    try:
        data = json.loads(body or b"{}")
        return str(data.get("message") or "the hub refused this kiosk's credential")
    except (ValueError, AttributeError):
        return "the hub refused this kiosk's credential"


def _decode(raw: str | bytes) -> dict[str, Any] | None:
    try:
        message = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        log.warning("ignoring a message from the hub that is not JSON")
        return None
    if not isinstance(message, dict) or not isinstance(message.get("type"), str):
        log.warning("ignoring a message from the hub without a type")
        return None
    return message

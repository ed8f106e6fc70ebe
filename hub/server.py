"""Running the hub: `HubServer` in a background thread (tests, demo), `serve` in the foreground."""

from __future__ import annotations

import logging
import socket
import threading
import time
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx
import uvicorn

from porchlight.errors import TransportFailed
from porchlight.hub import log_redaction
from porchlight.hub.app import create_app
from porchlight.hub.config import HubConfig
from porchlight.hub.logs import use_json_logs
from porchlight.hub.services import Clock, utc_now
from porchlight.hub.store import Store

log = logging.getLogger(__name__)

# docs/protocol.md: pings every 10 s, two missed pongs = link lost.
WS_PING_INTERVAL_S = 10.0
WS_PING_TIMEOUT_S = 20.0
# SDP offers are a few kB; nothing legitimate comes close to this.
WS_MAX_SIZE = 256 * 1024


class _NoWireDumps(logging.Filter):
    """Drop wire dumps: at DEBUG the websockets library (under uvicorn's error logger) logs
    handshake headers and frames, and uvicorn's TRACE level logs raw ASGI messages. They carry
    bearer tokens, session cookies, SDP and patient ids, none of which may reach a log."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.DEBUG:
            return False
        return not (record.levelno == logging.DEBUG and "websockets" in Path(record.pathname).parts)


def _quiet_wire_logging() -> None:
    log_redaction.install()  # ids in paths (patients, devices) stay out of the access log
    for name in ("uvicorn.error", "uvicorn.asgi"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, _NoWireDumps) for f in logger.filters):
            logger.addFilter(_NoWireDumps())


def _uvicorn_config(app: Any, config: HubConfig, *, log_level: str, **extra: Any) -> uvicorn.Config:
    _quiet_wire_logging()
    return uvicorn.Config(
        app,
        host=config.host,
        port=config.port,
        log_level=log_level,
        # Leave logging to the host program (the CLI's setup, pytest's caplog): uvicorn's
        # loggers propagate to the root logger instead of getting handlers of their own.
        log_config=None,
        ws_ping_interval=WS_PING_INTERVAL_S,
        ws_ping_timeout=WS_PING_TIMEOUT_S,
        ws_max_size=WS_MAX_SIZE,
        lifespan="on",
        timeout_graceful_shutdown=3,
        **extra,
    )


class HubServer:
    """The hub served by uvicorn on a background thread.

    `port=None` uses `config.port`; `port=0` picks a free port. `url` is known after start.

        with HubServer(config, port=0) as hub:
            seed_demo(hub.store)
            requests.get(hub.url + "/healthz")
    """

    def __init__(
        self,
        config: HubConfig,
        *,
        port: int | None = 0,
        clock: Clock = utc_now,
        log_level: str = "warning",
        start_timeout_s: float = 15.0,
    ) -> None:
        self.config = config
        self._port = config.port if port is None else port
        self._clock = clock
        self._log_level = log_level
        self._start_timeout_s = start_timeout_s
        self._thread: threading.Thread | None = None
        self._server: uvicorn.Server | None = None
        self._socket: socket.socket | None = None
        self.store: Store | None = None
        self.app: Any = None
        self.port: int | None = None

    @property
    def url(self) -> str:
        if self.port is None:
            raise RuntimeError("the hub is not running; call start() first")
        return f"http://{self.config.host}:{self.port}"

    @property
    def ws_url(self) -> str:
        return "ws" + self.url[len("http") :]

    def start(self) -> HubServer:
        if self._thread is not None:
            raise RuntimeError("this HubServer is already running")
        # Bind here, so the port is ours before uvicorn starts and free ports cannot race.
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((self.config.host, self._port))
        except OSError as exc:
            sock.close()
            raise TransportFailed(
                f"cannot listen on {self.config.host}:{self._port} ({exc.strerror}); "
                "choose another port"
            ) from None
        self._socket = sock
        self.port = sock.getsockname()[1]
        try:
            self.store = Store.open(self.config.resolved_database_url())
            self.app = create_app(self.config, store=self.store, clock=self._clock)
            self._server = uvicorn.Server(
                _uvicorn_config(self.app, self.config, log_level=self._log_level)
            )
            self._thread = threading.Thread(
                target=self._server.run,
                kwargs={"sockets": [sock]},
                name="porchlight-hub",
                daemon=True,
            )
            self._thread.start()
            self._wait_healthy()
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_healthy(self) -> None:
        deadline = time.monotonic() + self._start_timeout_s
        with httpx.Client(timeout=1.0) as client:
            while True:
                try:
                    if client.get(self.url + "/healthz").status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                if self._thread is None or not self._thread.is_alive():
                    raise TransportFailed("the hub stopped while starting; see its log")
                if time.monotonic() > deadline:
                    raise TransportFailed(
                        f"the hub did not answer /healthz within {self._start_timeout_s:.0f} s"
                    )
                # Poll interval, not synchronisation: the deadline above bounds the wait.
                time.sleep(0.02)

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
            if self._thread.is_alive():
                log.warning("the hub thread did not stop within 10 s")
        if self._socket is not None:
            self._socket.close()
        if self.store is not None:
            self.store.close()
        self._thread = self._server = self._socket = None
        self.port = None

    def __enter__(self) -> HubServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def serve(config: HubConfig, *, log_level: str = "info") -> None:
    """Run the hub in the foreground until interrupted (`porchlight hub`)."""
    store = Store.open(config.resolved_database_url())
    try:
        app = create_app(config, store=store)
        if config.log_format == "json":
            use_json_logs(app.state.cluster.instance_id)
        uvicorn.Server(_uvicorn_config(app, config, log_level=log_level)).run()
    finally:
        store.close()

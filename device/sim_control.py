"""A control socket for the simulated device inside a running kiosk process.

End-to-end tests, the demo and support press the simulated button through it. The kiosk
registers the commands (`SimControl(path, {"press": ..., "status": ...})`); the protocol is one
JSON object per line each way:

    -> {"cmd": "hold", "seconds": 2.5}
    <- {"ok": true, "result": {...}}          or   {"ok": false, "error": "what went wrong"}

The socket is a Unix socket, mode 0600, so only the kiosk's own user can drive it; put it in
a private folder (the kiosk's data folder) so nobody else can see it even for a moment.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
import logging
import os
import socket
import stat
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

from porchlight.errors import BadInput, DeviceFault

log = logging.getLogger(__name__)

MAX_LINE = 64 * 1024
Handler = Callable[..., Awaitable[Any]]


class SimControl:
    def __init__(self, path: Path | str, handlers: Mapping[str, Handler]) -> None:
        self.path = Path(path)
        self.handlers = dict(handlers)
        self._server: asyncio.AbstractServer | None = None
        # Open connections, so stop() can end them cleanly rather than leave them to be
        # cancelled with the loop.
        self._connections: dict[asyncio.Task[Any], asyncio.StreamWriter] = {}

    async def start(self) -> None:
        if self.path.exists() or self.path.is_symlink():
            if not stat.S_ISSOCK(self.path.lstat().st_mode):
                raise BadInput(
                    f"{self.path} exists and is not a socket: choose another path for the "
                    "simulation control socket"
                )
            self.path.unlink()  # left over from a kiosk that did not shut down cleanly
        self._server = await asyncio.start_unix_server(self._serve, path=self.path, limit=MAX_LINE)
        os.chmod(self.path, 0o600)

    async def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.close()
            for writer in self._connections.values():
                writer.close()  # the handler sees the end of input and returns
            await asyncio.gather(*self._connections, return_exceptions=True)
            await server.wait_closed()
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()

    async def __aenter__(self) -> SimControl:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections[task] = writer
        try:
            while True:
                try:
                    line = await reader.readline()
                except ValueError:  # longer than MAX_LINE
                    writer.write(_encode({"ok": False, "error": "request line too long"}))
                    break
                if not line:
                    break
                writer.write(_encode(await self.handle_line(line)))
                await writer.drain()
        except ConnectionError:
            pass
        finally:
            del self._connections[task]
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    async def handle_line(self, line: bytes) -> dict[str, Any]:
        """One request line in, one reply object out."""
        try:
            request = json.loads(line)
        except (UnicodeDecodeError, json.JSONDecodeError):
            return {"ok": False, "error": "request is not JSON: send one JSON object per line"}
        if not isinstance(request, dict) or not isinstance(request.get("cmd"), str):
            return {"ok": False, "error": 'request must be an object with a "cmd" string'}
        cmd = request.pop("cmd")
        if cmd == "help":
            return {"ok": True, "result": {"commands": sorted([*self.handlers, "help"])}}
        handler = self.handlers.get(cmd)
        if handler is None:
            known = ", ".join(sorted([*self.handlers, "help"]))
            return {"ok": False, "error": f"unknown command {cmd!r}; known commands: {known}"}
        try:
            inspect.signature(handler).bind(**request)
        except TypeError as exc:
            return {"ok": False, "error": f"bad arguments for {cmd}: {exc}"}
        try:
            result = await handler(**request)
        except Exception as exc:
            log.warning("simulation command %s failed: %s", cmd, exc)
            return {"ok": False, "error": f"{cmd} failed: {exc}"}
        if result is None:
            result = {}
        elif not isinstance(result, dict):
            result = {"value": result}
        return {"ok": True, "result": result}


def _encode(reply: dict[str, Any]) -> bytes:
    return json.dumps(reply, default=str).encode() + b"\n"


def sim_request(
    path: Path | str, cmd: str, *, timeout: float = 30.0, **args: Any
) -> dict[str, Any]:
    """Send one command to a running simulated kiosk and return its result (blocking).

    Raises BadInput when the kiosk refuses the command, DeviceFault when it cannot be reached.
    """
    request = json.dumps({**args, "cmd": cmd}).encode() + b"\n"
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(timeout)
            sock.connect(str(path))
            sock.sendall(request)
            with sock.makefile("rb") as stream:
                line = stream.readline(MAX_LINE)
    except OSError as exc:
        raise DeviceFault(
            f"cannot reach the simulated kiosk at {path}: {exc} (is a simulated kiosk running?)"
        ) from exc
    if not line:
        raise DeviceFault(f"the simulated kiosk at {path} closed the connection without a reply")
    reply = json.loads(line)
    if not reply.get("ok"):
        raise BadInput(reply.get("error") or "the simulated kiosk refused the command")
    return reply.get("result") or {}

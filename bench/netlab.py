"""Network lab helpers for the outbox tests and benchmarks.

Two tools, both acting only on things this process made:

- `TcpProxy`: a TCP relay on 127.0.0.1 in front of the hub. `cut("refuse")` resets every
  connection (hub "down"), `cut("blackhole")` accepts and then says nothing (a dead link that
  times out), `restore()` relays again; `upstream` can change (a hub restarted elsewhere).
- `NetLab`: two network namespaces joined by a veth pair with a tbf rate limit and optional
  random loss (iptables on the receiving side's ingress, see ../shared/PLATFORM.md). Only the
  addresses inside those namespaces are used; `close()` (or the context manager) removes them.
  Needs root, iproute2 and iptables.
"""

from __future__ import annotations

import contextlib
import os
import selectors
import socket
import subprocess
import threading
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from types import TracebackType


class TcpProxy:
    """A threaded TCP relay: listen on 127.0.0.1:<port>, forward to 127.0.0.1:<upstream>."""

    def __init__(self, upstream: int, port: int = 0) -> None:
        self.upstream = upstream
        self._listener = socket.socket()
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", port))
        self._listener.listen(128)
        self.port = self._listener.getsockname()[1]
        self.mode = "up"  # up | refuse | blackhole
        self._lock = threading.Lock()
        self._conns: set[socket.socket] = set()
        self._stopping = threading.Event()
        self.bytes_up = 0  # client → hub
        self.bytes_down = 0  # hub → client
        self._thread = threading.Thread(target=self._accept_loop, name="tcp-proxy", daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def cut(self, mode: str = "refuse") -> None:
        """Break the link: drop every open connection, and treat new ones per `mode`."""
        if mode not in ("refuse", "blackhole"):
            raise ValueError("mode is 'refuse' or 'blackhole'")
        with self._lock:
            self.mode = mode
            conns, self._conns = self._conns, set()
        for c in conns:
            _reset(c)

    def restore(self) -> None:
        with self._lock:
            self.mode = "up"
            held, self._conns = self._conns, set()
        for c in held:  # blackholed connections were never relayed: drop them
            _reset(c)

    def close(self) -> None:
        self._stopping.set()
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept()
        with contextlib.suppress(OSError):
            self._listener.close()
        self.cut()
        self._thread.join(timeout=5)

    def __enter__(self) -> TcpProxy:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _accept_loop(self) -> None:
        while not self._stopping.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            with self._lock:
                mode = self.mode
                if mode == "blackhole":
                    self._conns.add(client)
                    continue
            if mode == "refuse":
                _reset(client)
                continue
            threading.Thread(target=self._relay, args=(client,), daemon=True).start()

    def _relay(self, client: socket.socket) -> None:
        try:
            upstream = socket.create_connection(("127.0.0.1", self.upstream), timeout=5)
        except OSError:
            _reset(client)
            return
        upstream.settimeout(None)
        with self._lock:
            if self.mode != "up":
                _reset(client)
                _reset(upstream)
                return
            self._conns.update((client, upstream))
        sel = selectors.DefaultSelector()
        sel.register(client, selectors.EVENT_READ, upstream)
        sel.register(upstream, selectors.EVENT_READ, client)
        try:
            while True:
                for key, _ in sel.select(timeout=1.0):
                    src: socket.socket = key.fileobj  # type: ignore[assignment]
                    data = src.recv(65536)
                    if not data:
                        return
                    key.data.sendall(data)
                    if src is client:
                        self.bytes_up += len(data)
                    else:
                        self.bytes_down += len(data)
                if self._stopping.is_set():
                    return
        except (OSError, ValueError):
            return
        finally:
            sel.close()
            with self._lock:
                self._conns.discard(client)
                self._conns.discard(upstream)
            for s in (client, upstream):
                with contextlib.suppress(OSError):
                    s.close()


def _reset(sock: socket.socket) -> None:
    """Close with RST (SO_LINGER 0), as a crashed peer or a dropped link looks."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    with contextlib.suppress(OSError):
        sock.close()


# --- network namespaces --------------------------------------------------------------------


def _run(*args: str) -> None:
    subprocess.run(args, check=True, capture_output=True, text=True)


@dataclass
class NetLab:
    """Namespaces `<name>-hub` (10.77.0.1) and `<name>-kiosk` (10.77.0.2) over one veth pair.

    `rate` (e.g. "1mbit") shapes both directions with tbf; `loss` (0-1) drops that share of
    TCP/UDP packets arriving at each side. Run commands inside with `exec_args`."""

    rate: str | None = None
    loss: float = 0.0
    name: str = field(default_factory=lambda: f"pl{uuid.uuid4().hex[:6]}")
    hub_addr: str = "10.77.0.1"
    kiosk_addr: str = "10.77.0.2"
    _made: list[str] = field(default_factory=list)

    @property
    def hub_ns(self) -> str:
        return f"{self.name}-hub"

    @property
    def kiosk_ns(self) -> str:
        return f"{self.name}-kiosk"

    def open(self) -> NetLab:
        if os.geteuid() != 0:
            raise PermissionError("the network lab needs root (network namespaces, tc)")
        try:
            for ns in (self.hub_ns, self.kiosk_ns):
                _run("ip", "netns", "add", ns)
                self._made.append(ns)
                _run("ip", "-n", ns, "link", "set", "lo", "up")
            veth_h, veth_k = f"{self.name}h", f"{self.name}k"
            _run("ip", "link", "add", veth_h, "netns", self.hub_ns, "type", "veth",
                 "peer", "name", veth_k, "netns", self.kiosk_ns)  # fmt: skip
            for ns, dev, addr in (
                (self.hub_ns, veth_h, self.hub_addr),
                (self.kiosk_ns, veth_k, self.kiosk_addr),
            ):
                _run("ip", "-n", ns, "addr", "add", f"{addr}/30", "dev", dev)
                _run("ip", "-n", ns, "link", "set", dev, "up")
                if self.rate:
                    # the shaping measured in ../shared/PLATFORM.md (300kbit gave 292 kbit/s)
                    _run("ip", "netns", "exec", ns, "tc", "qdisc", "add", "dev", dev, "root",
                         "tbf", "rate", self.rate, "burst", "4kb", "latency", "100ms")  # fmt: skip
                if self.loss > 0:
                    _run("ip", "netns", "exec", ns, "iptables", "-t", "raw", "-A", "PREROUTING",
                         "-i", dev, "-m", "statistic", "--mode", "random", "--probability",
                         f"{self.loss:.4f}", "-j", "DROP")  # fmt: skip
        except BaseException:
            self.close()
            raise
        return self

    def exec_args(self, ns: str, argv: Sequence[str]) -> list[str]:
        return ["ip", "netns", "exec", ns, *argv]

    def close(self) -> None:
        # Deleting a namespace removes its veth end, qdiscs and iptables rules with it.
        for ns in reversed(self._made):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)
        self._made.clear()

    def __enter__(self) -> NetLab:
        return self.open()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

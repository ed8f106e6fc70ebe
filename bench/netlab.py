"""Network lab helpers for the outbox tests and benchmarks.

Two tools, both acting only on things this process made:

- `TcpProxy`: a TCP relay on 127.0.0.1 in front of the hub. `cut("refuse")` resets every
  connection (hub "down"), `cut("blackhole")` accepts and then says nothing (a dead link that
  times out), `restore()` relays again; `upstream` can change (a hub restarted elsewhere).
- `NetLab`: two network namespaces joined by a veth pair with a tbf rate limit and optional
  random loss (iptables on the receiving side's ingress, see ../shared/PLATFORM.md). Only the
  addresses inside those namespaces are used; `close()` (or the context manager) removes them.
  Needs root, iproute2 and iptables.
  For calls it also does: a one-way delay each way (`delay_ms`: the kernel has no netem, so
  an NFQUEUE on each side's ingress and a small delayer process, `python netlab.py delay`,
  which needs the `netfilterqueue` package and Debian's libnetfilter-queue-dev), a rate that
  changes while it runs (`set_rate`), an outage (`outage(True/False)`: everything arriving
  is dropped), byte counters of what each side offers to the link before the rate limit
  drops anything (`offered_bytes`), and replayable capacity profiles (`Profile`,
  `PROFILES`: "rural", RFC 8867 §5.1 "p1", "flap").
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import os
import select
import selectors
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Sequence
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


DELAY_QUEUE = 7  # NFQUEUE number; queues are per network namespace


@dataclass
class NetLab:
    """Namespaces `<name>-hub` (10.77.0.1) and `<name>-kiosk` (10.77.0.2) over one veth pair.

    `rate` (e.g. "1mbit") shapes both directions with tbf; `loss` (0-1) drops that share of
    TCP/UDP packets arriving at each side; `delay_ms` holds every packet arriving at each side
    that long (so the round trip gains twice it). Run commands inside with `exec_args`."""

    rate: str | None = None
    loss: float = 0.0
    delay_ms: float = 0.0
    name: str = field(default_factory=lambda: f"pl{uuid.uuid4().hex[:6]}")
    hub_addr: str = "10.77.0.1"
    kiosk_addr: str = "10.77.0.2"
    _made: list[str] = field(default_factory=list)
    _delayers: list[subprocess.Popen[str]] = field(default_factory=list)
    _down: bool = False

    def _sides(self) -> tuple[tuple[str, str], tuple[str, str]]:
        """(namespace, veth device) of the hub side and of the kiosk side."""
        return ((self.hub_ns, f"{self.name}h"), (self.kiosk_ns, f"{self.name}k"))

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
                # Counts what this side offers to the link, before tbf drops any of it.
                _run("ip", "netns", "exec", ns, "iptables", "-t", "mangle", "-A", "POSTROUTING",
                     "-o", dev, "-j", "RETURN")  # fmt: skip
                if self.delay_ms > 0:
                    _run("ip", "netns", "exec", ns, "iptables", "-t", "raw", "-A", "PREROUTING",
                         "-i", dev, "-j", "NFQUEUE", "--queue-num", str(DELAY_QUEUE),
                         "--queue-bypass")  # fmt: skip
                    self._start_delayer(ns)
        except BaseException:
            self.close()
            raise
        return self

    def _start_delayer(self, ns: str) -> None:
        argv = [sys.executable, os.path.abspath(__file__), "delay", str(DELAY_QUEUE),
                str(self.delay_ms)]  # fmt: skip
        proc = subprocess.Popen(self.exec_args(ns, argv), stdout=subprocess.PIPE, text=True)
        self._delayers.append(proc)
        assert proc.stdout is not None
        if proc.stdout.readline().strip() != "ready":
            raise RuntimeError(
                "the NFQUEUE delayer did not start: pip install netfilterqueue (needs Debian's "
                "libnetfilter-queue-dev)"
            )

    def set_rate(self, rate: str) -> None:
        """Change (or set) both directions' rate limit now, e.g. "600kbit"."""
        for ns, dev in self._sides():
            _run("ip", "netns", "exec", ns, "tc", "qdisc", "replace", "dev", dev, "root",
                 "tbf", "rate", rate, "burst", "4kb", "latency", "100ms")  # fmt: skip
        self.rate = rate

    def outage(self, down: bool) -> None:
        """Drop everything arriving on either side (down=True) until outage(False)."""
        if down == self._down:
            return
        action = "-I" if down else "-D"
        for ns, dev in self._sides():
            rule = ["-i", dev, "-j", "DROP"]
            position = ["1"] if down else []
            _run("ip", "netns", "exec", ns, "iptables", "-t", "raw", action, "PREROUTING",
                 *position, *rule)  # fmt: skip
        self._down = down

    def offered_bytes(self, side: str) -> int:
        """Bytes `side` ("hub" or "kiosk") has handed to the link so far (before shaping)."""
        ns, _ = self._sides()[0 if side == "hub" else 1]
        out = subprocess.run(
            self.exec_args(ns, ["iptables", "-t", "mangle", "-L", "POSTROUTING", "-v", "-x", "-n"]),
            check=True,
            capture_output=True,
            text=True,
        )
        for line in out.stdout.splitlines():
            fields = line.split()
            if len(fields) > 2 and fields[2] == "RETURN":
                return int(fields[1])
        raise RuntimeError("the lab's byte counter rule is missing")

    def exec_args(self, ns: str, argv: Sequence[str]) -> list[str]:
        return ["ip", "netns", "exec", ns, *argv]

    def close(self) -> None:
        for proc in self._delayers:
            proc.terminate()
        for proc in self._delayers:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=5)
        self._delayers.clear()
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


# --- capacity profiles ----------------------------------------------------------------------


@dataclass(frozen=True)
class Profile:
    """A link over time: rate steps [(from second, kbit/s)], one-way delay, random loss,
    outages [(from, to) seconds], for `seconds`."""

    name: str
    steps: tuple[tuple[float, int], ...]
    delay_ms: float
    loss: float
    seconds: float
    outages: tuple[tuple[float, float], ...] = ()

    def rate_at(self, t: float) -> int:
        rate = self.steps[0][1]
        for start, kbit in self.steps:
            if t >= start:
                rate = kbit
        return rate

    def lab(self) -> NetLab:
        return NetLab(rate=f"{self.steps[0][1]}kbit", loss=self.loss, delay_ms=self.delay_ms)


PROFILES = {
    # ../shared/PLATFORM.md: a rural line (tbf measured 292 kbit/s at this setting).
    "rural": Profile("rural", ((0, 300),), delay_ms=100, loss=0.02, seconds=60),
    # RFC 8867 §5.1: 1.0, 2.5 at 40 s, 0.6 at 60 s, 1.0 at 80 s Mbit/s; 50 ms one way.
    "p1": Profile(
        "p1", ((0, 1000), (40, 2500), (60, 600), (80, 1000)), delay_ms=50, loss=0.0, seconds=100
    ),
    # A flapping link: 1 Mbit/s, down 3 s in every 10 s.
    "flap": Profile(
        "flap",
        ((0, 1000),),
        delay_ms=25,
        loss=0.0,
        seconds=60,
        outages=tuple((t, t + 3.0) for t in range(10, 60, 10)),
    ),
}


class ProfilePlayer:
    """Plays a profile's rate steps and outages on a lab, on a thread, from `start()`."""

    def __init__(self, lab: NetLab, profile: Profile, clock: Callable[[], float] = time.monotonic):
        self.lab = lab
        self.profile = profile
        self._clock = clock
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="profile", daemon=True)
        self.started_at: float | None = None
        self.applied: list[tuple[float, str]] = []  # (time, what) as done

    def start(self) -> ProfilePlayer:
        self.started_at = self._clock()
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _events(self) -> list[tuple[float, str, object]]:
        p = self.profile
        events: list[tuple[float, str, object]] = [(t, "rate", k) for t, k in p.steps[1:]]
        for a, b in p.outages:
            events += [(a, "down", True), (b, "down", False)]
        return sorted(events, key=lambda e: e[0])

    def _run(self) -> None:
        assert self.started_at is not None
        for at, what, value in self._events():
            if self._stop.wait(max(0.0, self.started_at + at - self._clock())):
                return
            if what == "rate":
                self.lab.set_rate(f"{value}kbit")
            else:
                self.lab.outage(bool(value))
            self.applied.append((self._clock(), f"{what}={value}"))


# --- the delayer (runs inside a namespace) ----------------------------------------------------


def run_delayer(queue_num: int, delay_ms: float) -> None:
    """Accept each packet of NFQUEUE `queue_num` `delay_ms` after it arrived, in order."""
    from netfilterqueue import NetfilterQueue

    held: list[tuple[float, int, object]] = []
    order = itertools.count()

    def hold(packet: object) -> None:
        heapq.heappush(held, (time.monotonic() + delay_ms / 1000, next(order), packet))

    nfq = NetfilterQueue()
    nfq.bind(queue_num, hold, max_len=16384)
    sock = socket.fromfd(nfq.get_fd(), socket.AF_NETLINK, socket.SOCK_RAW)
    print("ready", flush=True)
    try:
        while True:
            wait = max(0.0, held[0][0] - time.monotonic()) if held else 1.0
            readable, _, _ = select.select([sock], [], [], wait)
            if readable:
                nfq.run(block=False)
            now = time.monotonic()
            while held and held[0][0] <= now:
                heapq.heappop(held)[2].accept()  # type: ignore[attr-defined]
    finally:
        nfq.unbind()


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "delay":
        run_delayer(int(sys.argv[2]), float(sys.argv[3]))
    else:
        print("usage: netlab.py delay QUEUE_NUM DELAY_MS   (inside a network namespace)")
        sys.exit(2)

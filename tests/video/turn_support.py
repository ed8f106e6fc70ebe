"""A real coturn (Debian's `turnserver`) on 127.0.0.1 with the shared-secret scheme, for tests.

    with Coturn(tmp_path) as turn:
        hub_config = HubConfig(ice_servers=[turn.url], turn_secret=turn.secret, ...)

It listens on a free port, relays from 127.0.0.1 on a small port range, allows loopback
peers (both ends of a test call are on 127.0.0.1), has no CLI, TLS or DTLS, and writes its
log and pid file into the test's temporary folder. `start` returns once it answers a STUN
Binding request; `stop` ends it and waits.
"""

from __future__ import annotations

import secrets
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from aioice import stun

TURNSERVER = "/usr/bin/turnserver"
REALM = "porchlight.test"
RELAY_PORTS = 64  # relay endpoints per coturn: plenty for two peers


def free_udp_tcp_port() -> int:
    """A port free for both UDP and TCP on 127.0.0.1 (coturn listens on both)."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            udp.bind(("127.0.0.1", 0))
            port = udp.getsockname()[1]
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
                try:
                    tcp.bind(("127.0.0.1", port))
                except OSError:
                    continue
                return port


def free_port_range(count: int) -> int:
    """The first of `count` consecutive UDP ports that are free on 127.0.0.1 just now."""
    for _ in range(200):
        base = secrets.randbelow(20000 - count) + 40000
        held = []
        try:
            for port in range(base, base + count):
                sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                held.append(sock)
                sock.bind(("127.0.0.1", port))
            return base
        except OSError:
            continue
        finally:
            for sock in held:
                sock.close()
    raise RuntimeError(f"no {count} consecutive free UDP ports on 127.0.0.1")


def stun_binding_answered(port: int, timeout: float) -> bool:
    """Send one STUN Binding request to 127.0.0.1:port; True if a STUN answer comes back."""
    request = stun.Message(message_method=stun.Method.BINDING, message_class=stun.Class.REQUEST)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(timeout)
        sock.sendto(bytes(request), ("127.0.0.1", port))
        try:
            data, _ = sock.recvfrom(2048)
        except (TimeoutError, ConnectionRefusedError):
            return False
    answer = stun.parse_message(data)
    return answer.transaction_id == request.transaction_id


class Coturn:
    def __init__(self, folder: Path, *, secret: str | None = None) -> None:
        self.folder = folder
        self.secret = secret or secrets.token_hex(32)
        self.port = 0
        self.log_file = folder / "turnserver.log"
        self.pid_file = folder / "turnserver.pid"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"turn:127.0.0.1:{self.port}?transport=udp"

    def start(self, timeout: float = 15.0) -> Coturn:
        assert shutil.which(TURNSERVER), "coturn is not installed: apt-get install coturn"
        self.folder.mkdir(parents=True, exist_ok=True)
        self.port = free_udp_tcp_port()
        relay_base = free_port_range(RELAY_PORTS)
        folder_db = self.folder / "turndb"  # not the system-wide /var/lib/turn/turndb
        args = [
            TURNSERVER,
            "-n",  # no configuration file: everything is on this line
            "--listening-ip=127.0.0.1",
            "--relay-ip=127.0.0.1",
            f"--listening-port={self.port}",
            f"--min-port={relay_base}",
            f"--max-port={relay_base + RELAY_PORTS - 1}",
            "--use-auth-secret",
            f"--static-auth-secret={self.secret}",
            f"--realm={REALM}",
            "--allow-loopback-peers",
            "--no-cli",
            "--no-tls",
            "--no-dtls",
            "--no-rfc5780",
            "--no-software-attribute",
            "--simple-log",
            "--no-stdout-log",
            "--verbose",
            f"--log-file={self.log_file}",
            f"--pidfile={self.pid_file}",
            f"--userdb={folder_db}",
        ]
        self.proc = subprocess.Popen(
            args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=self.folder
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"turnserver exited ({self.proc.returncode}):\n{self.log()}")
            if stun_binding_answered(self.port, timeout=0.2):
                return self
        self.stop()
        raise RuntimeError(f"turnserver did not answer STUN within {timeout} s:\n{self.log()}")

    def log(self) -> str:
        """coturn's log so far (with --simple-log the file name is exactly log_file)."""
        return self.log_file.read_text(errors="replace") if self.log_file.exists() else ""

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def __enter__(self) -> Coturn:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@pytest.fixture
def coturn(tmp_path: Path) -> Iterator[Coturn]:
    """A running coturn for one test (import this fixture into the test module)."""
    with Coturn(tmp_path / "coturn") as server:
        yield server

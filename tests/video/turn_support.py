"""A real coturn (Debian's `turnserver`) on 127.0.0.1 with the shared-secret scheme, for tests.

    with Coturn(tmp_path) as turn:
        hub_config = HubConfig(ice_servers=[turn.url], turn_secret=turn.secret, ...)

It listens on a free port, relays from 127.0.0.1 on a small port range, allows loopback
peers (both ends of a test call are on 127.0.0.1), has no CLI or DTLS, and writes its
log and pid file into the test's temporary folder. `start` returns once it answers a STUN
Binding request (and, with TLS, accepts a TCP connection on its TLS port); `stop` ends it.

TLS (`turns:`): `Coturn(folder, tls=make_tls(folder))` also listens for TURN over TLS with a
server certificate for 127.0.0.1 and localhost, signed by a throwaway CA made for the test
(`TlsFiles.ca_cert` is what a client must trust).
"""

from __future__ import annotations

import asyncio
import base64
import ipaddress
import re
import secrets
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aioice import stun
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from playwright.async_api import async_playwright, expect

from porchlight import chromium
from porchlight.device.config import DeviceConfig
from porchlight.hub.config import HubConfig
from porchlight.hub.seed import seed_demo
from porchlight.hub.server import HubServer
from porchlight.kiosk.config import KioskConfig
from porchlight.kiosk.core import KioskCore
from porchlight.kiosk.credential import DeviceCredential
from porchlight.kiosk.view import KioskState

TURNSERVER = "/usr/bin/turnserver"
REALM = "porchlight.test"
RELAY_PORTS = 64  # relay endpoints per coturn: plenty for two peers


@dataclass(frozen=True)
class TlsFiles:
    ca_cert: Path  # the throwaway CA's certificate (PEM): what a client must trust
    cert: Path  # the server's certificate (PEM), signed by that CA
    key: Path  # the server's private key (PEM, unencrypted: the test's folder only)
    spki_sha256: str  # base64 SHA-256 of the server key's SubjectPublicKeyInfo (Chromium pin)


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def make_tls(folder: Path, *, label: str = "porchlight-test") -> TlsFiles:
    """A new CA and a server certificate it signs for 127.0.0.1 and localhost (one day)."""
    folder.mkdir(parents=True, exist_ok=True)
    now = datetime.now(UTC)
    valid = {"not_valid_before": now - timedelta(hours=1)}
    valid["not_valid_after"] = now + timedelta(days=1)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder(**valid)
        .subject_name(_name(f"{label} CA"))
        .issuer_name(_name(f"{label} CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    names = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    cert = (
        x509.CertificateBuilder(**valid)
        .subject_name(_name(f"{label} TURN"))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    files = TlsFiles(
        ca_cert=folder / f"{label}-ca.pem",
        cert=folder / f"{label}-cert.pem",
        key=folder / f"{label}-key.pem",
        spki_sha256=base64.b64encode(
            _sha256(
                key.public_key().public_bytes(
                    serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
                )
            )
        ).decode("ascii"),
    )
    files.ca_cert.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    files.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    files.key.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
    )
    files.key.chmod(0o600)
    return files


def _sha256(data: bytes) -> bytes:
    digest = hashes.Hash(hashes.SHA256())
    digest.update(data)
    return digest.finalize()


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


SMALL = {"camera_width": 320, "camera_height": 180, "camera_fps": 15}

# Keeps a reference to each peer connection the page makes, so the test can ask it for
# getStats (the page's own code is untouched: this only observes).
KEEP_PEER_CONNECTIONS = """
window.__pcs = [];
const NativePeerConnection = window.RTCPeerConnection;
window.RTCPeerConnection = class extends NativePeerConnection {
  constructor(...args) { super(...args); window.__pcs.push(this); }
};
"""

PEER_STATE = """
async () => {
  const pc = window.__pcs[window.__pcs.length - 1];
  if (!pc) return null;
  const byId = new Map();
  let pairId = null;
  (await pc.getStats()).forEach((s) => {
    byId.set(s.id, s);
    if (s.type === "transport" && s.selectedCandidatePairId) pairId = s.selectedCandidatePairId;
  });
  const pair = pairId ? byId.get(pairId) : null;
  return {
    policy: pc.getConfiguration().iceTransportPolicy,
    connection: pc.connectionState,
    gathering: pc.iceGatheringState,
    local: pair ? byId.get(pair.localCandidateId).candidateType : null,
    relayProtocol: pair ? byId.get(pair.localCandidateId).relayProtocol : null,
    remote: pair ? byId.get(pair.remoteCandidateId).candidateType : null,
    pairBytesReceived: pair ? pair.bytesReceived : 0,
    localSdp: pc.localDescription ? pc.localDescription.sdp : "",
    remoteSdp: pc.remoteDescription ? pc.remoteDescription.sdp : "",
  };
}
"""

VIDEO_FRAMES = """() => {
  const v = document.querySelector('[data-testid=remote-video]');
  return v ? v.getVideoPlaybackQuality().totalVideoFrames : 0;
}"""


MANY_FRAMES = """() => {
  const v = document.querySelector('[data-testid=remote-video]');
  return v && v.getVideoPlaybackQuality().totalVideoFrames > 30;
}"""


async def until(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while not (value := predicate()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)
    return value


def candidate_types(sdp: str) -> list[str]:
    return re.findall(r"a=candidate:.* typ (\w+)", sdp)


class Call:
    """coturn, the hub (relay-only, shared secret), a kiosk and the clinic page in Chromium.

    `ice_url`: the TURN URL the hub hands out (default coturn's plain UDP one); `kiosk`:
    extra KioskConfig settings (e.g. turn_ca_file); `turn_ttl_s` and `clock_offset_s` (the
    hub's clock runs that far off) set when the minted credentials expire.
    """

    def __init__(
        self,
        tmp_path: Path,
        turn: Coturn,
        *,
        hub_secret: str,
        clock_offset_s: float,
        ice_url: str | None = None,
        turn_ttl_s: float = 600,
        kiosk: dict[str, Any] | None = None,
    ):
        self.tmp_path = tmp_path
        self.turn = turn
        config = HubConfig(
            host="127.0.0.1",
            data_dir=tmp_path / "hub",
            ice_servers=[ice_url or turn.url],
            turn_secret=hub_secret,
            turn_ttl_s=turn_ttl_s,
            ice_transport_policy="relay",
        )
        offset = timedelta(seconds=clock_offset_s)
        self.hub = HubServer(config, port=0, clock=lambda: datetime.now(UTC) + offset).start()
        assert self.hub.store is not None
        self.seed = seed_demo(self.hub.store)
        kiosk = KioskConfig(
            data_dir=tmp_path / "kiosk",
            ice_host_addresses=["127.0.0.1"],
            device=DeviceConfig(simulate=True, speech=False, **SMALL),
            **(kiosk or {}),
        )
        seed, url = self.seed, self.hub.url
        credential = DeviceCredential(url, seed.device_id, seed.patient_id, seed.device_token)
        self.core = KioskCore(kiosk, credential=credential)

    async def join(self) -> None:
        """The kiosk starts and the patient presses the button."""
        await self.core.start()
        await until(lambda: self.core.view.state == KioskState.IDLE, 20, "kiosk idle")
        self.core.button_down()
        self.core.button_up()

    async def admit(self, page) -> None:
        """The patient presses the button; the clinician logs in and admits them."""
        await self.core.start()
        await page.add_init_script(KEEP_PEER_CONNECTIONS)
        await page.goto(self.hub.url + "/clinic")
        await page.get_by_test_id("login-username").fill(self.seed.username)
        await page.get_by_test_id("login-password").fill(self.seed.password)
        await page.get_by_test_id("login-submit").click()
        await expect(page.get_by_test_id("connection-state")).to_have_text("Live")
        await until(lambda: self.core.view.state == KioskState.IDLE, 20, "kiosk idle")
        self.core.button_down()
        self.core.button_up()
        admit = page.locator("[data-testid^='admit-']")
        await expect(admit).to_have_count(1, timeout=10_000)
        await admit.click()

    async def close(self) -> None:
        await self.core.stop()
        self.hub.stop()


async def call_through_chromium(call: Call, *chromium_args: str) -> dict[str, Any]:
    """Admit the kiosk from the clinic page in Chromium, wait for video both ways, and
    return the page's view of its peer connection (PEER_STATE)."""
    try:
        async with async_playwright() as pw:
            browser = await chromium.launch(pw, *chromium_args)
            page = await browser.new_page()
            await call.admit(page)
            await page.wait_for_function(MANY_FRAMES, timeout=30_000)
            await until(lambda: call.core.status()["frames_received"] > 20, 30, "kiosk frames")
            state = await page.evaluate(PEER_STATE)
            await browser.close()
    finally:
        await call.close()
    return state


async def once_gathered(page: Any, call: Call) -> tuple[dict[str, Any], int, int]:
    """Once the page's latest peer connection has gathered: its PEER_STATE, the frames the
    page has shown and the frames the kiosk has received."""
    await page.wait_for_function(
        "() => window.__pcs.length > 0 &&"
        " window.__pcs[window.__pcs.length - 1].iceGatheringState === 'complete'",
        timeout=20_000,
    )
    state = await page.evaluate(PEER_STATE)
    frames = await page.evaluate(VIDEO_FRAMES)
    return state, frames, call.core.status()["frames_received"]


def assert_relay_to_relay(state: dict[str, Any]) -> None:
    """The call connected, relay-only, on a pair of relayed candidates, and neither end
    offered anything but relayed candidates (no host, no server-reflexive)."""
    assert state["policy"] == "relay" and state["connection"] == "connected"
    assert (state["local"], state["remote"]) == ("relay", "relay")
    assert state["pairBytesReceived"] > 10_000
    assert set(candidate_types(state["remoteSdp"])) == {"relay"}  # the kiosk's offer
    assert set(candidate_types(state["localSdp"])) == {"relay"}  # Chromium's answer


class Coturn:
    def __init__(
        self, folder: Path, *, secret: str | None = None, tls: TlsFiles | None = None
    ) -> None:
        self.folder = folder
        self.secret = secret or secrets.token_hex(32)
        self.tls = tls
        self.port = 0
        self.tls_port = 0
        self.log_file = folder / "turnserver.log"
        self.pid_file = folder / "turnserver.pid"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"turn:127.0.0.1:{self.port}?transport=udp"

    @property
    def turns_url(self) -> str:
        """TURN over TLS (over TCP), what gets through firewalls that pass only 443/5349."""
        assert self.tls is not None, "this coturn was started without TLS"
        return f"turns:127.0.0.1:{self.tls_port}?transport=tcp"

    def start(self, timeout: float = 15.0) -> Coturn:
        assert shutil.which(TURNSERVER), "coturn is not installed: apt-get install coturn"
        self.folder.mkdir(parents=True, exist_ok=True)
        self.port = free_udp_tcp_port()
        if self.tls is not None:
            self.tls_port = free_udp_tcp_port()
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
            *self._tls_args(),
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
            if stun_binding_answered(self.port, timeout=0.2) and self._tls_listening():
                return self
        self.stop()
        raise RuntimeError(f"turnserver did not answer STUN within {timeout} s:\n{self.log()}")

    def _tls_args(self) -> list[str]:
        if self.tls is None:
            return ["--no-tls"]
        return [
            f"--tls-listening-port={self.tls_port}",
            f"--cert={self.tls.cert}",
            f"--pkey={self.tls.key}",
            "--no-tlsv1",
            "--no-tlsv1_1",
        ]

    def _tls_listening(self) -> bool:
        if self.tls is None:
            return True
        try:
            socket.create_connection(("127.0.0.1", self.tls_port), timeout=0.2).close()
        except OSError:
            return False
        return True

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

"""Wi-Fi for the kiosk: read a Wi-Fi QR code, write a NetworkManager connection, list networks.

`parse_wifi_qr("WIFI:S:Home;T:WPA;P:secret;;")` → WifiNetwork. The format (from the ZXing
project, used by phones and routers): fields `S` (SSID), `T` (WPA, SAE, WEP or nopass), `P`
(password), `H` (hidden), in any order, each ended by `;`; `\\`, `;`, `,`, `:` and `"` are
escaped with a backslash. `keyfile(network)` renders a NetworkManager keyfile; `apply_network`
installs it with nmcli on a device, or `FileWifi` writes it (mode 0600) into a folder in
simulation. Passwords never reach a log or an error message.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from porchlight import atomic
from porchlight.errors import BadInput, DeviceFault

log = logging.getLogger(__name__)

SECURITY = ("WPA", "SAE", "nopass")
NM_CONNECTIONS = Path("/etc/NetworkManager/system-connections")
CONNECTION_PREFIX = "porchlight-"
_ESCAPABLE = '\\;,:"'


@dataclass(frozen=True)
class WifiNetwork:
    ssid: str
    security: str = "WPA"  # WPA (WPA2/WPA3-transition personal), SAE (WPA3 only) or nopass
    password: str = field(default="", repr=False)
    hidden: bool = False

    def __post_init__(self) -> None:
        check_network(self)


@dataclass(frozen=True)
class SeenNetwork:
    """A network in range, as a scan lists it."""

    ssid: str
    signal: int  # 0-100
    secured: bool


def check_network(network: WifiNetwork) -> None:
    size = len(network.ssid.encode())
    if not 1 <= size <= 32:
        raise BadInput("A Wi-Fi network name has 1 to 32 characters. Check the name.")
    if network.security not in SECURITY:
        if network.security == "WEP":
            raise BadInput(
                "This network uses WEP, which is not safe enough for patient calls. "
                "Set the router to WPA2 or WPA3."
            )
        raise BadInput(f"Unknown Wi-Fi security {network.security!r}; use WPA, SAE or nopass.")
    if network.security == "nopass":
        if network.password:
            raise BadInput("An open Wi-Fi network has no password; leave it empty.")
        return
    pw = network.password
    is_hex_key = len(pw) == 64 and all(c in "0123456789abcdefABCDEF" for c in pw)
    if not (8 <= len(pw) <= 63 or is_hex_key) or not pw.isprintable():
        raise BadInput(
            "A Wi-Fi password has 8 to 63 characters. Check it (capitals count) and type it again."
        )


def _split_fields(body: str) -> list[str]:
    """Split on unescaped `;`, undoing the escapes."""
    parts, current, i = [], [], 0
    while i < len(body):
        c = body[i]
        if c == "\\":
            if i + 1 >= len(body) or body[i + 1] not in _ESCAPABLE:
                raise BadInput("The Wi-Fi QR code has a stray backslash; make a new QR code.")
            current.append(body[i + 1])
            i += 2
            continue
        if c == ";":
            parts.append("".join(current))
            current = []
        else:
            current.append(c)
        i += 1
    if current:
        raise BadInput("The Wi-Fi QR code is cut short (it must end with ;;). Make a new one.")
    return parts


def parse_wifi_qr(text: str) -> WifiNetwork:
    """`WIFI:S:<ssid>;T:<WPA|SAE|nopass>;P:<password>;H:<true|false>;;` → WifiNetwork."""
    text = text.strip()
    if not text[:5].upper() == "WIFI:":
        raise BadInput("This is not a Wi-Fi QR code (it should start with WIFI:).")
    fields: dict[str, str] = {}
    for part in _split_fields(text[5:]):
        if not part:
            continue
        name, sep, value = part.partition(":")
        if not sep or len(name) != 1:
            raise BadInput("The Wi-Fi QR code has a field this kiosk cannot read. Make a new one.")
        fields[name.upper()] = value
    if not fields.get("S"):
        raise BadInput("The Wi-Fi QR code has no network name (S:). Make a new one.")
    security = (fields.get("T") or "nopass").upper()
    security = {"WPA2": "WPA", "WPA3": "SAE", "NOPASS": "nopass"}.get(security, security)
    return WifiNetwork(
        ssid=fields["S"],
        security=security,
        password=fields.get("P", ""),
        hidden=fields.get("H", "").lower() == "true",
    )


# -- NetworkManager keyfile ---------------------------------------------------------------


def _keyfile_string(value: str) -> str:
    """Escape a value as GLib's key files expect (NetworkManager reads them with GLib)."""
    out = value.replace("\\", "\\\\").replace("\n", "\\n").replace("\t", "\\t").replace("\r", "\\r")
    return "\\s" + out[1:] if out.startswith(" ") else out


def _keyfile_ssid(ssid: str) -> str:
    # Plain text when that is unambiguous, else the byte list NetworkManager also accepts.
    if ssid.isascii() and ssid.isprintable() and ";" not in ssid and "\\" not in ssid:
        return _keyfile_string(ssid)
    return "".join(f"{b};" for b in ssid.encode())


def connection_id(network: WifiNetwork) -> str:
    return CONNECTION_PREFIX + "wifi"


def keyfile(network: WifiNetwork) -> str:
    """The NetworkManager keyfile (`.nmconnection`) for this network."""
    lines = [
        "[connection]",
        f"id={connection_id(network)}",
        f"uuid={uuid.uuid5(uuid.NAMESPACE_URL, 'porchlight:wifi:' + network.ssid)}",
        "type=wifi",
        "autoconnect=true",
        "",
        "[wifi]",
        "mode=infrastructure",
        f"ssid={_keyfile_ssid(network.ssid)}",
    ]
    if network.hidden:
        lines.append("hidden=true")
    if network.security != "nopass":
        lines += [
            "",
            "[wifi-security]",
            f"key-mgmt={'sae' if network.security == 'SAE' else 'wpa-psk'}",
            f"psk={_keyfile_string(network.password)}",
        ]
    lines += ["", "[ipv4]", "method=auto", "", "[ipv6]", "method=auto", ""]
    return "\n".join(lines)


# -- scanning -----------------------------------------------------------------------------


def _split_terse(line: str) -> list[str]:
    """nmcli -t output: fields joined by `:`, with `:` and `\\` escaped by a backslash."""
    fields, current, escaped = [], [], False
    for c in line:
        if escaped:
            current.append(c)
            escaped = False
        elif c == "\\":
            escaped = True
        elif c == ":":
            fields.append("".join(current))
            current = []
        else:
            current.append(c)
    fields.append("".join(current))
    return fields


def parse_nmcli_scan(output: str) -> list[SeenNetwork]:
    """`nmcli -t -f SSID,SIGNAL,SECURITY device wifi list` → networks, strongest first,
    one entry per name (hidden networks, with no name, are left out)."""
    best: dict[str, SeenNetwork] = {}
    for line in output.splitlines():
        parts = _split_terse(line)
        if len(parts) < 3 or not parts[0]:
            continue
        try:
            signal = max(0, min(100, int(parts[1])))
        except ValueError:
            continue
        seen = SeenNetwork(parts[0], signal, parts[2] not in ("", "--"))
        if parts[0] not in best or best[parts[0]].signal < signal:
            best[parts[0]] = seen
    return sorted(best.values(), key=lambda n: (-n.signal, n.ssid))


# -- applying -----------------------------------------------------------------------------


class WifiBackend(Protocol):
    def scan(self) -> list[SeenNetwork]: ...
    def apply(self, network: WifiNetwork) -> Path: ...


class NmcliWifi:
    """The real thing: NetworkManager through nmcli (blocking; call off the event loop)."""

    def __init__(self, connections_dir: Path = NM_CONNECTIONS, nmcli: str = "nmcli") -> None:
        self.connections_dir = Path(connections_dir)
        self.nmcli = nmcli

    def _run(self, *args: str, timeout: float = 30.0) -> str:
        if shutil.which(self.nmcli) is None:
            raise DeviceFault("nmcli is not installed; this kiosk cannot set up Wi-Fi by itself.")
        try:
            done = subprocess.run(
                [self.nmcli, *args], capture_output=True, text=True, timeout=timeout, check=False
            )
        except subprocess.TimeoutExpired:
            raise DeviceFault("NetworkManager did not answer in time. Try again.") from None
        if done.returncode != 0:
            # nmcli's own words, never the password (it is in the file, not the arguments).
            raise DeviceFault(
                f"NetworkManager refused: {done.stderr.strip()[:200] or done.returncode}"
            )
        return done.stdout

    def scan(self) -> list[SeenNetwork]:
        return parse_nmcli_scan(
            self._run(
                "-t", "-f", "SSID,SIGNAL,SECURITY", "device", "wifi", "list", "--rescan", "yes"
            )
        )

    def apply(self, network: WifiNetwork) -> Path:
        path = self.connections_dir / f"{connection_id(network)}.nmconnection"
        atomic.write_bytes(path, keyfile(network).encode(), mode=0o600)
        self._run("connection", "load", str(path))
        self._run("connection", "up", "id", connection_id(network), timeout=60.0)
        log.info("Wi-Fi connection written and brought up")
        return path


class FileWifi:
    """Simulation: writes the keyfile into `folder` and lists the networks it was given."""

    def __init__(self, folder: Path, networks: list[SeenNetwork] | None = None) -> None:
        self.folder = Path(folder)
        self.networks = list(networks or [])

    def scan(self) -> list[SeenNetwork]:
        return sorted(self.networks, key=lambda n: (-n.signal, n.ssid))

    def apply(self, network: WifiNetwork) -> Path:
        path = self.folder / f"{connection_id(network)}.nmconnection"
        atomic.write_bytes(path, keyfile(network).encode(), mode=0o600)
        return path

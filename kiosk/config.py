"""The kiosk's settings: a dataclass read from the `[kiosk]` table and PORCHLIGHT_KIOSK_*.

The hardware has its own `[device]` settings (porchlight.device.config.DeviceConfig);
`load_kiosk_config()` reads both. A KioskConfig built any other way (e.g. `config.load(
KioskConfig, "kiosk")`) leaves `device` as None, and the runner then reads `[device]` from
PORCHLIGHT_DEVICE_* alone.
"""

from __future__ import annotations

import dataclasses
import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from porchlight import config as config_loader
from porchlight.device.config import DeviceConfig
from porchlight.errors import ConfigError

SIM_SOCKET = "sim.sock"


@dataclass
class KioskConfig:
    # The credential (credential.json), the sim control socket and the outbox live here.
    data_dir: Path = field(default_factory=config_loader.default_data_dir)
    # Use this hub instead of the one in the credential (tests, demos, a moved hub).
    hub_url: str | None = None
    # Offer exactly these addresses as ICE host candidates (e.g. ["127.0.0.1"] for a
    # loopback-only demo); empty: every interface except loopback (aioice's default).
    ice_host_addresses: list[str] = field(default_factory=list)
    # The CA certificate (PEM) that signed the clinic's TURN server's certificate, for
    # `turns:` when it is not from a public CA; None: the system's CAs (docs/turn.md).
    turn_ca_file: Path | None = None
    # The simulated device's control socket; default <data_dir>/sim.sock when simulated.
    sim_control_path: Path | None = None
    fullscreen: bool = False
    window_width: int = 800
    window_height: int = 480
    # Joining that hears nothing back for this long returns home with a plain message.
    join_timeout_s: float = 10.0
    # How long "Call ended — thank you" stays on screen.
    ending_s: float = 5.0
    # Hardware settings; None: read [device] / PORCHLIGHT_DEVICE_* when the kiosk starts.
    device: DeviceConfig | None = None

    def __post_init__(self) -> None:
        self.data_dir = Path(self.data_dir)
        if self.turn_ca_file is not None:
            self.turn_ca_file = Path(self.turn_ca_file)
        for address in self.ice_host_addresses:
            try:
                ipaddress.ip_address(address)
            except ValueError:
                raise ConfigError(
                    f"kiosk.ice_host_addresses must be IP addresses, not {address!r}"
                ) from None
        if self.hub_url is not None and not self.hub_url.startswith(("http://", "https://")):
            raise ConfigError("kiosk.hub_url must start with http:// or https://")
        if self.window_width <= 0 or self.window_height <= 0:
            raise ConfigError("kiosk.window_width and window_height must be positive")
        if self.join_timeout_s <= 0 or self.ending_s < 0:
            raise ConfigError("kiosk.join_timeout_s must be positive and ending_s not negative")
        if isinstance(self.device, Mapping):  # a [kiosk.device] table in the file
            try:
                self.device = DeviceConfig(**self.device)
            except TypeError as exc:
                raise ConfigError(f"kiosk.device: {exc}") from None

    def sim_socket(self, simulated: bool) -> Path | None:
        """Where the sim control socket goes (None on real hardware unless configured)."""
        if self.sim_control_path is not None:
            return Path(self.sim_control_path)
        return self.data_dir / SIM_SOCKET if simulated else None

    def device_config(self, env: Mapping[str, str] | None = None) -> DeviceConfig:
        return self.device or config_loader.load(DeviceConfig, "device", env=env)


def load_kiosk_config(
    file: Path | None = None,
    *,
    env: Mapping[str, str] | None = None,
    device: Mapping[str, Any] | None = None,
    **overrides: Any,
) -> KioskConfig:
    """Read `[kiosk]` and `[device]` (file, then PORCHLIGHT_KIOSK_* / _DEVICE_*, then overrides)."""
    kiosk = config_loader.load(KioskConfig, "kiosk", file=file, env=env, **overrides)
    if kiosk.device is None:
        hardware = config_loader.load(DeviceConfig, "device", file=file, env=env, **(device or {}))
        kiosk = dataclasses.replace(kiosk, device=hardware)
    return kiosk

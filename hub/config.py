"""The hub's settings: one dataclass, read by `porchlight.config.load` (file < env < overrides)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from porchlight import config as porchlight_config
from porchlight.errors import ConfigError
from porchlight.hub import turn
from porchlight.protocol import WAITING_GRACE_S

SECTION = "hub"

# How long a minted TURN credential lets its holder make allocations (docs/turn.md). coturn
# checks it only when allocating, and every peer fetches fresh ones for a new connection; the
# 3 h default dates from kiosks that reused their admission's credential for a dropped call,
# and a longer lifetime only widens the window in which a copied credential could be used.
TURN_TTL_S = 3 * 3600.0
_MIN_TURN_SECRET = 16


def _default_data_dir() -> Path:
    return porchlight_config.default_data_dir() / "hub"


@dataclass
class HubConfig:
    host: str = "127.0.0.1"
    port: int = 8740
    data_dir: Path = field(default_factory=_default_data_dir)
    # None: a SQLite file <data_dir>/hub.db. Any SQLAlchemy URL otherwise (PostgreSQL later).
    database_url: str | None = None
    # STUN/TURN URLs handed to both peers. Empty means LAN only; there is never a public default.
    ice_servers: list[str] = field(default_factory=list)
    # A TURN server without a shared-secret scheme: one static username and credential.
    turn_username: str | None = None
    turn_credential: str | None = field(default=None, repr=False)
    # coturn's `static-auth-secret` (use-auth-secret): credentials minted per request instead.
    turn_secret: str | None = field(default=None, repr=False)
    turn_ttl_s: float = TURN_TTL_S
    # "relay": both peers use only TURN-relayed candidates (sites that require it).
    ice_transport_policy: str = "all"
    session_ttl_s: float = 8 * 3600.0
    # How long a patient whose kiosk dropped keeps their place (protocol: 60 s).
    waiting_grace_s: float = WAITING_GRACE_S
    # Where people reach the hub (behind a proxy, say); only printed and used for cookie flags.
    public_url: str | None = None
    # "text" (readable lines) or "json" (one object per line, ids masked: hub/logs.py).
    log_format: str = "text"
    # PostgreSQL only: an instance whose heartbeat is this old is taken for dead, and its
    # kiosks and clinic pages count as dropped (hub/shared_room.py).
    instance_dead_after_s: float = 10.0
    # Each care team's practice patient, whose simulated kiosk clinicians can ring to rehearse
    # (hub/practice.py). The kiosk process starts only when someone rings it.
    practice_patient: bool = True

    def __post_init__(self) -> None:
        self.data_dir = Path(self.data_dir)
        if not 0 <= int(self.port) <= 65535:
            raise ConfigError(f"hub.port must be between 0 and 65535, not {self.port}")
        if self.session_ttl_s <= 0:
            raise ConfigError("hub.session_ttl_s must be a positive number of seconds")
        if self.waiting_grace_s < 0:
            raise ConfigError("hub.waiting_grace_s must not be negative")
        self._check_ice()
        if self.instance_dead_after_s <= 1.0:
            raise ConfigError("hub.instance_dead_after_s must be more than 1 s (the heartbeat)")
        if self.log_format not in ("text", "json"):
            raise ConfigError(f"hub.log_format must be 'text' or 'json', not {self.log_format!r}")
        if self.public_url is not None and urlsplit(self.public_url).scheme not in (
            "http",
            "https",
        ):
            raise ConfigError(
                f"hub.public_url must start with http:// or https://, not {self.public_url!r}"
            )

    def resolved_database_url(self) -> str:
        """The database URL to connect to: the configured one, or the SQLite file in data_dir."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.data_dir / 'hub.db'}"

    def _check_ice(self) -> None:
        for url in self.ice_servers:
            if turn.scheme(url) not in turn.STUN_SCHEMES + turn.TURN_SCHEMES or ":" not in url:
                raise ConfigError(
                    f"hub.ice_servers entry {url!r} is not a stun:, stuns:, turn: or turns: URL"
                )
        has_turn = any(turn.is_turn(url) for url in self.ice_servers)
        static = bool(self.turn_username or self.turn_credential)
        if self.turn_secret is not None:
            if static:
                raise ConfigError(
                    "hub.turn_secret and hub.turn_username/turn_credential are both set: use "
                    "turn_secret for coturn's use-auth-secret, or the static pair for another "
                    "TURN server, not both"
                )
            if len(self.turn_secret) < _MIN_TURN_SECRET:
                raise ConfigError(
                    f"hub.turn_secret is too short: use at least {_MIN_TURN_SECRET} random "
                    "characters (e.g. `openssl rand -hex 32`), the same as coturn's "
                    "static-auth-secret"
                )
            if not has_turn:
                raise ConfigError(
                    "hub.turn_secret is set but hub.ice_servers lists no turn: or turns: URL; "
                    "add your TURN server, e.g. turn:turn.clinic.example:3478?transport=udp"
                )
        elif has_turn and not (self.turn_username and self.turn_credential):
            raise ConfigError(
                "hub.ice_servers lists a TURN server: set hub.turn_secret (coturn's "
                "static-auth-secret), or hub.turn_username and hub.turn_credential"
            )
        if not 60 <= self.turn_ttl_s <= 24 * 3600:
            raise ConfigError(
                "hub.turn_ttl_s must be between 60 and 86400 seconds (it must outlive the "
                "longest consultation; see docs/turn.md)"
            )
        if self.ice_transport_policy not in turn.TRANSPORT_POLICIES:
            raise ConfigError(
                f"hub.ice_transport_policy must be 'all' or 'relay', not "
                f"{self.ice_transport_policy!r}"
            )
        if self.ice_transport_policy == "relay" and not has_turn:
            raise ConfigError(
                "hub.ice_transport_policy is 'relay' but hub.ice_servers lists no TURN server: "
                "no call could connect; add a turn: URL or set the policy to 'all'"
            )

    def ice_server_dicts(
        self, *, now: float | None = None, label: str = ""
    ) -> list[dict[str, Any]]:
        """The ICE servers as RTCIceServer dictionaries (what browsers and aiortc take).

        With hub.turn_secret, TURN entries carry a credential minted for `now` (unix time)
        and labelled `label` (an opaque id: it appears in the TURN server's logs).
        """
        return turn.ice_server_dicts(
            self.ice_servers,
            static_username=self.turn_username,
            static_credential=self.turn_credential,
            secret=self.turn_secret,
            ttl_s=self.turn_ttl_s,
            now=now,
            label=label,
        )

    def rtc_configuration(self, *, now: float, label: str) -> dict[str, Any]:
        """What a peer needs for its RTCConfiguration, as sent to kiosks and clinic pages:
        {"ice_servers": [...], "ice_transport_policy": "all" | "relay"}."""
        return {
            "ice_servers": self.ice_server_dicts(now=now, label=label),
            "ice_transport_policy": self.ice_transport_policy,
        }

    @property
    def uses_https(self) -> bool:
        return bool(self.public_url and self.public_url.lower().startswith("https://"))


def load_config(
    *, file: Path | None = None, env: Mapping[str, str] | None = None, **overrides: Any
) -> HubConfig:
    """Load HubConfig from defaults, `[hub]` in `file`, PORCHLIGHT_HUB_* variables, overrides.

    The shared PORCHLIGHT_DATA_DIR means "<that folder>/hub" for the hub (the same rule as the
    default), so the hub and a kiosk sharing one data dir never write into each other's files.
    """
    env = dict(os.environ if env is None else env)
    if env.get("PORCHLIGHT_DATA_DIR") and "PORCHLIGHT_HUB_DATA_DIR" not in env:
        env["PORCHLIGHT_HUB_DATA_DIR"] = str(porchlight_config.default_data_dir(env) / SECTION)
    return porchlight_config.load(HubConfig, SECTION, file=file, env=env, **overrides)

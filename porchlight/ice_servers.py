"""The hub's ICE servers and transport policy for one peer connection (`GET /api/ice-servers`).

TURN credentials in the answer are minted for the request and short-lived (docs/turn.md), so
a peer asks for each new connection: the clinic page and the clinician twin for each answer,
the kiosk when it connects a call's media afresh. Blocking: call it from a thread.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import requests

from porchlight.errors import NotAuthorised, TransportFailed

ICE_SERVERS_PATH = "/api/ice-servers"


@dataclass(frozen=True)
class IceSettings:
    """What an RTCConfiguration needs: RTCIceServer dicts and "all" or "relay"."""

    servers: tuple[dict[str, Any], ...] = ()
    policy: str = "all"

    @classmethod
    def from_message(cls, message: dict[str, Any]) -> IceSettings:
        """From the hub's `/api/ice-servers` answer, or a `welcome` / `admitted` message."""
        servers = message.get("ice_servers")
        policy = message.get("ice_transport_policy")
        return cls(
            tuple(s for s in servers if isinstance(s, dict)) if isinstance(servers, list) else (),
            # Checked where it is used (rtc.new_peer_connection says what is wrong).
            policy if isinstance(policy, str) and policy else "all",
        )


def fetch_ice_settings(
    session: requests.Session, hub_url: str, timeout: float = 10.0
) -> IceSettings:
    """Ask the hub for fresh ICE servers; `session` carries the caller's credential (a device
    bearer token or a clinician's session cookie)."""
    try:
        response = session.get(hub_url.rstrip("/") + ICE_SERVERS_PATH, timeout=timeout)
    except requests.RequestException as exc:
        raise TransportFailed(
            f"could not reach the hub for ICE servers ({type(exc).__name__}); "
            "check the network and the hub address"
        ) from None
    if response.status_code in (401, 403):
        raise NotAuthorised(
            f"the hub refused to hand out ICE servers ({response.status_code}); "
            "log in again or re-enrol the kiosk"
        )
    if response.status_code != 200:
        raise TransportFailed(f"the hub answered {response.status_code} for its ICE servers")
    try:
        body = response.json()
    except ValueError:
        raise TransportFailed("the hub's ICE servers answer was not JSON") from None
    if not isinstance(body, dict):
        raise TransportFailed("the hub's ICE servers answer was not a JSON object")
    return IceSettings.from_message(body)

"""TURN credentials: coturn's shared-secret scheme (`use-auth-secret`, the "TURN REST API").

The hub and coturn share one secret. For each caller the hub mints a username
"<expiry unix time>:<opaque label>" and a password base64(HMAC-SHA1(secret, username));
coturn recomputes the HMAC and refuses a username whose time has passed. coturn checks the
time only when an allocation is made (an allocation in use outlives it), so the lifetime
must cover the gap between minting and the allocations made with it: every peer asks for
fresh credentials for each new connection, including the kiosk getting a dropped call back
(docs/turn.md).

The label appears in coturn's logs, so it is a random id, never a patient's name or id.
No clock of its own (time passed in) and no I/O; only new_label draws random bytes.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

TURN_SCHEMES = ("turn", "turns")
STUN_SCHEMES = ("stun", "stuns")
TRANSPORT_POLICIES = ("all", "relay")
# coturn's default `rest-api-separator`: the expiry time ends at the first colon.
SEPARATOR = ":"


@dataclass(frozen=True)
class TurnCredential:
    username: str
    credential: str = field(repr=False)  # a password: kept out of reprs and logs
    expires_at: int = 0  # unix time


def scheme(url: str) -> str:
    return url.split(":", 1)[0].lower()


def is_turn(url: str) -> bool:
    return scheme(url) in TURN_SCHEMES


def new_label(kind: str) -> str:
    """An opaque label for a credential: the kind of caller ("kiosk", "clinic") and a random
    id, so one allocation can be told from another in coturn's logs without naming anyone."""
    return f"{kind}-{secrets.token_hex(6)}"


def rest_credential(secret: str, *, now: float, ttl_s: float, label: str) -> TurnCredential:
    """The username and password coturn's `use-auth-secret` accepts until now + ttl_s."""
    if not secret:
        raise ValueError("a TURN shared secret is needed to mint credentials")
    if SEPARATOR in label:
        raise ValueError("a TURN credential label must not contain ':'")
    expires_at = int(now + ttl_s)
    username = f"{expires_at}{SEPARATOR}{label}"
    digest = hmac.new(secret.encode(), username.encode(), hashlib.sha1).digest()
    return TurnCredential(username, base64.b64encode(digest).decode("ascii"), expires_at)


def ice_server_dicts(
    urls: Sequence[str],
    *,
    static_username: str | None = None,
    static_credential: str | None = None,
    secret: str | None = None,
    ttl_s: float = 0.0,
    now: float | None = None,
    label: str = "",
) -> list[dict[str, Any]]:
    """RTCIceServer dictionaries (what browsers and aiortc take) for the configured URLs.

    With a shared secret, every TURN URL gets one freshly minted credential (so `now` is
    needed); otherwise the static username and credential, for TURN servers that have no
    shared-secret scheme.
    """
    username, credential = static_username, static_credential
    if secret and any(is_turn(u) for u in urls):
        if now is None:
            raise ValueError("minting TURN credentials needs the time")
        minted = rest_credential(secret, now=now, ttl_s=ttl_s, label=label or new_label("hub"))
        username, credential = minted.username, minted.credential
    return [
        {"urls": [u], "username": username, "credential": credential}
        if is_turn(u)
        else {"urls": [u]}
        for u in urls
    ]

"""What one hub app holds: its config, store, clock and live signalling, reachable per request."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from starlette.requests import HTTPConnection

from porchlight.hub.config import HubConfig
from porchlight.hub.guards import HubGuards
from porchlight.hub.store import Store

if TYPE_CHECKING:
    from porchlight.hub.signalling import Signalling

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class HubServices:
    config: HubConfig
    store: Store
    clock: Clock
    signalling: Signalling
    # Throttles for wrong passwords and enrolment codes (per hub process).
    guards: HubGuards = field(default_factory=HubGuards)


def services(conn: HTTPConnection) -> HubServices:
    """The services of the app serving this request or WebSocket."""
    return conn.app.state.services

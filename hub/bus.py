"""Message routing between connections, by topic.

Signalling never holds a socket of another connection; it publishes to a topic and whoever
subscribed gets the message. `LocalBus` delivers inside one process. A bus that routes
between several hub instances (PostgreSQL LISTEN/NOTIFY) implements the same two methods.
Messages are JSON-able dicts; delivery is fire-and-forget and in order per publisher.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

Message = dict[str, Any]
Deliver = Callable[[Message], None]

# Topics.
CLINICIANS = "clinicians"  # every clinician page


def device_topic(patient_id: str) -> str:
    return f"device:{patient_id}"


def device_id_topic(device_id: str) -> str:
    """One enrolled device's socket (to close it when the device is revoked)."""
    return f"device-id:{device_id}"


def clinician_topic(conn_id: str) -> str:
    return f"clinician:{conn_id}"


def team_topic(team_id: str) -> str:
    """Every clinic page of one care team (help requests, hub/help_alerts.py)."""
    return f"team:{team_id}"


def session_topic(session_sha256: str) -> str:
    return f"session:{session_sha256}"


def person_topic(username: str) -> str:
    """Every clinic page of one person (their care teams changed: hub/signalling.py)."""
    return f"person:{username}"


# A control message: the connection that receives it closes its socket with this code.
CLOSE_KEY = "_close"


def close_message(code: int, reason: str) -> Message:
    return {CLOSE_KEY: code, "reason": reason}


class Subscription(Protocol):
    def close(self) -> None: ...


class Bus(Protocol):
    async def publish(self, topic: str, message: Message) -> None:
        """Send `message` to every current subscriber of `topic` (none is fine)."""

    def subscribe(self, topic: str, deliver: Deliver) -> Subscription:
        """Call `deliver(message)` (on the event loop, must not block) for each message."""


class _LocalSubscription:
    def __init__(self, bus: LocalBus, topic: str, deliver: Deliver) -> None:
        self._bus = bus
        self.topic = topic
        self.deliver = deliver

    def close(self) -> None:
        subscribers = self._bus._topics.get(self.topic)
        if subscribers is not None and self in subscribers:
            subscribers.remove(self)
            if not subscribers:
                del self._bus._topics[self.topic]


class LocalBus:
    """In-process bus: delivery is a direct call, in subscription order."""

    def __init__(self) -> None:
        self._topics: dict[str, list[_LocalSubscription]] = {}

    async def publish(self, topic: str, message: Message) -> None:
        for subscription in list(self._topics.get(topic, ())):
            subscription.deliver(message)

    def subscribe(self, topic: str, deliver: Deliver) -> Subscription:
        subscription = _LocalSubscription(self, topic, deliver)
        self._topics.setdefault(topic, []).append(subscription)
        return subscription

    def subscriber_count(self, topic: str) -> int:
        return len(self._topics.get(topic, ()))

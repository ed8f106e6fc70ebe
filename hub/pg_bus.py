"""A `Bus` between hub instances over PostgreSQL LISTEN/NOTIFY (nothing else to run).

Every instance LISTENs on one channel and publishes every message there, its own included:
PostgreSQL hands all listeners the notifications in one commit order, so each instance sees
the same sequence, and messages published while holding the shared room's lock
(hub/shared_room.py) arrive in the order the room changed. Each instance then delivers a
message to its own subscribers of the message's topic.

NOTIFY payloads are limited to 8000 bytes; longer messages (SDP offers, a full waiting room)
are split into parts sent in one transaction, which PostgreSQL delivers together and in order.

Like `LocalBus`, a subscription never receives what this instance published before it
subscribed (a new kiosk socket must not get the "replaced" close meant for the old one).
Delivery is at most once: while the LISTEN connection is down (reconnecting), messages are
lost, and `healthy` is False so readiness fails and the room is re-sent when it is back.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable

import anyio
import psycopg

from porchlight.hub.bus import Deliver, Message, Subscription

log = logging.getLogger(__name__)

CHANNEL = "porchlight_bus"
# Under PostgreSQL's 8000-byte limit with room for the part header; payloads are ASCII.
PART_CHARS = 7800
RECONNECT_FIRST_S = 0.2
RECONNECT_CAP_S = 5.0


class _PgSubscription:
    def __init__(self, bus: PgBus, topic: str, deliver: Deliver, after_seq: int) -> None:
        self._bus = bus
        self.topic = topic
        self.deliver = deliver
        # This instance's messages numbered up to here were published before we subscribed.
        self.after_seq = after_seq

    def close(self) -> None:
        subscribers = self._bus._topics.get(self.topic)
        if subscribers is not None and self in subscribers:
            subscribers.remove(self)
            if not subscribers:
                del self._bus._topics[self.topic]


def encode(instance: str, seq: int, topic: str, message: Message) -> list[str]:
    """The NOTIFY payloads for one message: `instance seq index count|part`."""
    body = json.dumps({"t": topic, "m": message}, separators=(",", ":"))  # ASCII-only
    parts = [body[i : i + PART_CHARS] for i in range(0, len(body), PART_CHARS)] or [""]
    return [f"{instance} {seq} {i} {len(parts)}|{part}" for i, part in enumerate(parts)]


class PgBus:
    """`Bus` over LISTEN/NOTIFY. `await start()` before use, `await stop()` at the end."""

    def __init__(
        self,
        dsn: str,
        instance_id: str,
        *,
        on_reconnect: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self._dsn = dsn
        self.instance_id = instance_id
        self._topics: dict[str, list[_PgSubscription]] = {}
        self._seq = 0
        self._publisher: psycopg.AsyncConnection | None = None
        self._publish_lock = asyncio.Lock()
        self._listener_task: asyncio.Task[None] | None = None
        self._listening = asyncio.Event()
        self._partial: dict[tuple[str, str], list[str]] = {}
        self.on_reconnect = on_reconnect
        self.published = 0
        self.delivered = 0

    @property
    def healthy(self) -> bool:
        return self._listening.is_set() and self._publisher is not None

    async def start(self, timeout_s: float = 10.0) -> None:
        self._publisher = await psycopg.AsyncConnection.connect(self._dsn, autocommit=True)
        self._listener_task = asyncio.create_task(self._listen_forever(), name="pg-bus-listen")
        await asyncio.wait_for(self._listening.wait(), timeout_s)

    async def stop(self) -> None:
        if self._listener_task is not None:
            self._listener_task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._listener_task
            self._listener_task = None
        if self._publisher is not None:
            await self._publisher.close()
            self._publisher = None
        self._listening.clear()

    # -- Bus ------------------------------------------------------------------------------

    async def publish(self, topic: str, message: Message) -> None:
        if self._publisher is None:
            raise RuntimeError("the bus is not started")
        # Shielded: psycopg closes a connection whose query is cancelled.
        with anyio.CancelScope(shield=True):
            await self._publish(topic, message)

    async def _publish(self, topic: str, message: Message) -> None:
        assert self._publisher is not None
        async with self._publish_lock:
            self._seq += 1
            payloads = encode(self.instance_id, self._seq, topic, message)
            if len(payloads) == 1:
                await self._publisher.execute("SELECT pg_notify(%s, %s)", (CHANNEL, payloads[0]))
            else:
                async with self._publisher.transaction():
                    for payload in payloads:
                        await self._publisher.execute(
                            "SELECT pg_notify(%s, %s)", (CHANNEL, payload)
                        )
            self.published += 1

    def subscribe(self, topic: str, deliver: Deliver) -> Subscription:
        subscription = _PgSubscription(self, topic, deliver, self._seq)
        self._topics.setdefault(topic, []).append(subscription)
        return subscription

    def subscriber_count(self, topic: str) -> int:
        return len(self._topics.get(topic, ()))

    # -- receiving ------------------------------------------------------------------------

    async def _listen_forever(self) -> None:
        delay = RECONNECT_FIRST_S
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(
                    self._dsn, autocommit=True
                ) as conn:
                    await conn.execute(f"LISTEN {CHANNEL}")
                    reconnected = delay > RECONNECT_FIRST_S
                    delay = RECONNECT_FIRST_S
                    self._listening.set()
                    if reconnected and self.on_reconnect is not None:
                        await self.on_reconnect()
                    async for notify in conn.notifies():
                        self._receive(notify.payload)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the database went away: keep trying, say so once
                if self._listening.is_set():
                    log.warning("bus lost its database connection (%s)", type(exc).__name__)
            self._listening.clear()
            self._partial.clear()
            await asyncio.sleep(delay)
            delay = min(delay * 2, RECONNECT_CAP_S)

    def _receive(self, payload: str) -> None:
        header, _, part = payload.partition("|")
        try:
            instance, seq, index, count = header.split(" ")
            i, n = int(index), int(count)
        except ValueError:
            log.warning("bus ignored a notification it cannot read")
            return
        if n > 1:
            parts = self._partial.setdefault((instance, seq), [])
            if len(parts) != i:  # a part went missing (reconnect): drop the message
                self._partial.pop((instance, seq), None)
                return
            parts.append(part)
            if len(parts) < n:
                return
            part = "".join(self._partial.pop((instance, seq)))
        try:
            envelope = json.loads(part)
            topic, message = envelope["t"], envelope["m"]
        except (ValueError, KeyError, TypeError):
            log.warning("bus ignored a message it cannot read")
            return
        mine = instance == self.instance_id
        number = int(seq)
        for subscription in list(self._topics.get(topic, ())):
            if mine and number <= subscription.after_seq:
                continue
            self.delivered += 1
            subscription.deliver(message)

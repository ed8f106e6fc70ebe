"""What one hub instance needs to work beside others: its id, bus, room sync and readiness.

On SQLite (the embedded default) there is one instance: an in-process bus and a room that is
not shared. On PostgreSQL every instance is cluster-ready with nothing extra to run or
configure: the bus is LISTEN/NOTIFY (hub/pg_bus.py) and the waiting room is shared through the
database (hub/shared_room.py). A single PostgreSQL instance works the same way.
"""

from __future__ import annotations

import os
import socket
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sqlalchemy import Engine

from porchlight.hub.bus import Bus, LocalBus
from porchlight.hub.config import HubConfig
from porchlight.hub.pg_bus import PgBus
from porchlight.hub.room_sync import NotShared, RoomSync
from porchlight.hub.services import Clock
from porchlight.hub.shared_room import SharedRoom
from porchlight.hub.waiting_room import WaitingRoom

if TYPE_CHECKING:
    from porchlight.hub.signalling import Signalling


def new_instance_id() -> str:
    """Unique per process start; says where it runs (no patient data)."""
    return f"{socket.gethostname()[:24]}-{os.getpid()}-{uuid.uuid4().hex[:8]}"


def libpq_dsn(engine: Engine) -> str:
    """The engine's PostgreSQL URL as libpq takes it (without SQLAlchemy's driver name)."""
    return engine.url.set(drivername="postgresql").render_as_string(hide_password=False)


@dataclass
class Cluster:
    instance_id: str
    room: WaitingRoom
    bus: Bus
    room_sync: RoomSync
    pg_bus: PgBus | None = None
    shared: SharedRoom | None = None
    # Set when the instance starts shutting down: readiness fails, load balancers move on.
    draining: bool = False
    started: bool = field(default=False)

    @classmethod
    def create(
        cls, config: HubConfig, engine: Engine, clock: Clock, *, bus: Bus | None = None
    ) -> Cluster:
        instance_id = new_instance_id()
        room = WaitingRoom(config.waiting_grace_s)
        if engine.dialect.name != "postgresql":
            return cls(instance_id, room, bus or LocalBus(), NotShared())
        dsn = libpq_dsn(engine)
        shared = SharedRoom(
            dsn,
            room,
            instance_id=instance_id,
            clock=clock,
            dead_after_s=config.instance_dead_after_s,
        )
        pg_bus = PgBus(dsn, instance_id) if bus is None else None
        return cls(instance_id, room, bus or pg_bus, shared, pg_bus=pg_bus, shared=shared)  # type: ignore[arg-type]

    @property
    def shared_database(self) -> bool:
        return self.shared is not None

    async def start(self, signalling: Signalling) -> None:
        if self.pg_bus is not None:

            async def resend_room() -> None:
                # Messages were lost while the bus was down: send every page the room again.
                async with signalling.room_sync.transaction():
                    await signalling._broadcast()

            self.pg_bus.on_reconnect = resend_room
            await self.pg_bus.start()
        if self.shared is not None:
            self.shared.patient_teams = signalling.patient_teams
            self.shared.on_changed = signalling._broadcast
            await self.shared.start()
        self.started = True

    async def stop(self) -> None:
        self.draining = True
        if self.shared is not None:
            await self.shared.stop()
        if self.pg_bus is not None:
            await self.pg_bus.stop()
        self.started = False

    def problems(self) -> list[str]:
        """Why this instance should not get traffic now ([] when ready)."""
        out = []
        if self.draining:
            out.append("shutting down")
        elif not self.started:
            out.append("starting")
        if self.pg_bus is not None and not self.pg_bus.healthy:
            out.append("message bus not connected")
        if self.shared is not None and not self.shared.healthy:
            out.append("shared waiting room not connected")
        return out

"""One waiting room for every hub instance, kept in PostgreSQL.

Each instance keeps its `WaitingRoom` in memory (the pure rules stay in one place) and changes
it only inside `transaction()`: a PostgreSQL advisory lock shared by all instances is taken,
the room is reloaded if another instance changed it since (a version number says so), the
acting kiosk's current socket is read, the change runs, and the rows that changed are
written back with a new version before the lock is let go. Between changes an instance's
room may lag behind by up to one heartbeat (about a second) for reads such as the REST
waiting-room list; every change starts from the latest state.

Instances write a heartbeat. When one stops beating (killed, machine lost), a survivor
treats its sockets as dropped: its kiosks' patients keep their places for the grace period
(shown offline) and its clinicians' calls wait for them, exactly as for one dropped socket.
The kiosks reconnect (to any instance) and say where they were in `hello`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime

import anyio
import psycopg
from sqlalchemy import BigInteger, Boolean, Column, Integer, String, Table, Text

from porchlight.hub.db import UTCDateTime, metadata
from porchlight.hub.services import Clock
from porchlight.hub.waiting_room import Call, PatientState, Presence, RoomState, WaitingRoom

log = logging.getLogger(__name__)

# pg_advisory_xact_lock key for the room ("room" in ASCII).
ROOM_LOCK = 0x726F6F6D
HEARTBEAT_S = 1.0
# An instance silent this long is taken for dead (its sockets count as dropped).
DEAD_AFTER_S = 10.0

room_meta = Table(
    "room_meta",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("version", BigInteger, nullable=False),
)

room_presence = Table(
    "room_presence",
    metadata,
    Column("patient_id", String(64), primary_key=True),
    Column("display_name", String(200), nullable=False),
    Column("state", String(16), nullable=False),
    Column("since", UTCDateTime(), nullable=False),
    Column("device_lost_at", UTCDateTime(), nullable=True),
    Column("call_id", String(64), nullable=True),
)

room_calls = Table(
    "room_calls",
    metadata,
    Column("call_id", String(64), primary_key=True),
    Column("patient_id", String(64), nullable=True),
    Column("clinician_conn", String(64), nullable=True),
    Column("clinician_username", String(64), nullable=True),
    Column("clinician_name", String(200), nullable=True),
    Column("started", UTCDateTime(), nullable=False),
    Column("clinician_lost_at", UTCDateTime(), nullable=True),
    Column("offer_sdp", Text, nullable=True),
    Column("answered", Boolean, nullable=False),
    # The instance holding the clinician's socket (to notice when it dies).
    Column("clinician_instance", String(64), nullable=True),
    # The clinician's close look (Call.view as a JSON [x, y, w, h] or null) and prompt.
    Column("view_region", Text, nullable=True),
    Column("view_at", UTCDateTime(), nullable=True),
    Column("prompt", String(64), nullable=True),
    Column("prompt_at", UTCDateTime(), nullable=True),
)

room_devices = Table(
    "room_devices",
    metadata,
    Column("patient_id", String(64), primary_key=True),
    Column("conn_id", String(64), nullable=False),
    Column("instance_id", String(64), nullable=False, index=True),
)

hub_instances = Table(
    "hub_instances",
    metadata,
    Column("instance_id", String(64), primary_key=True),
    Column("started", UTCDateTime(), nullable=False),
    Column("heartbeat", UTCDateTime(), nullable=False),
)

_PRESENCE_COLUMNS = "patient_id, display_name, state, since, device_lost_at, call_id"
_CALL_COLUMNS = (
    "call_id, patient_id, clinician_conn, clinician_username, clinician_name, started, "
    "clinician_lost_at, offer_sdp, answered, view_region, view_at, prompt, prompt_at"
)


class SharedRoom:
    """`RoomSync` over PostgreSQL for `room`. `await start()` first, `await stop()` last."""

    def __init__(
        self,
        dsn: str,
        room: WaitingRoom,
        *,
        instance_id: str,
        clock: Clock,
        heartbeat_s: float = HEARTBEAT_S,
        dead_after_s: float = DEAD_AFTER_S,
    ) -> None:
        self._dsn = dsn
        self.room = room
        self.instance_id = instance_id
        self._clock = clock
        self._heartbeat_s = heartbeat_s
        self._dead_after_s = dead_after_s
        self._conn: psycopg.AsyncConnection | None = None
        self._lock = asyncio.Lock()
        self._version: int | None = None
        self._call_instances: dict[str, str | None] = {}
        self._beat_task: asyncio.Task[None] | None = None
        # Called inside the lock when a dead instance's sockets were dropped (re-send the list).
        self.on_changed: Callable[[], Awaitable[None]] | None = None
        # Signalling's map of each patient's care team; filled here for patients whose
        # kiosk is connected to another instance.
        self.patient_teams: dict[str, str | None] = {}
        self.healthy = False

    # -- life -----------------------------------------------------------------------------

    async def start(self) -> None:
        self._conn = await psycopg.AsyncConnection.connect(self._dsn)
        async with self._conn.transaction():
            await self._conn.execute(
                "INSERT INTO room_meta (id, version) VALUES (1, 0) ON CONFLICT DO NOTHING"
            )
            await self._conn.execute(
                "INSERT INTO hub_instances (instance_id, started, heartbeat) "
                "VALUES (%s, now(), now())",
                (self.instance_id,),
            )
        async with self.transaction():
            pass  # loads the room
        self.healthy = True
        self._beat_task = asyncio.create_task(self._beat_forever(), name="shared-room-heartbeat")

    async def stop(self) -> None:
        """Leave the cluster: our sockets are closed by now; others need not wait for us."""
        self.healthy = False
        if self._beat_task is not None:
            self._beat_task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._beat_task
        if self._conn is not None:
            with contextlib.suppress(Exception):
                async with self._lock, self._conn.transaction():
                    await self._conn.execute(
                        "DELETE FROM room_devices WHERE instance_id = %s", (self.instance_id,)
                    )
                    await self._conn.execute(
                        "DELETE FROM hub_instances WHERE instance_id = %s", (self.instance_id,)
                    )
            await self._conn.close()
            self._conn = None

    # -- RoomSync -------------------------------------------------------------------------

    @property
    def version(self) -> int | None:
        return self._version

    @contextlib.asynccontextmanager
    async def transaction(self, patient_id: str | None = None) -> AsyncIterator[None]:
        conn = self._conn
        if conn is None:
            raise RuntimeError("the shared room is not started")
        async with self._lock:
            # Shielded: psycopg closes a connection whose query is cancelled, and a socket
            # closing cancels its handler at any await.
            with anyio.CancelScope(shield=True):
                try:
                    await self._begin(conn, patient_id)
                except BaseException:
                    await self._rollback(conn)
                    raise
            before = self.room.export_state()
            before_conn = self.room.device_conn(patient_id) if patient_id is not None else None
            try:
                yield
            finally:
                # Written even when the change was refused half-way: the room is what it is.
                with anyio.CancelScope(shield=True):
                    try:
                        await self._write(conn, before, patient_id, before_conn)
                        await conn.commit()
                    except BaseException:
                        await self._rollback(conn)
                        self._version = None  # the room may be ahead of the database now
                        raise

    # -- internals ------------------------------------------------------------------------

    async def _begin(self, conn: psycopg.AsyncConnection, patient_id: str | None) -> None:
        # The lock first, in its own statement: a statement reads the data as of its start,
        # so reading in the same statement could miss what the lock's last holder committed.
        await conn.execute("SELECT pg_advisory_xact_lock(%s)", (ROOM_LOCK,))
        cur = await conn.execute(
            "SELECT (SELECT version FROM room_meta WHERE id = 1), "
            "(SELECT conn_id FROM room_devices WHERE patient_id = %s)",
            (patient_id,),
        )
        row = await cur.fetchone()
        assert row is not None
        version = row[0] or 0
        if version != self._version:
            await self._reload(conn)
            self._version = version
        if patient_id is not None:
            self.room.set_device_conn(patient_id, row[1])

    @staticmethod
    async def _rollback(conn: psycopg.AsyncConnection) -> None:
        with contextlib.suppress(Exception):
            await conn.rollback()

    async def _reload(self, conn: psycopg.AsyncConnection) -> None:
        cur = await conn.execute(f"SELECT {_PRESENCE_COLUMNS} FROM room_presence")
        presence = {
            r[0]: Presence(r[0], r[1], PatientState(r[2]), r[3], r[4], r[5])
            for r in await cur.fetchall()
        }
        cur = await conn.execute(f"SELECT {_CALL_COLUMNS}, clinician_instance FROM room_calls")
        calls: dict[str, Call] = {}
        self._call_instances = {}
        for r in await cur.fetchall():
            view = json.loads(r[9]) if r[9] is not None else None
            calls[r[0]] = Call(*r[:9], tuple(view) if view else None, *r[10:13])
            self._call_instances[r[0]] = r[13]
        self.room.load_state(RoomState(presence, calls))
        unknown = [p for p in presence if p not in self.patient_teams]
        if unknown:
            cur = await conn.execute(
                "SELECT patient_id, team_id FROM team_patients WHERE patient_id = ANY(%s)",
                (unknown,),
            )
            teams = dict(await cur.fetchall())
            for patient_id in unknown:
                self.patient_teams[patient_id] = teams.get(patient_id)

    async def _write(
        self,
        conn: psycopg.AsyncConnection,
        before: RoomState,
        patient_id: str | None,
        before_conn: str | None,
    ) -> None:
        after = self.room.export_state()
        changed = False
        for key in before.presence.keys() - after.presence.keys():
            await conn.execute("DELETE FROM room_presence WHERE patient_id = %s", (key,))
            changed = True
        for key, p in after.presence.items():
            if before.presence.get(key) != p:
                await conn.execute(
                    f"INSERT INTO room_presence ({_PRESENCE_COLUMNS}) "
                    "VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (patient_id) DO UPDATE SET "
                    "display_name = EXCLUDED.display_name, state = EXCLUDED.state, "
                    "since = EXCLUDED.since, device_lost_at = EXCLUDED.device_lost_at, "
                    "call_id = EXCLUDED.call_id",
                    (
                        p.patient_id,
                        p.display_name,
                        p.state.value,
                        p.since,
                        p.device_lost_at,
                        p.call_id,
                    ),
                )
                changed = True
        for key in before.calls.keys() - after.calls.keys():
            await conn.execute("DELETE FROM room_calls WHERE call_id = %s", (key,))
            self._call_instances.pop(key, None)
            changed = True
        for key, c in after.calls.items():
            old = before.calls.get(key)
            if old == c:
                continue
            if c.clinician_conn is not None and (
                old is None or old.clinician_conn != c.clinician_conn
            ):
                # Only the instance holding a clinician's socket binds a call to it.
                self._call_instances[key] = self.instance_id
            await conn.execute(
                f"INSERT INTO room_calls ({_CALL_COLUMNS}, clinician_instance) "
                f"VALUES ({', '.join(['%s'] * 14)}) ON CONFLICT (call_id) DO UPDATE "
                "SET patient_id = EXCLUDED.patient_id, clinician_conn = EXCLUDED.clinician_conn, "
                "clinician_username = EXCLUDED.clinician_username, "
                "clinician_name = EXCLUDED.clinician_name, started = EXCLUDED.started, "
                "clinician_lost_at = EXCLUDED.clinician_lost_at, offer_sdp = EXCLUDED.offer_sdp, "
                "answered = EXCLUDED.answered, view_region = EXCLUDED.view_region, "
                "view_at = EXCLUDED.view_at, prompt = EXCLUDED.prompt, "
                "prompt_at = EXCLUDED.prompt_at, clinician_instance = EXCLUDED.clinician_instance",
                (
                    c.call_id,
                    c.patient_id,
                    c.clinician_conn,
                    c.clinician_username,
                    c.clinician_name,
                    c.started,
                    c.clinician_lost_at,
                    c.offer_sdp,
                    c.answered,
                    None if c.view is None else json.dumps(list(c.view)),
                    c.view_at,
                    c.prompt,
                    c.prompt_at,
                    self._call_instances.get(key),
                ),
            )
            changed = True
        if patient_id is not None:
            now_conn = self.room.device_conn(patient_id)
            if now_conn != before_conn:
                if now_conn is None:
                    await conn.execute(
                        "DELETE FROM room_devices WHERE patient_id = %s AND conn_id = %s",
                        (patient_id, before_conn),
                    )
                else:
                    await conn.execute(
                        "INSERT INTO room_devices (patient_id, conn_id, instance_id) "
                        "VALUES (%s, %s, %s) ON CONFLICT (patient_id) DO UPDATE SET "
                        "conn_id = EXCLUDED.conn_id, instance_id = EXCLUDED.instance_id",
                        (patient_id, now_conn, self.instance_id),
                    )
        if changed:
            cur = await conn.execute(
                "UPDATE room_meta SET version = version + 1 WHERE id = 1 RETURNING version"
            )
            row = await cur.fetchone()
            self._version = row[0] if row else None

    async def _beat_forever(self) -> None:
        while True:
            await asyncio.sleep(self._heartbeat_s)
            try:
                # Shielded: a query cancelled half-way (at stop) would close the connection.
                with anyio.CancelScope(shield=True):
                    await self.beat()
                self.healthy = True
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if self.healthy:
                    log.warning("shared room lost its database (%s)", type(exc).__name__)
                self.healthy = False
                await self._reconnect()

    async def _reconnect(self) -> None:
        with contextlib.suppress(Exception):
            if self._conn is not None:
                await self._conn.close()
        try:
            self._conn = await psycopg.AsyncConnection.connect(self._dsn)
            self._version = None  # reload on the next change
        except Exception:
            self._conn = None

    async def beat(self) -> None:
        """Heartbeat; take over a dead instance's sockets; catch up with others' changes."""
        conn = self._conn
        if conn is None:
            await self._reconnect()
            return
        async with self._lock, conn.transaction():
            await conn.execute(
                "UPDATE hub_instances SET heartbeat = now() WHERE instance_id = %s",
                (self.instance_id,),
            )
            cur = await conn.execute(
                "SELECT instance_id FROM hub_instances "
                "WHERE heartbeat < now() - make_interval(secs => %s)",
                (self._dead_after_s,),
            )
            dead = [r[0] for r in await cur.fetchall()]
        if dead:
            await self.drop_instances(dead)
            return
        async with self._lock:
            cur = await conn.execute("SELECT version FROM room_meta WHERE id = 1")
            row = await cur.fetchone()
            await conn.commit()
            if row is not None and row[0] != self._version:
                async with conn.transaction():
                    await self._reload(conn)
                    self._version = row[0]

    async def drop_instances(self, dead: list[str], now: datetime | None = None) -> None:
        """Treat every socket of these instances as dropped (they stopped beating)."""
        conn = self._conn
        assert conn is not None
        now = now or self._clock()
        async with self.transaction():
            for instance in dead:
                cur = await conn.execute(
                    "DELETE FROM room_devices WHERE instance_id = %s RETURNING patient_id, conn_id",
                    (instance,),
                )
                for patient_id, conn_id in await cur.fetchall():
                    self.room.set_device_conn(patient_id, conn_id)
                    self.room.device_lost(patient_id, conn_id, now)
                for call_id, owner in list(self._call_instances.items()):
                    call = self.room.call(call_id)
                    if owner == instance and call is not None and call.clinician_conn:
                        self.room.clinician_lost(call.clinician_conn, now)
                await conn.execute("DELETE FROM hub_instances WHERE instance_id = %s", (instance,))
                log.warning("a hub instance stopped beating; its sockets count as dropped")
            if self.on_changed is not None:
                await self.on_changed()

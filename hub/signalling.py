"""The WebSocket endpoints /ws/device and /ws/clinic (docs/protocol.md).

Each accepted socket becomes a `_Connection`: a reader that hands frames to the handlers,
and a writer that drains the connection's outgoing queue. Handlers change the pure
`WaitingRoom` and publish messages on the bus by topic; they never touch another
connection's socket. All of this runs on the event loop and does no blocking work (the
store is only used during authentication, in a worker thread).
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import json
import logging
import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

import anyio
from fastapi import APIRouter, WebSocket
from starlette.websockets import WebSocketDisconnect

from porchlight.hub import messages as m
from porchlight.hub import ringing, turn
from porchlight.hub.appointments import CallEvents, NoCallEvents
from porchlight.hub.auth import (
    CLINICAL_ROLES,
    DeviceIdentity,
    PersonIdentity,
    accept_device,
    accept_person,
)
from porchlight.hub.bus import (
    CLINICIANS,
    CLOSE_KEY,
    Bus,
    Deliver,
    LocalBus,
    Message,
    Subscription,
    clinician_topic,
    close_message,
    device_id_topic,
    device_topic,
    person_topic,
    session_topic,
    team_topic,
)
from porchlight.hub.config import HubConfig
from porchlight.hub.messages import BadMessage
from porchlight.hub.room_sync import NotShared, RoomSync
from porchlight.hub.services import Clock, services
from porchlight.hub.stills import still_files
from porchlight.hub.teams import can_see, visible_rows
from porchlight.hub.waiting_room import (
    Call,
    CallEnded,
    PatientState,
    Refused,
    WaitingPatient,
    WaitingRoom,
    look_again,
)
from porchlight.protocol import (
    CLINIC_WS_PATH,
    CLOSE_NOT_AUTHORISED,
    CLOSE_REPLACED,
    DEVICE_WS_PATH,
    EndReason,
    HubToClinician,
)

log = logging.getLogger(__name__)

# How often grace periods and session expiry are checked.
TICK_S = 1.0
# Waiting-room lists carry the room's version between hubs (stripped before sending).
ROOM_VERSION_KEY = "_room_version"
# On a person's topic: their care teams are now these (never sent to a socket).
TEAMS_KEY = "_teams"


class _Connection:
    """One accepted WebSocket with its outgoing queue."""

    def __init__(self, websocket: WebSocket) -> None:
        self.id = str(uuid.uuid4())
        self.websocket = websocket
        self._outgoing: anyio.abc.ObjectSendStream[Message]
        self._incoming: anyio.abc.ObjectReceiveStream[Message]
        self._outgoing, self._incoming = anyio.create_memory_object_stream[Message](
            max_buffer_size=1000
        )
        self.closing: int | None = None
        self._room_version = -1

    def send(self, message: Message) -> None:
        """Queue a message for this socket (also the bus's delivery callback)."""
        if self.closing is not None:
            return
        if ROOM_VERSION_KEY in message:
            # Several hubs: a list older than the one this page has is still in flight.
            version = message[ROOM_VERSION_KEY]
            if version < self._room_version:
                return
            self._room_version = version
            message = {k: v for k, v in message.items() if k != ROOM_VERSION_KEY}
        if CLOSE_KEY in message:
            self.closing = int(message[CLOSE_KEY])
        try:
            self._outgoing.send_nowait(message)
        except anyio.WouldBlock:
            # The peer is not reading; a socket that far behind is as good as dead.
            self.closing = 1011
            log.warning("closing a WebSocket whose peer stopped reading")

    async def run(
        self, parse: Callable[[str], Any], handle: Callable[[Any], Awaitable[None]]
    ) -> None:
        """Read and write until the socket closes (either side) or is replaced.

        Each text frame is `parse`d and `handle`d; a BadMessage or Refused from either is
        answered with an `error` message and the connection carries on.
        """
        async with anyio.create_task_group() as tasks:

            async def reader() -> None:
                await self._read(parse, handle)
                tasks.cancel_scope.cancel()

            async def writer() -> None:
                await self._write()
                tasks.cancel_scope.cancel()

            tasks.start_soon(reader)
            tasks.start_soon(writer)

    async def _read(
        self, parse: Callable[[str], Any], handle: Callable[[Any], Awaitable[None]]
    ) -> None:
        while True:
            try:
                frame = await self.websocket.receive()
            except (WebSocketDisconnect, RuntimeError):
                return
            if frame["type"] == "websocket.disconnect":
                return
            if self.closing is not None:
                continue  # replaced or expired: nothing more is acted on
            text = frame.get("text")
            if text is None:
                self.send(m.error("bad_message", "Send JSON text frames, not binary ones."))
                continue
            try:
                await handle(parse(text))
            except (BadMessage, Refused) as exc:
                self.send(m.error(exc.code, str(exc)))

    async def _write(self) -> None:
        async for message in self._incoming:
            if self.closing == 1011:
                break
            try:
                if CLOSE_KEY in message:
                    await self.websocket.close(code=message[CLOSE_KEY], reason=message["reason"])
                    return
                await self.websocket.send_text(json.dumps(message))
            except (WebSocketDisconnect, RuntimeError, OSError):
                return
        with contextlib.suppress(Exception):
            await self.websocket.close(code=1011)


class Signalling:
    """Kiosk and clinician sockets around one waiting room."""

    def __init__(
        self,
        config: HubConfig,
        clock: Clock,
        *,
        bus: Bus | None = None,
        room: WaitingRoom | None = None,
        room_sync: RoomSync | None = None,
        events: CallEvents | NoCallEvents | None = None,
        rings: ringing.RingBook | None = None,
    ) -> None:
        self.room = room if room is not None else WaitingRoom(config.waiting_grace_s)
        # The appointment book hears of joins and calls (hub/appointments.py); rings are
        # kept in the database so any instance can answer them (hub/ringing.py).
        self.events: CallEvents | NoCallEvents = events or NoCallEvents()
        self.rings = rings
        # Every change to the room happens inside room_sync.transaction() (hub/room_sync.py).
        self.room_sync: RoomSync = room_sync if room_sync is not None else NotShared()
        self.bus: Bus = bus if bus is not None else LocalBus()
        self._clock = clock
        self._config = config
        # Clinician sockets on this instance, for closing them when their session ends.
        self._clinicians: dict[str, tuple[_Connection, PersonIdentity]] = {}
        # Each patient's care team, learnt when their kiosk connects: clinicians see only
        # their teams' patients (every row in the room came from a kiosk that connected).
        self.patient_teams: dict[str, str | None] = {}

    def clock(self) -> datetime:
        return self._clock()

    def admitted_message(self, call: Call) -> Message:
        return self._admitted(call)

    async def broadcast(self) -> None:
        await self._broadcast()

    def visible_snapshot(self, person_teams: frozenset[str]) -> list[WaitingPatient]:
        """The waiting room as a clinician of `person_teams` may see it."""
        return [
            r
            for r in self.room.snapshot()
            if can_see(person_teams, self.patient_teams.get(r.patient_id))
        ]

    def _clinician_delivery(self, person: PersonIdentity, conn: _Connection) -> Deliver:
        """Deliver room broadcasts to this page with other teams' patients left out."""

        def deliver(message: Message) -> None:
            if message.get("type") == HubToClinician.WAITING_ROOM:
                # The person's teams as of now: they may have changed since the page opened.
                teams = self._clinicians.get(conn.id, (conn, person))[1].teams
                rows = visible_rows(message["patients"], self.patient_teams, teams)
                message = {**message, "patients": rows}
            conn.send(message)

        return deliver

    async def revoke_device(self, device_id: str) -> None:
        """Close the revoked device's socket, wherever it is connected."""
        await self.bus.publish(
            device_id_topic(device_id),
            close_message(
                CLOSE_NOT_AUTHORISED,
                "This device has been withdrawn. Ask the clinic to enrol it again.",
            ),
        )

    # -- kiosk --------------------------------------------------------------------------

    async def run_device(self, websocket: WebSocket) -> None:
        identity = await accept_device(websocket)
        if identity is None:
            return
        patient_id = identity.patient_id
        self.patient_teams[patient_id] = identity.team_id
        conn = _Connection(websocket)
        topic = device_topic(patient_id)
        subscriptions: list[Subscription] = []
        try:
            # Claim the patient's presence before the older socket hears it is replaced, so
            # its going away cannot flash the patient offline on clinicians' pages meanwhile.
            async with self.room_sync.transaction(patient_id):
                if self.room.device_connected(patient_id, conn.id, self._clock()):
                    await self._broadcast()
            # The newer socket wins: tell whoever holds this patient's topic to close.
            await self.bus.publish(
                topic, close_message(CLOSE_REPLACED, "This kiosk connected again elsewhere.")
            )
            subscriptions.append(self.bus.subscribe(topic, conn.send))
            subscriptions.append(self.bus.subscribe(device_id_topic(identity.device_id), conn.send))
            log.info("kiosk connected")

            async def handle(message: m.DeviceMessage) -> None:
                if isinstance(message, m.DeviceProbe):  # touches no room state: answer now
                    conn.send(m.probe_ack(message.seq))
                    return
                if isinstance(message, m.DeviceStillTaken):
                    await self._on_still_taken(websocket, identity, message)
                    return
                async with self.room_sync.transaction(patient_id):
                    await self._on_device(patient_id, identity.display_name, conn, message)

            await conn.run(m.parse_device_message, handle)
        finally:
            for subscription in subscriptions:
                subscription.close()
            with anyio.CancelScope(shield=True):
                async with self.room_sync.transaction(patient_id):
                    if self.room.device_lost(patient_id, conn.id, self._clock()):
                        await self._broadcast()
            log.info("kiosk disconnected")

    async def _on_device(
        self, patient_id: str, display_name: str, conn: _Connection, message: m.DeviceMessage
    ) -> None:
        now = self._clock()
        match message:
            case m.DeviceHello():
                result = self.room.device_hello(
                    patient_id,
                    display_name,
                    message.state,
                    call_id=message.call_id,
                    since=message.since,
                    now=now,
                )
                conn.send(m.welcome(patient_id, display_name, **self._kiosk_ice()))
                for ending in result.ended:
                    await self._tell_ended(ending)
                if result.state is PatientState.WAITING and result.since is not None:
                    conn.send(m.waiting(result.since))
                if result.readmit is not None:
                    conn.send(self._admitted(result.readmit))
                if result.state is PatientState.IN_CALL:
                    call = self._patient_call(patient_id)
                    if call is not None:
                        self._send_look_again(conn, call, now)
                await self._broadcast()
            case m.DeviceJoin():
                row = self.room.join(patient_id, display_name, now)
                conn.send(m.waiting(row.since))
                await self._broadcast()
                await self.events.joined(patient_id)
            case m.DeviceLeave():
                ending = self.room.leave(patient_id, now)
                conn.send(m.left())
                if ending is not None:
                    await self._tell_ended(ending)
                await self._broadcast()
            case m.DeviceOffer():
                call = self.room.device_offer(patient_id, message.call_id, message.sdp)
                if call.clinician_conn is not None:
                    await self.bus.publish(
                        clinician_topic(call.clinician_conn),
                        m.offer(call.call_id, patient_id, message.sdp),
                    )
            case m.DeviceHangup():
                ending = self.room.device_hangup(patient_id, message.call_id, now)
                if message.reason == "dropped":  # the kiosk could not get the call back
                    ending = dataclasses.replace(ending, reason=EndReason.PATIENT_LOST)
                await self._tell_ended(ending)
                await self._broadcast()
            case m.DeviceStats():
                call = self.room.call(message.call_id)
                if call is None or call.patient_id != patient_id:
                    raise Refused("unknown_call", "This kiosk is not in that call.")
                if call.clinician_conn is not None:
                    await self.bus.publish(
                        clinician_topic(call.clinician_conn),
                        m.stats(call.call_id, patient_id, message),
                    )
            case m.DeviceRingAccept():
                await ringing.accept(self, patient_id, display_name, conn, message.ring_id)

    async def _on_still_taken(
        self, websocket: WebSocket, identity: DeviceIdentity, message: m.DeviceStillTaken
    ) -> None:
        """Tell the call's clinician, and remember the still's call (its progress and
        readiness go to whoever is the call's clinician then, on whichever instance)."""
        patient_id = identity.patient_id
        async with self.room_sync.transaction(patient_id):
            call = self._patient_call(patient_id)
            if call is not None and call.clinician_conn is not None:
                await self.bus.publish(
                    clinician_topic(call.clinician_conn), m.still_taken(message, patient_id)
                )
        files = still_files(websocket)
        await anyio.to_thread.run_sync(
            functools.partial(
                files.note_taken,
                message.still_id,
                identity,
                call_id=call.call_id if call is not None else None,
                request_id=message.request_id,
                now=self._clock(),
            )
        )

    def _send_look_again(self, conn: _Connection, call: Call, now: datetime) -> None:
        """The call's close look and prompt, to a kiosk socket that came back in the call
        (what the clinician set while it was away was lost with the socket)."""
        again = look_again(call, now)
        if again.view:
            box = again.region
            conn.send(
                m.view(None if box is None else m.Region(x=box[0], y=box[1], w=box[2], h=box[3]))
            )
        if again.prompt:
            conn.send(m.prompt_again(again.key, late=again.late))

    def _patient_call(self, patient_id: str) -> Call | None:
        return next((c for c in self.room.calls if c.patient_id == patient_id), None)

    def _admitted(self, call: Call) -> Message:
        name = call.clinician_name or "Your clinician"
        return m.admitted(call.call_id, name, **self._kiosk_ice())

    def _kiosk_ice(self) -> dict[str, Any]:
        """Minted for each message: TURN credentials are short-lived (hub/turn.py)."""
        now = self._clock().timestamp()
        return self._config.rtc_configuration(now=now, label=turn.new_label("kiosk"))

    # -- clinician ----------------------------------------------------------------------

    async def run_clinician(self, websocket: WebSocket) -> None:
        person = await accept_person(websocket, CLINICAL_ROLES)
        if person is None:
            return
        # Learn the teams of this clinician's patients now too: with several hub instances a
        # patient's kiosk may be connected to another one.
        store = services(websocket).store
        known = await anyio.to_thread.run_sync(store.patients_in_teams, person.teams)
        self.patient_teams.update({p.id: p.team_id for p in known})
        conn = _Connection(websocket)
        # Care-team changes while the page is open (an admin on any hub instance publishes
        # them on the person's topic). The pushes follow at once, on delivery (on one hub
        # instance that is before the admin's request is answered); the room, which needs
        # the new teams' patients from the database, follows in _follow_teams.
        teams_in, teams_out = anyio.create_memory_object_stream[frozenset[str]](
            max_buffer_size=float("inf")
        )
        team_subscriptions = {
            team: self.bus.subscribe(team_topic(team), conn.send) for team in person.teams
        }

        def on_person(message: Message) -> None:
            if TEAMS_KEY not in message or conn.id not in self._clinicians:
                return
            teams = frozenset(message[TEAMS_KEY])
            for team in set(team_subscriptions) - teams:
                team_subscriptions.pop(team).close()
            for team in sorted(teams - set(team_subscriptions)):
                team_subscriptions[team] = self.bus.subscribe(team_topic(team), conn.send)
            current = self._clinicians[conn.id][1]
            self._clinicians[conn.id] = (conn, dataclasses.replace(current, teams=teams))
            teams_in.send_nowait(teams)

        subscriptions = [
            self.bus.subscribe(CLINICIANS, self._clinician_delivery(person, conn)),
            self.bus.subscribe(clinician_topic(conn.id), conn.send),
            self.bus.subscribe(session_topic(person.session_sha256), conn.send),
            self.bus.subscribe(person_topic(person.username), on_person),
        ]
        self._clinicians[conn.id] = (conn, person)
        log.info("clinician page connected")
        try:

            async def handle(message: m.ClinicianMessage) -> None:
                current = self._clinicians[conn.id][1]  # its teams may have changed
                async with self.room_sync.transaction():
                    await self._on_clinician(current, conn, message)

            async with anyio.create_task_group() as tasks:
                tasks.start_soon(self._follow_teams, conn, teams_out)
                await conn.run(m.parse_clinician_message, handle)
                tasks.cancel_scope.cancel()
        finally:
            for subscription in [*subscriptions, *team_subscriptions.values()]:
                subscription.close()
            teams_in.close()
            del self._clinicians[conn.id]
            with anyio.CancelScope(shield=True):
                async with self.room_sync.transaction():
                    self.room.clinician_lost(conn.id, self._clock())
                await ringing.clinician_gone(self, conn.id)
            log.info("clinician page disconnected")

    async def person_teams_changed(self, username: str, teams: frozenset[str]) -> None:
        """Tell every open clinic page of this person, on every hub instance, that their care
        teams are now `teams` (after an admin set them)."""
        await self.bus.publish(person_topic(username), {TEAMS_KEY: sorted(teams)})

    async def _follow_teams(
        self, conn: _Connection, changes: anyio.abc.ObjectReceiveStream[frozenset[str]]
    ) -> None:
        """The page's person joined or left care teams (their pushes already follow): show
        the room as the new teams see it — their patients in, the old teams' out — without the
        page reconnecting."""
        store = services(conn.websocket).store
        async for teams in changes:
            # The teams of their patients, for the room's filter (a kiosk may be on another
            # hub instance); blocking, so off the event loop.
            try:
                known = await anyio.to_thread.run_sync(store.patients_in_teams, teams)
            except Exception as exc:  # a database hiccup must not close the page
                log.error("could not read the new teams' patients (%s)", type(exc).__name__)
                known = []
            self.patient_teams.update({p.id: p.team_id for p in known})
            entry = self._clinicians.get(conn.id)
            if entry is None:
                return
            # The teams as they are now (a later change may already have arrived).
            conn.send(self._versioned(m.waiting_room(self.visible_snapshot(entry[1].teams))))
            log.info("clinic page follows new care teams")

    async def _on_clinician(
        self, person: PersonIdentity, conn: _Connection, message: m.ClinicianMessage
    ) -> None:
        now = self._clock()
        match message:
            case m.ClinicianHello():
                call = self.room.clinician_hello(
                    conn.id, person.username, person.display_name, message.call_id, now
                )
                conn.send(self._versioned(m.waiting_room(self.visible_snapshot(person.teams))))
                if call is not None and call.patient_id and call.offer_sdp and not call.answered:
                    conn.send(m.offer(call.call_id, call.patient_id, call.offer_sdp))
            case m.ClinicianAdmit():
                if not can_see(person.teams, self.patient_teams.get(message.patient_id)):
                    # The same answer as for a patient who is not there: nothing to learn.
                    raise Refused("not_waiting", "This patient is not in the waiting room.")
                call = self.room.admit(
                    message.patient_id,
                    conn=conn.id,
                    username=person.username,
                    clinician_name=person.display_name,
                    call_id=str(uuid.uuid4()),
                    now=now,
                )
                row = self.room.patient(message.patient_id)
                name = row.display_name if row is not None else ""
                # Queued before the kiosk hears `admitted`, so it precedes any offer.
                conn.send(m.call_started(call.call_id, message.patient_id, name))
                await self.bus.publish(device_topic(message.patient_id), self._admitted(call))
                await self._broadcast()
                await self.events.call_started(
                    call.call_id, message.patient_id, person.username, "admitted"
                )
            case m.ClinicianAnswer():
                call = self.room.clinician_answer(conn.id, message.call_id)
                await self.bus.publish(
                    device_topic(call.patient_id or ""), m.answer(call.call_id, message.sdp)
                )
            case m.ClinicianHangup():
                await self._tell_ended(self.room.clinician_hangup(conn.id, message.call_id, now))
                await self._broadcast()
            case m.ClinicianRing():
                await ringing.ring(self, person, conn, message.patient_id)
            case m.ClinicianRingCancel():
                await ringing.cancel(self, person, conn, message.ring_id, message.reason)
            case m.ClinicianView():
                call = self._own_call(conn, message.call_id)
                region = message.region
                # Kept with the call: a kiosk away now is sent it when it is back.
                self.room.set_view(
                    call.call_id,
                    None if region is None else (region.x, region.y, region.w, region.h),
                    now,
                )
                await self.bus.publish(device_topic(call.patient_id or ""), m.view(region))
            case m.ClinicianTakeStill():
                call = self._own_call(conn, message.call_id)
                await self.bus.publish(
                    device_topic(call.patient_id or ""), m.take_still(message.request_id)
                )
            case m.ClinicianPrompt():
                call = self._own_call(conn, message.call_id)
                self.room.set_prompt(call.call_id, message.prompt, now)
                await self.bus.publish(
                    device_topic(call.patient_id or ""), m.prompt(message.prompt)
                )

    def _own_call(self, conn: _Connection, call_id: str | None) -> Call:
        """The call this page is the clinician of (and that has a kiosk), or Refused."""
        if call_id is None:
            call = self.room.call_of_clinician(conn.id)
            if call is None:
                raise Refused("unknown_call", "You are not in a call.")
        else:
            call = self.room.call(call_id)
            if call is None:
                raise Refused("unknown_call", "There is no such call.")
            if call.clinician_conn != conn.id:
                raise Refused("not_your_call", "This call belongs to another clinician or page.")
        if call.patient_id is None:
            raise Refused("unknown_call", "The patient's kiosk has not come back to this call yet.")
        return call

    # -- shared -------------------------------------------------------------------------

    async def _broadcast(self) -> None:
        await self.bus.publish(CLINICIANS, self._versioned(m.waiting_room(self.room.snapshot())))

    def _versioned(self, message: Message) -> Message:
        version = self.room_sync.version
        if version is not None:
            message[ROOM_VERSION_KEY] = version
        return message

    async def _tell_ended(self, ending: CallEnded) -> None:
        call = ending.call
        await self.events.call_ended(call.call_id, ending.reason.value)
        message = m.ended(call.call_id, ending.reason)
        if ending.tell_device:
            if call.patient_id is not None:
                await self.bus.publish(device_topic(call.patient_id), message)
        elif call.clinician_conn is not None:
            await self.bus.publish(clinician_topic(call.clinician_conn), message)

    async def session_ended(self, session_sha256: str) -> None:
        """Close every clinician socket of this session (after logout)."""
        await self.bus.publish(
            session_topic(session_sha256),
            close_message(CLOSE_NOT_AUTHORISED, "You have logged out."),
        )

    async def tick(self) -> None:
        """Apply grace periods and session expiry as of now."""
        now = self._clock()
        async with self.room_sync.transaction():
            expired = self.room.expire(now)
            for ending in expired.ended:
                await self._tell_ended(ending)
            if expired.changed:
                await self._broadcast()
        for conn, person in list(self._clinicians.values()):
            if person.session_expires <= now:
                conn.send(
                    close_message(CLOSE_NOT_AUTHORISED, "Your session has expired. Log in again.")
                )

    async def run_timers(self, interval_s: float = TICK_S) -> None:
        while True:
            await anyio.sleep(interval_s)
            await self.tick()


router = APIRouter()


@router.websocket(DEVICE_WS_PATH)
async def device_socket(websocket: WebSocket) -> None:
    await services(websocket).signalling.run_device(websocket)


@router.websocket(CLINIC_WS_PATH)
async def clinic_socket(websocket: WebSocket) -> None:
    await services(websocket).signalling.run_clinician(websocket)

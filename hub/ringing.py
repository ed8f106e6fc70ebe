"""A clinician calls a patient at home: the kiosk rings, the patient answers, the call starts.

Messages (docs/protocol.md, "Ringing"): the clinic page sends `ring {patient_id}`; the hub
checks the clinician is of the patient's care team, the kiosk is connected and the patient is
not already in the room, keeps the ring (table `rings`, so every hub instance can find it),
tells the page `ringing` and the kiosk `ring {ring_id, clinician_name, auto_answer}`.

`auto_answer` is true only when the nurse turned it on for this patient, and is only ever sent
to a clinician of the patient's care team (nobody else can ring at all); the kiosk checks its
own copy of the setting as well, then counts down 10 s aloud and on screen. The kiosk's
`ring_accept {ring_id}` puts the patient in the room and admits them to the ringing clinician
in one step, after which the call goes exactly as an admit does (`admitted`, `call_started`,
offer, answer). `ring_cancel` (the page gave up or the clinician changed their mind) and a
clinician page closing stop the ring (`ring_stopped` to the kiosk). A ring not answered within
`RING_TIMEOUT_S` cannot be accepted any more; both ends stop by themselves by then.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import anyio
from sqlalchemy import Boolean, Column, Engine, String, Table, insert, select, update

from porchlight.hub import messages as m
from porchlight.hub.bus import clinician_topic, device_topic
from porchlight.hub.db import UTCDateTime, metadata
from porchlight.hub.patient_settings import get_settings
from porchlight.hub.store import Store
from porchlight.hub.teams import can_see
from porchlight.hub.waiting_room import Refused

if TYPE_CHECKING:
    from porchlight.hub.auth import PersonIdentity
    from porchlight.hub.signalling import Signalling, _Connection

RING_TIMEOUT_S = 60.0

rings = Table(
    "rings",
    metadata,
    Column("ring_id", String(36), primary_key=True),
    Column("patient_id", String(36), nullable=False, index=True),
    Column("clinician_conn", String(64), nullable=False, index=True),
    Column("clinician_username", String(64), nullable=False),
    Column("clinician_name", String(200), nullable=False),
    Column("auto_answer", Boolean, nullable=False),
    Column("started", UTCDateTime(), nullable=False),
    Column("expires", UTCDateTime(), nullable=False),
    # ringing → answered | cancelled | no_answer | clinician_gone
    Column("state", String(16), nullable=False),
    Column("call_id", String(64), nullable=True),
)


@dataclass(frozen=True)
class Ring:
    ring_id: str
    patient_id: str
    clinician_conn: str
    clinician_username: str
    clinician_name: str
    auto_answer: bool
    started: datetime
    expires: datetime
    state: str
    call_id: str | None


def _ring(row: Any) -> Ring:
    return Ring(**{c.name: row[c.name] for c in rings.c})


class RingBook:
    """The rings, in the hub's database (blocking; call from a worker thread)."""

    def __init__(self, store: Store) -> None:
        self.store = store

    @property
    def engine(self) -> Engine:
        return self.store.engine

    def start(self, patient_id: str, conn: str, person: PersonIdentity, now: datetime) -> Ring:
        """Keep a new ring; Refused if the caller may not ring or someone else is ringing."""
        team = self.store.team_of_patient(patient_id)
        if not can_see(person.teams, team):
            # The same answer as for a kiosk that is away: nothing to learn about others.
            raise Refused("device_offline", "This patient's kiosk cannot be rung.")
        settings = get_settings(self.engine, patient_id)
        ring = Ring(
            ring_id=str(uuid.uuid4()),
            patient_id=patient_id,
            clinician_conn=conn,
            clinician_username=person.username,
            clinician_name=person.display_name,
            auto_answer=settings.auto_answer,
            started=now,
            expires=now + timedelta(seconds=RING_TIMEOUT_S),
            state="ringing",
            call_id=None,
        )
        with self.engine.begin() as db:
            busy = db.execute(
                select(rings.c.ring_id).where(
                    rings.c.patient_id == patient_id,
                    rings.c.state == "ringing",
                    rings.c.expires > now,
                )
            ).first()
            if busy is not None:
                raise Refused("already_ringing", "Someone is already calling this patient.")
            db.execute(insert(rings).values(**ring.__dict__))
        return ring

    def answer(self, ring_id: str, patient_id: str, call_id: str, now: datetime) -> Ring:
        """Mark the ring answered (once); Refused if it is over or not this patient's."""
        with self.engine.begin() as db:
            done = db.execute(
                update(rings)
                .where(
                    rings.c.ring_id == ring_id,
                    rings.c.patient_id == patient_id,
                    rings.c.state == "ringing",
                    rings.c.expires > now,
                )
                .values(state="answered", call_id=call_id)
            )
            if done.rowcount != 1:
                raise Refused("ring_over", "This call is no longer ringing.")
            return _ring(db.execute(select(rings).where(rings.c.ring_id == ring_id)).one()._mapping)

    def stop(
        self,
        state: str,
        *,
        ring_id: str | None = None,
        username: str | None = None,
        conn: str | None = None,
    ) -> list[Ring]:
        """End ringing rings (by id and caller, or all of a page's); returns those ended."""
        where = [rings.c.state == "ringing"]
        if ring_id is not None:
            where.append(rings.c.ring_id == ring_id)
        if username is not None:
            where.append(rings.c.clinician_username == username)
        if conn is not None:
            where.append(rings.c.clinician_conn == conn)
        with self.engine.begin() as db:
            found = [_ring(r._mapping) for r in db.execute(select(rings).where(*where)).all()]
            if found:
                db.execute(
                    update(rings)
                    .where(rings.c.ring_id.in_([r.ring_id for r in found]), *where)
                    .values(state=state)
                )
        return found


# -- signalling's handlers -----------------------------------------------------------------


async def ring(sig: Signalling, person: PersonIdentity, conn: _Connection, patient_id: str) -> None:
    """The clinician asked to call a patient at home."""
    room, now = sig.room, sig.clock()
    if room.call_of_clinician(conn.id) is not None:
        raise Refused("busy", "End your current call before calling another patient.")
    row = room.patient(patient_id)
    if row is not None:
        raise Refused("in_room", "This patient is already in the waiting room; admit them there.")
    if room.device_conn(patient_id) is None:
        raise Refused("device_offline", "This patient's kiosk cannot be rung.")
    book = sig.rings
    if book is None:
        raise Refused("unknown_type", "This hub cannot ring kiosks.")
    made = await anyio.to_thread.run_sync(book.start, patient_id, conn.id, person, now)
    conn.send(m.ringing(made.ring_id, patient_id, made.auto_answer, RING_TIMEOUT_S))
    await sig.bus.publish(
        device_topic(patient_id),
        m.ring(made.ring_id, made.clinician_name, made.auto_answer),
    )


async def cancel(
    sig: Signalling, person: PersonIdentity, conn: _Connection, ring_id: str, reason: str
) -> None:
    book = sig.rings
    stopped = (
        []
        if book is None
        else await anyio.to_thread.run_sync(
            lambda: book.stop(reason, ring_id=ring_id, username=person.username)
        )
    )
    conn.send(m.ring_ended(ring_id, reason))
    for found in stopped:
        await sig.bus.publish(device_topic(found.patient_id), m.ring_stopped(ring_id, reason))


async def clinician_gone(sig: Signalling, conn_id: str) -> None:
    """A clinic page closed: whatever it was ringing stops ringing."""
    book = sig.rings
    if book is None:
        return
    stopped = await anyio.to_thread.run_sync(lambda: book.stop("clinician_gone", conn=conn_id))
    for found in stopped:
        await sig.bus.publish(
            device_topic(found.patient_id), m.ring_stopped(found.ring_id, "cancelled")
        )


async def accept(
    sig: Signalling, patient_id: str, display_name: str, conn: _Connection, ring_id: str
) -> None:
    """The patient answered: into the room and straight into the ringing clinician's call."""
    book = sig.rings
    if book is None:
        raise Refused("ring_over", "This call is no longer ringing.")
    call_id = str(uuid.uuid4())
    now = sig.clock()
    answered = await anyio.to_thread.run_sync(book.answer, ring_id, patient_id, call_id, now)
    room = sig.room
    room.join(patient_id, display_name, now)
    try:
        call = room.admit(
            patient_id,
            conn=answered.clinician_conn,
            username=answered.clinician_username,
            clinician_name=answered.clinician_name,
            call_id=call_id,
            now=now,
        )
    except Refused:
        room.leave(patient_id, now)
        await sig.bus.publish(
            clinician_topic(answered.clinician_conn), m.ring_ended(ring_id, "could_not_connect")
        )
        raise
    await sig.bus.publish(
        clinician_topic(answered.clinician_conn),
        m.call_started(call.call_id, patient_id, display_name),
    )
    conn.send(sig.admitted_message(call))
    await sig.events.joined(patient_id)
    await sig.events.call_started(call.call_id, patient_id, answered.clinician_username, "rang")
    await sig.broadcast()

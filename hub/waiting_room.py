"""The waiting room and the calls in it: who is waiting since when, who talks with whom.

Pure logic: no I/O, no clock, no framework. Every method takes `now`; connections are opaque
ids chosen by the caller. Refusals raise `Refused` with a protocol error code; endings come
back as `CallEnded` values that say whom to tell. The signalling layer turns all of this into
messages.

Rules (docs/protocol.md):
- one entry per patient; a patient is `waiting` or `in_call`;
- the first clinician to admit wins; the others see the patient as `in_call`;
- a kiosk that drops keeps the patient's place for `grace_s` (shown `device_online: false`);
  a clinician who drops keeps the call for `grace_s`; after that the call ends;
- after a hub restart the room is rebuilt from what kiosks say in `hello` (state, since,
  call_id) and from clinicians' `hello` with their call_id, whichever arrives first.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from porchlight.errors import BadInput
from porchlight.protocol import WAITING_GRACE_S, EndReason

# A restored `since` older than this is not believed (a kiosk's clock may be far off).
MAX_RESTORED_WAIT = timedelta(hours=12)
# A prompt asked for this long before the kiosk's socket came back is not shown late
# (`look_again`).
PROMPT_FRESH = timedelta(seconds=20)

_DEVICE_REASONS = frozenset(
    {EndReason.CLINICIAN_ENDED, EndReason.CLINICIAN_LOST, EndReason.REPLACED}
)


class PatientState(StrEnum):
    WAITING = "waiting"
    IN_CALL = "in_call"


class KioskState(StrEnum):
    """What a kiosk says it is doing in its `hello`."""

    IDLE = "idle"
    WAITING = "waiting"
    IN_CALL = "in_call"


class Refused(BadInput):
    """The room refuses an action; `code` is the protocol's error code."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class WaitingPatient:
    """One row of the waiting room as clinicians see it."""

    patient_id: str
    display_name: str
    state: PatientState
    since: datetime
    device_online: bool


@dataclass(frozen=True)
class Call:
    call_id: str
    # None while a clinician holds on to a call the hub has not heard of from its kiosk yet
    # (after a hub restart the clinician may reconnect first).
    patient_id: str | None
    clinician_conn: str | None
    clinician_username: str | None
    clinician_name: str | None
    started: datetime
    # When the clinician's socket went away, or the call was restored without one.
    clinician_lost_at: datetime | None = None
    # The kiosk's last offer, kept so a clinician who reconnects before answering gets it again.
    offer_sdp: str | None = None
    answered: bool = False
    # The clinician's close look (issue 10), kept with the call so a kiosk whose socket comes
    # back in it is sent the look again (`look_again`): the region (x, y, w, h fractions;
    # None: the whole picture) and the prompt on the patient's screen, each with when the
    # clinician last set it (None: not in this call, as far as this hub knows).
    view: tuple[float, float, float, float] | None = None
    view_at: datetime | None = None
    prompt: str | None = None
    prompt_at: datetime | None = None


@dataclass(frozen=True)
class LookAgain:
    """What a kiosk whose socket came back in a call is sent again (issue 10)."""

    # Send `view` with this region (None: the whole picture); False: nothing to send.
    view: bool
    region: tuple[float, float, float, float] | None
    # Send `prompt` with this key (None: clear it); False: nothing to send.
    prompt: bool
    key: str | None
    # The prompt was asked for too long ago to appear now: kept only if already shown.
    late: bool


def look_again(call: Call, now: datetime, prompt_fresh: timedelta = PROMPT_FRESH) -> LookAgain:
    """The call's close look for its kiosk, whose socket just came back.

    Messages the hub published while the socket was down (or dead but not yet noticed) are
    lost, so the look is sent again whether or not the kiosk got it: the kiosk applies a
    region it already crops to as a no-op. The region has no age limit: it is how the
    clinician's page shows the picture now. A prompt has one: it appears large and is spoken,
    and one turning up long after it was asked for (a kiosk may be away a minute and more)
    comes out of nowhere — the clinician has moved on, or asks again. So an older prompt is
    sent `late`: a kiosk already showing it keeps it, one that is not shows none (an earlier
    prompt still on its screen was replaced by the one it missed). A cleared prompt is always
    sent: taking words off the screen late confuses no one.
    """
    asked_at = call.prompt_at
    late = asked_at is not None and call.prompt is not None and now - asked_at >= prompt_fresh
    return LookAgain(call.view_at is not None, call.view, asked_at is not None, call.prompt, late)


@dataclass(frozen=True)
class CallEnded:
    call: Call
    reason: EndReason

    @property
    def tell_device(self) -> bool:
        """True: the kiosk must hear `ended`; False: the clinician must."""
        return self.reason in _DEVICE_REASONS


@dataclass(frozen=True)
class HelloResult:
    ended: tuple[CallEnded, ...]
    # Where the patient is now, or None when they are not in the room.
    state: PatientState | None
    since: datetime | None
    # The hub has a call for this patient that the kiosk does not know about: admit it again.
    readmit: Call | None = None


@dataclass(frozen=True)
class Expired:
    removed: tuple[str, ...]
    ended: tuple[CallEnded, ...]

    @property
    def changed(self) -> bool:
        return bool(self.removed or self.ended)


@dataclass
class Presence:
    """One patient's place in the room (mutable: the room updates it in place)."""

    patient_id: str
    display_name: str
    state: PatientState
    since: datetime
    device_lost_at: datetime | None = None
    call_id: str | None = None


@dataclass(frozen=True)
class RoomState:
    """Who is in the room and the calls, for sharing them between hub instances
    (hub/shared_room.py); which socket is each kiosk's is shared per patient."""

    presence: dict[str, Presence]
    calls: dict[str, Call]


class WaitingRoom:
    def __init__(self, grace_s: float = WAITING_GRACE_S) -> None:
        self.grace = timedelta(seconds=grace_s)
        self._presence: dict[str, Presence] = {}
        self._calls: dict[str, Call] = {}
        self._device_conns: dict[str, str] = {}

    # -- reading ------------------------------------------------------------------------

    def snapshot(self) -> list[WaitingPatient]:
        """Everyone in the room, longest waiting first."""
        rows = [
            WaitingPatient(p.patient_id, p.display_name, p.state, p.since, p.device_lost_at is None)
            for p in self._presence.values()
        ]
        return sorted(rows, key=lambda r: (r.since, r.patient_id))

    def patient(self, patient_id: str) -> WaitingPatient | None:
        return next((r for r in self.snapshot() if r.patient_id == patient_id), None)

    def call(self, call_id: str) -> Call | None:
        return self._calls.get(call_id)

    @property
    def calls(self) -> tuple[Call, ...]:
        return tuple(self._calls.values())

    def call_of_clinician(self, conn: str) -> Call | None:
        return next((c for c in self._calls.values() if c.clinician_conn == conn), None)

    def is_current_device(self, patient_id: str, conn: str) -> bool:
        return self._device_conns.get(patient_id) == conn

    # -- kiosk side ---------------------------------------------------------------------

    def device_connected(self, patient_id: str, conn: str, now: datetime) -> bool:
        """A kiosk socket for this patient is up (a newer one replaces an older one).

        Returns True when the room as clinicians see it changed.
        """
        self._device_conns[patient_id] = conn
        presence = self._presence.get(patient_id)
        if presence is not None and presence.device_lost_at is not None:
            presence.device_lost_at = None
            return True
        return False

    def device_lost(self, patient_id: str, conn: str, now: datetime) -> bool:
        """A kiosk socket went away. Ignored when a newer socket has replaced it."""
        if self._device_conns.get(patient_id) != conn:
            return False
        del self._device_conns[patient_id]
        presence = self._presence.get(patient_id)
        if presence is not None and presence.device_lost_at is None:
            presence.device_lost_at = now
            return True
        return False

    def device_hello(
        self,
        patient_id: str,
        display_name: str,
        kiosk_state: KioskState,
        *,
        call_id: str | None,
        since: datetime | None,
        now: datetime,
    ) -> HelloResult:
        """Reconcile the room with what a (re)connected kiosk says it is doing.

        The kiosk is believed about itself: idle means out of the room, waiting means in it
        (keeping the earlier `since`), in_call means in that call (restored if the hub lost it).
        """
        presence = self._presence.get(patient_id)
        if presence is not None:
            presence.display_name = display_name
            presence.device_lost_at = None
        if kiosk_state is KioskState.IDLE or (kiosk_state is KioskState.IN_CALL and not call_id):
            return HelloResult(self._remove(patient_id, EndReason.PATIENT_LOST), None, None)
        if kiosk_state is KioskState.WAITING:
            if presence is None:
                presence = self._add(patient_id, display_name, self._restored(since, now))
            elif presence.state is PatientState.IN_CALL:
                return HelloResult(
                    (), presence.state, presence.since, readmit=self._calls[presence.call_id or ""]
                )
            return HelloResult((), presence.state, presence.since)
        assert call_id is not None
        call = self._calls.get(call_id)
        if call is not None and call.patient_id not in (None, patient_id):
            # Not this patient's call: end it for this kiosk, leave the other call alone.
            ended = self._remove(patient_id, EndReason.PATIENT_LOST)
            stray = Call(call_id, patient_id, None, None, None, now)
            return HelloResult((*ended, CallEnded(stray, EndReason.CLINICIAN_LOST)), None, None)
        ended: tuple[CallEnded, ...] = ()
        if presence is not None and presence.call_id != call_id:
            since = presence.since
            ended = self._remove(patient_id, EndReason.PATIENT_LOST)
            presence = None
        if call is None:
            # The hub forgot this call (restart): keep it; its clinician has `grace` to return.
            call = Call(call_id, patient_id, None, None, None, now, clinician_lost_at=now)
        elif call.patient_id is None:
            call = dataclasses.replace(call, patient_id=patient_id)
        self._calls[call_id] = call
        if presence is None:
            presence = self._add(patient_id, display_name, self._restored(since, now))
            presence.state = PatientState.IN_CALL
            presence.call_id = call_id
        return HelloResult(ended, presence.state, presence.since)

    def join(self, patient_id: str, display_name: str, now: datetime) -> WaitingPatient:
        """Put the patient in the waiting room; joining again changes nothing."""
        presence = self._presence.get(patient_id)
        if presence is None:
            presence = self._add(patient_id, display_name, now)
        elif presence.state is PatientState.IN_CALL:
            raise Refused("in_call", "You are already in a call; leave it before joining again.")
        presence.display_name = display_name
        presence.device_lost_at = None
        return self.patient(patient_id)  # type: ignore[return-value]

    def leave(self, patient_id: str, now: datetime) -> CallEnded | None:
        """Take the patient out of the room, ending their call if they are in one."""
        ended = self._remove(patient_id, EndReason.PATIENT_ENDED)
        return ended[0] if ended else None

    def device_offer(self, patient_id: str, call_id: str, sdp: str) -> Call:
        """The kiosk's offer for its call; returns the call (to find the clinician)."""
        presence = self._presence.get(patient_id)
        if presence is None or presence.call_id != call_id or call_id not in self._calls:
            raise Refused("unknown_call", "This kiosk is not in that call.")
        call = dataclasses.replace(self._calls[call_id], offer_sdp=sdp, answered=False)
        self._calls[call_id] = call
        return call

    def device_hangup(self, patient_id: str, call_id: str, now: datetime) -> CallEnded:
        presence = self._presence.get(patient_id)
        if presence is None or presence.call_id != call_id:
            raise Refused("unknown_call", "This kiosk is not in that call.")
        return self._remove(patient_id, EndReason.PATIENT_ENDED)[0]

    # -- clinician side -----------------------------------------------------------------

    def admit(
        self,
        patient_id: str,
        *,
        conn: str,
        username: str,
        clinician_name: str,
        call_id: str,
        now: datetime,
    ) -> Call:
        """Start a call between this clinician connection and a waiting patient."""
        presence = self._presence.get(patient_id)
        if presence is None:
            raise Refused("not_waiting", "This patient is not in the waiting room any more.")
        if presence.state is PatientState.IN_CALL:
            raise Refused("already_admitted", "This patient has already been admitted.")
        if presence.device_lost_at is not None:
            raise Refused(
                "device_offline",
                "This patient's kiosk is not connected at the moment; admit them when it is back.",
            )
        if self.call_of_clinician(conn) is not None:
            raise Refused("busy", "End your current call before admitting another patient.")
        if call_id in self._calls:
            raise ValueError("call ids must be unique")
        call = Call(call_id, patient_id, conn, username, clinician_name, now)
        self._calls[call_id] = call
        presence.state = PatientState.IN_CALL
        presence.call_id = call_id
        return call

    def clinician_answer(self, conn: str, call_id: str) -> Call:
        """The clinician's answer; returns the call (to find the kiosk)."""
        call = self._calls.get(call_id)
        if call is None or call.patient_id is None:
            raise Refused("unknown_call", "There is no such call.")
        if call.clinician_conn != conn:
            raise Refused("not_your_call", "This call belongs to another clinician or page.")
        call = dataclasses.replace(call, answered=True)
        self._calls[call_id] = call
        return call

    def set_view(
        self, call_id: str, region: tuple[float, float, float, float] | None, now: datetime
    ) -> Call:
        """The clinician's close look in this call is now `region` (None: the whole picture)."""
        return self._update_call(call_id, view=region, view_at=now)

    def set_prompt(self, call_id: str, key: str | None, now: datetime) -> Call:
        """The prompt on the patient's screen in this call is now `key` (None: none)."""
        return self._update_call(call_id, prompt=key, prompt_at=now)

    def clinician_hangup(self, conn: str, call_id: str, now: datetime) -> CallEnded:
        call = self._calls.get(call_id)
        if call is None:
            raise Refused("unknown_call", "There is no such call.")
        if call.clinician_conn != conn:
            raise Refused("not_your_call", "This call belongs to another clinician or page.")
        del self._calls[call_id]
        if call.patient_id is not None:
            self._presence.pop(call.patient_id, None)
        return CallEnded(call, EndReason.CLINICIAN_ENDED)

    def clinician_hello(
        self, conn: str, username: str, clinician_name: str, call_id: str | None, now: datetime
    ) -> Call | None:
        """A clinician (re)connected, maybe naming the call they were in: rebind it."""
        if call_id is None:
            return None
        current = self.call_of_clinician(conn)
        if current is not None and current.call_id != call_id:
            raise Refused("busy", "This page is already in another call.")
        call = self._calls.get(call_id)
        if call is None:
            # Unknown (hub restarted, kiosk not back yet): hold the claim for `grace`.
            call = Call(call_id, None, conn, username, clinician_name, now)
        elif call.clinician_username not in (None, username):
            raise Refused("not_your_call", "This call belongs to another clinician.")
        else:
            call = dataclasses.replace(
                call,
                clinician_conn=conn,
                clinician_username=username,
                clinician_name=clinician_name,
                clinician_lost_at=None,
            )
        self._calls[call_id] = call
        return call

    def clinician_lost(self, conn: str, now: datetime) -> None:
        """A clinician's socket went away; their call waits `grace` for them to come back."""
        for call in list(self._calls.values()):
            if call.clinician_conn != conn:
                continue
            if call.patient_id is None:
                del self._calls[call.call_id]
            else:
                self._calls[call.call_id] = dataclasses.replace(
                    call, clinician_conn=None, clinician_lost_at=now
                )

    # -- time ---------------------------------------------------------------------------

    def expire(self, now: datetime) -> Expired:
        """Drop whoever has been gone longer than the grace period."""
        removed: list[str] = []
        ended: list[CallEnded] = []
        for patient_id, presence in list(self._presence.items()):
            lost_at = presence.device_lost_at
            if lost_at is not None and lost_at + self.grace <= now:
                ended.extend(self._remove(patient_id, EndReason.PATIENT_LOST))
                removed.append(patient_id)
        for call in list(self._calls.values()):
            if call.patient_id is None:
                if call.started + self.grace <= now:
                    del self._calls[call.call_id]
                    ended.append(CallEnded(call, EndReason.PATIENT_LOST))
            elif call.clinician_lost_at is not None and call.clinician_lost_at + self.grace <= now:
                del self._calls[call.call_id]
                self._presence.pop(call.patient_id, None)
                removed.append(call.patient_id)
                ended.append(CallEnded(call, EndReason.CLINICIAN_LOST))
        return Expired(tuple(removed), tuple(ended))

    # -- sharing between hub instances ------------------------------------------------

    def export_state(self) -> RoomState:
        """A copy of what the room holds; changing it does not change the room."""
        return RoomState(
            {k: dataclasses.replace(v) for k, v in self._presence.items()}, dict(self._calls)
        )

    def load_state(self, state: RoomState) -> None:
        """Replace presence and calls with a copy of `state` (the same room object stays)."""
        self._presence = {k: dataclasses.replace(v) for k, v in state.presence.items()}
        self._calls = dict(state.calls)

    def device_conn(self, patient_id: str) -> str | None:
        """The connection id of this patient's current kiosk socket, if any."""
        return self._device_conns.get(patient_id)

    def set_device_conn(self, patient_id: str, conn: str | None) -> None:
        """Say which socket is this patient's current one (as another instance recorded it)."""
        if conn is None:
            self._device_conns.pop(patient_id, None)
        else:
            self._device_conns[patient_id] = conn

    # -- internals ----------------------------------------------------------------------

    def _add(self, patient_id: str, display_name: str, since: datetime) -> Presence:
        presence = Presence(patient_id, display_name, PatientState.WAITING, since)
        self._presence[patient_id] = presence
        return presence

    def _remove(self, patient_id: str, reason: EndReason) -> tuple[CallEnded, ...]:
        presence = self._presence.pop(patient_id, None)
        if presence is None or presence.call_id is None:
            return ()
        call = self._calls.pop(presence.call_id, None)
        return (CallEnded(call, reason),) if call is not None else ()

    def _update_call(self, call_id: str, **changes: object) -> Call:
        call = self._calls.get(call_id)
        if call is None:
            raise Refused("unknown_call", "There is no such call.")
        call = dataclasses.replace(call, **changes)  # type: ignore[arg-type]
        self._calls[call_id] = call
        return call

    def _restored(self, since: datetime | None, now: datetime) -> datetime:
        if since is None or since > now:
            return now
        return max(since, now - MAX_RESTORED_WAIT)

"""The pure waiting room: presence, admission, grace periods and restoring after a restart."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from porchlight.hub.waiting_room import (
    MAX_RESTORED_WAIT,
    KioskState,
    PatientState,
    Refused,
    WaitingRoom,
)
from porchlight.protocol import WAITING_GRACE_S, EndReason

T0 = datetime(2025, 3, 4, 9, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def room_with_waiting(*patients: str) -> WaitingRoom:
    room = WaitingRoom()
    for i, patient in enumerate(patients):
        room.device_connected(patient, f"dev-{patient}", at(i))
        room.join(patient, f"Name {patient}", at(i))
    return room


def admit(room: WaitingRoom, patient: str, conn: str = "c1", user: str = "ann", now: float = 10):
    return room.admit(
        patient,
        conn=conn,
        username=user,
        clinician_name=f"Dr {user}",
        call_id=f"call-{patient}-{conn}",
        now=at(now),
    )


def test_join_lists_the_patient_once_and_keeps_the_first_since():
    room = WaitingRoom()
    room.device_connected("p1", "d1", at(0))
    first = room.join("p1", "Margaret", at(5))
    again = room.join("p1", "Margaret", at(30))
    assert first == again
    assert [(r.patient_id, r.state, r.since, r.device_online) for r in room.snapshot()] == [
        ("p1", PatientState.WAITING, at(5), True)
    ]


def test_snapshot_is_longest_waiting_first():
    room = WaitingRoom()
    for patient, t in (("b", 20), ("a", 10), ("c", 30)):
        room.join(patient, patient, at(t))
    assert [r.patient_id for r in room.snapshot()] == ["a", "b", "c"]


def test_first_clinician_wins_and_others_see_in_call():
    room = room_with_waiting("p1")
    call = admit(room, "p1", conn="c1", user="ann")
    with pytest.raises(Refused) as refused:
        admit(room, "p1", conn="c2", user="bob")
    assert refused.value.code == "already_admitted"
    assert room.patient("p1").state is PatientState.IN_CALL
    assert room.call_of_clinician("c1") == call
    assert room.call_of_clinician("c2") is None


@pytest.mark.parametrize(
    ("setup", "code"),
    [
        (lambda room: None, "not_waiting"),
        (lambda room: room.device_lost("p1", "dev-p1", at(3)), "device_offline"),
        (lambda room: admit(room, "p2", conn="c1"), "busy"),
    ],
    ids=["gone", "kiosk offline", "clinician already in a call"],
)
def test_admit_refusals(setup, code):
    room = room_with_waiting("p2") if code != "not_waiting" else WaitingRoom()
    if code != "not_waiting":
        room.device_connected("p1", "dev-p1", at(0))
        room.join("p1", "P1", at(1))
    setup(room)
    before = room.snapshot()
    with pytest.raises(Refused) as refused:
        admit(room, "p1", conn="c1")
    assert refused.value.code == code
    assert room.snapshot() == before


def test_join_while_in_call_is_refused():
    room = room_with_waiting("p1")
    admit(room, "p1")
    with pytest.raises(Refused) as refused:
        room.join("p1", "P1", at(20))
    assert refused.value.code == "in_call"


def test_leave_while_waiting_and_while_in_call():
    room = room_with_waiting("p1", "p2")
    assert room.leave("p1", at(5)) is None
    call = admit(room, "p2")
    ended = room.leave("p2", at(20))
    assert ended.call == call and ended.reason is EndReason.PATIENT_ENDED
    assert not ended.tell_device  # the clinician is the one to tell
    assert room.snapshot() == [] and room.calls == ()


def test_hangups_each_way_tell_the_other_side():
    room = room_with_waiting("p1", "p2")
    admit(room, "p1", conn="c1")
    admit(room, "p2", conn="c2", user="bob")
    by_patient = room.device_hangup("p1", "call-p1-c1", at(30))
    by_clinician = room.clinician_hangup("c2", "call-p2-c2", at(30))
    assert (by_patient.reason, by_patient.tell_device) == (EndReason.PATIENT_ENDED, False)
    assert (by_clinician.reason, by_clinician.tell_device) == (EndReason.CLINICIAN_ENDED, True)
    assert room.snapshot() == []


def test_only_the_admitting_page_answers_or_hangs_up():
    room = room_with_waiting("p1")
    admit(room, "p1", conn="c1")
    room.device_offer("p1", "call-p1-c1", "v=0 offer")
    for action in (
        lambda: room.clinician_answer("c2", "call-p1-c1"),
        lambda: room.clinician_hangup("c2", "call-p1-c1", at(20)),
    ):
        with pytest.raises(Refused) as refused:
            action()
        assert refused.value.code == "not_your_call"
    with pytest.raises(Refused) as refused:
        room.device_offer("p1", "another-call", "v=0")
    assert refused.value.code == "unknown_call"
    assert room.clinician_answer("c1", "call-p1-c1").answered


def test_dropped_kiosk_keeps_its_place_for_the_grace_period():
    room = room_with_waiting("p1")
    assert room.device_lost("p1", "dev-p1", at(100))
    assert room.patient("p1").device_online is False
    assert not room.expire(at(100 + WAITING_GRACE_S - 0.001)).changed
    assert room.device_connected("p1", "dev-p1-again", at(150))
    assert room.patient("p1") == room.snapshot()[0]
    assert room.patient("p1").device_online and room.patient("p1").since == at(0)
    room.device_lost("p1", "dev-p1-again", at(200))
    expired = room.expire(at(200 + WAITING_GRACE_S))
    assert expired.removed == ("p1",) and expired.ended == ()
    assert room.snapshot() == []


def test_a_replaced_socket_going_away_changes_nothing():
    room = room_with_waiting("p1")
    room.device_connected("p1", "newer", at(5))
    assert not room.device_lost("p1", "dev-p1", at(6))
    assert room.patient("p1").device_online
    assert room.is_current_device("p1", "newer")


def test_kiosk_hello_restores_waiting_with_its_original_since():
    room = WaitingRoom()  # a fresh hub
    result = room.device_hello(
        "p1", "Margaret", KioskState.WAITING, call_id=None, since=at(-300), now=at(0)
    )
    assert (result.state, result.since) == (PatientState.WAITING, at(-300))
    assert room.patient("p1").since == at(-300)


@pytest.mark.parametrize(
    ("claimed", "expected"),
    [(at(60), at(0)), (at(-10 * 24 * 3600), at(0) - MAX_RESTORED_WAIT), (None, at(0))],
    ids=["future", "absurdly old", "missing"],
)
def test_restored_since_is_never_in_the_future_nor_absurdly_old(claimed, expected):
    room = WaitingRoom()
    room.device_hello("p1", "M", KioskState.WAITING, call_id=None, since=claimed, now=at(0))
    assert room.patient("p1").since == expected


def test_kiosk_hello_idle_takes_it_out_and_ends_its_call():
    room = room_with_waiting("p1", "p2")
    admit(room, "p2")
    assert room.device_hello("p1", "P1", KioskState.IDLE, call_id=None, since=None, now=at(20))
    result = room.device_hello("p2", "P2", KioskState.IDLE, call_id=None, since=None, now=at(20))
    assert [(e.call.call_id, e.reason) for e in result.ended] == [
        ("call-p2-c1", EndReason.PATIENT_LOST)
    ]
    assert room.snapshot() == []


def test_kiosk_that_missed_admitted_is_admitted_again():
    room = room_with_waiting("p1")
    call = admit(room, "p1")
    result = room.device_hello("p1", "P1", KioskState.WAITING, call_id=None, since=None, now=at(20))
    assert result.readmit == call and result.state is PatientState.IN_CALL


def test_call_restored_from_kiosk_then_clinician_rebinds():
    room = WaitingRoom()
    result = room.device_hello(
        "p1", "P1", KioskState.IN_CALL, call_id="X", since=at(-60), now=at(0)
    )
    assert result.state is PatientState.IN_CALL and result.ended == ()
    call = room.clinician_hello("c9", "ann", "Dr Ann", "X", at(5))
    assert (call.patient_id, call.clinician_conn, call.clinician_lost_at) == ("p1", "c9", None)
    assert not room.expire(at(5 + WAITING_GRACE_S * 2)).changed


def test_call_restored_from_kiosk_ends_if_no_clinician_returns():
    room = WaitingRoom()
    room.device_hello("p1", "P1", KioskState.IN_CALL, call_id="X", since=None, now=at(0))
    expired = room.expire(at(WAITING_GRACE_S))
    assert [(e.call.call_id, e.reason, e.tell_device) for e in expired.ended] == [
        ("X", EndReason.CLINICIAN_LOST, True)
    ]
    assert room.snapshot() == []


def test_clinician_back_first_after_restart_then_kiosk_binds():
    room = WaitingRoom()
    claim = room.clinician_hello("c1", "ann", "Dr Ann", "X", at(0))
    assert claim.patient_id is None and room.snapshot() == []
    room.device_hello("p1", "P1", KioskState.IN_CALL, call_id="X", since=None, now=at(3))
    assert room.call("X").patient_id == "p1" and room.call("X").clinician_conn == "c1"
    assert room.patient("p1").state is PatientState.IN_CALL


def test_clinician_claim_expires_when_the_kiosk_never_returns():
    room = WaitingRoom()
    room.clinician_hello("c1", "ann", "Dr Ann", "X", at(0))
    expired = room.expire(at(WAITING_GRACE_S))
    assert [(e.call.call_id, e.reason, e.tell_device) for e in expired.ended] == [
        ("X", EndReason.PATIENT_LOST, False)
    ]
    assert room.calls == ()


def test_clinician_reconnect_rebinds_only_for_the_same_person():
    room = room_with_waiting("p1")
    admit(room, "p1", conn="c1", user="ann")
    room.clinician_lost("c1", at(20))
    assert room.call("call-p1-c1").clinician_conn is None
    with pytest.raises(Refused) as refused:
        room.clinician_hello("c2", "bob", "Dr Bob", "call-p1-c1", at(25))
    assert refused.value.code == "not_your_call"
    call = room.clinician_hello("c3", "ann", "Dr Ann", "call-p1-c1", at(25))
    assert call.clinician_conn == "c3" and call.clinician_lost_at is None


def test_clinician_gone_past_grace_ends_the_call_for_the_kiosk():
    room = room_with_waiting("p1")
    admit(room, "p1")
    room.clinician_lost("c1", at(20))
    assert not room.expire(at(20 + WAITING_GRACE_S - 1)).changed
    expired = room.expire(at(20 + WAITING_GRACE_S))
    assert [(e.reason, e.tell_device) for e in expired.ended] == [(EndReason.CLINICIAN_LOST, True)]
    assert expired.removed == ("p1",)


def test_kiosk_naming_another_patients_call_gets_only_its_own_ending():
    room = room_with_waiting("p1")
    admit(room, "p1")
    result = room.device_hello(
        "p2", "P2", KioskState.IN_CALL, call_id="call-p1-c1", since=None, now=at(20)
    )
    assert [(e.call.patient_id, e.reason, e.tell_device) for e in result.ended] == [
        ("p2", EndReason.CLINICIAN_LOST, True)
    ]
    assert room.call("call-p1-c1").patient_id == "p1"
    assert room.patient("p2") is None


@settings(max_examples=50, deadline=None)
@given(st.lists(st.sampled_from(["c1", "c2", "c3"]), min_size=2, max_size=6))
def test_however_many_clinicians_try_exactly_one_admits(conns):
    room = room_with_waiting("p1")
    winners = []
    for i, conn in enumerate(conns):
        try:
            winners.append(admit(room, "p1", conn=conn, user=conn, now=10 + i).clinician_conn)
        except Refused as refused:
            assert refused.code in ("already_admitted", "busy")
    assert winners == [conns[0]]


PATIENTS = ("p1", "p2", "p3")
CLINICIANS = (("c1", "ann"), ("c2", "bob"))
KNOWN_CODES = {
    "not_waiting",
    "already_admitted",
    "device_offline",
    "busy",
    "in_call",
    "unknown_call",
    "not_your_call",
}


class RoomMachine(RuleBasedStateMachine):
    """Random sequences of everything kiosks, clinicians and time can do."""

    @initialize()
    def start(self):
        self.room = WaitingRoom()
        self.now = T0
        self.serial = 0
        self.device_conn = dict.fromkeys(PATIENTS)
        self.last_since: dict[str, datetime] = {}

    def _next(self) -> str:
        self.serial += 1
        return str(self.serial)

    def _call_ids(self) -> list[str]:
        return [c.call_id for c in self.room.calls] + ["nope"]

    def _try(self, action):
        try:
            return action()
        except Refused as refused:
            assert refused.code in KNOWN_CODES
            return None

    @rule(seconds=st.floats(min_value=0, max_value=2 * WAITING_GRACE_S))
    def time_passes(self, seconds):
        self.now += timedelta(seconds=seconds)
        expired = self.room.expire(self.now)
        for patient in expired.removed:
            assert self.room.patient(patient) is None

    @rule(patient=st.sampled_from(PATIENTS))
    def kiosk_connects(self, patient):
        conn = self._next()
        self.device_conn[patient] = conn
        self.room.device_connected(patient, conn, self.now)

    @rule(patient=st.sampled_from(PATIENTS), stale=st.booleans())
    def kiosk_drops(self, patient, stale):
        conn = "stale" if stale else self.device_conn[patient]
        if conn is not None:
            changed = self.room.device_lost(patient, conn, self.now)
            if stale:
                assert not changed
            else:
                self.device_conn[patient] = None

    @rule(patient=st.sampled_from(PATIENTS))
    def kiosk_joins(self, patient):
        before = self.room.patient(patient)
        row = self._try(lambda: self.room.join(patient, patient.upper(), self.now))
        if row is not None and before is not None:
            assert row.since == before.since  # joining again is idempotent

    @rule(patient=st.sampled_from(PATIENTS))
    def kiosk_leaves(self, patient):
        self.room.leave(patient, self.now)
        assert self.room.patient(patient) is None

    @rule(
        patient=st.sampled_from(PATIENTS),
        kiosk_state=st.sampled_from(list(KioskState)),
        data=st.data(),
    )
    def kiosk_hello(self, patient, kiosk_state, data):
        call_id = data.draw(st.sampled_from(self._call_ids()))
        since = self.now - timedelta(seconds=data.draw(st.integers(-100, 100_000)))
        result = self.room.device_hello(
            patient, patient.upper(), kiosk_state, call_id=call_id, since=since, now=self.now
        )
        row = self.room.patient(patient)
        if kiosk_state is KioskState.IDLE:
            assert row is None and result.state is None
        elif row is not None:
            assert row.device_online and row.since <= self.now

    @rule(patient=st.sampled_from(PATIENTS), clinician=st.sampled_from(CLINICIANS))
    def clinician_admits(self, patient, clinician):
        conn, user = clinician
        self._try(
            lambda: self.room.admit(
                patient,
                conn=conn,
                username=user,
                clinician_name=user,
                call_id=f"call{self._next()}",
                now=self.now,
            )
        )

    @rule(patient=st.sampled_from(PATIENTS), data=st.data())
    def kiosk_offers_or_hangs_up(self, patient, data):
        call_id = data.draw(st.sampled_from(self._call_ids()))
        if data.draw(st.booleans()):
            self._try(lambda: self.room.device_offer(patient, call_id, "sdp"))
        else:
            self._try(lambda: self.room.device_hangup(patient, call_id, self.now))

    @rule(clinician=st.sampled_from(CLINICIANS), data=st.data())
    def clinician_acts(self, clinician, data):
        conn, user = clinician
        call_id = data.draw(st.sampled_from(self._call_ids()))
        action = data.draw(st.sampled_from(["answer", "hangup", "hello", "lost"]))
        if action == "answer":
            self._try(lambda: self.room.clinician_answer(conn, call_id))
        elif action == "hangup":
            self._try(lambda: self.room.clinician_hangup(conn, call_id, self.now))
        elif action == "hello":
            self._try(lambda: self.room.clinician_hello(conn, user, user, call_id, self.now))
        else:
            self.room.clinician_lost(conn, self.now)

    @invariant()
    def presence_and_calls_agree(self):
        rows = {r.patient_id: r for r in self.room.snapshot()}
        calls = {c.call_id: c for c in self.room.calls}
        bound = [c for c in calls.values() if c.patient_id is not None]
        # Every patient in a call has exactly one call, and every bound call has its patient.
        assert len({c.patient_id for c in bound}) == len(bound)
        for call in bound:
            assert rows[call.patient_id].state is PatientState.IN_CALL
        in_call = {p for p, r in rows.items() if r.state is PatientState.IN_CALL}
        assert in_call == {c.patient_id for c in bound}

    @invariant()
    def a_page_holds_at_most_one_call(self):
        conns = [c.clinician_conn for c in self.room.calls if c.clinician_conn is not None]
        assert len(conns) == len(set(conns))

    @invariant()
    def the_list_is_ordered_and_never_from_the_future(self):
        rows = self.room.snapshot()
        assert rows == sorted(rows, key=lambda r: (r.since, r.patient_id))
        assert all(r.since <= self.now for r in rows)

    @invariant()
    def nobody_gone_longer_than_grace_is_listed_after_expiry(self):
        later = self.now + timedelta(seconds=WAITING_GRACE_S)
        offline = [r.patient_id for r in self.room.snapshot() if not r.device_online]
        future = copy.deepcopy(self.room)
        future.expire(later)
        assert not any(future.patient(p) for p in offline)


RoomMachine.TestCase.settings = settings(max_examples=150, stateful_step_count=40, deadline=None)
test_room_machine = RoomMachine.TestCase

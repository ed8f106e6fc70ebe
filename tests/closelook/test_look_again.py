"""The close look a call keeps for its kiosk (hub/waiting_room.py): what a kiosk whose socket
comes back in the call is sent again, by the pure rules, with time passed in."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from porchlight.hub.waiting_room import (
    PROMPT_FRESH,
    KioskState,
    LookAgain,
    Refused,
    WaitingRoom,
    look_again,
)

T0 = datetime(2025, 3, 4, 9, 0, tzinfo=UTC)
REGION = (0.0, 0.55, 0.3, 0.4)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def in_call(room: WaitingRoom, patient: str = "p1", call_id: str = "call-1") -> str:
    room.device_connected(patient, f"dev-{patient}", at(0))
    room.join(patient, "Margaret", at(0))
    room.admit(
        patient, conn="c1", username="ann", clinician_name="Nurse Ann", call_id=call_id, now=at(1)
    )
    return call_id


def test_a_new_call_has_nothing_to_send_again():
    room = WaitingRoom()
    call = room.call(in_call(room))
    assert look_again(call, at(2)) == LookAgain(False, None, False, None, False)


def test_the_region_is_sent_again_however_old():
    room = WaitingRoom()
    call_id = in_call(room)
    room.set_view(call_id, REGION, at(2))
    assert look_again(room.call(call_id), at(3600)) == LookAgain(True, REGION, False, None, False)
    # Back to the whole picture is a look too: a kiosk still cropping must hear it.
    room.set_view(call_id, None, at(3))
    assert look_again(room.call(call_id), at(4)).view is True
    assert look_again(room.call(call_id), at(4)).region is None


def test_a_prompt_is_sent_as_it_is_while_fresh_then_late():
    room = WaitingRoom()
    call_id = in_call(room)
    room.set_prompt(call_id, "show_ankles", at(10))
    fresh = look_again(room.call(call_id), at(10) + PROMPT_FRESH - timedelta(milliseconds=1))
    assert (fresh.prompt, fresh.key, fresh.late) == (True, "show_ankles", False)
    late = look_again(room.call(call_id), at(10) + PROMPT_FRESH)
    assert (late.prompt, late.key, late.late) == (True, "show_ankles", True)


def test_a_cleared_prompt_is_always_sent_and_never_late():
    room = WaitingRoom()
    call_id = in_call(room)
    room.set_prompt(call_id, "show_ankles", at(10))
    room.set_prompt(call_id, None, at(11))
    again = look_again(room.call(call_id), at(3600))
    assert (again.prompt, again.key, again.late) == (True, None, False)


def test_the_look_ends_with_the_call_and_the_next_call_starts_without_one():
    room = WaitingRoom()
    call_id = in_call(room)
    room.set_view(call_id, REGION, at(2))
    room.set_prompt(call_id, "show_ankles", at(2))
    room.clinician_hangup("c1", call_id, at(5))
    with pytest.raises(Refused):
        room.set_view(call_id, REGION, at(6))
    following = room.call(in_call(room, call_id="call-2"))
    assert look_again(following, at(7)) == LookAgain(False, None, False, None, False)


def test_the_look_is_kept_when_either_side_comes_back_to_the_call():
    room = WaitingRoom()
    call_id = in_call(room)
    room.set_view(call_id, REGION, at(2))
    room.set_prompt(call_id, "show_ankles", at(2))
    room.device_lost("p1", "dev-p1", at(3))
    room.device_connected("p1", "dev-p1b", at(4))
    room.device_hello("p1", "Margaret", KioskState.IN_CALL, call_id=call_id, since=None, now=at(4))
    room.clinician_lost("c1", at(5))
    room.clinician_hello("c2", "ann", "Nurse Ann", call_id, at(6))
    room.device_offer("p1", call_id, "v=0")
    again = look_again(room.call(call_id), at(7))
    assert (again.view, again.region, again.key) == (True, REGION, "show_ankles")
    # It is part of the room's state that hub instances share.
    assert room.export_state().calls[call_id].view == REGION


def test_a_call_the_hub_restored_from_its_kiosk_knows_no_look():
    room = WaitingRoom()  # a hub that restarted: the kiosk says it is in a call
    room.device_connected("p1", "dev-p1", at(0))
    room.device_hello("p1", "Margaret", KioskState.IN_CALL, call_id="call-1", since=None, now=at(0))
    # Sending "the whole picture" would undo a look the kiosk and the page both still have.
    assert look_again(room.call("call-1"), at(1)) == LookAgain(False, None, False, None, False)

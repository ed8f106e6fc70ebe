"""WebSocket signalling through the real app (Starlette's TestClient, one event loop)."""

from __future__ import annotations

import time
from contextlib import contextmanager

import pytest
from starlette.websockets import WebSocketDisconnect

from porchlight.hub.app import create_app
from porchlight.protocol import (
    CLINIC_WS_PATH,
    CLOSE_FORBIDDEN,
    CLOSE_NOT_AUTHORISED,
    CLOSE_REPLACED,
    DEVICE_WS_PATH,
    WAITING_GRACE_S,
)

from .conftest import SECOND_CLINICIAN, TestClient, device_headers, dump, login, new_device


def expect(ws, type_: str, **fields) -> dict:
    message = ws.receive_json()
    assert message["type"] == type_, message
    for key, value in fields.items():
        assert message[key] == value, (key, message)
    return message


def expect_closed(ws, code: int) -> None:
    with pytest.raises(WebSocketDisconnect) as closed:
        ws.receive_json()
    assert closed.value.code == code


def wait_for(client, condition, timeout_s: float = 5.0) -> None:
    """Poll `condition` on the app's event loop until it holds."""
    deadline = time.monotonic() + timeout_s
    while not client.portal.call(condition):
        assert time.monotonic() < deadline, "the hub never reached the expected state"
        time.sleep(0.005)


def row(message: dict, patient_id: str) -> dict | None:
    return next((p for p in message["patients"] if p["patient_id"] == patient_id), None)


@contextmanager
def clinic_socket(client, username="clinician"):
    """A logged-in clinician page's socket, after its hello."""
    login(client, username)
    with client.websocket_connect(CLINIC_WS_PATH) as ws:
        ws.send_json({"type": "hello"})
        expect(ws, "waiting_room")
        yield ws


@contextmanager
def kiosk_socket(client, token, state="idle", **hello):
    with client.websocket_connect(DEVICE_WS_PATH, headers=device_headers(token)) as ws:
        ws.send_json({"type": "hello", "state": state, **hello})
        expect(ws, "welcome")
        yield ws


def start_call(client, clinic, kiosk, patient_id) -> str:
    kiosk.send_json({"type": "join"})
    expect(kiosk, "waiting")
    # Earlier hellos pushed lists too; the join's list is the first with the patient waiting.
    for _ in range(5):
        listed = row(expect(clinic, "waiting_room"), patient_id)
        if listed is not None:
            break
    assert listed["state"] == "waiting"
    clinic.send_json({"type": "admit", "patient_id": patient_id})
    call_id = expect(clinic, "call_started", patient_id=patient_id)["call_id"]
    expect(kiosk, "admitted", call_id=call_id, clinician_name="Nurse Priya Shah")
    assert row(expect(clinic, "waiting_room"), patient_id)["state"] == "in_call"
    return call_id


def test_whole_call_kiosk_hangs_up(client, demo):
    with clinic_socket(client) as clinic, kiosk_socket(client, demo.device_token) as kiosk:
        expect(clinic, "waiting_room", patients=[])  # the kiosk's idle hello
        kiosk.send_json({"type": "join"})
        waiting = expect(kiosk, "waiting")
        listed = expect(clinic, "waiting_room")["patients"]
        assert listed == [
            {
                "patient_id": demo.patient_id,
                "display_name": "Margaret Jones",
                "state": "waiting",
                "since": waiting["since"],
                "device_online": True,
            }
        ]
        clinic.send_json({"type": "admit", "patient_id": demo.patient_id})
        started = expect(clinic, "call_started", display_name="Margaret Jones")
        call_id = started["call_id"]
        admitted = expect(kiosk, "admitted", call_id=call_id, ice_servers=[])
        assert admitted["clinician_name"] == "Nurse Priya Shah"
        assert row(expect(clinic, "waiting_room"), demo.patient_id)["state"] == "in_call"

        kiosk.send_json({"type": "offer", "call_id": call_id, "sdp": "v=0 offer"})
        expect(clinic, "offer", call_id=call_id, patient_id=demo.patient_id, sdp="v=0 offer")
        clinic.send_json({"type": "answer", "call_id": call_id, "sdp": "v=0 answer"})
        expect(kiosk, "answer", call_id=call_id, sdp="v=0 answer")

        kiosk.send_json({"type": "hangup", "call_id": call_id})
        expect(clinic, "ended", call_id=call_id, reason="patient_ended")
        expect(clinic, "waiting_room", patients=[])


def test_clinician_hangs_up(client, demo):
    with clinic_socket(client) as clinic, kiosk_socket(client, demo.device_token) as kiosk:
        call_id = start_call(client, clinic, kiosk, demo.patient_id)
        clinic.send_json({"type": "hangup", "call_id": call_id})
        expect(kiosk, "ended", call_id=call_id, reason="clinician_ended")
        expect(clinic, "waiting_room", patients=[])
        # The kiosk can join again afterwards.
        kiosk.send_json({"type": "join"})
        expect(kiosk, "waiting")


def test_kiosk_leave_while_waiting_and_in_call(client, demo):
    with clinic_socket(client) as clinic, kiosk_socket(client, demo.device_token) as kiosk:
        call_id = start_call(client, clinic, kiosk, demo.patient_id)
        kiosk.send_json({"type": "leave"})
        expect(kiosk, "left")
        expect(clinic, "ended", call_id=call_id, reason="patient_ended")
        expect(clinic, "waiting_room", patients=[])
        kiosk.send_json({"type": "join"})
        expect(kiosk, "waiting")
        assert row(expect(clinic, "waiting_room"), demo.patient_id)
        kiosk.send_json({"type": "leave"})
        expect(kiosk, "left")
        expect(clinic, "waiting_room", patients=[])


def test_second_clinician_cannot_admit_and_sees_in_call(client, demo):
    login(client, SECOND_CLINICIAN)
    with client.websocket_connect(CLINIC_WS_PATH) as other:
        other.send_json({"type": "hello"})
        expect(other, "waiting_room")
        with clinic_socket(client) as clinic, kiosk_socket(client, demo.device_token) as kiosk:
            call_id = start_call(client, clinic, kiosk, demo.patient_id)
            # The other page saw every change: idle hello, join, admit.
            expect(other, "waiting_room", patients=[])
            assert row(expect(other, "waiting_room"), demo.patient_id)["state"] == "waiting"
            assert row(expect(other, "waiting_room"), demo.patient_id)["state"] == "in_call"
            other.send_json({"type": "admit", "patient_id": demo.patient_id})
            expect(other, "error", code="already_admitted")
            # Nor can it answer or end someone else's call.
            other.send_json({"type": "answer", "call_id": call_id, "sdp": "v=0"})
            expect(other, "error", code="not_your_call")
            other.send_json({"type": "hangup", "call_id": call_id})
            expect(other, "error", code="not_your_call")
            # The call is untouched: the kiosk's next message still reaches the right page.
            kiosk.send_json({"type": "offer", "call_id": call_id, "sdp": "v=0 offer"})
            expect(clinic, "offer", call_id=call_id)


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        ({"type": "dance"}, "unknown_type"),
        ({"type": "admit"}, "bad_message"),
        ({"type": "admit", "patient_id": 7}, "bad_message"),
        ({"no": "type"}, "bad_message"),
        ({"type": "hangup", "call_id": "no such call"}, "bad_message"),
        ({"type": "hangup", "call_id": "no-such-call"}, "unknown_call"),
        ({"type": "admit", "patient_id": "nobody"}, "not_waiting"),
    ],
)
def test_clinician_bad_messages_get_errors_and_change_nothing(client, demo, frame, code):
    with clinic_socket(client) as clinic, kiosk_socket(client, demo.device_token) as kiosk:
        kiosk.send_json({"type": "join"})
        expect(kiosk, "waiting")
        expect(clinic, "waiting_room")
        before = expect(clinic, "waiting_room")
        clinic.send_json(frame)
        expect(clinic, "error", code=code)
        clinic.send_json({"type": "hello"})
        assert expect(clinic, "waiting_room") == before


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        ("not json at all", "bad_message"),
        ('["a", "list"]', "bad_message"),
        ('{"type": "fly"}', "unknown_type"),
        ('{"type": "offer", "call_id": "c1"}', "bad_message"),
        ('{"type": "offer", "call_id": "c1", "sdp": "v=0"}', "unknown_call"),
        ('{"type": "hello", "state": "asleep"}', "bad_message"),
    ],
)
def test_kiosk_bad_messages_get_errors(client, demo, frame, code):
    with kiosk_socket(client, demo.device_token) as kiosk:
        kiosk.send_text(frame)
        error = expect(kiosk, "error", code=code)
        assert "v=0" not in error["message"]
        kiosk.send_json({"type": "join"})
        expect(kiosk, "waiting")


def test_binary_frames_are_refused(client, demo):
    with kiosk_socket(client, demo.device_token) as kiosk:
        kiosk.send_bytes(b"\x00\x01")
        expect(kiosk, "error", code="bad_message")


def test_duplicate_kiosk_connection_replaces_the_older_one(client, demo):
    with clinic_socket(client) as clinic, kiosk_socket(client, demo.device_token) as first:
        first.send_json({"type": "join"})
        since = expect(first, "waiting")["since"]
        expect(clinic, "waiting_room")
        expect(clinic, "waiting_room")
        with kiosk_socket(client, demo.device_token, state="waiting", since=since) as second:
            expect_closed(first, CLOSE_REPLACED)
            expect(second, "waiting", since=since)
            listed = row(expect(clinic, "waiting_room"), demo.patient_id)
            assert listed["device_online"] and listed["since"] == since
            # The older socket going away did not take the patient offline.
            second.send_json({"type": "join"})
            expect(second, "waiting", since=since)
            clinic.send_json({"type": "hello"})
            assert row(expect(clinic, "waiting_room"), demo.patient_id)["device_online"]


def test_dropped_kiosk_keeps_its_place_then_is_removed_after_grace(client, demo, clock):
    with clinic_socket(client) as clinic:
        with kiosk_socket(client, demo.device_token) as kiosk:
            kiosk.send_json({"type": "join"})
            since = expect(kiosk, "waiting")["since"]
            expect(clinic, "waiting_room")
            expect(clinic, "waiting_room")
        dropped = row(expect(clinic, "waiting_room"), demo.patient_id)
        assert (dropped["device_online"], dropped["since"]) == (False, since)

        clock.advance(WAITING_GRACE_S - 1)
        client.portal.call(client.app.state.services.signalling.tick)
        with kiosk_socket(client, demo.device_token, state="waiting", since=since) as kiosk:
            expect(kiosk, "waiting", since=since)
            for _ in ("socket up", "hello"):
                back = row(expect(clinic, "waiting_room"), demo.patient_id)
                assert (back["device_online"], back["since"]) == (True, since)
        assert not row(expect(clinic, "waiting_room"), demo.patient_id)["device_online"]
        clock.advance(WAITING_GRACE_S)
        client.portal.call(client.app.state.services.signalling.tick)
        expect(clinic, "waiting_room", patients=[])


def test_hub_restart_restores_the_waiting_patient_with_the_original_since(
    config, store, clock, demo
):
    with (
        TestClient(create_app(config, store=store, clock=clock)) as first_hub,
        kiosk_socket(first_hub, demo.device_token) as kiosk,
    ):
        kiosk.send_json({"type": "join"})
        since = expect(kiosk, "waiting")["since"]
    clock.advance(30)
    with (
        TestClient(create_app(config, store=store, clock=clock)) as second_hub,
        clinic_socket(second_hub) as clinic,
        kiosk_socket(second_hub, demo.device_token, state="waiting", since=since) as kiosk,
    ):
        expect(kiosk, "waiting", since=since)
        listed = row(expect(clinic, "waiting_room"), demo.patient_id)
        assert listed == {
            "patient_id": demo.patient_id,
            "display_name": "Margaret Jones",
            "state": "waiting",
            "since": since,
            "device_online": True,
        }


def test_hub_restart_mid_call_both_sides_rebind(config, store, clock, demo):
    with (
        TestClient(create_app(config, store=store, clock=clock)) as first_hub,
        clinic_socket(first_hub) as clinic,
        kiosk_socket(first_hub, demo.device_token) as k,
    ):
        call_id = start_call(first_hub, clinic, k, demo.patient_id)
    with TestClient(create_app(config, store=store, clock=clock)) as second_hub:
        login(second_hub)
        with second_hub.websocket_connect(CLINIC_WS_PATH) as clinic:
            clinic.send_json({"type": "hello", "call_id": call_id})  # the page comes back first
            expect(clinic, "waiting_room", patients=[])
            with kiosk_socket(second_hub, demo.device_token, state="in_call", call_id=call_id) as k:
                assert row(expect(clinic, "waiting_room"), demo.patient_id)["state"] == "in_call"
                k.send_json({"type": "offer", "call_id": call_id, "sdp": "v=0 again"})
                expect(clinic, "offer", call_id=call_id, sdp="v=0 again")
                clinic.send_json({"type": "answer", "call_id": call_id, "sdp": "v=0 answer"})
                expect(k, "answer", call_id=call_id)
                clinic.send_json({"type": "hangup", "call_id": call_id})
                expect(k, "ended", call_id=call_id, reason="clinician_ended")


def test_clinician_reconnect_gets_the_unanswered_offer_again(client, demo):
    with kiosk_socket(client, demo.device_token) as kiosk:
        with clinic_socket(client) as clinic:
            call_id = start_call(client, clinic, kiosk, demo.patient_id)
            kiosk.send_json({"type": "offer", "call_id": call_id, "sdp": "v=0 offer"})
            expect(clinic, "offer", call_id=call_id)
        with client.websocket_connect(CLINIC_WS_PATH) as clinic:
            clinic.send_json({"type": "hello", "call_id": call_id})
            expect(clinic, "waiting_room")
            expect(clinic, "offer", call_id=call_id, sdp="v=0 offer")
            clinic.send_json({"type": "answer", "call_id": call_id, "sdp": "v=0 answer"})
            expect(kiosk, "answer", call_id=call_id, sdp="v=0 answer")


def test_clinician_gone_past_grace_ends_the_call_for_the_kiosk(client, demo, clock):
    with kiosk_socket(client, demo.device_token) as kiosk:
        with clinic_socket(client) as clinic:
            call_id = start_call(client, clinic, kiosk, demo.patient_id)
        room = client.app.state.services.signalling.room
        # Nothing is sent when a page goes away; wait until the hub has noticed.
        wait_for(client, lambda: room.call(call_id).clinician_lost_at is not None)
        clock.advance(WAITING_GRACE_S - 1)
        client.portal.call(client.app.state.services.signalling.tick)
        assert room.call(call_id) is not None
        clock.advance(1)
        client.portal.call(client.app.state.services.signalling.tick)
        expect(kiosk, "ended", call_id=call_id, reason="clinician_lost")


def test_kiosk_idle_hello_mid_call_tells_the_clinician(client, demo):
    with clinic_socket(client) as clinic:
        with kiosk_socket(client, demo.device_token) as kiosk:
            call_id = start_call(client, clinic, kiosk, demo.patient_id)
        assert not row(expect(clinic, "waiting_room"), demo.patient_id)["device_online"]
        with kiosk_socket(client, demo.device_token, state="idle"):
            expect(clinic, "waiting_room")  # online again (still in the call) ...
            expect(clinic, "ended", call_id=call_id, reason="patient_lost")  # ... until hello
            expect(clinic, "waiting_room", patients=[])


def test_kiosk_sockets_need_a_valid_credential(client, store, demo, clock):
    before = dump(store)
    for headers in ({}, device_headers("wrong"), {"Authorization": "Token x"}):
        with client.websocket_connect(DEVICE_WS_PATH, headers=headers) as ws:
            expect_closed(ws, CLOSE_NOT_AUTHORISED)
    assert dump(store) == before
    store.revoke_device(demo.device_id, now=clock.now)
    with client.websocket_connect(DEVICE_WS_PATH, headers=device_headers(demo.device_token)) as ws:
        expect_closed(ws, CLOSE_NOT_AUTHORISED)


def test_clinic_socket_needs_a_clinician_session_from_this_hub(client):
    with client.websocket_connect(CLINIC_WS_PATH) as ws:
        expect_closed(ws, CLOSE_NOT_AUTHORISED)
    login(client, "support")
    with client.websocket_connect(CLINIC_WS_PATH) as ws:
        expect_closed(ws, CLOSE_FORBIDDEN)
    login(client, "clinician")
    with client.websocket_connect(
        CLINIC_WS_PATH, headers={"Origin": "http://elsewhere.example"}
    ) as ws:
        expect_closed(ws, CLOSE_FORBIDDEN)
    with client.websocket_connect(CLINIC_WS_PATH, headers={"Origin": "http://testserver"}) as ws:
        ws.send_json({"type": "hello"})
        expect(ws, "waiting_room")


def test_logout_and_session_expiry_close_the_clinic_socket(client, clock, config):
    with clinic_socket(client) as clinic:
        client.post("/api/logout")
        expect_closed(clinic, CLOSE_NOT_AUTHORISED)
    with clinic_socket(client) as clinic:
        clock.advance(config.session_ttl_s)
        client.portal.call(client.app.state.services.signalling.tick)
        expect_closed(clinic, CLOSE_NOT_AUTHORISED)


def test_two_patients_are_routed_separately(client, store, demo, clock):
    other = store.add_patient("Arthur Dent", now=clock.now)
    other_token = new_device(store, other.id, clock.now)
    with (
        clinic_socket(client) as clinic,
        kiosk_socket(client, demo.device_token) as kiosk,
        kiosk_socket(client, other_token) as other_kiosk,
    ):
        call_id = start_call(client, clinic, kiosk, demo.patient_id)
        clock.advance(5)  # longest waiting first
        other_kiosk.send_json({"type": "join"})
        expect(other_kiosk, "waiting")
        listed = expect(clinic, "waiting_room")
        assert [(p["display_name"], p["state"]) for p in listed["patients"]] == [
            ("Margaret Jones", "in_call"),
            ("Arthur Dent", "waiting"),
        ]
        # A kiosk cannot send an offer into another patient's call.
        other_kiosk.send_json({"type": "offer", "call_id": call_id, "sdp": "v=0 sneaky"})
        expect(other_kiosk, "error", code="unknown_call")
        kiosk.send_json({"type": "offer", "call_id": call_id, "sdp": "v=0 real"})
        expect(clinic, "offer", sdp="v=0 real")

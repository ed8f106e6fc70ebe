"""Ringing through the hub's sockets: a clinician of the care team rings a kiosk, the kiosk
answers and both are in a call; auto-answer is offered only for the care team and only when
the nurse turned it on; cancelling, a page closing and time stop a ring."""

from __future__ import annotations

from datetime import timedelta

from .hub_support import as_person, clinic, expect, expect_skipping, kiosk


def ring(cws, patient_id: str) -> dict:
    cws.send_json({"type": "ring", "patient_id": patient_id})
    return expect_skipping(cws, "ringing", patient_id=patient_id)


def set_auto_answer(client, world, on: bool) -> None:
    as_person(client, world, "nurse_x")
    response = client.put(
        f"/api/patients/{world.patient_a}/kiosk-settings",
        json={"language": "en", "spoken_prompts": True, "auto_answer": on},
    )
    assert response.status_code == 200


def test_the_kiosk_rings_and_answering_starts_the_call_with_the_ringing_clinician(client, world):
    with kiosk(client, world) as kws, clinic(client, world) as cws:
        rang = ring(cws, world.patient_a)
        assert rang["auto_answer"] is False and rang["timeout_s"] == 60
        got = expect(kws, "ring", ring_id=rang["ring_id"], auto_answer=False)
        assert got["clinician_name"] == "Clin X"
        kws.send_json({"type": "ring_accept", "ring_id": rang["ring_id"]})
        admitted = expect(kws, "admitted", clinician_name="Clin X")
        started = expect_skipping(cws, "call_started", patient_id=world.patient_a)
        assert started["call_id"] == admitted["call_id"]
        # From here it is an ordinary call: the offer reaches the clinician.
        kws.send_json({"type": "offer", "call_id": admitted["call_id"], "sdp": "v=0"})
        expect_skipping(cws, "offer", call_id=admitted["call_id"])
        # A second answer to the same ring is refused.
        kws.send_json({"type": "ring_accept", "ring_id": rang["ring_id"]})
        expect(kws, "error", code="ring_over")
    as_person(client, world, "clin_x")
    (row,) = client.get("/api/appointments").json()
    assert row["call_id"] == admitted["call_id"] and row["kind"] == "unscheduled"


def test_auto_answer_is_offered_only_when_the_nurse_turned_it_on(client, world):
    with kiosk(client, world) as kws, clinic(client, world) as cws:
        rang = ring(cws, world.patient_a)
        expect(kws, "ring", auto_answer=False)
        cws.send_json({"type": "ring_cancel", "ring_id": rang["ring_id"]})
        expect_skipping(cws, "ring_ended", reason="cancelled")
        expect(kws, "ring_stopped", ring_id=rang["ring_id"], reason="cancelled")
        set_auto_answer(client, world, True)
        expect(kws, "plan_changed")
        rang = ring(cws, world.patient_a)
        assert rang["auto_answer"] is True
        expect(kws, "ring", ring_id=rang["ring_id"], auto_answer=True)


def test_another_teams_clinician_cannot_ring_even_with_auto_answer_on(client, world):
    set_auto_answer(client, world, True)
    with kiosk(client, world) as kws, clinic(client, world, "clin_y") as other:
        other.send_json({"type": "ring", "patient_id": world.patient_a})
        refused = expect_skipping(other, "error")
        assert refused["code"] == "device_offline"  # the same as for an unknown kiosk
        # Nothing of it reached the kiosk: its next message is the care team's ring.
        with clinic(client, world, "clin_x") as cws:
            rang = ring(cws, world.patient_a)
            expect(kws, "ring", ring_id=rang["ring_id"], clinician_name="Clin X")
            kws.send_json({"type": "ring_accept", "ring_id": "made-up"})
            expect(kws, "error", code="ring_over")


def test_a_page_that_closes_while_ringing_stops_the_ring(client, world):
    with kiosk(client, world) as kws:
        with clinic(client, world) as cws:
            rang = ring(cws, world.patient_a)
            expect(kws, "ring", ring_id=rang["ring_id"])
        expect(kws, "ring_stopped", ring_id=rang["ring_id"], reason="cancelled")
        kws.send_json({"type": "ring_accept", "ring_id": rang["ring_id"]})
        expect(kws, "error", code="ring_over")


def test_a_ring_cannot_be_answered_after_its_time(client, world, clock):
    with kiosk(client, world) as kws, clinic(client, world) as cws:
        rang = ring(cws, world.patient_a)
        expect(kws, "ring")
        clock.now += timedelta(seconds=61)
        kws.send_json({"type": "ring_accept", "ring_id": rang["ring_id"]})
        expect(kws, "error", code="ring_over")
        # The page gives up by itself and says so; the kiosk hears it.
        cws.send_json({"type": "ring_cancel", "ring_id": rang["ring_id"], "reason": "no_answer"})
        expect_skipping(cws, "ring_ended", reason="no_answer")


def test_no_ring_for_a_kiosk_that_is_away_or_a_patient_already_waiting(client, world):
    with clinic(client, world) as cws:
        cws.send_json({"type": "ring", "patient_id": world.patient_a})
        assert expect_skipping(cws, "error")["code"] == "device_offline"
        with kiosk(client, world) as kws:
            kws.send_json({"type": "join"})
            expect(kws, "waiting")
            cws.send_json({"type": "ring", "patient_id": world.patient_a})
            assert expect_skipping(cws, "error")["code"] == "in_room"

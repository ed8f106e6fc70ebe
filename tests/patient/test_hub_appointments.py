"""The hub's appointment book through its API and sockets: booking by the care team, the
kiosk's plan, did-not-attend after the set time, joins and calls tied to appointments,
outcomes with follow-ups, kiosk settings, and help requests — each only for the care team."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from porchlight.kiosk.records import help_record

from .hub_support import (
    as_person,
    book,
    clinic,
    device_headers,
    expect,
    expect_skipping,
    kiosk,
    new_id,
    post_records,
    until,
)

TODAY_1030 = datetime(2025, 3, 4, 10, 30, tzinfo=UTC)


def plan(client, world, actor="device_a") -> dict:
    client.cookies.clear()
    response = client.get("/api/device/plan", headers=device_headers(world, actor))
    assert response.status_code == 200
    return response.json()


def today(client, world, actor="clin_x") -> list[dict]:
    as_person(client, world, actor)
    response = client.get("/api/appointments")
    assert response.status_code == 200, response.text
    return response.json()


def test_the_care_team_books_and_the_kiosk_hears_of_it_at_once(client, world):
    with kiosk(client, world) as ws:
        made = book(client, world, world.patient_a, TODAY_1030)
        assert made.status_code == 201, made.text
        body = made.json()
        assert body["status"] == "booked" and body["patient_name"] == "Alice Able"
        expect(ws, "plan_changed")  # pushed over the kiosk's socket
    got = plan(client, world)
    # Booked by a nurse of a team with one clinician: that clinician will call.
    assert got["appointments"] == [
        {
            "id": body["appointment_id"],
            "starts_at": "2025-03-04T10:30:00.000Z",
            "clinician_name": "Clin X",
        }
    ]
    assert got["settings"] == {"language": "en", "spoken_prompts": True, "auto_answer": False}
    assert plan(client, world, "device_b")["appointments"] == []
    assert [a["appointment_id"] for a in today(client, world)] == [body["appointment_id"]]
    assert today(client, world, "clin_y") == []  # another team's clinician sees nothing


def test_booking_is_for_the_patients_care_team_and_checks_the_time(client, world):
    assert book(client, world, world.patient_a, TODAY_1030, actor="nurse_y").status_code == 404
    assert book(client, world, world.patient_a, TODAY_1030, actor="clin_y").status_code == 404
    assert book(client, world, world.patient_a, TODAY_1030, actor="support").status_code == 403
    past = book(client, world, world.patient_a, TODAY_1030 - timedelta(hours=3))
    assert past.status_code == 400 and "past" in past.json()["message"]
    naive = client.post(
        "/api/appointments",
        json={"patient_id": world.patient_a, "starts_at": "2025-03-04T10:30:00"},
    )
    assert naive.status_code == 400 and "time zone" in naive.json()["message"]
    assert today(client, world) == []


def test_nobody_joins_in_time_is_did_not_attend_and_the_kiosk_forgets_it(client, world, clock):
    made = book(client, world, world.patient_a, TODAY_1030).json()
    clock.now = TODAY_1030 + timedelta(minutes=14)
    assert today(client, world)[0]["status"] == "due"
    clock.now = TODAY_1030 + timedelta(minutes=15)
    (row,) = today(client, world)
    assert row["appointment_id"] == made["appointment_id"]
    assert row["status"] == "did_not_attend"
    assert plan(client, world)["appointments"] == []


def test_a_join_in_the_window_attends_and_the_call_serves_the_appointment(client, world, clock):
    made = book(client, world, world.patient_a, TODAY_1030).json()
    clock.now = TODAY_1030 - timedelta(minutes=5)
    with kiosk(client, world) as kws, clinic(client, world) as cws:
        kws.send_json({"type": "join"})
        expect(kws, "waiting")
        # The hub notes the join just after answering; let it, before the clock moves on.
        until(lambda: today(client, world)[0]["joined_at"])
        clock.now = TODAY_1030 + timedelta(minutes=20)  # the clinician is late: still attended
        cws.send_json({"type": "admit", "patient_id": world.patient_a})
        call_id = expect_skipping(cws, "call_started")["call_id"]
        expect(kws, "admitted", call_id=call_id)
        cws.send_json({"type": "hangup", "call_id": call_id})
        expect_skipping(kws, "ended", reason="clinician_ended")
    (row,) = until(lambda: [r for r in today(client, world) if r["call_id"]])
    assert row["status"] == "called" and row["call_id"] == call_id
    assert row["joined_at"].startswith("2025-03-04T10:25")
    # The clinician records the outcome; it stays recorded.
    as_person(client, world, "clin_x")
    done = client.post(f"/api/calls/{call_id}/outcome", json={"outcome": "completed"})
    assert done.status_code == 200 and done.json()["status"] == "completed"
    again = client.post(
        f"/api/appointments/{made['appointment_id']}/outcome", json={"outcome": "home_visit"}
    )
    assert again.status_code == 400 and "already recorded" in again.json()["message"]


def test_a_late_call_clears_did_not_attend(client, world, clock):
    book(client, world, world.patient_a, TODAY_1030)
    clock.now = TODAY_1030 + timedelta(minutes=30)
    assert today(client, world)[0]["status"] == "did_not_attend"
    with kiosk(client, world) as kws, clinic(client, world) as cws:
        kws.send_json({"type": "join"})
        expect(kws, "waiting")
        cws.send_json({"type": "admit", "patient_id": world.patient_a})
        call_id = expect_skipping(cws, "call_started")["call_id"]
    (row,) = until(lambda: [r for r in today(client, world) if r["call_id"]])
    assert row["status"] == "called" and row["call_id"] == call_id


def test_a_call_with_no_booking_becomes_unscheduled_so_it_can_have_an_outcome(client, world, clock):
    with kiosk(client, world) as kws, clinic(client, world) as cws:
        kws.send_json({"type": "join"})
        expect(kws, "waiting")
        cws.send_json({"type": "admit", "patient_id": world.patient_a})
        call_id = expect_skipping(cws, "call_started")["call_id"]
    (row,) = until(lambda: [r for r in today(client, world) if r["call_id"]])
    assert row["kind"] == "unscheduled" and row["call_id"] == call_id
    as_person(client, world, "clin_x")
    failed = client.post(f"/api/calls/{call_id}/outcome", json={"outcome": "technical_failure"})
    assert failed.status_code == 400 and "reason" in failed.json()["message"]
    failed = client.post(
        f"/api/calls/{call_id}/outcome",
        json={"outcome": "technical_failure", "reason": "no sound from the kiosk"},
    )
    assert failed.status_code == 200
    assert failed.json()["outcome_reason"] == "no sound from the kiosk"
    as_person(client, world, "clin_y")
    assert (
        client.post(f"/api/calls/{call_id}/outcome", json={"outcome": "completed"}).status_code
        == 404
    )


def test_switching_to_a_home_visit_makes_a_follow_up_for_the_team(client, world):
    made = book(client, world, world.patient_a, TODAY_1030).json()
    as_person(client, world, "clin_x")
    cannot = client.post(
        f"/api/appointments/{made['appointment_id']}/outcome", json={"outcome": "completed"}
    )
    assert cannot.status_code == 400 and "no call" in cannot.json()["message"]
    visit = client.post(
        f"/api/appointments/{made['appointment_id']}/outcome",
        json={"outcome": "home_visit", "reason": "needs her legs seen"},
    )
    assert visit.status_code == 200 and visit.json()["status"] == "home_visit"
    (follow,) = client.get("/api/follow-ups").json()
    assert follow["patient_name"] == "Alice Able" and follow["kind"] == "home_visit"
    assert follow["note"] == "needs her legs seen" and follow["created_by"] == "clin_x"
    as_person(client, world, "nurse_x")
    assert len(client.get("/api/follow-ups").json()) == 1
    as_person(client, world, "nurse_y")
    assert client.get("/api/follow-ups").json() == []
    # Nurses book; only clinicians record outcomes.
    as_person(client, world, "nurse_x")
    assert (
        client.post(
            f"/api/appointments/{made['appointment_id']}/outcome", json={"outcome": "completed"}
        ).status_code
        == 403
    )


def test_cancelling_takes_it_off_the_kiosk(client, world):
    made = book(client, world, world.patient_a, TODAY_1030).json()
    as_person(client, world, "nurse_y")
    assert client.post(f"/api/appointments/{made['appointment_id']}/cancel").status_code == 404
    as_person(client, world, "nurse_x")
    done = client.post(f"/api/appointments/{made['appointment_id']}/cancel")
    assert done.status_code == 200 and done.json()["status"] == "cancelled"
    assert client.post(f"/api/appointments/{made['appointment_id']}/cancel").status_code == 400
    assert plan(client, world)["appointments"] == []


def test_kiosk_settings_are_the_nurses_choice_and_reach_the_kiosk(client, world):
    as_person(client, world, "nurse_x")
    url = f"/api/patients/{world.patient_a}/kiosk-settings"
    got = client.get(url).json()
    assert got["language"] == "en" and {lang["code"] for lang in got["languages"]} == {
        "en",
        "cy",
        "pl",
    }
    with kiosk(client, world) as ws:
        as_person(client, world, "nurse_x")
        put = client.put(url, json={"language": "cy", "spoken_prompts": False, "auto_answer": True})
        assert put.status_code == 200
        expect(ws, "plan_changed")
    assert plan(client, world)["settings"] == {
        "language": "cy",
        "spoken_prompts": False,
        "auto_answer": True,
    }
    as_person(client, world, "nurse_x")
    bad = client.put(url, json={"language": "fr", "spoken_prompts": True, "auto_answer": False})
    assert bad.status_code == 400 and "choose one of en, cy, pl" in bad.json()["message"]
    as_person(client, world, "nurse_y")
    assert client.get(url).status_code == 403


def test_help_requests_reach_the_care_team_once_and_can_be_marked_done(client, world, clock):
    record = help_record(record_id=new_id(), patient_id=world.patient_a, now=clock())
    assert post_records(client, world, [record])[0]["status"] == "stored"
    assert post_records(client, world, [record])[0]["status"] == "duplicate"  # a resend
    as_person(client, world, "nurse_y")
    assert client.get("/api/help-requests").json() == []
    as_person(client, world, "clin_x")
    (asked,) = client.get("/api/help-requests").json()
    assert asked["patient_name"] == "Alice Able" and asked["record_id"] == record.id
    as_person(client, world, "clin_y")
    assert client.post(f"/api/help-requests/{record.id}/done").status_code == 404
    as_person(client, world, "nurse_x")
    assert client.post(f"/api/help-requests/{record.id}/done").status_code == 200
    assert client.post(f"/api/help-requests/{record.id}/done").status_code == 200  # done is done
    assert client.get("/api/help-requests").json() == []

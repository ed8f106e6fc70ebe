"""Every care team has its practice patient: teams made before (the migration), teams made
later (on first use), and only its own team's clinicians may start its kiosk."""

from __future__ import annotations

from datetime import UTC, datetime

import requests
from alembic import command
from sqlalchemy import insert, select

from porchlight.hub import auth, schema
from porchlight.hub.config import HubConfig
from porchlight.hub.db import make_engine, patients
from porchlight.hub.fleet import _fleet_ids
from porchlight.hub.practice import PRACTICE_NAME, ensure_for_team, practice_ids, practice_patients
from porchlight.hub.seed import DEMO_PASSWORD, seed_demo
from porchlight.hub.server import HubServer
from porchlight.hub.store import Store, team_patients, teams

from .conftest import OTHER_CLINICIAN, Hub


def test_each_team_sees_its_own_practice_patient(hub: Hub) -> None:
    mine = hub.session("clinician").get(f"{hub.url}/api/practice", timeout=10).json()
    theirs = hub.session(OTHER_CLINICIAN).get(f"{hub.url}/api/practice", timeout=10).json()
    assert [(p["display_name"], p["team_name"], p["running"]) for p in mine] == [
        (PRACTICE_NAME, "Care team", False)
    ]
    assert [p["team_id"] for p in theirs] == [hub.other_team]
    assert mine[0]["patient_id"] != theirs[0]["patient_id"]
    # A real patients row in the team, flagged as practice, made once however often asked.
    again = hub.session("clinician").get(f"{hub.url}/api/practice", timeout=10).json()
    assert again == mine
    store = hub.server.store
    assert store.team_of_patient(mine[0]["patient_id"]) == mine[0]["team_id"]
    with store.engine.connect() as conn:
        flagged = conn.execute(select(practice_patients.c.patient_id)).scalars().all()
    assert sorted(flagged) == sorted([mine[0]["patient_id"], theirs[0]["patient_id"]])


def test_a_team_made_later_gets_one_too(hub: Hub) -> None:
    admin = hub.session("admin")
    made = admin.post(f"{hub.url}/api/admin/teams", json={"name": "Night team"}, timeout=10)
    assert made.status_code == 201, made.text
    night = made.json()["team_id"]
    moved = admin.put(
        f"{hub.url}/api/admin/people/{OTHER_CLINICIAN}/teams",
        json={"teams": [hub.other_team, night]},
        timeout=10,
    )
    assert moved.status_code == 200, moved.text
    listed = hub.session(OTHER_CLINICIAN).get(f"{hub.url}/api/practice", timeout=10).json()
    assert sorted(p["team_id"] for p in listed) == sorted([hub.other_team, night])
    assert {p["patient_id"] for p in listed} == {
        practice_ids(hub.other_team).patient_id,
        practice_ids(night).patient_id,
    }


def test_teams_made_before_practice_patients_get_one_from_the_migration(tmp_path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'old.db'}")
    now = datetime.now(UTC)
    with engine.begin() as conn:
        command.upgrade(schema.alembic_config(conn), "0007")  # the schema before this feature
        conn.execute(insert(teams).values(id="ward-7", name="Ward 7", created=now))
    schema.upgrade(engine)
    ids = practice_ids("ward-7")
    store = Store(engine)
    try:
        with engine.connect() as conn:
            flagged = conn.execute(select(practice_patients)).all()
            name = conn.execute(
                select(patients.c.display_name).where(patients.c.id == ids.patient_id)
            ).scalar_one()
            team = conn.execute(
                select(team_patients.c.team_id).where(team_patients.c.patient_id == ids.patient_id)
            ).scalar_one()
        assert [(r.patient_id, r.team_id) for r in flagged] == [(ids.patient_id, "ward-7")]
        assert (name, team) == (PRACTICE_NAME, "ward-7")
    finally:
        store.close()


def test_only_the_teams_clinicians_may_start_its_kiosk(hub: Hub) -> None:
    theirs = hub.session(OTHER_CLINICIAN).get(f"{hub.url}/api/practice", timeout=10).json()[0]
    start = f"{hub.url}/api/practice/{theirs['patient_id']}/start"
    # Another team's clinician: not found (as for any patient not in their teams).
    refused = hub.session("clinician").post(start, timeout=10)
    assert refused.status_code == 404, refused.text
    assert (
        hub.session("clinician")
        .post(f"{hub.url}/api/practice/{theirs['patient_id']}/waiting-room", timeout=10)
        .status_code
        == 404
    )
    # A nurse rehearses nothing here; nobody logged in is asked to log in.
    assert hub.session("nurse").get(f"{hub.url}/api/practice", timeout=10).status_code == 403
    assert hub.session("nurse").post(start, timeout=10).status_code == 403
    assert requests.post(start, timeout=10).status_code == 401
    # Nothing was started for anyone.
    assert not (hub.server.config.data_dir / "practice").exists()


def test_a_hub_without_practice_patients_says_so(tmp_path) -> None:
    config = HubConfig(data_dir=tmp_path / "hub", host="127.0.0.1", practice_patient=False)
    with HubServer(config, port=0) as server:
        seed_demo(server.store)
        s = requests.Session()
        s.post(
            f"{server.url}/api/login",
            json={"username": "clinician", "password": DEMO_PASSWORD},
            timeout=10,
        )
        reply = s.get(f"{server.url}/api/practice", timeout=10)
        assert reply.status_code == 404
        assert "practice" in reply.json()["message"]
        with server.store.engine.connect() as conn:
            assert conn.execute(select(practice_patients)).all() == []


def test_practice_kiosks_are_not_in_the_fleet_a_release_rolls_out_to(hub: Hub) -> None:
    store = hub.server.store
    practice = ensure_for_team(store, hub.other_team, datetime.now(UTC))
    store.add_device(
        practice.patient_id,
        auth.hash_token(auth.new_token()),
        now=datetime.now(UTC),
        device_id=practice.device_id,
    )
    fleet = _fleet_ids(store.engine)
    # A practice kiosk runs the hub's own code and never reports on a release: counting it
    # would hold a rollout's stage back.
    assert practice.device_id not in fleet
    assert hub.seed.device_id in fleet


def test_the_nurse_page_leaves_practice_patients_out_and_will_not_enrol_one(hub: Hub) -> None:
    """A nurse enrols and looks after real kiosks: the practice patient (and its simulated
    kiosk) is not on their lists, and a code for it is refused, with nothing made."""
    store = hub.server.store
    practice = ensure_for_team(store, store.team_of_patient(hub.seed.patient_id), datetime.now(UTC))
    store.add_device(
        practice.patient_id,
        auth.hash_token(auth.new_token()),
        now=datetime.now(UTC),
        device_id=practice.device_id,
    )
    nurse = hub.session("nurse")
    listed = nurse.get(f"{hub.url}/api/nurse/patients", timeout=10).json()
    assert hub.seed.patient_id in {p["patient_id"] for p in listed}
    assert practice.patient_id not in {p["patient_id"] for p in listed}
    devices = nurse.get(f"{hub.url}/api/nurse/devices", timeout=10).json()
    assert hub.seed.device_id in {d["device_id"] for d in devices}
    assert practice.device_id not in {d["device_id"] for d in devices}

    refused = nurse.post(
        f"{hub.url}/api/nurse/patients/{practice.patient_id}/enrolments", timeout=10
    )
    assert refused.status_code == 400
    assert "practice patient" in refused.json()["message"]
    assert store.enrolments_for_patients([practice.patient_id]) == []

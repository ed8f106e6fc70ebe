"""Enrolment, revocation, care teams and logins through the hub's real routes."""

from __future__ import annotations

import shutil
import stat
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from security.world import PASSWORD, FakeClock, hub_client
from starlette.websockets import WebSocketDisconnect

from porchlight.errors import BadInput, HubRefused, TransportFailed
from porchlight.hub import enrolment
from porchlight.hub.config import HubConfig
from porchlight.hub.enrolment import EnrolmentTicket
from porchlight.hub.server import HubServer
from porchlight.kiosk.credential import credential_path, load_credential
from porchlight.protocol import CLOSE_NOT_AUTHORISED, SESSION_COOKIE
from porchlight.provisioning.enrol import (
    enrol_device,
    enrol_request_body,
    key_path,
    load_key,
    new_key,
    public_key_bytes,
)


def dump(store) -> dict[str, list[tuple]]:
    """Every row of every table."""
    from sqlalchemy import select

    from porchlight.hub.db import metadata

    with store.engine.connect() as conn:
        return {
            t.name: [tuple(map(str, r)) for r in conn.execute(select(t))]
            for t in metadata.sorted_tables
        }


def _code(client, world, patient=None) -> str:
    world.auth(client, "nurse_x")
    made = client.post(f"/api/nurse/patients/{patient or world.patient_a}/enrolments")
    assert made.status_code == 201, made.text
    client.cookies.clear()
    return made.json()["code"]


def test_a_code_enrols_once(world, tmp_path):
    with hub_client(world, tmp_path) as client:
        first = client.post("/api/enrol", json=enrol_request_body(world.code_a, new_key()))
        assert first.status_code == 200
        body = first.json()
        assert body["patient_id"] == world.patient_a and body["display_name"] == "Alice Able"
        me = client.get("/api/device/me", headers={"Authorization": f"Bearer {body['token']}"})
        assert me.json()["device_id"] == body["device_id"]
        again = client.post("/api/enrol", json=enrol_request_body(world.code_a, new_key()))
        assert again.status_code == 401
        assert "used already or expired" in again.json()["message"]
        # The hub keeps only hashes of the code and the token.
        dumped = str(dump(client.app.state.services.store))
        assert world.code_a not in dumped and body["token"] not in dumped


def test_the_hub_binds_the_key_the_device_proved(world, tmp_path):
    key = new_key()
    with hub_client(world, tmp_path) as client:
        body = client.post("/api/enrol", json=enrol_request_body(world.code_a, key)).json()
        stored = client.app.state.services.store.device_public_key(body["device_id"])
        assert stored == enrolment.b64encode(public_key_bytes(key))


def test_a_code_expires_after_30_minutes(world, tmp_path):
    clock = FakeClock()
    with hub_client(world, tmp_path, clock) as client:
        clock.advance(30 * 60)
        response = client.post("/api/enrol", json=enrol_request_body(world.code_a, new_key()))
        assert response.status_code == 401


def test_a_cancelled_code_does_not_work(world, tmp_path):
    with hub_client(world, tmp_path) as client:
        world.auth(client, "nurse_x")
        cancelled = client.post(f"/api/nurse/enrolments/{world.enrolment_a}/cancel")
        assert cancelled.json()["status"] == "cancelled"
        client.cookies.clear()
        assert (
            client.post("/api/enrol", json=enrol_request_body(world.code_a, new_key())).status_code
            == 401
        )


def test_guessing_codes_is_throttled(world, tmp_path):
    """Ten wrong codes from one place, then even the right code is refused for a while."""
    clock = FakeClock()
    with hub_client(world, tmp_path, clock) as client:
        key = new_key()
        wrong = [enrolment.new_code() for _ in range(enrolment.GUESSES_PER_SOURCE)]
        assert world.code_a not in wrong
        statuses = [
            client.post("/api/enrol", json=enrol_request_body(code, key)).status_code
            for code in wrong
        ]
        assert statuses == [401] * enrolment.GUESSES_PER_SOURCE
        blocked = client.post("/api/enrol", json=enrol_request_body(world.code_a, key))
        assert blocked.status_code == 429
        assert blocked.json()["error"] == "too_many_requests"
        assert int(blocked.headers["retry-after"]) == 15 * 60
        # Nothing was enrolled, and the code is still good once the window has passed.
        assert len(client.app.state.services.store.device_rows(None)) == 2
        clock.advance(15 * 60)
        assert (
            client.post("/api/enrol", json=enrol_request_body(world.code_a, key)).status_code == 200
        )


def test_two_kiosks_racing_for_one_code_one_wins(world, tmp_path):
    folder = tmp_path / "hub"
    folder.mkdir()
    shutil.copy(world.db_file, folder / "hub.db")
    with HubServer(HubConfig(data_dir=folder, host="127.0.0.1"), port=0) as hub:
        with requests.Session() as nurse:
            nurse.cookies.set(SESSION_COOKIE, "")
            login = nurse.post(
                hub.url + "/api/login", json={"username": "nurse_x", "password": PASSWORD}
            )
            assert login.status_code == 200
            code = nurse.post(f"{hub.url}/api/nurse/patients/{world.patient_a}/enrolments").json()[
                "code"
            ]
        start = threading.Barrier(6)

        def attempt(_i: int) -> int:
            body = enrol_request_body(code, new_key())
            start.wait(timeout=10)
            return requests.post(hub.url + "/api/enrol", json=body, timeout=10).status_code

        with ThreadPoolExecutor(6) as pool:
            results = sorted(pool.map(attempt, range(6)))
        assert results == [200, 401, 401, 401, 401, 401]


def test_device_side_enrolment_writes_private_files_and_reports_errors(world, tmp_path):
    folder = tmp_path / "hub"
    folder.mkdir()
    shutil.copy(world.db_file, folder / "hub.db")
    kiosk = tmp_path / "kiosk"
    with HubServer(HubConfig(data_dir=folder, host="127.0.0.1"), port=0) as hub:
        with pytest.raises(BadInput, match="does not know its hub"):
            enrol_device(EnrolmentTicket("ACDEFGHJ"), data_dir=kiosk)
        with pytest.raises(HubRefused) as refused:
            enrol_device(EnrolmentTicket("ACDEFGHJ", hub.url), data_dir=kiosk)
        assert refused.value.status == 401 and "Ask the nurse for a new code" in str(refused.value)
        assert not credential_path(kiosk).exists() and not key_path(kiosk).exists()

        nurse = requests.Session()
        nurse.post(hub.url + "/api/login", json={"username": "nurse_x", "password": PASSWORD})
        made = nurse.post(f"{hub.url}/api/nurse/patients/{world.patient_a}/enrolments").json()
        # A typed code uses the kiosk's configured hub address.
        enrolled = enrol_device(EnrolmentTicket(made["code"]), data_dir=kiosk, hub_url=hub.url)
        credential = load_credential(kiosk)
        assert credential == enrolled.credential and credential.hub_url == hub.url
        for path in (credential_path(kiosk), key_path(kiosk)):
            assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert public_key_bytes(load_key(kiosk)) == enrolment.b64decode(
            hub.store.device_public_key(credential.device_id) or "", "key"
        )
        nurse.close()
        port = hub.port
    with pytest.raises(TransportFailed, match="Check the Wi-Fi"):
        enrol_device(EnrolmentTicket(made["code"], f"http://127.0.0.1:{port}"), data_dir=kiosk)


def test_revoking_refuses_the_next_request_closes_the_socket_and_re_enrolment_works(
    world, tmp_path
):
    with hub_client(world, tmp_path) as client:
        first = client.post("/api/enrol", json=enrol_request_body(world.code_a, new_key())).json()
        headers = {"Authorization": f"Bearer {first['token']}"}
        with client.websocket_connect("/ws/device", headers=headers) as kiosk:
            kiosk.send_json({"type": "hello"})
            assert kiosk.receive_json()["type"] == "welcome"
            world.auth(client, "nurse_x")
            revoked = client.post(f"/api/devices/{first['device_id']}/revoke")
            assert revoked.status_code == 200 and revoked.json()["revoked_at"]
            with pytest.raises(WebSocketDisconnect) as closed:
                while True:
                    kiosk.receive_json()
            assert closed.value.code == CLOSE_NOT_AUTHORISED
        client.cookies.clear()
        refused = client.get("/api/device/me", headers=headers)
        assert refused.status_code == 401 and "withdrawn" in refused.json()["message"]
        with (
            pytest.raises(WebSocketDisconnect) as again,
            client.websocket_connect("/ws/device", headers=headers) as kiosk,
        ):
            kiosk.receive_json()
        assert again.value.code == CLOSE_NOT_AUTHORISED
        # Re-enrolment: a new code gives a new device, key and token; the old token stays dead.
        second = client.post(
            "/api/enrol", json=enrol_request_body(_code(client, world), new_key())
        ).json()
        assert second["device_id"] != first["device_id"] and second["token"] != first["token"]
        fresh = {"Authorization": f"Bearer {second['token']}"}
        assert client.get("/api/device/me", headers=fresh).status_code == 200
        assert client.get("/api/device/me", headers=headers).status_code == 401


def test_revoking_one_kiosk_leaves_the_patients_other_kiosk_connected(world, tmp_path):
    with hub_client(world, tmp_path) as client:
        old = client.post("/api/enrol", json=enrol_request_body(world.code_a, new_key())).json()
        new = client.post(
            "/api/enrol", json=enrol_request_body(_code(client, world), new_key())
        ).json()
        with client.websocket_connect(
            "/ws/device", headers={"Authorization": f"Bearer {new['token']}"}
        ) as kiosk:
            kiosk.send_json({"type": "hello"})
            assert kiosk.receive_json()["type"] == "welcome"
            world.auth(client, "support")
            assert client.post(f"/api/devices/{old['device_id']}/revoke").status_code == 200
            # Still answered: the revocation closed only the withdrawn device's socket.
            kiosk.send_json({"type": "join"})
            assert kiosk.receive_json()["type"] == "waiting"


def test_support_sees_devices_without_patients_and_nurses_only_their_teams(world, tmp_path):
    with hub_client(world, tmp_path) as client:
        world.auth(client, "support")
        revoked = client.post(f"/api/devices/{world.device_b}/revoke").json()
        assert revoked["patient_name"] is None and revoked["patient_id"] is None
        world.auth(client, "nurse_y")
        rows = client.get("/api/nurse/devices").json()
        assert [r["device_id"] for r in rows] == [world.device_b]
        assert [p["display_name"] for p in client.get("/api/nurse/patients").json()] == [
            "Bob Baker"
        ]
        world.auth(client, "nurse_x")
        assert [r["patient_name"] for r in client.get("/api/nurse/devices").json()] == [
            "Alice Able"
        ]


def test_clinicians_see_and_admit_only_their_teams_patients(world, tmp_path):
    with hub_client(world, tmp_path) as client:
        device_a = {"Authorization": f"Bearer {world.tokens['device_a']}"}
        device_b = {"Authorization": f"Bearer {world.tokens['device_b']}"}
        world.auth(client, "clin_y")
        with (
            client.websocket_connect("/ws/clinic") as clinic_y,
            client.websocket_connect("/ws/device", headers=device_a) as kiosk_a,
            client.websocket_connect("/ws/device", headers=device_b) as kiosk_b,
        ):
            clinic_y.send_json({"type": "hello"})
            assert clinic_y.receive_json()["patients"] == []
            for kiosk in (kiosk_a, kiosk_b):
                kiosk.send_json({"type": "hello"})
                assert kiosk.receive_json()["type"] == "welcome"
                kiosk.send_json({"type": "join"})
                assert kiosk.receive_json()["type"] == "waiting"
            seen = [clinic_y.receive_json() for _ in range(4)]  # hello, join per kiosk
            assert {p["patient_id"] for s in seen for p in s["patients"]} == {world.patient_b}
            clinic_y.send_json({"type": "admit", "patient_id": world.patient_a})
            assert clinic_y.receive_json() == {
                "type": "error",
                "code": "not_waiting",
                "message": "This patient is not in the waiting room.",
            }
            room_y = client.get("/api/waiting-room").json()["patients"]
            assert [p["patient_id"] for p in room_y] == [world.patient_b]
            world.auth(client, "clin_x")
            room_x = client.get("/api/waiting-room").json()["patients"]
            assert [p["patient_id"] for p in room_x] == [world.patient_a]


def test_wrong_passwords_are_throttled_per_account(world, tmp_path):
    clock = FakeClock()
    with hub_client(world, tmp_path, clock) as client:
        for _ in range(5):
            wrong = client.post("/api/login", json={"username": "clin_x", "password": "nope nope"})
            assert wrong.status_code == 401
        blocked = client.post("/api/login", json={"username": "clin_x", "password": PASSWORD})
        assert (
            blocked.status_code == 429 and "Too many wrong passwords" in blocked.json()["message"]
        )
        assert "set-cookie" not in blocked.headers
        # Another account from the same place still works (the per-source limit is higher).
        assert (
            client.post("/api/login", json={"username": "clin_y", "password": PASSWORD}).status_code
            == 200
        )
        clock.advance(15 * 60)
        assert (
            client.post("/api/login", json={"username": "clin_x", "password": PASSWORD}).status_code
            == 200
        )


def test_sessions_expire_and_logout_ends_them(world, tmp_path):
    clock = FakeClock()
    with hub_client(world, tmp_path, clock) as client:
        world.auth(client, "nurse_x")
        assert client.get("/api/me").status_code == 200
        clock.advance(8 * 3600)
        expired = client.get("/api/me")
        assert expired.status_code == 401 and "expired" in expired.json()["message"]
        again = client.post("/api/login", json={"username": "nurse_x", "password": PASSWORD})
        assert again.status_code == 200
        assert client.get("/api/me").status_code == 200
        client.post("/api/logout")
        assert client.get("/api/me").status_code == 401


@pytest.mark.parametrize(
    ("body", "status", "words"),
    [
        ({"display_name": "  ", "team_id": "X"}, 400, "display name"),
        ({"display_name": "Dee", "nhs_number": "943 476 5918", "team_id": "X"}, 400, "NHS number"),
        ({"display_name": "Dee", "team_id": "Y"}, 400, "your own care teams"),
        ({"display_name": "Dee"}, 422, "team_id"),
    ],
)
def test_bad_patient_input_is_refused_and_changes_nothing(world, tmp_path, body, status, words):
    teams = {"X": world.team_x, "Y": world.team_y}
    if "team_id" in body:
        body = {**body, "team_id": teams[body["team_id"]]}
    with hub_client(world, tmp_path) as client:
        world.auth(client, "nurse_x")
        before = client.get("/api/nurse/patients").json()
        response = client.post("/api/nurse/patients", json=body)
        assert response.status_code == status and words in response.json()["message"]
        assert client.get("/api/nurse/patients").json() == before


def test_the_same_nhs_number_twice_is_refused(world, tmp_path):
    with hub_client(world, tmp_path) as client:
        world.auth(client, "nurse_x")
        body = {"display_name": "Alice again", "nhs_number": "9434765919", "team_id": world.team_x}
        response = client.post("/api/nurse/patients", json=body)
        assert response.status_code == 400 and "already registered" in response.json()["message"]


@pytest.mark.parametrize(
    "field",
    ["public_key", "proof"],
)
def test_a_malformed_key_or_proof_is_refused(world, tmp_path, field):
    body = enrol_request_body(world.code_a, new_key())
    body[field] = body[field][::-1]
    with hub_client(world, tmp_path) as client:
        response = client.post("/api/enrol", json=body)
        assert response.status_code == 400
        # ... and did not count as a guess, nor use the code.
        good = client.post("/api/enrol", json=enrol_request_body(world.code_a, new_key()))
        assert good.status_code == 200

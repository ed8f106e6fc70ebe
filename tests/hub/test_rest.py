"""The hub's HTTP API: people's sessions, device credentials, error bodies, OpenAPI, pages."""

from __future__ import annotations

import pytest

from porchlight.hub.seed import DEMO_PASSWORD
from porchlight.protocol import SESSION_COOKIE

from .conftest import device_headers, dump, login, new_device


def assert_error(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["error"] == code
    assert isinstance(body["message"], str) and body["message"]
    return body


def test_healthz(client):
    assert client.get("/healthz").json() == {"ok": True, "version": "0.1.0"}


def test_login_me_logout(client, store):
    response = client.post("/api/login", json={"username": "clinician", "password": DEMO_PASSWORD})
    assert response.status_code == 200
    assert response.json() == {
        "username": "clinician",
        "display_name": "Nurse Priya Shah",
        "role": "clinician",
    }
    cookie = response.headers["set-cookie"]
    assert cookie.startswith(f"{SESSION_COOKIE}=")
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/" in cookie
    token = client.cookies[SESSION_COOKIE]
    # Only a hash of the session id is stored.
    assert token not in str(dump(store))

    assert client.get("/api/me").json()["username"] == "clinician"
    assert client.post("/api/logout").json() == {"ok": True}
    assert_error(client.get("/api/me"), 401, "not_authorised")
    # The old cookie no longer works even if a browser kept it.
    client.cookies.set(SESSION_COOKIE, token)
    assert_error(client.get("/api/me"), 401, "not_authorised")


@pytest.mark.parametrize(
    "body",
    [
        {"username": "clinician", "password": "wrong password"},
        {"username": "nobody", "password": DEMO_PASSWORD},
    ],
    ids=["wrong password", "unknown user"],
)
def test_bad_login_is_refused_and_changes_nothing(client, store, body):
    before = dump(store)
    response = client.post("/api/login", json=body)
    error = assert_error(response, 401, "not_authorised")
    assert "set-cookie" not in response.headers
    assert body["password"] not in error["message"]
    assert dump(store) == before


def test_malformed_login_gets_422_without_echoing_the_password(client, store):
    before = dump(store)
    secret = "x" * 2000  # longer than allowed
    response = client.post("/api/login", json={"username": "clinician", "password": secret})
    body = assert_error(response, 422, "invalid_request")
    assert body["detail"][0]["loc"] == ["body", "password"]
    assert secret not in response.text
    assert_error(client.post("/api/login", content=b"not json"), 422, "invalid_request")
    assert dump(store) == before


def test_expired_session_is_refused_and_removed(client, store, clock, config):
    login(client)
    assert client.get("/api/me").status_code == 200
    clock.advance(config.session_ttl_s + 1)
    before = dump(store)
    assert_error(client.get("/api/me"), 401, "not_authorised")
    sessions = dump(store)["sessions"]
    assert len(before["sessions"]) == 1 and sessions == []


def test_waiting_room_is_for_clinicians_only(client):
    assert_error(client.get("/api/waiting-room"), 401, "not_authorised")
    login(client, "support")
    body = assert_error(client.get("/api/waiting-room"), 403, "forbidden")
    assert "support" in body["message"]
    login(client, "clinician")
    assert client.get("/api/waiting-room").json() == {"patients": []}


def test_device_me_with_its_token(client, demo, store, clock):
    response = client.get("/api/device/me", headers=device_headers(demo.device_token))
    assert response.json() == {
        "device_id": demo.device_id,
        "patient_id": demo.patient_id,
        "display_name": "Margaret Jones",
        "ice_servers": [],
    }
    assert store.get_device(demo.device_id).last_seen == clock.now


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer not-a-real-token"},
        {"Authorization": "Basic dXNlcjpwYXNz"},
        {"Authorization": "Bearer"},
        {"Authorization": "Bearer " + "a" * 5000},
    ],
    ids=["missing", "unknown", "wrong scheme", "empty", "huge"],
)
def test_bad_device_credentials_are_refused_and_change_nothing(client, store, headers):
    before = dump(store)
    for path in ("/api/device/me", "/api/ice-servers"):
        assert_error(client.get(path, headers=headers), 401, "not_authorised")
    assert dump(store) == before


def test_revoked_device_is_refused_and_changes_nothing(client, store, demo, clock):
    store.revoke_device(demo.device_id, now=clock.now)
    before = dump(store)
    body = assert_error(
        client.get("/api/device/me", headers=device_headers(demo.device_token)),
        401,
        "not_authorised",
    )
    assert demo.device_token not in body["message"]
    assert dump(store) == before


def test_each_device_sees_only_its_own_patient(client, store, clock):
    other = store.add_patient("Arthur Dent", now=clock.now)
    token = new_device(store, other.id, clock.now)
    body = client.get("/api/device/me", headers=device_headers(token)).json()
    assert (body["patient_id"], body["display_name"]) == (other.id, "Arthur Dent")


def test_ice_servers_for_a_clinician_or_a_device(client, demo):
    assert_error(client.get("/api/ice-servers"), 401, "not_authorised")
    device = client.get("/api/ice-servers", headers=device_headers(demo.device_token))
    assert device.json() == {"ice_servers": [], "ice_transport_policy": "all"}
    login(client, "nurse")
    assert_error(client.get("/api/ice-servers"), 403, "forbidden")
    login(client, "clinician")
    assert client.get("/api/ice-servers").json() == {
        "ice_servers": [],
        "ice_transport_policy": "all",
    }


def test_configured_ice_servers_are_handed_out(config, store, clock):
    from .conftest import TestClient, create_app

    config.ice_servers = ["stun:stun.clinic.example:3478", "turns:turn.clinic.example:443"]
    config.turn_username, config.turn_credential = "kiosk", "s3cret"
    with TestClient(create_app(config, store=store, clock=clock)) as client:
        login(client)
        assert client.get("/api/ice-servers").json() == {
            "ice_servers": [
                {"urls": ["stun:stun.clinic.example:3478"]},
                {
                    "urls": ["turns:turn.clinic.example:443"],
                    "username": "kiosk",
                    "credential": "s3cret",
                },
            ],
            "ice_transport_policy": "all",
        }


def test_unknown_paths_and_methods_get_json_errors(client):
    assert_error(client.get("/api/nothing-here"), 404, "not_found")
    assert_error(client.delete("/api/me"), 405, "method_not_allowed")


def test_openapi_describes_the_json_endpoints(client):
    spec = client.get("/openapi.json").json()
    assert spec["info"]["title"] == "Porchlight hub"
    paths = spec["paths"]
    for path in (
        "/healthz",
        "/api/login",
        "/api/logout",
        "/api/me",
        "/api/waiting-room",
        "/api/ice-servers",
        "/api/device/me",
    ):
        assert path in paths, path
    me = paths["/api/me"]["get"]["responses"]
    assert me["200"]["content"]["application/json"]["schema"]["$ref"].endswith("/Me")
    assert me["401"]["content"]["application/json"]["schema"]["$ref"].endswith("/ErrorBody")
    assert "WaitingRoomOut" in spec["components"]["schemas"]


def test_clinic_page_and_assets(client):
    root = client.get("/", follow_redirects=False)
    assert root.status_code == 307 and root.headers["location"] == "/clinic"
    page = client.get("/clinic")
    assert page.headers["content-type"].startswith("text/html")
    for testid in ("waiting-list", "remote-video", "self-video", "end-call", "login-submit"):
        assert f'data-testid="{testid}"' in page.text
    assert "default-src 'self'" in page.headers["content-security-policy"]
    for asset in ("/static/clinic.js", "/static/clinic.css", "/static/favicon.svg"):
        assert client.get(asset).status_code == 200
    # Nothing about a patient is in the page itself: it all comes after login.
    assert "Margaret" not in page.text

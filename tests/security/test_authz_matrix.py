"""The authorisation matrix: every route and WebSocket of the hub × every kind of caller.

Routes are read from the app itself, so a route added without an entry in MATRIX fails
`test_every_route_has_an_entry`. Each cell is the exact HTTP status (or WebSocket close
code, or "accept") the caller must get, on a fresh copy of the two-team world:

    anon, device_a (patient A, team X), device_b (patient B, team Y), clin_x, clin_y,
    nurse_x, nurse_y, support, admin

Targets are always team X's: patient A, device A, A's enrolment. So clin_y and nurse_y
show that care teams hold, device_b that a kiosk reaches only its own patient.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
from starlette.websockets import WebSocketDisconnect

from porchlight.hub.app import create_app
from porchlight.hub.config import HubConfig
from porchlight.hub.enrolment import b64encode, proof_message
from porchlight.hub.store import Store
from porchlight.kiosk.questionnaire import default_checkin
from porchlight.kiosk.records import vitals_record
from porchlight.provisioning.enrol import enrol_request_body, new_key, public_key_bytes

from .world import ACTORS, PASSWORD, World, hub_client

ACCEPT = "accept"  # WebSocket welcomed


def everyone(status: int | str) -> dict[str, int | str]:
    return dict.fromkeys(ACTORS, status)


def cells(default: int | str, **overrides: int | str) -> dict[str, int | str]:
    out = everyone(default)
    out.update(overrides)
    return out


PEOPLE_ONLY = dict(anon=401, device_a=401, device_b=401)
DEVICES_ONLY = cells(401, device_a=200, device_b=200)
# Clinical routes about patient A: only team X's clinician.
CARE_TEAM_X = cells(403, **PEOPLE_ONLY, clin_x=200)
NURSES = dict(clin_x=403, clin_y=403, support=403, admin=403, **PEOPLE_ONLY)
ADMIN_ONLY = cells(403, **PEOPLE_ONLY)


@dataclass(frozen=True)
class Call:
    method: str
    url: str
    body: Any = None  # JSON body
    content: bytes | None = None
    headers: dict[str, str] | None = None


def _record(world: World) -> dict[str, Any]:
    record = vitals_record(
        {"spo2": 97, "pulse": 70},
        record_id=str(uuid.uuid4()),
        patient_id=world.patient_a,
        now=datetime(2025, 3, 4, 9, 0, tzinfo=UTC),
    )
    return {"records": [record.to_wire()]}


def _enrol_body(world: World) -> dict[str, str]:
    return enrol_request_body(world.code_a, new_key())


MATRIX: dict[tuple[str, str], tuple[Callable[[World], Call], dict[str, int | str]]] = {
    ("GET", "/openapi.json"): (lambda w: Call("GET", "/openapi.json"), everyone(200)),
    ("GET", "/healthz"): (lambda w: Call("GET", "/healthz"), everyone(200)),
    # Operations probes and metrics: public, and carry no patient data or credentials.
    ("GET", "/livez"): (lambda w: Call("GET", "/livez"), everyone(200)),
    ("GET", "/readyz"): (lambda w: Call("GET", "/readyz"), everyone(200)),
    ("GET", "/metrics"): (lambda w: Call("GET", "/metrics"), everyone(200)),
    ("POST", "/api/login"): (
        lambda w: Call("POST", "/api/login", {"username": "clin_x", "password": PASSWORD}),
        everyone(200),
    ),
    ("POST", "/api/logout"): (lambda w: Call("POST", "/api/logout"), everyone(200)),
    ("GET", "/api/me"): (lambda w: Call("GET", "/api/me"), cells(200, **PEOPLE_ONLY)),
    ("GET", "/api/waiting-room"): (
        lambda w: Call("GET", "/api/waiting-room"),
        cells(403, **PEOPLE_ONLY, clin_x=200, clin_y=200),
    ),
    ("GET", "/api/ice-servers"): (
        lambda w: Call("GET", "/api/ice-servers"),
        cells(403, anon=401, device_a=200, device_b=200, clin_x=200, clin_y=200),
    ),
    ("GET", "/api/device/me"): (lambda w: Call("GET", "/api/device/me"), DEVICES_ONLY),
    ("WS", "/ws/device"): (
        lambda w: Call("WS", "/ws/device"),
        cells(4401, device_a=ACCEPT, device_b=ACCEPT),
    ),
    ("WS", "/ws/clinic"): (
        lambda w: Call("WS", "/ws/clinic"),
        cells(4403, anon=4401, device_a=4401, device_b=4401, clin_x=ACCEPT, clin_y=ACCEPT),
    ),
    ("POST", "/api/records"): (
        lambda w: Call("POST", "/api/records", _record(w)),
        # device_b's answer is 200 with the record refused as "forbidden" (checked below).
        cells(401, device_a=200, device_b=200),
    ),
    ("GET", "/api/patients/{patient_id}/today"): (
        lambda w: Call("GET", f"/api/patients/{w.patient_a}/today"),
        CARE_TEAM_X,
    ),
    ("GET", "/api/device/questionnaire"): (
        lambda w: Call("GET", "/api/device/questionnaire"),
        DEVICES_ONLY,
    ),
    ("GET", "/api/patients/{patient_id}/questionnaire"): (
        lambda w: Call("GET", f"/api/patients/{w.patient_a}/questionnaire"),
        CARE_TEAM_X,
    ),
    ("PUT", "/api/patients/{patient_id}/questionnaire"): (
        lambda w: Call(
            "PUT", f"/api/patients/{w.patient_a}/questionnaire", default_checkin().to_fhir()
        ),
        CARE_TEAM_X,
    ),
    ("GET", "/fhir/Observation"): (
        lambda w: Call("GET", f"/fhir/Observation?patient={w.patient_a}"),
        CARE_TEAM_X,
    ),
    ("GET", "/fhir/QuestionnaireResponse"): (
        lambda w: Call("GET", f"/fhir/QuestionnaireResponse?patient=Patient/{w.patient_a}"),
        CARE_TEAM_X,
    ),
    # The code is the credential: whoever holds a live one may enrol (throttled elsewhere).
    ("POST", "/api/enrol"): (lambda w: Call("POST", "/api/enrol", _enrol_body(w)), everyone(200)),
    ("POST", "/api/device/self-test"): (
        lambda w: Call(
            "POST",
            "/api/device/self-test",
            {
                "ran_at": "2025-03-04T09:00:00Z",
                "trigger": "setup",
                "results": [{"check": "camera", "status": "ok", "words": "Fine."}],
            },
        ),
        DEVICES_ONLY,
    ),
    ("GET", "/api/device/speed-test"): (
        lambda w: Call("GET", "/api/device/speed-test?size=1000"),
        DEVICES_ONLY,
    ),
    ("POST", "/api/device/speed-test"): (
        lambda w: Call("POST", "/api/device/speed-test", content=bytes(1000)),
        DEVICES_ONLY,
    ),
    ("POST", "/api/devices/{device_id}/revoke"): (
        lambda w: Call("POST", f"/api/devices/{w.device_a}/revoke"),
        cells(403, **PEOPLE_ONLY, nurse_x=200, nurse_y=404, support=200),
    ),
    ("GET", "/nurse"): (lambda w: Call("GET", "/nurse"), everyone(200)),
    ("GET", "/api/teams"): (lambda w: Call("GET", "/api/teams"), cells(200, **PEOPLE_ONLY)),
    ("GET", "/api/nurse/patients"): (
        lambda w: Call("GET", "/api/nurse/patients"),
        dict(NURSES, nurse_x=200, nurse_y=200),
    ),
    ("POST", "/api/nurse/patients"): (
        lambda w: Call("POST", "/api/nurse/patients", {"display_name": "Cy", "team_id": w.team_x}),
        dict(NURSES, nurse_x=201, nurse_y=400),
    ),
    ("POST", "/api/nurse/patients/{patient_id}/enrolments"): (
        lambda w: Call("POST", f"/api/nurse/patients/{w.patient_a}/enrolments"),
        dict(NURSES, nurse_x=201, nurse_y=404),
    ),
    ("POST", "/api/nurse/enrolments/{enrolment_id}/cancel"): (
        lambda w: Call("POST", f"/api/nurse/enrolments/{w.enrolment_a}/cancel"),
        dict(NURSES, nurse_x=200, nurse_y=404),
    ),
    ("GET", "/api/nurse/devices"): (
        lambda w: Call("GET", "/api/nurse/devices"),
        dict(NURSES, nurse_x=200, nurse_y=200),
    ),
    ("GET", "/api/admin/people"): (
        lambda w: Call("GET", "/api/admin/people"),
        dict(ADMIN_ONLY, admin=200),
    ),
    ("POST", "/api/admin/people"): (
        lambda w: Call(
            "POST",
            "/api/admin/people",
            {"username": "new", "display_name": "New", "role": "nurse", "password": "x" * 12},
        ),
        dict(ADMIN_ONLY, admin=201),
    ),
    ("PUT", "/api/admin/people/{username}/teams"): (
        lambda w: Call("PUT", "/api/admin/people/nurse_y/teams", {"teams": [w.team_x]}),
        dict(ADMIN_ONLY, admin=200),
    ),
    ("POST", "/api/admin/teams"): (
        lambda w: Call("POST", "/api/admin/teams", {"name": "Team Z"}),
        dict(ADMIN_ONLY, admin=201),
    ),
    # Appointments, kiosk settings, the kiosk's plan, help requests (issue 8). Ids that do
    # not exist answer 404 to everyone allowed to ask (tests/patient cover real ones).
    ("POST", "/api/appointments"): (
        lambda w: Call(
            "POST",
            "/api/appointments",
            {"patient_id": w.patient_a, "starts_at": "2025-03-04T14:30:00Z"},
        ),
        cells(403, **PEOPLE_ONLY, clin_x=201, nurse_x=201, clin_y=404, nurse_y=404),
    ),
    ("GET", "/api/appointments"): (
        lambda w: Call("GET", "/api/appointments"),
        cells(403, **PEOPLE_ONLY, clin_x=200, clin_y=200, nurse_x=200, nurse_y=200),
    ),
    ("POST", "/api/appointments/{appointment_id}/cancel"): (
        lambda w: Call("POST", f"/api/appointments/{uuid.uuid4()}/cancel"),
        cells(403, **PEOPLE_ONLY, clin_x=404, clin_y=404, nurse_x=404, nurse_y=404),
    ),
    ("POST", "/api/appointments/{appointment_id}/move"): (
        lambda w: Call(
            "POST", f"/api/appointments/{uuid.uuid4()}/move", {"starts_at": "2025-03-05T10:00:00Z"}
        ),
        cells(403, **PEOPLE_ONLY, clin_x=404, clin_y=404, nurse_x=404, nurse_y=404),
    ),
    ("GET", "/api/patients/{patient_id}/appointments"): (
        lambda w: Call("GET", f"/api/patients/{w.patient_a}/appointments"),
        cells(403, **PEOPLE_ONLY, clin_x=200, nurse_x=200),
    ),
    ("GET", "/api/patients/{patient_id}/clinicians"): (
        lambda w: Call("GET", f"/api/patients/{w.patient_a}/clinicians"),
        cells(403, **PEOPLE_ONLY, clin_x=200, nurse_x=200),
    ),
    ("GET", "/api/care/patients"): (
        lambda w: Call("GET", "/api/care/patients"),
        cells(403, **PEOPLE_ONLY, clin_x=200, clin_y=200, nurse_x=200, nurse_y=200),
    ),
    ("POST", "/api/appointments/{appointment_id}/outcome"): (
        lambda w: Call(
            "POST", f"/api/appointments/{uuid.uuid4()}/outcome", {"outcome": "completed"}
        ),
        cells(403, **PEOPLE_ONLY, clin_x=404, clin_y=404),
    ),
    ("POST", "/api/calls/{call_id}/outcome"): (
        lambda w: Call("POST", f"/api/calls/{uuid.uuid4()}/outcome", {"outcome": "completed"}),
        cells(403, **PEOPLE_ONLY, clin_x=404, clin_y=404),
    ),
    ("GET", "/api/follow-ups"): (
        lambda w: Call("GET", "/api/follow-ups"),
        cells(403, **PEOPLE_ONLY, clin_x=200, clin_y=200, nurse_x=200, nurse_y=200),
    ),
    ("GET", "/api/patients/{patient_id}/kiosk-settings"): (
        lambda w: Call("GET", f"/api/patients/{w.patient_a}/kiosk-settings"),
        cells(403, **PEOPLE_ONLY, clin_x=200, nurse_x=200),
    ),
    ("PUT", "/api/patients/{patient_id}/kiosk-settings"): (
        lambda w: Call(
            "PUT",
            f"/api/patients/{w.patient_a}/kiosk-settings",
            {"language": "cy", "spoken_prompts": True, "auto_answer": True},
        ),
        cells(403, **PEOPLE_ONLY, clin_x=200, nurse_x=200),
    ),
    ("GET", "/api/device/plan"): (lambda w: Call("GET", "/api/device/plan"), DEVICES_ONLY),
    ("GET", "/api/help-requests"): (
        lambda w: Call("GET", "/api/help-requests"),
        cells(403, **PEOPLE_ONLY, clin_x=200, clin_y=200, nurse_x=200, nurse_y=200),
    ),
    ("POST", "/api/help-requests/{record_id}/done"): (
        lambda w: Call("POST", f"/api/help-requests/{uuid.uuid4()}/done"),
        cells(403, **PEOPLE_ONLY, clin_x=404, clin_y=404, nurse_x=404, nurse_y=404),
    ),
    ("GET", "/evidence"): (lambda w: Call("GET", "/evidence"), everyone(200)),
    ("GET", "/api/evidence"): (
        lambda w: Call("GET", f"/api/evidence?team_id={w.team_x}"),
        cells(403, **PEOPLE_ONLY, clin_x=200, nurse_x=200, clin_y=404, nurse_y=404),
    ),
    ("GET", "/api/evidence.csv"): (
        lambda w: Call("GET", f"/api/evidence.csv?team_id={w.team_x}&month=2025-03"),
        cells(403, **PEOPLE_ONLY, clin_x=200, nurse_x=200, clin_y=404, nurse_y=404),
    ),
    # Practice patients (issue 10): each clinician sees their own teams'. Starting a practice
    # kiosk is covered with real kiosks in tests/practice; the target here is patient A, who
    # is not a practice patient, so no kiosk process starts: 404 to every clinician.
    ("GET", "/api/practice"): (
        lambda w: Call("GET", "/api/practice"),
        cells(403, **PEOPLE_ONLY, clin_x=200, clin_y=200),
    ),
    ("POST", "/api/practice/{patient_id}/start"): (
        lambda w: Call("POST", f"/api/practice/{w.patient_a}/start"),
        cells(403, **PEOPLE_ONLY, clin_x=404, clin_y=404),
    ),
    ("POST", "/api/practice/{patient_id}/waiting-room"): (
        lambda w: Call("POST", f"/api/practice/{w.patient_a}/waiting-room"),
        cells(403, **PEOPLE_ONLY, clin_x=404, clin_y=404),
    ),
    # Stills (issue 10): a kiosk uploads its own; the care team reads them (tests/stills
    # cover real stills of both teams). Unknown still ids answer 404 to everyone allowed.
    ("PUT", "/api/device/stills/{still_id}"): (
        lambda w: Call(
            "PUT",
            f"/api/device/stills/{uuid.uuid4()}",
            content=b"\xff\xd8",
            headers={"Content-Range": "bytes 0-1/2"},
        ),
        DEVICES_ONLY,
    ),
    ("GET", "/api/device/stills/{still_id}"): (
        lambda w: Call("GET", f"/api/device/stills/{uuid.uuid4()}"),
        DEVICES_ONLY,
    ),
    ("GET", "/api/stills/{still_id}"): (
        lambda w: Call("GET", f"/api/stills/{uuid.uuid4()}"),
        cells(403, **PEOPLE_ONLY, clin_x=404, clin_y=404, nurse_x=404, nurse_y=404),
    ),
    ("GET", "/api/patients/{patient_id}/stills"): (
        lambda w: Call("GET", f"/api/patients/{w.patient_a}/stills"),
        cells(403, **PEOPLE_ONLY, clin_x=200, nurse_x=200),
    ),
    ("GET", "/fhir/Media"): (
        lambda w: Call("GET", f"/fhir/Media?patient={w.patient_a}"),
        cells(403, **PEOPLE_ONLY, clin_x=200, nurse_x=200),
    ),
    ("GET", "/fhir/Media/{still_id}"): (
        lambda w: Call("GET", f"/fhir/Media/{uuid.uuid4()}"),
        cells(403, **PEOPLE_ONLY, clin_x=404, clin_y=404, nurse_x=404, nurse_y=404),
    ),
    ("GET", "/"): (lambda w: Call("GET", "/"), everyone(307)),
    ("GET", "/clinic"): (lambda w: Call("GET", "/clinic"), everyone(200)),
    ("MOUNT", "/static"): (lambda w: Call("GET", "/static/clinic.css"), everyone(200)),
    # Fleet (docs/updates.md): devices report; support and admin see and steer, nobody else.
    ("POST", "/api/fleet/heartbeat"): (
        lambda w: Call("POST", "/api/fleet/heartbeat", {}),
        DEVICES_ONLY,
    ),
    ("POST", "/api/fleet/diagnostics"): (
        lambda w: Call("POST", "/api/fleet/diagnostics", {"bundle": {}}),
        DEVICES_ONLY,
    ),
    ("GET", "/api/fleet/devices"): (
        lambda w: Call("GET", "/api/fleet/devices"),
        cells(403, **PEOPLE_ONLY, support=200, admin=200),
    ),
    ("GET", "/api/fleet/rollouts"): (
        lambda w: Call("GET", "/api/fleet/rollouts"),
        cells(403, **PEOPLE_ONLY, support=200, admin=200),
    ),
    ("POST", "/api/fleet/rollouts"): (
        lambda w: Call("POST", "/api/fleet/rollouts", {"version": "2.0.0"}),
        cells(403, **PEOPLE_ONLY, support=201, admin=201),
    ),
    ("POST", "/api/fleet/rollouts/{rollout_id}/{action}"): (
        lambda w: Call("POST", f"/api/fleet/rollouts/{uuid.uuid4()}/pause"),
        cells(403, **PEOPLE_ONLY, support=404, admin=404),
    ),
    ("POST", "/api/fleet/devices/{device_id}/diagnostics-request"): (
        lambda w: Call("POST", f"/api/fleet/devices/{w.device_a}/diagnostics-request"),
        cells(403, **PEOPLE_ONLY, support=404, admin=404),
    ),
    ("GET", "/api/fleet/devices/{device_id}/diagnostics"): (
        lambda w: Call("GET", f"/api/fleet/devices/{w.device_a}/diagnostics"),
        cells(403, **PEOPLE_ONLY, support=404, admin=404),
    ),
    ("POST", "/api/fleet/check-requests"): (
        lambda w: Call("POST", "/api/fleet/check-requests", {"device_ids": [w.device_a]}),
        cells(403, **PEOPLE_ONLY, support=404, admin=404),
    ),
    ("GET", "/support"): (lambda w: Call("GET", "/support"), everyone(200)),
    # Signed release files: public (devices verify every byte); none published in this world.
    ("MOUNT", "/releases"): (
        lambda w: Call("GET", "/releases/metadata/timestamp.json"),
        everyone(404),
    ),
}


def app_routes() -> Iterator[tuple[str, str]]:
    """(method, path) of every route the hub serves; WebSockets as WS, mounts as MOUNT."""
    store = Store.open("sqlite:///:memory:")
    app = create_app(HubConfig(data_dir="/nonexistent"), store=store)

    def walk(routes: list[Any], prefix: str) -> Iterator[tuple[str, str]]:
        for route in routes:
            if hasattr(route, "original_router"):  # FastAPI's included router
                yield from walk(route.original_router.routes, prefix + route.include_context.prefix)
                continue
            path = prefix + route.path
            methods = getattr(route, "methods", None)
            if methods:
                for method in sorted(set(methods) - {"HEAD"}):
                    yield method, path
            elif type(route).__name__.endswith("WebSocketRoute"):
                yield "WS", path
            else:
                yield "MOUNT", path

    yield from walk(app.routes, "")
    store.close()


def test_every_route_has_an_entry():
    served = set(app_routes())
    missing = sorted(served - set(MATRIX))
    assert not missing, f"routes with no authorisation entry in MATRIX: {missing}"
    stale = sorted(set(MATRIX) - served)
    assert not stale, f"MATRIX entries for routes the hub no longer serves: {stale}"


def _ws_outcome(client: Any, url: str, headers: dict[str, str]) -> int | str:
    try:
        with client.websocket_connect(url, headers=headers) as ws:
            ws.send_json({"type": "hello"})
            first = ws.receive_json()
            return ACCEPT if first["type"] in ("welcome", "waiting_room") else first["type"]
    except WebSocketDisconnect as exc:
        return exc.code


@pytest.mark.parametrize("key", sorted(MATRIX), ids=lambda k: f"{k[0]} {k[1]}")
def test_matrix(key, world, tmp_path):
    build, expected = MATRIX[key]
    assert set(expected) == set(ACTORS), "every caller needs a cell"
    got: dict[str, int | str] = {}
    for actor in ACTORS:
        with hub_client(world, tmp_path / actor) as client:
            headers = world.auth(client, actor)
            call = build(world)
            if call.method == "WS":
                got[actor] = _ws_outcome(client, call.url, headers)
                continue
            response = client.request(
                call.method,
                call.url,
                json=call.body,
                content=call.content,
                headers={**headers, **(call.headers or {})},
                follow_redirects=False,
            )
            got[actor] = response.status_code
            if response.status_code >= 400 and response.headers["content-type"].startswith(
                "application/json"
            ):
                body = response.json()
                assert set(body) >= {"error", "message"}, body
            if key == ("POST", "/api/records") and response.status_code == 200:
                (result,) = response.json()["results"]
                got[actor] = 200 if result["status"] == "stored" else result["status"]
    if key == ("POST", "/api/records"):
        expected = dict(expected, device_b="forbidden")
    assert got == expected


def test_enrol_proof_must_match_the_code(world, tmp_path):
    """A proof made for another code (a replayed request with a new code) is refused."""
    key = new_key()
    public = public_key_bytes(key)
    body = {
        "code": world.code_a,
        "public_key": b64encode(public),
        "proof": b64encode(key.sign(proof_message("ACDEFGHJ", public))),
    }
    with hub_client(world, tmp_path) as client:
        response = client.post("/api/enrol", json=body)
        assert response.status_code == 400
        assert "proof" in response.json()["message"]
        # The code still works afterwards: a bad proof does not burn it.
        assert (
            client.post("/api/enrol", json=enrol_request_body(world.code_a, key)).status_code == 200
        )

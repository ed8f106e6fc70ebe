"""The hub's side of stills (issue 10): resumable chunked uploads, the record that commits
them (only whole, matching bytes), per-device limits, reading them back (JPEG, list, FHIR
Media) by the care team only, and the call's relays: view, prompt, take_still, still_taken,
still_progress and still_ready, for the call's own clinician only."""

from __future__ import annotations

import base64
import hashlib
import uuid
import warnings
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import av
import numpy as np
import pg_support
import pytest
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.media import Media
from patient.hub_support import clinic, expect, expect_skipping, kiosk
from security.world import FakeClock, World, build_world, hub_client

from porchlight.hub import auth
from porchlight.hub.app import create_app
from porchlight.hub.config import HubConfig
from porchlight.hub.stills import (
    ProgressThrottle,
    StillFiles,
    StillLimits,
    parse_content_range,
)
from porchlight.hub.store import Role, Store
from porchlight.kiosk.records import Record, RecordKind, iso_utc
from porchlight.kiosk.rtc import encode_jpeg
from porchlight.protocol import MAX_STILL_BYTES, PROMPTS, SESSION_COOKIE

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    from fastapi.testclient import TestClient

TAKEN = datetime(2025, 3, 4, 9, 31, tzinfo=UTC)


def jpeg(width: int = 640, height: int = 480, seed: int = 1) -> bytes:
    """A real JPEG, encoded as the kiosk encodes its stills, different for each seed."""
    noise = np.random.default_rng(seed).integers(0, 255, (height, width, 3), dtype=np.uint8)
    return encode_jpeg(av.VideoFrame.from_ndarray(noise, format="rgb24"))


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    return build_world(tmp_path_factory.mktemp("stills-world"))


@pytest.fixture
def client(world: World, tmp_path) -> Iterator:
    with hub_client(world, tmp_path / "hub", FakeClock()) as c:
        yield c


def device(world: World, actor: str = "device_a") -> dict[str, str]:
    return {"Authorization": f"Bearer {world.tokens[actor]}"}


def put(client, world, still_id: str, data: bytes, start: int, total: int, actor="device_a"):
    client.cookies.clear()
    end = start + len(data) - 1
    return client.put(
        f"/api/device/stills/{still_id}",
        content=data,
        headers={
            **device(world, actor),
            "Content-Range": f"bytes {start}-{end}/{total}",
            "Content-Type": "application/octet-stream",
        },
    )


def upload(client, world, still_id: str, data: bytes, chunk: int = 65536) -> None:
    for start in range(0, len(data), chunk):
        answer = put(client, world, still_id, data[start : start + chunk], start, len(data))
        assert answer.status_code == 200, answer.text


def still_record(
    world: World, still_id: str, data: bytes, call_id: str | None = None, sha256: str = ""
) -> Record:
    body = {
        "call_id": call_id,
        "width": 640,
        "height": 480,
        "content_type": "image/jpeg",
        "size": len(data),
        "sha256": sha256 or hashlib.sha256(data).hexdigest(),
    }
    record = Record(still_id, world.patient_a, RecordKind.STILL, iso_utc(TAKEN), body)
    return Record.from_wire(record.to_wire())


def post(client, world, record: Record) -> dict:
    client.cookies.clear()
    answer = client.post(
        "/api/records", json={"records": [record.to_wire()]}, headers=device(world)
    )
    assert answer.status_code == 200, answer.text
    (result,) = answer.json()["results"]
    return result


def as_person(client, world: World, actor: str) -> None:
    world.auth(client, actor)


def test_chunks_then_the_record_make_a_still_the_care_team_can_see(client, world):
    data = jpeg(640, 480, seed=3)
    still_id = str(uuid.uuid4())
    first = put(client, world, still_id, data[:5000], 0, len(data))
    assert first.status_code == 200
    assert first.json() == {"received": 5000, "size": len(data), "complete": False}
    client.cookies.clear()
    state = client.get(f"/api/device/stills/{still_id}", headers=device(world)).json()
    assert state == {"received": 5000, "size": len(data)}
    last = put(client, world, still_id, data[5000:], 5000, len(data))
    assert last.json() == {"received": len(data), "size": len(data), "complete": True}
    # Whole but not committed: nobody can read it yet.
    as_person(client, world, "clin_x")
    assert client.get(f"/api/stills/{still_id}").status_code == 404
    assert client.get(f"/api/patients/{world.patient_a}/stills").json()["stills"] == []

    call_id = "call-1"
    assert post(client, world, still_record(world, still_id, data, call_id))["status"] == "stored"
    # The same record again is a duplicate, as for every record.
    assert post(client, world, still_record(world, still_id, data, call_id))["status"] == (
        "duplicate"
    )
    for reader in ("clin_x", "nurse_x"):
        as_person(client, world, reader)
        got = client.get(f"/api/stills/{still_id}")
        assert got.status_code == 200 and got.headers["content-type"] == "image/jpeg"
        assert got.content == data
    for outsider, status in (("clin_y", 403), ("nurse_y", 403), ("support", 403)):
        as_person(client, world, outsider)
        assert client.get(f"/api/stills/{still_id}").status_code == status
        assert client.get(f"/fhir/Media/{still_id}").status_code == status

    as_person(client, world, "clin_x")
    (listed,) = client.get(f"/api/patients/{world.patient_a}/stills").json()["stills"]
    assert listed == {
        "still_id": still_id,
        "url": f"/api/stills/{still_id}",
        "call_id": call_id,
        "width": 640,
        "height": 480,
        "size": len(data),
        "taken_at": "2025-03-04T09:31:00.000Z",
    }
    # After the bytes are final, more chunks are refused (nothing changes).
    again = put(client, world, still_id, data[:10], 0, len(data))
    assert again.status_code == 409 and again.json()["complete"] is True


def test_fhir_media_validates_and_says_what_the_still_is(client, world):
    data = jpeg(320, 240, seed=4)
    still_id = str(uuid.uuid4())
    upload(client, world, still_id, data)
    assert post(client, world, still_record(world, still_id, data, "call-9"))["status"] == "stored"
    as_person(client, world, "clin_x")
    answer = client.get(f"/fhir/Media?patient=Patient/{world.patient_a}")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("application/fhir+json")
    bundle = Bundle.model_validate(answer.json())
    (entry,) = bundle.entry
    media = entry.resource
    assert isinstance(media, Media)
    assert media.status == "completed"
    assert media.type.coding[0].code == "image" and media.type.text == "Photo"
    assert media.subject.reference == f"Patient/{world.patient_a}"
    assert media.encounter.identifier.value == "call-9"
    assert media.createdDateTime.isoformat().startswith("2025-03-04T09:31:00")
    assert (media.width, media.height) == (640, 480)
    content = media.content
    assert content.contentType == "image/jpeg" and content.size == len(data)
    assert content.url == f"http://hub.test/api/stills/{still_id}"
    assert content.hash == hashlib.sha1(data).digest()  # fhir.resources decodes base64
    raw = answer.json()["entry"][0]["resource"]["content"]["hash"]
    assert base64.b64decode(raw) == hashlib.sha1(data).digest()
    one = client.get(f"/fhir/Media/{still_id}")
    assert Media.model_validate(one.json()).id == still_id
    assert client.get(f"/fhir/Media/{uuid.uuid4()}").status_code == 404


def test_a_resend_of_a_chunk_the_hub_has_gets_409_and_where_to_resume(client, world):
    data = jpeg(seed=5)
    still_id = str(uuid.uuid4())
    client.cookies.clear()
    never = client.get(f"/api/device/stills/{still_id}", headers=device(world))
    assert never.json() == {"received": 0, "size": None}
    assert put(client, world, still_id, data[:3000], 0, len(data)).status_code == 200
    # The answer was lost; the kiosk sends the same chunk again: 409 says where the hub is.
    repeat = put(client, world, still_id, data[:3000], 0, len(data))
    assert repeat.status_code == 409
    assert {k: repeat.json()[k] for k in ("received", "size", "complete")} == {
        "received": 3000,
        "size": len(data),
        "complete": False,
    }
    # A chunk from beyond what the hub has is refused the same way (nothing written).
    ahead = put(client, world, still_id, data[5000:6000], 5000, len(data))
    assert ahead.status_code == 409 and ahead.json()["received"] == 3000
    assert put(client, world, still_id, data[3000:], 3000, len(data)).status_code == 200
    assert post(client, world, still_record(world, still_id, data))["status"] == "stored"
    as_person(client, world, "clin_x")
    assert client.get(f"/api/stills/{still_id}").content == data


def test_too_large_and_bad_ranges_are_refused_and_change_nothing(client, world):
    still_id = str(uuid.uuid4())
    big = put(client, world, still_id, b"x" * 10, 0, MAX_STILL_BYTES + 1)
    assert big.status_code == 413
    for header in ("", "bytes 0-9", "bytes 5-2/10", "bytes 0-10/10", "items 0-9/10"):
        client.cookies.clear()
        answer = client.put(
            f"/api/device/stills/{still_id}",
            content=b"y" * 10,
            headers={**device(world), "Content-Range": header},
        )
        assert answer.status_code == 400, header
        assert "Content-Range" in answer.json()["message"]
    # The body is not as long as the range says.
    client.cookies.clear()
    short = client.put(
        f"/api/device/stills/{still_id}",
        content=b"z" * 5,
        headers={**device(world), "Content-Range": "bytes 0-9/10"},
    )
    assert short.status_code == 400
    client.cookies.clear()
    state = client.get(f"/api/device/stills/{still_id}", headers=device(world)).json()
    assert state == {"received": 0, "size": None}
    # Once begun, the total may not change.
    assert put(client, world, still_id, b"a" * 10, 0, 20).status_code == 200
    changed = put(client, world, still_id, b"b" * 10, 10, 30)
    assert changed.status_code == 400 and "size changed" in changed.json()["message"]
    assert put(client, world, "not-a-uuid", b"a", 0, 1).status_code == 400


def test_a_record_whose_bytes_are_missing_is_an_error_until_they_arrive(client, world):
    data = jpeg(seed=6)
    still_id = str(uuid.uuid4())
    record = still_record(world, still_id, data)
    missing = post(client, world, record)
    assert missing["status"] == "error" and "upload them first" in missing["message"]
    assert put(client, world, still_id, data[:4000], 0, len(data)).status_code == 200
    partial = post(client, world, record)
    assert partial["status"] == "error"
    assert f"Only 4000 of the still's {len(data)} bytes" in partial["message"]
    assert put(client, world, still_id, data[4000:], 4000, len(data)).status_code == 200
    assert post(client, world, record)["status"] == "stored"


def test_bytes_that_do_not_match_the_record_are_dropped_and_uploaded_again(client, world):
    data = jpeg(seed=7)
    still_id = str(uuid.uuid4())
    spoiled = bytearray(data)
    spoiled[len(data) // 2] ^= 0xFF
    upload(client, world, still_id, bytes(spoiled))
    record = still_record(world, still_id, data)
    mismatch = post(client, world, record)
    assert mismatch["status"] == "error" and "do not match" in mismatch["message"]
    client.cookies.clear()
    state = client.get(f"/api/device/stills/{still_id}", headers=device(world)).json()
    assert state == {"received": 0, "size": None}
    upload(client, world, still_id, data)
    assert post(client, world, record)["status"] == "stored"
    as_person(client, world, "clin_x")
    assert client.get(f"/api/stills/{still_id}").content == data


def test_a_kiosk_cannot_touch_another_patients_still(client, world):
    data = jpeg(seed=8)
    still_id = str(uuid.uuid4())
    assert put(client, world, still_id, data[:100], 0, len(data)).status_code == 200
    other = put(client, world, still_id, data[100:200], 100, len(data), actor="device_b")
    assert other.status_code == 404
    client.cookies.clear()
    looked = client.get(f"/api/device/stills/{still_id}", headers=device(world, "device_b"))
    assert looked.status_code == 404
    client.cookies.clear()
    mine = client.get(f"/api/device/stills/{still_id}", headers=device(world)).json()
    assert mine["received"] == 100


def test_per_device_limits_stop_a_broken_kiosk_filling_the_disk(client, world, tmp_path):
    services = client.app.state.services
    client.app.state.still_files = StillFiles(
        services.store.engine,
        tmp_path / "limited",
        StillLimits(max_unfinished=2, max_per_day=3, max_bytes_per_day=50),
    )
    ids = [str(uuid.uuid4()) for _ in range(4)]
    assert put(client, world, ids[0], b"a" * 5, 0, 10).status_code == 200
    assert put(client, world, ids[1], b"b" * 5, 0, 10).status_code == 200
    unfinished = put(client, world, ids[2], b"c" * 5, 0, 10)
    assert unfinished.status_code == 429 and "half uploaded" in unfinished.json()["message"]
    assert "Retry-After" in unfinished.headers
    assert put(client, world, ids[0], b"a" * 5, 5, 10).status_code == 200  # one finished
    too_big = put(client, world, ids[2], b"c" * 5, 0, 41)  # 10 + 10 + 41 > 50 today
    assert too_big.status_code == 429 and "bytes" in too_big.json()["message"]
    assert put(client, world, ids[2], b"c" * 5, 0, 30).status_code == 200
    assert put(client, world, ids[1], b"b" * 5, 5, 10).status_code == 200
    day = put(client, world, ids[3], b"d", 0, 1)
    assert day.status_code == 429 and "in a day" in day.json()["message"]
    # The other kiosk has its own allowance.
    assert put(client, world, ids[3], b"d", 0, 1, actor="device_b").status_code == 200


def test_a_part_upload_left_for_a_week_is_dropped_to_make_room(world, tmp_path):
    clock = FakeClock()
    with hub_client(world, tmp_path / "hub", clock) as client:
        engine = client.app.state.services.store.engine
        files = StillFiles(engine, tmp_path / "limited", StillLimits(max_unfinished=1))
        client.app.state.still_files = files
        old, new = str(uuid.uuid4()), str(uuid.uuid4())
        assert put(client, world, old, b"a" * 5, 0, 10).status_code == 200
        assert put(client, world, new, b"b" * 5, 0, 10).status_code == 429
        clock.advance(8 * 24 * 3600)
        assert put(client, world, new, b"b" * 5, 0, 10).status_code == 200
        assert not files.path(old).exists()
        client.cookies.clear()
        state = client.get(f"/api/device/stills/{old}", headers=device(world)).json()
        assert state == {"received": 0, "size": None}  # the kiosk starts it again from 0


def test_progress_is_throttled_but_the_newest_held_back_one_still_goes():
    throttle = ProgressThrottle(per_second=4)
    one, two, three = ({"received": n} for n in (1, 2, 3))
    assert throttle.offer("s", one, now=10.0, complete=False) == (one, None)
    # Too soon: held, with when to flush it; a newer one replaces it (no second timer).
    assert throttle.offer("s", two, now=10.1, complete=False) == (None, pytest.approx(0.15))
    assert throttle.offer("s", three, now=10.2, complete=False) == (None, None)
    assert throttle.flush("s", now=10.25) == three
    assert throttle.flush("s", now=10.3) is None
    assert throttle.offer("s", one, now=10.6, complete=False) == (one, None)
    # The last one always goes at once, and nothing stays held.
    assert throttle.offer("s", two, now=10.61, complete=False)[0] is None
    assert throttle.offer("s", three, now=10.62, complete=True) == (three, None)
    assert throttle.flush("s", now=11.0) is None


def test_content_range_parsing():
    assert parse_content_range("bytes 0-9/10").length == 10
    assert parse_content_range(" bytes 5-5/6 ").start == 5


# -- in a call -----------------------------------------------------------------------------


def admit(kws, cws, world) -> str:
    kws.send_json({"type": "join"})
    expect(kws, "waiting")
    cws.send_json({"type": "admit", "patient_id": world.patient_a})
    started = expect_skipping(cws, "call_started", patient_id=world.patient_a)
    expect(kws, "admitted", call_id=started["call_id"])
    return started["call_id"]


def test_view_prompt_and_stills_reach_the_kiosk_and_come_back_to_the_clinician(client, world):
    with kiosk(client, world) as kws, clinic(client, world) as cws:
        call_id = admit(kws, cws, world)
        region = {"x": 0.25, "y": 0.1, "w": 0.5, "h": 0.5}
        cws.send_json({"type": "view", "region": region})
        assert expect(kws, "view")["region"] == region
        cws.send_json({"type": "view", "region": None, "call_id": call_id})
        assert expect(kws, "view")["region"] is None
        for key in PROMPTS:
            cws.send_json({"type": "prompt", "prompt": key})
            expect(kws, "prompt", prompt=key)
        cws.send_json({"type": "prompt", "prompt": None})
        expect(kws, "prompt", prompt=None)

        cws.send_json({"type": "take_still", "request_id": "page-1"})
        expect(kws, "take_still", request_id="page-1")
        data = jpeg(seed=9)
        still_id = str(uuid.uuid4())
        kws.send_json(
            {"type": "still_taken", "request_id": "page-1", "still_id": still_id, "size": len(data)}
        )
        taken = expect_skipping(cws, "still_taken")
        assert taken == {
            "type": "still_taken",
            "request_id": "page-1",
            "still_id": still_id,
            "size": len(data),
            "patient_id": world.patient_a,
        }
        upload(client, world, still_id, data, chunk=len(data) // 3 + 1)
        # Progress is throttled; the last one (all bytes) always comes.
        progress = expect_skipping(cws, "still_progress", still_id=still_id)
        while progress["received"] < len(data):
            progress = expect_skipping(cws, "still_progress", still_id=still_id)
        assert progress["size"] == len(data)
        # The record from the kiosk carries no call (taken offline, say): the hub knows it.
        assert post(client, world, still_record(world, still_id, data))["status"] == "stored"
        ready = expect_skipping(cws, "still_ready", still_id=still_id)
        assert ready == {
            "type": "still_ready",
            "still_id": still_id,
            "url": f"/api/stills/{still_id}",
            "width": 640,
            "height": 480,
            "taken_at": "2025-03-04T09:31:00.000Z",
        }


def test_only_the_calls_own_clinician_can_look_closely(client, world):
    with (
        kiosk(client, world) as kws,
        clinic(client, world) as cws,
        clinic(client, world) as other,
    ):
        call_id = admit(kws, cws, world)
        region = {"x": 0.1, "y": 0.1, "w": 0.2, "h": 0.2}
        other.send_json({"type": "view", "region": region})
        expect_skipping(other, "error", code="unknown_call")
        other.send_json({"type": "take_still", "request_id": "x", "call_id": call_id})
        expect_skipping(other, "error", code="not_your_call")
        other.send_json({"type": "prompt", "prompt": "hold_still", "call_id": "no-such-call"})
        expect_skipping(other, "error", code="unknown_call")
        for bad in (
            {"type": "view", "region": {"x": 0.6, "y": 0, "w": 0.5, "h": 0.5}},
            {"type": "view", "region": {"x": 0, "y": 0, "w": 0.01, "h": 0.5}},
            {"type": "view", "region": {"x": "0", "y": 0, "w": 0.5, "h": 0.5}},
            {"type": "view"},
            {"type": "prompt", "prompt": "sing_a_song"},
            {"type": "take_still", "request_id": ""},
            {"type": "take_still", "request_id": "x" * 65},
        ):
            cws.send_json(bad)
            expect_skipping(cws, "error", code="bad_message")
        # The kiosk heard none of it; the next good message is the first it gets.
        cws.send_json({"type": "prompt", "prompt": "hold_still"})
        expect(kws, "prompt", prompt="hold_still")
        kws.send_json({"type": "still_taken", "request_id": "x", "still_id": "nope", "size": 1})
        expect(kws, "error", code="bad_message")


def test_stills_work_on_postgresql_too(request, tmp_path):
    """Upload, resume, commit and read back with the hub on PostgreSQL."""

    store = Store.open(pg_support.new_database(request))
    now = FakeClock().now
    team = store.add_team("Team P", now=now)
    patient = store.add_patient("Pat Post", now=now, team_id=team.id)
    token = auth.new_token()
    store.add_device(patient.id, auth.hash_token(token), now=now)
    store.add_person("clin_p", "Clin P", Role.CLINICIAN, "x", now=now, teams=[team.id])
    session = auth.new_token()
    store.add_session(auth.hash_token(session), "clin_p", now=now, expires=now + timedelta(hours=8))

    data = jpeg(seed=11)
    still_id = str(uuid.uuid4())
    headers = {"Authorization": f"Bearer {token}"}
    try:
        app = create_app(HubConfig(data_dir=tmp_path), store=store, clock=FakeClock())
        with TestClient(app, base_url="http://hub.test") as client:
            half = len(data) // 2
            for start, part in ((0, data[:half]), (0, data[:half]), (half, data[half:])):
                answer = client.put(
                    f"/api/device/stills/{still_id}",
                    content=part,
                    headers={
                        **headers,
                        "Content-Range": f"bytes {start}-{start + len(part) - 1}/{len(data)}",
                    },
                )
                assert answer.status_code in (200, 409)
            assert answer.json()["complete"] is True
            body = {
                "call_id": "call-p",
                "width": 640,
                "height": 480,
                "content_type": "image/jpeg",
                "size": len(data),
                "sha256": hashlib.sha256(data).hexdigest(),
            }
            record = Record(still_id, patient.id, RecordKind.STILL, iso_utc(TAKEN), body)
            stored = client.post(
                "/api/records", json={"records": [record.to_wire()]}, headers=headers
            )
            assert stored.json()["results"][0]["status"] == "stored"
            client.cookies.set(SESSION_COOKIE, session)
            assert client.get(f"/api/stills/{still_id}").content == data
            (listed,) = client.get(f"/api/patients/{patient.id}/stills").json()["stills"]
            assert listed["call_id"] == "call-p" and listed["size"] == len(data)
    finally:
        store.close()

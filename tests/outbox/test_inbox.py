"""The hub's inbox over real HTTP: per-record results, idempotency under concurrency, bad
batches, another patient's records, and what the clinician sees today."""

from __future__ import annotations

import gzip
import json
import threading
from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select

from porchlight.hub.inbox import record_conflicts, records
from porchlight.kiosk.outbox import new_record_id
from porchlight.kiosk.questionnaire import default_checkin
from porchlight.kiosk.records import answers_record, vitals_record


def vit(patient, values=None, rid=None, confirmed=True):
    return vitals_record(
        values or {"spo2": 96, "pulse": 70},
        record_id=rid or new_record_id(),
        patient_id=patient,
        now=datetime.now(UTC),
        confirmed=confirmed,
    ).to_wire()


def post(session, url, recs, **kw):
    return session.post(url + "/api/records", json={"records": recs}, timeout=10, **kw)


def count(hub, table, **where):
    query = select(func.count()).select_from(table)
    for key, value in where.items():
        query = query.where(table.c[key] == value)
    with hub.server.store.engine.connect() as conn:
        return conn.execute(query).scalar_one()


def test_new_duplicate_and_conflict_per_record(hub):
    dev = hub.device()
    a, b = vit(hub.patient_id), vit(hub.patient_id)
    r = post(dev, hub.url, [a, b])
    assert r.status_code == 200
    assert [x["status"] for x in r.json()["results"]] == ["stored", "stored"]
    # identical resend: success, nothing added
    r = post(dev, hub.url, [b, a])
    assert [x["status"] for x in r.json()["results"]] == ["duplicate", "duplicate"]
    assert count(hub, records, id=a["id"]) == 1
    # same id, different content: conflict, nothing overwritten, flagged
    changed = json.loads(json.dumps(a))
    changed["body"]["values"]["pulse"] = 71
    r = post(dev, hub.url, [changed])
    (res,) = r.json()["results"]
    assert res["status"] == "conflict" and res["id"] == a["id"]
    with hub.server.store.engine.connect() as conn:
        stored = conn.execute(select(records.c.content).where(records.c.id == a["id"])).scalar()
    assert json.loads(stored)["body"]["values"]["pulse"] == 70
    assert count(hub, record_conflicts, record_id=a["id"]) == 1
    post(dev, hub.url, [changed])  # the same conflict again is kept once
    assert count(hub, record_conflicts, record_id=a["id"]) == 1


def test_one_bad_record_never_fails_the_batch(hub):
    good1, good2 = vit(hub.patient_id), vit(hub.patient_id)
    impossible = vit(hub.patient_id)
    impossible["body"]["values"]["spo2"] = 140
    wrong_type = vit(hub.patient_id)
    wrong_type["body"]["values"]["pulse"] = "72"
    unknown_item = answers_record(
        default_checkin(),
        {"breathing": "same", "pain": False, "medicines": True, "feeling": "well"},
        record_id=new_record_id(),
        patient_id=hub.patient_id,
        now=datetime.now(UTC),
    ).to_wire()
    unknown_item["body"]["answers"]["mood"] = "fine"
    unknown_q = json.loads(json.dumps(unknown_item))
    unknown_q["id"] = new_record_id()
    unknown_q["body"]["answers"].pop("mood")
    unknown_q["body"]["questionnaire"] = "urn:nowhere|9"
    theirs = vit(hub.other_patient_id)
    batch = [good1, impossible, "not an object", wrong_type, unknown_item, unknown_q, theirs, good2]
    r = post(hub.device(), hub.url, batch)
    assert r.status_code == 200
    results = r.json()["results"]
    assert [x["status"] for x in results] == [
        "stored",
        "invalid",
        "invalid",
        "invalid",
        "invalid",
        "invalid",
        "forbidden",
        "stored",
    ]
    assert "possible range" in results[1]["message"] and "140" not in results[1]["message"]
    assert "not a question" in results[4]["message"]
    assert "not known" in results[5]["message"]
    assert count(hub, records, id=theirs["id"]) == 0
    assert count(hub, records, id=impossible["id"]) == 0


def test_records_for_another_patient_are_refused_for_each_device(hub):
    mine = vit(hub.other_patient_id)
    r = post(hub.device(), hub.url, [mine])
    assert r.json()["results"][0]["status"] == "forbidden"
    r = post(hub.device(hub.other_token), hub.url, [mine])
    assert r.json()["results"][0]["status"] == "stored"


@pytest.mark.parametrize(
    "body, headers, status",
    [
        (b"not json", {}, 400),
        (b"[]", {}, 400),
        (b'{"records": {}}', {}, 400),
        (b'{"records": []}', {}, 400),
        (b'{"items": [1]}', {}, 400),
        (b'{"records": [1]}', {"Content-Encoding": "br"}, 415),
        (b"\x1f\x8b broken gzip", {"Content-Encoding": "gzip"}, 400),
        (
            gzip.compress(b'{"records": [' + b" " * (9 * 1024 * 1024) + b"1]}"),
            {"Content-Encoding": "gzip"},
            413,
        ),
        (json.dumps({"records": [1] * 1001}).encode(), {}, 413),
        (b"x" * (2 * 1024 * 1024 + 1), {}, 413),
    ],
)
def test_bad_batch_bodies_are_refused_whole_with_a_reason(hub, body, headers, status):
    before = count(hub, records)
    r = hub.device().post(
        hub.url + "/api/records",
        data=body,
        headers={"Content-Type": "application/json", **headers},
        timeout=10,
    )
    assert r.status_code == status, r.text
    assert set(r.json()) >= {"error", "message"}
    assert count(hub, records) == before


def test_gzip_batches_are_accepted(hub):
    rec = vit(hub.patient_id)
    r = hub.device().post(
        hub.url + "/api/records",
        data=gzip.compress(json.dumps({"records": [rec]}).encode()),
        headers={"Content-Type": "application/json", "Content-Encoding": "gzip"},
        timeout=10,
    )
    assert r.json()["results"] == [{"id": rec["id"], "status": "stored"}]


def test_no_or_wrong_credential_is_refused(hub):
    import requests

    rec = vit(hub.patient_id)
    assert post(requests.Session(), hub.url, [rec]).status_code == 401
    assert post(hub.device("not-a-token"), hub.url, [rec]).status_code == 401
    # a clinician's session is not a device
    assert post(hub.person(), hub.url, [rec]).status_code == 401
    assert count(hub, records, id=rec["id"]) == 0


def test_concurrent_resends_store_each_id_once(hub):
    """Eight devices' worth of threads post the same 50 records at once (a retry storm after
    a timeout). The primary key, not a check in code, keeps one copy of each."""
    recs = [vit(hub.patient_id) for _ in range(50)]
    conflicting = json.loads(json.dumps(recs[0]))
    conflicting["body"]["values"]["pulse"] = 99
    statuses: list[list[str]] = []
    barrier = threading.Barrier(8)

    def send(i):
        dev = hub.device()
        batch = list(recs) if i % 2 else list(reversed(recs))
        if i == 7:
            batch = [conflicting, *recs[1:]]
        barrier.wait(timeout=10)
        r = post(dev, hub.url, batch)
        statuses.append([x["status"] for x in r.json()["results"]])

    threads = [threading.Thread(target=send, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert len(statuses) == 8
    flat = [s for batch in statuses for s in batch]
    # every id stored exactly once across all requests
    assert flat.count("stored") == 50
    assert set(flat) <= {"stored", "duplicate", "conflict"}
    for rec in recs:
        assert count(hub, records, id=rec["id"]) == 1


def test_today_shows_answers_and_vitals_with_flags_to_clinicians_only(hub):
    dev = hub.device(hub.other_token)
    q = default_checkin()
    answers = answers_record(
        q,
        {"breathing": "worse", "pain": True, "pain_score": 8, "medicines": True, "feeling": "okay"},
        record_id=new_record_id(),
        patient_id=hub.other_patient_id,
        now=datetime.now(UTC),
        confirmed=True,
    ).to_wire()
    low = vit(hub.other_patient_id, {"spo2": 89, "pulse": 72, "temperature": 37.1})
    assert [x["status"] for x in post(dev, hub.url, [answers, low]).json()["results"]] == [
        "stored",
        "stored",
    ]
    url = f"{hub.url}/api/patients/{hub.other_patient_id}/today"
    today = hub.person().get(url, timeout=10).json()
    (a,) = [x for x in today["answers"] if x["record_id"] == answers["id"]]
    assert a["title"] == "Daily check-in"
    rows = {i["link_id"]: i for i in a["items"]}
    assert rows["breathing"]["shown"] == "Worse than usual" and rows["breathing"]["flag"]
    assert rows["pain_score"]["flag"] and not rows["feeling"]["flag"]
    (v,) = [x for x in today["vitals"] if x["record_id"] == low["id"]]
    readings = {r["key"]: r for r in v["readings"]}
    assert readings["spo2"]["flag"] and readings["spo2"]["usual"] == [92, 100]
    assert not readings["pulse"]["flag"]
    assert today["flag_count"] >= 4
    # not for devices, nurses without a clinical role, or anyone logged out
    assert hub.device().get(url, timeout=10).status_code == 401
    assert hub.person("support").get(url, timeout=10).status_code == 403
    assert hub.person().get(f"{hub.url}/api/patients/nobody/today", timeout=10).status_code == 404


def test_questionnaire_assignment_reaches_the_device(hub):
    clinician = hub.person()
    url = f"{hub.url}/api/patients/{hub.patient_id}/questionnaire"
    assert clinician.get(url, timeout=10).json()["url"] == default_checkin().url
    custom = default_checkin().to_fhir()
    custom.update(url="urn:test:copd-check-in", version="1", title="COPD check-in")
    custom["item"] = custom["item"][:2]
    r = clinician.put(url, json=custom, timeout=10)
    assert r.status_code == 200, r.text
    got = hub.device().get(hub.url + "/api/device/questionnaire", timeout=10)
    assert got.json()["title"] == "COPD check-in"
    # a version is immutable
    custom["item"] = custom["item"][:1]
    r = clinician.put(url, json=custom, timeout=10)
    assert r.status_code == 400 and "new version" in r.json()["message"]
    assert clinician.put(url, json={"resourceType": "Questionnaire"}, timeout=10).status_code == 400
    assert hub.device().put(url, json=custom, timeout=10).status_code == 401
    # answers to the assigned questionnaire are accepted by the inbox
    rec = {
        "id": new_record_id(),
        "patient_id": hub.patient_id,
        "kind": "answers",
        "recorded_at": "2026-01-01T10:00:00.000Z",
        "body": {
            "questionnaire": "urn:test:copd-check-in|1",
            "answers": {"breathing": "same", "pain": False},
            "flags": [],
        },
    }
    assert post(hub.device(), hub.url, [rec]).json()["results"][0]["status"] == "stored"

"""FHIR R4 output validates under fhir.resources.R4B and follows the vital-signs profile."""

from __future__ import annotations

from datetime import UTC, datetime

from fhir.resources.R4B.bundle import Bundle

from porchlight.kiosk.outbox import new_record_id
from porchlight.kiosk.questionnaire import default_checkin
from porchlight.kiosk.records import answers_record, vitals_record


def _send(hub, token, recs):
    dev = hub.device(token)
    r = dev.post(hub.url + "/api/records", json={"records": recs}, timeout=10)
    assert {x["status"] for x in r.json()["results"]} == {"stored"}


def test_observations_bundle_is_valid_vital_signs(hub):
    patient = hub.other_patient_id
    values = {
        "spo2": 91,
        "pulse": 72,
        "systolic": 150,
        "diastolic": 95,
        "temperature": 38.4,
        "weight": 70.5,
        "resp_rate": 18,
    }
    rec = vitals_record(
        values,
        record_id=new_record_id(),
        patient_id=patient,
        now=datetime.now(UTC),
        confirmed=True,
    )
    _send(hub, hub.other_token, [rec.to_wire()])
    r = hub.person().get(f"{hub.url}/fhir/Observation?patient=Patient/{patient}", timeout=10)
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/fhir+json")
    bundle = Bundle.model_validate(r.json())
    assert bundle.type == "searchset"
    obs = {
        e.resource.code.coding[0].code: e.resource
        for e in bundle.entry
        if e.resource.id.startswith(rec.id)
    }
    assert set(obs) == {"59408-5", "8867-4", "85354-9", "8310-5", "29463-7", "9279-1"}
    for o in obs.values():
        assert o.status == "final"
        assert o.category[0].coding[0].code == "vital-signs"
        assert o.subject.reference == f"Patient/{patient}"
        assert o.meta.profile[0].startswith("http://hl7.org/fhir/StructureDefinition/")
    spo2 = obs["59408-5"]
    assert [c.code for c in spo2.code.coding] == ["59408-5", "2708-6"]
    assert spo2.valueQuantity.system == "http://unitsofmeasure.org"
    assert spo2.valueQuantity.code == "%" and spo2.valueQuantity.value == 91
    assert spo2.interpretation[0].coding[0].code == "L"
    assert obs["8867-4"].valueQuantity.code == "/min"
    assert obs["8310-5"].valueQuantity.code == "Cel"
    assert obs["29463-7"].valueQuantity.code == "kg"
    bp = obs["85354-9"]
    assert bp.valueQuantity is None
    comps = {c.code.coding[0].code: c.valueQuantity for c in bp.component}
    assert comps["8480-6"].value == 150 and comps["8480-6"].code == "mm[Hg]"
    assert comps["8462-4"].value == 95 and comps["8462-4"].code == "mm[Hg]"


def test_questionnaire_responses_bundle_is_valid(hub):
    patient = hub.other_patient_id
    rec = answers_record(
        default_checkin(),
        {
            "breathing": "worse",
            "pain": True,
            "pain_score": 4,
            "medicines": False,
            "feeling": "well",
        },
        record_id=new_record_id(),
        patient_id=patient,
        now=datetime.now(UTC),
    )
    _send(hub, hub.other_token, [rec.to_wire()])
    r = hub.person().get(f"{hub.url}/fhir/QuestionnaireResponse?patient={patient}", timeout=10)
    bundle = Bundle.model_validate(r.json())
    (qr,) = [e.resource for e in bundle.entry if e.resource.id == rec.id]
    assert qr.status == "completed"
    assert qr.questionnaire == default_checkin().canonical
    items = {i.linkId: i for i in qr.item}
    assert items["breathing"].answer[0].valueCoding.code == "worse"
    assert items["breathing"].answer[0].valueCoding.display == "Worse than usual"
    assert items["pain"].answer[0].valueBoolean is True
    assert items["pain_score"].answer[0].valueInteger == 4
    assert items["breathing"].text == "How is your breathing today?"
    assert items["breathing"].extension[0].valueBoolean is True  # flagged


def test_fhir_is_for_clinicians_and_needs_a_patient(hub):
    url = f"{hub.url}/fhir/Observation?patient={hub.patient_id}"
    assert hub.device().get(url, timeout=10).status_code == 401
    assert hub.person("support").get(url, timeout=10).status_code == 403
    r = hub.person().get(f"{hub.url}/fhir/Observation", timeout=10)
    assert r.status_code == 400 and "patient" in r.json()["message"]
    empty = hub.person().get(f"{hub.url}/fhir/Observation?patient=nobody", timeout=10).json()
    assert Bundle.model_validate(empty).total == 0

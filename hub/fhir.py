"""Records as FHIR R4: vital signs as Observations, check-ins as QuestionnaireResponses,
stills as Media.

`GET /fhir/Observation?patient=ID` and `GET /fhir/QuestionnaireResponse?patient=ID` answer
searchset Bundles (clinicians only). Observations follow the R4 vital-signs profile: category
vital-signs, LOINC codes, UCUM units, blood pressure as the 85354-9 panel with systolic
(8480-6) and diastolic (8462-4) components. The JSON validates under `fhir.resources.R4B`
and stays R4-compatible (UK Core is R4).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy import Engine
from starlette.concurrency import run_in_threadpool

from porchlight.hub.inbox import patient_records
from porchlight.hub.messages import iso
from porchlight.hub.questionnaires import Clinician, known_questionnaire
from porchlight.hub.services import services
from porchlight.hub.stills import CareTeam, NoSuchStill, Still, patient_stills, readable_still
from porchlight.kiosk.questionnaire import Questionnaire
from porchlight.kiosk.records import BP_PANEL, VITALS, Record, RecordKind

LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
INTERPRETATION = "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"
PROFILE = "http://hl7.org/fhir/StructureDefinition/"
EXT_FLAGGED = "urn:porchlight:fhir:flagged"
CALL_SYSTEM = "urn:porchlight:call"
FHIR_JSON = "application/fhir+json"
MEDIA_TYPE = "http://terminology.hl7.org/CodeSystem/media-type"

# The specific R4 vital-signs profile per vital (all derive from "vitalsigns").
_PROFILES = {
    "spo2": "oxygensat",
    "pulse": "heartrate",
    "temperature": "bodytemp",
    "weight": "bodyweight",
    "resp_rate": "resprate",
}


def _identifier(record: Record) -> dict[str, str]:
    return {"system": "urn:ietf:rfc:3986", "value": f"urn:uuid:{record.id}"}


def _quantity(key: str, value: float) -> dict[str, Any]:
    item = VITALS[key].item
    return {"value": value, "unit": item.unit_display, "system": UCUM, "code": item.unit}


def _code(key: str) -> dict[str, Any]:
    vital = VITALS[key]
    return {
        "coding": [{"system": LOINC, "code": c, "display": d} for c, d in vital.loinc],
        "text": vital.item.label,
    }


def _interpretation(key: str, value: float) -> list[dict[str, Any]]:
    usual = VITALS[key].item.usual
    if usual is None or usual[0] <= value <= usual[1]:
        return []
    code, display = ("L", "Low") if value < usual[0] else ("H", "High")
    return [{"coding": [{"system": INTERPRETATION, "code": code, "display": display}]}]


def _observation_base(record: Record, suffix: str, profile: str) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "id": f"{record.id}-{suffix}",
        "meta": {"profile": [PROFILE + profile]},
        "identifier": [_identifier(record)],
        "status": "final",
        "category": [
            {"coding": [{"system": CATEGORY, "code": "vital-signs", "display": "Vital Signs"}]}
        ],
        "subject": {"reference": f"Patient/{record.patient_id}"},
        "effectiveDateTime": record.recorded_at,
    }


def observations(record: Record) -> list[dict[str, Any]]:
    """One Observation per vital sign in a vitals record; blood pressure as one panel."""
    values = dict(record.body["values"])
    out = []
    for key, value in values.items():
        if key in ("systolic", "diastolic"):
            continue
        obs = _observation_base(record, key.replace("_", "-"), _PROFILES[key])
        obs["code"] = _code(key)
        obs["valueQuantity"] = _quantity(key, value)
        if interp := _interpretation(key, value):
            obs["interpretation"] = interp
        out.append(obs)
    if "systolic" in values and "diastolic" in values:
        obs = _observation_base(record, "bp", "bp")
        obs["code"] = {
            "coding": [{"system": LOINC, "code": BP_PANEL[0], "display": BP_PANEL[1]}],
            "text": "Blood pressure",
        }
        obs["component"] = []
        for key in ("systolic", "diastolic"):
            component: dict[str, Any] = {
                "code": _code(key),
                "valueQuantity": _quantity(key, values[key]),
            }
            if interp := _interpretation(key, values[key]):
                component["interpretation"] = interp
            obs["component"].append(component)
        out.append(obs)
    return out


def _answer(questionnaire: Questionnaire | None, link_id: str, value: Any) -> dict[str, Any]:
    if isinstance(value, bool):
        return {"valueBoolean": value}
    if isinstance(value, int):
        return {"valueInteger": value}
    if isinstance(value, float):
        return {"valueDecimal": value}
    coding: dict[str, Any] = {"code": value}
    if questionnaire is not None and (option := questionnaire.item(link_id).option(value)):
        coding["display"] = option.display
    return {"valueCoding": coding}


def questionnaire_response(record: Record, questionnaire: Questionnaire | None) -> dict[str, Any]:
    flags = set(record.flags)
    items = []
    for link_id, value in record.body["answers"].items():
        item: dict[str, Any] = {
            "linkId": link_id,
            "answer": [_answer(questionnaire, link_id, value)],
        }
        if questionnaire is not None:
            item["text"] = questionnaire.item(link_id).text
        if link_id in flags:
            item["extension"] = [{"url": EXT_FLAGGED, "valueBoolean": True}]
        items.append(item)
    return {
        "resourceType": "QuestionnaireResponse",
        "id": record.id,
        "identifier": _identifier(record),
        "questionnaire": record.body["questionnaire"],
        "status": "completed",
        "subject": {"reference": f"Patient/{record.patient_id}"},
        "authored": record.recorded_at,
        "item": items,
    }


def bundle(base: str, self_url: str, resources: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "resourceType": "Bundle",
        "type": "searchset",
        "total": len(resources),
        "link": [{"relation": "self", "url": self_url}],
        "entry": [
            {
                "fullUrl": f"{base}/fhir/{r['resourceType']}/{r['id']}",
                "resource": r,
                "search": {"mode": "match"},
            }
            for r in resources
        ],
    }


def observation_bundle(engine: Engine, patient_id: str, base: str, self_url: str) -> dict:
    resources: list[dict[str, Any]] = []
    for record, _flags in patient_records(engine, patient_id, kinds=(RecordKind.VITALS.value,)):
        resources.extend(observations(record))
    return bundle(base, self_url, resources)


def response_bundle(engine: Engine, patient_id: str, base: str, self_url: str) -> dict:
    seen: dict[str, Questionnaire | None] = {}
    resources = []
    for record, _flags in patient_records(engine, patient_id, kinds=(RecordKind.ANSWERS.value,)):
        canonical = record.body["questionnaire"]
        if canonical not in seen:
            seen[canonical] = known_questionnaire(engine, canonical)
        resources.append(questionnaire_response(record, seen[canonical]))
    return bundle(base, self_url, resources)


def media(still: Still, base: str) -> dict[str, Any]:
    """A still as an R4 Media: a photo of the patient taken in a consultation (the call).

    R4's media-type code for a photo is `image` (DSTU2 called it `photo`); the text says photo.
    """
    taken = iso(still.taken_at)
    resource: dict[str, Any] = {
        "resourceType": "Media",
        "id": still.id,
        "identifier": [{"system": "urn:ietf:rfc:3986", "value": f"urn:uuid:{still.id}"}],
        "status": "completed",
        "type": {
            "coding": [{"system": MEDIA_TYPE, "code": "image", "display": "Image"}],
            "text": "Photo",
        },
        "subject": {"reference": f"Patient/{still.patient_id}"},
        "createdDateTime": taken,
        "width": still.width,
        "height": still.height,
        "content": {
            "contentType": still.content_type,
            "url": base + still.url,
            "size": still.size,
            "hash": still.sha1_b64,
            "creation": taken,
            "title": "Still taken in a video consultation",
        },
    }
    if still.call_id is not None:
        # The consultation: the call's id (Porchlight keeps calls, not Encounter resources).
        resource["encounter"] = {
            "identifier": {"system": CALL_SYSTEM, "value": still.call_id},
            "display": "Video consultation",
        }
    return resource


def media_bundle(engine: Engine, patient_id: str, base: str, self_url: str) -> dict:
    return bundle(base, self_url, [media(s, base) for s in patient_stills(engine, patient_id)])


router = APIRouter(tags=["fhir"])


def _patient_param(request: Request) -> str | None:
    """`patient=ID` or `patient=Patient/ID`, as FHIR search allows both."""
    value = request.query_params.get("patient", "").strip()
    value = value.removeprefix("Patient/")
    return value if 0 < len(value) <= 64 else None


async def _search(request: Request, build: Any) -> JSONResponse:
    patient_id = _patient_param(request)
    if patient_id is None:
        return JSONResponse(
            {"error": "bad_input", "message": "Give the patient: ?patient=<patient id>."},
            status_code=400,
        )
    engine = services(request).store.engine
    base = str(request.base_url).rstrip("/")
    result = await run_in_threadpool(build, engine, patient_id, base, str(request.url))
    return JSONResponse(result, media_type=FHIR_JSON)


@router.get("/fhir/Observation", summary="A patient's vital signs as a FHIR R4 searchset Bundle")
async def search_observations(request: Request, person: Clinician) -> JSONResponse:
    return await _search(request, observation_bundle)


@router.get(
    "/fhir/QuestionnaireResponse",
    summary="A patient's check-in answers as a FHIR R4 searchset Bundle",
)
async def search_responses(request: Request, person: Clinician) -> JSONResponse:
    return await _search(request, response_bundle)


@router.get("/fhir/Media", summary="A patient's stills as a FHIR R4 searchset Bundle of Media")
async def search_media(request: Request, person: CareTeam) -> JSONResponse:
    return await _search(request, media_bundle)


@router.get("/fhir/Media/{still_id}", summary="One still as a FHIR R4 Media")
def read_media(still_id: str, request: Request, person: CareTeam) -> JSONResponse:
    try:
        still = readable_still(request, still_id, person)
    except NoSuchStill as exc:
        return JSONResponse({"error": "not_found", "message": str(exc)}, status_code=404)
    base = str(request.base_url).rstrip("/")
    return JSONResponse(media(still, base), media_type=FHIR_JSON)

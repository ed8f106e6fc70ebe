"""What a patient records — vital signs and check-in answers — and the rules they must pass.

Pure: no clock (times are passed in), no I/O. The kiosk validates here before anything is
written; the hub runs the same rules on what arrives (`Record.from_wire`), so a value refused
on one side is refused on the other.

Rules per value: impossible → refused, with what is wrong and the range expected; possible but
unusual → accepted only after the patient confirmed it ("please check that again") and then
flagged for the clinician.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from types import MappingProxyType
from typing import Any

from porchlight.errors import BadInput
from porchlight.kiosk.questionnaire import (
    Finding,
    Item,
    ItemType,
    Level,
    Questionnaire,
    is_enabled,
)
from porchlight.protocol import MAX_STILL_BYTES

MAX_ID_TEXT = 64
MAX_FAULT_DETAIL = 500


class RecordKind(StrEnum):
    VITALS = "vitals"
    ANSWERS = "answers"
    DEVICE_FAULT = "device_fault"  # e.g. the outbox file was corrupt and was moved aside
    HELP_REQUEST = "help_request"  # the patient held the button: "please call me"
    SURVEY = "survey"  # the patient's rating of a call, and whether they would use video again
    CALL_QUALITY = "call_quality"  # what the kiosk measured of one call (no content, only times)
    STILL = "still"  # a full-resolution photo taken in a call; its bytes go up first (issue 10)


HELP_HOW = frozenset({"held_button"})
STILL_TYPES = frozenset({"image/jpeg"})
MAX_CALL_S = 24 * 3600.0
MAX_VIDEO_HEIGHT = 4320


@dataclass(frozen=True)
class VitalSign:
    """One vital sign: how it is entered and checked (`item`) and how FHIR names it."""

    item: Item
    loinc: tuple[tuple[str, str], ...]  # (code, display); the first is the primary code

    @property
    def key(self) -> str:
        return self.item.link_id


def _vital(
    key: str,
    label: str,
    kind: ItemType,
    unit: str,
    unit_display: str,
    possible: tuple[float, float],
    usual: tuple[float, float],
    start: float,
    loinc: tuple[tuple[str, str], ...],
    step: float = 1,
) -> VitalSign:
    item = Item(
        key,
        label,
        kind,
        minimum=possible[0],
        maximum=possible[1],
        usual=usual,
        unit=unit,
        unit_display=unit_display,
        step=step,
        start=start,
        required=False,  # the patient may not have that device at home
        label=label,
    )
    return VitalSign(item, loinc)


# Possible ranges are physiological limits a living adult can show on a home device (beyond
# them the value is a typing or sensor error); usual ranges follow NEWS2's zero-score bands
# where NEWS2 has one, so a flag means "a clinician would look at this".
VITALS: Mapping[str, VitalSign] = MappingProxyType(
    {
        v.key: v
        for v in (
            _vital(
                "spo2",
                "Oxygen level",
                ItemType.INTEGER,
                "%",
                "%",
                (50, 100),
                (92, 100),
                97,
                (
                    ("59408-5", "Oxygen saturation in Arterial blood by Pulse oximetry"),
                    ("2708-6", "Oxygen saturation in Arterial blood"),
                ),
            ),
            _vital(
                "pulse",
                "Pulse",
                ItemType.INTEGER,
                "/min",
                "beats a minute",
                (20, 250),
                (51, 110),
                72,
                (("8867-4", "Heart rate"),),
            ),
            _vital(
                "systolic",
                "Blood pressure, top number",
                ItemType.INTEGER,
                "mm[Hg]",
                "mmHg",
                (50, 260),
                (91, 180),
                120,
                (("8480-6", "Systolic blood pressure"),),
            ),
            _vital(
                "diastolic",
                "Blood pressure, bottom number",
                ItemType.INTEGER,
                "mm[Hg]",
                "mmHg",
                (25, 150),
                (50, 110),
                80,
                (("8462-4", "Diastolic blood pressure"),),
            ),
            _vital(
                "temperature",
                "Temperature",
                ItemType.DECIMAL,
                "Cel",
                "°C",
                (30.0, 44.0),
                (35.5, 38.0),
                36.8,
                (("8310-5", "Body temperature"),),
                step=0.1,
            ),
            _vital(
                "weight",
                "Weight",
                ItemType.DECIMAL,
                "kg",
                "kg",
                (20.0, 350.0),
                (35.0, 180.0),
                70.0,
                (("29463-7", "Body weight"),),
                step=0.1,
            ),
            _vital(
                "resp_rate",
                "Breaths a minute",
                ItemType.INTEGER,
                "/min",
                "breaths a minute",
                (4, 60),
                (12, 20),
                16,
                (("9279-1", "Respiratory rate"),),
            ),
        )
    }
)

BP_PANEL = ("85354-9", "Blood pressure panel with all children optional")


class NeedsCheck(BadInput):
    """Some values are possible but unusual: confirm them with the patient, then pass
    `confirmed=True`. Not an error the patient made; the UI asks "please check that again"."""

    def __init__(self, findings: list[Finding]) -> None:
        super().__init__("; ".join(f.reason for f in findings))
        self.findings = findings


def _refuse(findings: list[Finding]) -> None:
    refused = [f for f in findings if f.level is Level.REFUSED]
    if refused:
        exc = BadInput("; ".join(f.reason for f in refused))
        exc.findings = refused  # type: ignore[attr-defined]
        raise exc


def _settle(findings: list[Finding], confirmed: bool) -> list[str]:
    """Refuse, or ask for a check, or return the flagged keys."""
    _refuse(findings)
    unusual = [f for f in findings if f.level is Level.CHECK]
    if unusual and not confirmed:
        raise NeedsCheck(unusual)
    return sorted(f.link_id for f in findings if f.level in (Level.CHECK, Level.FLAG))


def check_vitals(values: Mapping[str, Any]) -> list[Finding]:
    """One finding per value, plus the checks that need two values (blood pressure)."""
    if not isinstance(values, Mapping) or not values:
        return [Finding("", Level.REFUSED, "No readings given.", reason="no readings given")]
    findings: list[Finding] = []
    for key, value in values.items():
        vital = VITALS.get(key) if isinstance(key, str) else None
        if vital is None:
            known = ", ".join(VITALS)
            text = f"'{str(key)[:MAX_ID_TEXT]}' is not a vital sign we record (known: {known})"
            findings.append(Finding(str(key)[:MAX_ID_TEXT], Level.REFUSED, text, reason=text))
            continue
        findings.append(vital.item.check(value))
    has_sys, has_dia = "systolic" in values, "diastolic" in values
    if has_sys != has_dia:
        text = "Blood pressure needs both numbers, the top (systolic) and the bottom (diastolic)."
        findings.append(Finding("diastolic", Level.REFUSED, text, reason=text))
    elif (
        has_sys
        and all(f.level is not Level.REFUSED for f in findings)
        and values["diastolic"] >= values["systolic"]
    ):
        text = (
            "Blood pressure: the bottom number must be lower than the top number. "
            "Please check both."
        )
        findings.append(Finding("diastolic", Level.REFUSED, text, reason=text))
    return findings


def check_answers(questionnaire: Questionnaire, answers: Mapping[str, Any]) -> list[Finding]:
    if not isinstance(answers, Mapping):
        text = "answers must be an object of linkId to value"
        return [Finding("", Level.REFUSED, text, reason=text)]
    findings: list[Finding] = []
    known = {it.link_id for it in questionnaire.items}
    for link_id, value in answers.items():
        if link_id not in known:
            text = f"'{str(link_id)[:MAX_ID_TEXT]}' is not a question in this check-in"
            findings.append(Finding(str(link_id)[:MAX_ID_TEXT], Level.REFUSED, text, reason=text))
            continue
        item = questionnaire.item(link_id)
        if not is_enabled(item, answers):
            text = f"'{link_id}' was answered but is not asked given the other answers"
            findings.append(Finding(link_id, Level.REFUSED, text, reason=text))
            continue
        findings.append(item.check(value))
    for item in questionnaire.items:
        if item.required and item.link_id not in answers and is_enabled(item, answers):
            text = f"'{item.link_id}' needs an answer"
            findings.append(Finding(item.link_id, Level.REFUSED, text, reason=text))
    return findings


def iso_utc(now: datetime) -> str:
    """Millisecond ISO 8601 in UTC with a Z: one spelling per instant, so resends compare equal."""
    if now.tzinfo is None:
        raise BadInput("times must carry a timezone")
    return now.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_time(text: Any) -> datetime:
    if not isinstance(text, str) or len(text) > 40:
        raise BadInput("recorded_at must be an ISO 8601 time")
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise BadInput("recorded_at must be an ISO 8601 time") from None
    if when.tzinfo is None:
        raise BadInput("recorded_at must carry a timezone (e.g. a trailing Z)")
    return when


def canonical_id(value: Any) -> str:
    """A record id in its one canonical spelling (lower-case hyphenated UUID)."""
    if not isinstance(value, str) or len(value) != 36:
        raise BadInput("record id must be a UUID like 0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b")
    try:
        parsed = uuid.UUID(value)
    except ValueError:
        raise BadInput("record id must be a UUID") from None
    if str(parsed) != value:
        raise BadInput("record id must be a lower-case hyphenated UUID")
    return value


def _short_text(value: Any, what: str, limit: int = MAX_ID_TEXT) -> str:
    if not isinstance(value, str) or not 0 < len(value) <= limit:
        raise BadInput(f"{what} must be text of 1 to {limit} characters")
    return value


@dataclass(frozen=True)
class Record:
    """One thing the patient recorded, as stored in the outbox and sent to the hub."""

    id: str
    patient_id: str
    kind: RecordKind
    recorded_at: str
    body: Mapping[str, Any]

    def to_wire(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "patient_id": self.patient_id,
            "kind": self.kind.value,
            "recorded_at": self.recorded_at,
            "body": dict(self.body),
        }

    def content(self) -> bytes:
        """Canonical bytes: equal records give equal bytes, so the hub can tell an identical
        resend from a different record under the same id."""
        return json.dumps(
            self.to_wire(), sort_keys=True, separators=(",", ":"), ensure_ascii=False
        ).encode()

    @property
    def flags(self) -> tuple[str, ...]:
        return tuple(self.body.get("flags", ()))

    @classmethod
    def from_wire(
        cls,
        data: Any,
        *,
        questionnaires: Callable[[str], Questionnaire | None] | None = None,
    ) -> Record:
        """Check a record that came over the wire or out of storage; BadInput says why not.

        `questionnaires` resolves a canonical url|version; without it answers are checked for
        shape only."""
        if not isinstance(data, Mapping):
            raise BadInput("a record must be a JSON object")
        expected = {"id", "patient_id", "kind", "recorded_at", "body"}
        if set(data) != expected:
            raise BadInput(f"a record has exactly the fields {', '.join(sorted(expected))}")
        record_id = canonical_id(data["id"])
        patient_id = _short_text(data["patient_id"], "patient_id")
        try:
            kind = RecordKind(data["kind"])
        except ValueError:
            raise BadInput(
                f"kind must be one of {', '.join(k.value for k in RecordKind)}"
            ) from None
        recorded_at = data["recorded_at"]
        parse_time(recorded_at)
        body = data["body"]
        if not isinstance(body, Mapping):
            raise BadInput("body must be a JSON object")
        if kind is RecordKind.VITALS:
            _check_body_keys(body, {"values", "flags"})
            _refuse(check_vitals(body["values"]))
            _check_flags(body["flags"], body["values"])
        elif kind is RecordKind.ANSWERS:
            _check_body_keys(body, {"questionnaire", "answers", "flags"})
            canonical = _short_text(body["questionnaire"], "questionnaire", 300)
            if not isinstance(body["answers"], Mapping) or not body["answers"]:
                raise BadInput("answers must be a non-empty object of linkId to value")
            if questionnaires is not None:
                questionnaire = questionnaires(canonical)
                if questionnaire is None:
                    raise BadInput("the questionnaire this record answers is not known here")
                _refuse(check_answers(questionnaire, body["answers"]))
            _check_flags(body["flags"], body["answers"])
        elif kind is RecordKind.DEVICE_FAULT:
            _check_body_keys(body, {"code", "detail"})
            _short_text(body["code"], "fault code")
            _short_text(body["detail"], "fault detail", MAX_FAULT_DETAIL)
        else:
            _check_call_body(kind, body)
        return cls(record_id, patient_id, kind, recorded_at, body)


def _check_body_keys(body: Mapping[str, Any], keys: set[str]) -> None:
    if set(body) != keys:
        raise BadInput(f"this kind of record has body fields {', '.join(sorted(keys))}")


def _seconds(value: Any, what: str, limit: float = MAX_CALL_S) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= limit:
        raise BadInput(f"{what} must be a number of seconds from 0 to {limit:g}")
    return float(value)


def _check_still_body(body: Mapping[str, Any]) -> None:
    _check_body_keys(body, {"call_id", "width", "height", "content_type", "size", "sha256"})
    if body["call_id"] is not None:
        _short_text(body["call_id"], "call_id")
    for side in ("width", "height"):
        value = body[side]
        if type(value) is not int or not 16 <= value <= 8192:
            raise BadInput(f"{side} must be a whole number of pixels from 16 to 8192")
    if body["content_type"] not in STILL_TYPES:
        raise BadInput(f"content_type must be one of {', '.join(sorted(STILL_TYPES))}")
    size = body["size"]
    if type(size) is not int or not 0 < size <= MAX_STILL_BYTES:
        raise BadInput(f"size must be a whole number of bytes from 1 to {MAX_STILL_BYTES}")
    digest = body["sha256"]
    if not (
        isinstance(digest, str)
        and len(digest) == 64
        and all(c in "0123456789abcdef" for c in digest)
    ):
        raise BadInput("sha256 must be 64 lower-case hexadecimal digits")


def _check_call_body(kind: RecordKind, body: Mapping[str, Any]) -> None:
    """Help requests, survey answers, stills and call-quality summaries."""
    if kind is RecordKind.STILL:
        _check_still_body(body)
        return
    if kind is RecordKind.HELP_REQUEST:
        _check_body_keys(body, {"how"})
        if body["how"] not in HELP_HOW:
            raise BadInput(f"how must be one of {', '.join(sorted(HELP_HOW))}")
        return
    if kind is RecordKind.SURVEY:
        _check_body_keys(body, {"call_id", "score", "again"})
        _short_text(body["call_id"], "call_id")
        score, again = body["score"], body["again"]
        if score is not None and (type(score) is not int or not 1 <= score <= 5):
            raise BadInput("score must be a whole number from 1 (very bad) to 5 (very good)")
        if again is not None and not isinstance(again, bool):
            raise BadInput("again must be true, false or null")
        if score is None and again is None:
            raise BadInput("a survey record needs a score or an answer to 'again'")
        return
    _check_body_keys(
        body, {"call_id", "duration_s", "connect_s", "video_s", "audio_only_s", "freeze_s"}
    )
    _short_text(body["call_id"], "call_id")
    duration = _seconds(body["duration_s"], "duration_s")
    if body["connect_s"] is not None:
        _seconds(body["connect_s"], "connect_s", 600.0)
    video = body["video_s"]
    if not isinstance(video, Mapping) or len(video) > 20:
        raise BadInput("video_s must be an object of picture height to seconds (at most 20)")
    total = _seconds(body["audio_only_s"], "audio_only_s")
    for height, seconds in video.items():
        if not (isinstance(height, str) and height.isdigit() and 0 < int(height) <= 4320):
            raise BadInput(f"video_s keys are picture heights from 1 to {MAX_VIDEO_HEIGHT}")
        total += _seconds(seconds, "video_s")
    if total > duration + 1.0:
        raise BadInput("video_s and audio_only_s add up to more than duration_s")
    _seconds(body["freeze_s"], "freeze_s")


def _check_flags(flags: Any, values: Mapping[str, Any]) -> None:
    if not isinstance(flags, list) or not all(isinstance(f, str) and f in values for f in flags):
        raise BadInput("flags must list keys of the recorded values")


def vitals_record(
    values: Mapping[str, Any],
    *,
    record_id: str,
    patient_id: str,
    now: datetime,
    confirmed: bool = False,
) -> Record:
    """A vitals record, or BadInput (impossible values) / NeedsCheck (unusual, unconfirmed)."""
    flags = _settle(check_vitals(values), confirmed)
    clean = {k: VITALS[k].item.normalise(v) for k, v in values.items()}
    body = {"values": clean, "flags": flags}
    return Record(canonical_id(record_id), patient_id, RecordKind.VITALS, iso_utc(now), body)


def answers_record(
    questionnaire: Questionnaire,
    answers: Mapping[str, Any],
    *,
    record_id: str,
    patient_id: str,
    now: datetime,
    confirmed: bool = False,
) -> Record:
    """A check-in answers record, validated against `questionnaire`."""
    flags = _settle(check_answers(questionnaire, answers), confirmed)
    clean = {k: questionnaire.item(k).normalise(v) for k, v in answers.items()}
    body = {"questionnaire": questionnaire.canonical, "answers": clean, "flags": flags}
    return Record(canonical_id(record_id), patient_id, RecordKind.ANSWERS, iso_utc(now), body)


def fault_record(
    code: str, detail: str, *, record_id: str, patient_id: str, now: datetime
) -> Record:
    """A device fault worth telling the hub about. `detail` must hold no patient data."""
    body = {"code": _short_text(code, "fault code"), "detail": detail[:MAX_FAULT_DETAIL] or code}
    return Record(canonical_id(record_id), patient_id, RecordKind.DEVICE_FAULT, iso_utc(now), body)


def help_record(*, record_id: str, patient_id: str, now: datetime) -> Record:
    """The patient asked the care team to call them (held the button on the home screen)."""
    body = {"how": "held_button"}
    return Record(canonical_id(record_id), patient_id, RecordKind.HELP_REQUEST, iso_utc(now), body)


def survey_record(
    call_id: str,
    score: int | None,
    again: bool | None,
    *,
    record_id: str,
    patient_id: str,
    now: datetime,
) -> Record:
    """How the patient rated a call (1 very bad … 5 very good) and whether they would use
    video again; either may be unknown (None), not both."""
    body = {"call_id": call_id, "score": score, "again": again}
    record = Record(canonical_id(record_id), patient_id, RecordKind.SURVEY, iso_utc(now), body)
    return Record.from_wire(record.to_wire())


def call_quality_record(
    call_id: str,
    *,
    duration_s: float,
    connect_s: float | None,
    video_s: Mapping[int, float],
    audio_only_s: float,
    freeze_s: float,
    record_id: str,
    patient_id: str,
    now: datetime,
) -> Record:
    """What the kiosk measured of one call: how long, how long to connect, seconds sent at
    each picture height, seconds audio-only, and the clinician's picture frozen (gaps over
    0.5 s between decoded frames). Rounded to 0.1 s: resends compare equal."""
    body = {
        "call_id": call_id,
        "duration_s": round(duration_s, 1),
        "connect_s": None if connect_s is None else round(connect_s, 1),
        "video_s": {str(h): round(s, 1) for h, s in sorted(video_s.items()) if s > 0},
        "audio_only_s": round(audio_only_s, 1),
        "freeze_s": round(freeze_s, 1),
    }
    record = Record(
        canonical_id(record_id), patient_id, RecordKind.CALL_QUALITY, iso_utc(now), body
    )
    return Record.from_wire(record.to_wire())

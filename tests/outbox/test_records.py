"""Validation of vitals and check-in answers: impossible → refused with the expected range;
unusual → confirm, then flagged; wrong types and unknown keys → refused."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from porchlight.errors import BadInput
from porchlight.kiosk.questionnaire import Level, default_checkin
from porchlight.kiosk.records import (
    VITALS,
    NeedsCheck,
    Record,
    RecordKind,
    answers_record,
    check_vitals,
    fault_record,
    vitals_record,
)

NOW = datetime(2026, 3, 1, 9, 30, 0, 123456, tzinfo=UTC)
RID = "0195a3b2-c4d5-7e6f-8a9b-0c1d2e3f4a5b"


def make(values, **kw):
    return vitals_record(values, record_id=RID, patient_id="p1", now=NOW, **kw)


def test_ordinary_vitals_are_recorded_without_flags():
    rec = make({"spo2": 97, "pulse": 72, "temperature": 36.84})
    assert rec.kind is RecordKind.VITALS
    assert rec.body == {"values": {"spo2": 97, "pulse": 72, "temperature": 36.8}, "flags": []}
    assert rec.recorded_at == "2026-03-01T09:30:00.123Z"


def test_impossible_value_is_refused_with_what_and_expected_range():
    with pytest.raises(BadInput) as err:
        make({"spo2": 130})
    finding = err.value.findings[0]
    assert finding.link_id == "spo2"
    assert "130 % is not possible" in finding.message
    assert "50 % to 100 %" in finding.message
    assert finding.expected == (50, 100)
    # The log-safe reason never quotes the patient's value.
    assert "130" not in str(err.value)


def test_unusual_value_needs_a_check_then_is_flagged():
    with pytest.raises(NeedsCheck) as err:
        make({"spo2": 88, "pulse": 72})
    assert [f.link_id for f in err.value.findings] == ["spo2"]
    assert "Please check that again" in err.value.findings[0].message
    rec = make({"spo2": 88, "pulse": 72}, confirmed=True)
    assert rec.body["flags"] == ["spo2"]


@pytest.mark.parametrize(
    "bad",
    ["97", None, True, [97], {"v": 97}, math.nan, math.inf, -math.inf, 97.5],
)
def test_wrong_types_are_refused(bad):
    with pytest.raises(BadInput):
        make({"spo2": bad})


def test_unknown_vital_and_empty_readings_are_refused():
    with pytest.raises(BadInput, match="not a vital sign"):
        make({"glucose": 5})
    with pytest.raises(BadInput, match="no readings"):
        make({})


def test_blood_pressure_needs_both_numbers_and_the_right_order():
    with pytest.raises(BadInput, match="both numbers"):
        make({"systolic": 120})
    with pytest.raises(BadInput, match="lower than"):
        make({"systolic": 80, "diastolic": 90})
    rec = make({"systolic": 125, "diastolic": 82})
    assert rec.body["values"] == {"systolic": 125, "diastolic": 82}


def test_times_need_a_timezone_and_are_normalised_to_utc():
    with pytest.raises(BadInput):
        vitals_record({"pulse": 70}, record_id=RID, patient_id="p", now=datetime(2026, 1, 1))
    plus_one = datetime(2026, 3, 1, 10, 30, tzinfo=timezone(timedelta(hours=1)))
    rec = vitals_record({"pulse": 70}, record_id=RID, patient_id="p", now=plus_one)
    assert rec.recorded_at == "2026-03-01T09:30:00.000Z"


def test_answers_are_checked_against_the_questionnaire():
    q = default_checkin()
    good = {"breathing": "same", "pain": False, "medicines": True, "feeling": "well"}
    rec = answers_record(q, good, record_id=RID, patient_id="p1", now=NOW)
    assert rec.body["flags"] == []
    assert rec.body["questionnaire"] == q.canonical
    with pytest.raises(BadInput, match="not a question"):
        answers_record(q, {**good, "mood": "ok"}, record_id=RID, patient_id="p1", now=NOW)
    with pytest.raises(BadInput, match="needs one of"):
        answers_record(q, {**good, "breathing": "awful"}, record_id=RID, patient_id="p1", now=NOW)
    with pytest.raises(BadInput, match="yes or no"):
        answers_record(q, {**good, "pain": "no"}, record_id=RID, patient_id="p1", now=NOW)
    with pytest.raises(BadInput, match="needs an answer"):
        answers_record(q, {"breathing": "same"}, record_id=RID, patient_id="p1", now=NOW)
    # pain_score is asked only after "yes" to pain
    with pytest.raises(BadInput, match="not asked"):
        answers_record(q, {**good, "pain_score": 3}, record_id=RID, patient_id="p1", now=NOW)
    with pytest.raises(BadInput, match="needs an answer"):
        answers_record(q, {**good, "pain": True}, record_id=RID, patient_id="p1", now=NOW)
    with pytest.raises(NeedsCheck):
        answers_record(
            q, {**good, "pain": True, "pain_score": 9}, record_id=RID, patient_id="p1", now=NOW
        )
    worse = {**good, "breathing": "worse", "medicines": False}
    rec = answers_record(q, worse, record_id=RID, patient_id="p1", now=NOW)
    assert rec.body["flags"] == ["breathing", "medicines"]


def test_wire_round_trip_and_canonical_content():
    rec = make({"pulse": 72, "spo2": 97})
    again = Record.from_wire(rec.to_wire())
    assert again == rec
    assert again.content() == rec.content()
    reordered = {k: rec.to_wire()[k] for k in reversed(list(rec.to_wire()))}
    assert Record.from_wire(reordered).content() == rec.content()


@pytest.mark.parametrize(
    "mutate",
    [
        lambda w: w.pop("id"),
        lambda w: w.update(extra=1),
        lambda w: w.update(id="not-a-uuid"),
        lambda w: w.update(id=RID.upper()),
        lambda w: w.update(kind="diary"),
        lambda w: w.update(recorded_at="yesterday"),
        lambda w: w.update(recorded_at="2026-03-01T09:30:00"),
        lambda w: w.update(patient_id=""),
        lambda w: w.update(patient_id=7),
        lambda w: w.update(body=[]),
        lambda w: w["body"].update(values={"spo2": 30}),
        lambda w: w["body"].update(flags=["weight"]),
        lambda w: w["body"].pop("flags"),
    ],
)
def test_bad_wire_records_are_refused(mutate):
    wire = make({"pulse": 72, "spo2": 97}).to_wire()
    mutate(wire)
    with pytest.raises(BadInput):
        Record.from_wire(wire)


def test_answers_over_the_wire_need_a_known_questionnaire():
    q = default_checkin()
    good = {"breathing": "same", "pain": False, "medicines": True, "feeling": "well"}
    wire = answers_record(q, good, record_id=RID, patient_id="p1", now=NOW).to_wire()
    assert Record.from_wire(wire, questionnaires={q.canonical: q}.get).body["answers"] == good
    with pytest.raises(BadInput, match="not known"):
        Record.from_wire(wire, questionnaires={}.get)
    wire["body"]["answers"]["mood"] = "ok"
    with pytest.raises(BadInput, match="not a question"):
        Record.from_wire(wire, questionnaires={q.canonical: q}.get)


def test_fault_records_are_plain_and_bounded():
    rec = fault_record("outbox_corrupt", "x" * 900, record_id=RID, patient_id="p", now=NOW)
    assert Record.from_wire(rec.to_wire()) == rec
    assert len(rec.body["detail"]) == 500


numbers = st.one_of(
    st.integers(min_value=-1000, max_value=1000),
    st.floats(min_value=-1000, max_value=1000, allow_nan=False),
)


@given(key=st.sampled_from(sorted(VITALS)), value=numbers)
def test_property_each_value_is_refused_checked_or_ok_by_its_ranges(key, value):
    item = VITALS[key].item
    finding = item.check(value)
    if isinstance(value, float) and item.type.value == "integer" and not value.is_integer():
        assert finding.level is Level.REFUSED
        return
    shown = round(value, item.decimals) if item.type.value == "decimal" else value
    if not item.minimum <= shown <= item.maximum:
        assert finding.level is Level.REFUSED
        assert finding.expected == (item.minimum, item.maximum)
    elif not item.usual[0] <= shown <= item.usual[1]:
        assert finding.level is Level.CHECK
        assert finding.expected == item.usual
    else:
        assert finding.level is Level.OK


@given(
    values=st.dictionaries(
        st.sampled_from(["spo2", "pulse", "temperature", "weight", "resp_rate"]),
        numbers,
        min_size=1,
    ),
    confirmed=st.booleans(),
)
def test_property_a_record_is_made_only_from_possible_values(values, confirmed):
    findings = check_vitals(values)
    levels = {f.level for f in findings}
    try:
        rec = make(values, confirmed=confirmed)
    except NeedsCheck:
        assert Level.REFUSED not in levels and Level.CHECK in levels and not confirmed
        return
    except BadInput:
        assert Level.REFUSED in levels
        return
    assert Level.REFUSED not in levels
    assert set(rec.flags) == {f.link_id for f in findings if f.level is Level.CHECK}
    assert Record.from_wire(rec.to_wire()) == rec

"""The check-in model: the shipped default is valid FHIR, round-trips, and the walk through it
shows one step at a time, skips what is not asked, goes back, and asks to check unusual
answers."""

from __future__ import annotations

import copy

import pytest
from fhir.resources.R4B.questionnaire import Questionnaire as FhirQuestionnaire
from hypothesis import given, settings
from hypothesis import strategies as st

from porchlight.errors import BadInput
from porchlight.kiosk.questionnaire import (
    Item,
    ItemType,
    Level,
    Questionnaire,
    Walk,
    default_checkin,
)
from porchlight.kiosk.records import VITALS, check_answers


def test_default_checkin_is_valid_fhir_r4b_and_round_trips():
    q = default_checkin()
    FhirQuestionnaire.model_validate(q.to_fhir())
    assert Questionnaire.from_fhir(q.to_fhir()) == q
    assert {i.type for i in q.items} >= {ItemType.CHOICE, ItemType.BOOLEAN, ItemType.INTEGER}
    assert set(q.vitals) <= set(VITALS)


def test_vital_items_are_valid_fhir_too():
    q = Questionnaire("urn:test:q", "2", "Vitals", tuple(v.item for v in VITALS.values()))
    FhirQuestionnaire.model_validate(q.to_fhir())
    assert Questionnaire.from_fhir(q.to_fhir()).items == tuple(
        # labels are kiosk-side display names, not part of the FHIR model
        Item(**{**i.__dict__, "label": None})
        for i in q.items
    )


@pytest.mark.parametrize(
    "mutate, words",
    [
        (lambda d: d.update(resourceType="Patient"), "resourceType"),
        (lambda d: d.pop("url"), "url"),
        (lambda d: d.update(item=[]), "1-50 items"),
        (lambda d: d["item"][0].update(type="string"), "type must be one of"),
        (lambda d: d["item"][1].update(linkId=d["item"][0]["linkId"]), "unique"),
        (lambda d: d["item"][0].update(answerOption=[d["item"][0]["answerOption"][0]]), "2+"),
        (lambda d: d["item"][2]["enableWhen"][0].update(question="feeling"), "earlier"),
        (lambda d: d["item"][2]["enableWhen"][0].update(operator="!="), "operator"),
        (lambda d: d["item"][0].update(answerOption=5), "wrong shape"),
        (lambda d: d["item"][3].update(text=""), "text"),
    ],
)
def test_bad_questionnaires_are_refused_with_a_reason(mutate, words):
    data = copy.deepcopy(default_checkin().to_fhir())
    mutate(data)
    with pytest.raises(BadInput, match=words):
        Questionnaire.from_fhir(data)


def test_walk_one_step_at_a_time_with_skip_of_unasked_and_back():
    walk = Walk(default_checkin().items)
    assert walk.current.link_id == "breathing" and not walk.can_go_back
    assert walk.progress == (1, 4)  # pain_score is not asked (yet)
    assert walk.submit("worse").level is Level.FLAG
    assert walk.current.link_id == "pain"
    walk.submit(True)
    assert walk.current.link_id == "pain_score"
    assert walk.progress == (3, 5)
    walk.submit(2)
    walk.submit(True)
    assert walk.current.link_id == "feeling"
    # back twice, change "pain" to no: pain_score disappears from the answers
    assert walk.back() and walk.current.link_id == "medicines"
    assert walk.back() and walk.current.link_id == "pain_score"
    assert walk.back() and walk.current.link_id == "pain"
    assert walk.previous_answer() is True
    walk.submit(False)
    assert walk.current.link_id == "medicines"
    walk.submit(True)
    walk.submit("well")
    assert walk.finished
    assert walk.answers() == {
        "breathing": "worse",
        "pain": False,
        "medicines": True,
        "feeling": "well",
    }
    assert walk.flags == {"breathing"}
    assert check_answers(default_checkin(), walk.answers())  # one finding per answer
    with pytest.raises(BadInput):
        walk.submit("well")


def test_walk_refuses_impossible_and_asks_to_check_unusual():
    walk = Walk(default_checkin().items, {"pain": True})
    walk.submit("same")
    walk.submit(True)
    refused = walk.submit(11)
    assert refused.level is Level.REFUSED and "0 to 10" in refused.message
    assert walk.current.link_id == "pain_score"
    unusual = walk.submit(9)
    assert unusual.level is Level.CHECK and walk.current.link_id == "pain_score"
    assert walk.submit(9, confirmed=True).level is Level.CHECK
    assert walk.current.link_id == "medicines"
    assert "pain_score" in walk.flags
    assert walk.submit("yes").level is Level.REFUSED  # a boolean needs True/False


def test_optional_steps_can_be_skipped_required_cannot():
    walk = Walk([VITALS["spo2"].item, default_checkin().items[0]])
    walk.skip()
    with pytest.raises(BadInput):
        walk.skip()
    assert walk.current.link_id == "breathing"


def test_duplicate_steps_are_refused():
    with pytest.raises(BadInput):
        Walk([VITALS["spo2"].item, VITALS["spo2"].item])


ops = st.lists(
    st.one_of(
        st.just(("back", None)),
        st.tuples(st.just("submit"), st.sampled_from(["better", "worse", True, False, 3, 9, 42])),
        st.tuples(st.just("confirm"), st.sampled_from([9, 3])),
    ),
    max_size=40,
)


@settings(max_examples=200)
@given(ops=ops)
def test_property_walk_answers_always_pass_validation(ops):
    q = default_checkin()
    walk = Walk(q.items)
    for op, value in ops:
        if walk.finished and op != "back":
            continue
        if op == "back":
            had = walk.can_go_back
            assert walk.back() == had
        else:
            walk.submit(value, confirmed=op == "confirm")
        number, total = walk.progress
        assert 1 <= number <= total or walk.finished
    # Whatever was clicked, the answers kept are each individually acceptable and asked.
    for finding in check_answers(q, walk.answers()):
        assert finding.level is not Level.REFUSED or "needs an answer" in finding.message
    if walk.finished:
        assert all(f.level is not Level.REFUSED for f in check_answers(q, walk.answers()))

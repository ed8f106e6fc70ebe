"""The pure rules: when to check, when not to disturb the patient, install/trial verdicts,
and the staged-rollout policy."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from porchlight.errors import BadInput
from porchlight.hub import rollouts
from porchlight.hub.rollouts import Plan, Report, State, Status
from porchlight.provisioning.kiosk_status import KioskStatus
from porchlight.provisioning.update_policy import (
    Plan as Install,
)
from porchlight.provisioning.update_policy import (
    Trial,
    UpdatePolicy,
    Verdict,
    busy_reason,
    install_decision,
    next_check_at,
    trial_decision,
)

POLICY = UpdatePolicy()


def status(**kw) -> KioskStatus:
    base = dict(
        version="2.0",
        pid=1,
        started_at=1000.0,
        updated_at=1000.0,
        screen_drawn=True,
        button_ok=True,
        light_ok=True,
        hub="reached",
    )
    return KioskStatus(**{**base, **kw})


# -- when to check ----------------------------------------------------------------------


@given(st.floats(0, 0.999999))
def test_checks_come_every_30_minutes_within_the_jitter(jitter: float) -> None:
    at = next_check_at(1000.0, 1000.0, jitter, POLICY)
    assert 1000 + 1200 <= at <= 1000 + 2400


def test_a_request_from_support_or_a_first_boot_checks_at_once() -> None:
    assert next_check_at(1000.0, 1100.0, 0.5, POLICY, requested=True) == 1100.0
    assert next_check_at(None, 1100.0, 0.5, POLICY) == 1100.0


# -- never disturb the patient --------------------------------------------------------------


def test_busy_in_a_call_a_questionnaire_or_touching_the_screen() -> None:
    assert "call" in busy_reason(status(activity="call"), 1010.0, POLICY)
    assert "questionnaire" in busy_reason(status(activity="questionnaire"), 1010.0, POLICY)
    assert "screen" in busy_reason(status(last_touch_at=1000.0), 1100.0, POLICY)
    assert busy_reason(status(last_touch_at=1000.0), 1000.0 + 121, POLICY) is None
    assert busy_reason(status(), 1010.0, POLICY) is None
    # A status nobody refreshed for minutes comes from a kiosk that is not running.
    assert busy_reason(status(activity="call"), 1000.0 + 600, POLICY) is None


def test_install_decisions() -> None:
    def decide(**kw):
        args = dict(current="1.0", wanted="1.1", failed={}, min_version=None, busy=None)
        return install_decision(**{**args, **kw}).plan

    assert decide() is Install.INSTALL
    assert decide(wanted="1.0") is Install.NOTHING
    assert decide(wanted=None) is Install.NOTHING
    assert decide(busy="the patient is in a call") is Install.DEFER
    assert decide(failed={"1.1": "crashed"}) is Install.SKIP
    assert decide(current="1.2", wanted="1.1") is Install.INSTALL  # support rolled back
    assert decide(current="1.2", wanted="1.1", min_version="1.2") is Install.REFUSE
    assert decide(wanted="not-a-version", min_version="1.0") is Install.REFUSE


# -- trial verdicts -----------------------------------------------------------------------


def test_commit_only_on_a_healthy_report_from_the_new_release_since_the_switch() -> None:
    trial = Trial("2.0", started_at=1000.0)
    assert trial_decision(trial, status(), 1001.0, POLICY).verdict is Verdict.COMMIT
    old_process = status(started_at=900.0)
    assert trial_decision(trial, old_process, 1001.0, POLICY).verdict is Verdict.WAIT
    other_version = status(version="1.0")
    assert trial_decision(trial, other_version, 1001.0, POLICY).verdict is Verdict.WAIT


def test_rollback_on_crashes_restarts_or_the_window_passing() -> None:
    trial = Trial("2.0", started_at=1000.0)
    crashing = Trial("2.0", 1000.0, crashes=3)
    assert "crashed 3 times" in trial_decision(crashing, None, 1001.0, POLICY).reason
    resumed = Trial("2.0", 1000.0, resumes=3)
    assert trial_decision(resumed, None, 1001.0, POLICY).verdict is Verdict.ROLLBACK
    late = 1000.0 + POLICY.health_window_s
    silent = trial_decision(trial, None, late, POLICY)
    assert silent.verdict is Verdict.ROLLBACK and "did not report healthy" in silent.reason
    no_hub = trial_decision(trial, status(hub="failing", light_ok=False), late, POLICY)
    assert no_hub.verdict is Verdict.ROLLBACK
    assert "light not answering, hub neither reached nor offline handled" in no_hub.reason
    offline_is_fine = status(hub="offline")
    assert trial_decision(trial, offline_is_fine, 1001.0, POLICY).verdict is Verdict.COMMIT


# -- staged rollouts ----------------------------------------------------------------------

FLEET = [f"d{i:03d}" for i in range(200)]


def plan(**kw) -> Plan:
    return Plan(**{"id": "r1", "version": "2.0", "from_version": "1.0", **kw})


def test_stages_are_stable_and_roughly_the_asked_share() -> None:
    p = plan(canaries=("d000",), stages=(10.0, 50.0, 100.0))
    places = [rollouts.stage_of(p, d) for d in FLEET]
    assert places == [rollouts.stage_of(p, d) for d in FLEET]
    assert places[0] == 0
    share_first = sum(1 for s in places if s <= 1) / len(FLEET)
    assert 0.04 < share_first < 0.18
    # Another rollout puts other devices first.
    other = [rollouts.stage_of(plan(id="r2"), d) for d in FLEET]
    assert other != places


def test_advances_stage_by_stage_and_finishes() -> None:
    p = plan(canaries=("d000", "d001"), stages=(50.0, 100.0))
    state = State()
    reports: dict[str, Report] = {}
    state = rollouts.evaluate(p, state, FLEET, reports, 0.0)
    assert state.stage == 0
    assert rollouts.target_for(p, state, "d000", "1.0") == "2.0"
    assert rollouts.target_for(p, state, "d150", "1.0") is None
    reports.update({"d000": Report(True), "d001": Report(True)})
    state = rollouts.evaluate(p, state, FLEET, reports, 1.0)
    assert state.stage == 1 and state.stage_started_at == 1.0
    for device in FLEET:
        if rollouts.stage_of(p, device) == 1:
            reports[device] = Report(True)
    state = rollouts.evaluate(p, state, FLEET, reports, 2.0)
    assert state.stage == 2
    for device in FLEET:
        reports[device] = Report(True)
    assert rollouts.evaluate(p, state, FLEET, reports, 3.0).status is Status.DONE


def test_halts_when_a_stage_fails_past_the_threshold_and_not_before() -> None:
    p = plan(stages=(50.0, 100.0), max_failure_rate=0.25, min_reports=4)
    state = rollouts.evaluate(p, State(), FLEET, {}, 0.0)
    assert state.stage == 1  # no canaries: the first stage opens at once
    stage1 = [d for d in FLEET if rollouts.stage_of(p, d) == 1]
    reports = {stage1[0]: Report(False, "crashed"), stage1[1]: Report(False, "crashed")}
    # Two of two failed, but fewer than min_reports have reported: not judged yet.
    assert rollouts.evaluate(p, state, FLEET, reports, 1.0).status is Status.RUNNING
    reports.update({d: Report(True) for d in stage1[2:8]})  # 2 of 8 = 25 %: at the threshold
    assert rollouts.evaluate(p, state, FLEET, reports, 1.0).status is Status.RUNNING
    reports[stage1[8]] = Report(False, "crashed")  # 3 of 9 = 33 %
    halted = rollouts.evaluate(p, state, FLEET, reports, 2.0)
    assert halted.status is Status.HALTED and "3 of 9 devices failed" in halted.reason
    assert rollouts.target_for(p, halted, stage1[20], "1.0") is None  # nobody new gets it


def test_one_failing_canary_halts() -> None:
    p = plan(canaries=("d000", "d001", "d002"))
    state = rollouts.evaluate(p, State(), FLEET, {"d000": Report(False, "x")}, 0.0)
    assert state.status is Status.HALTED and "canaries" in state.reason


def test_pause_resume_and_roll_back_by_hand() -> None:
    p = plan()
    paused = rollouts.pause(State())
    assert rollouts.target_for(p, paused, "d000", "1.0") is None
    with pytest.raises(BadInput):
        rollouts.pause(paused)
    assert rollouts.resume(paused, 5.0).status is Status.RUNNING
    with pytest.raises(BadInput, match="roll a halted one back"):
        rollouts.resume(State(status=Status.HALTED), 5.0)
    back = rollouts.roll_back(p, State(status=Status.HALTED))
    assert rollouts.target_for(p, back, "d000", "2.0") == "1.0"
    assert rollouts.target_for(p, back, "d001", "1.0") is None
    with pytest.raises(BadInput):
        rollouts.roll_back(plan(from_version=None), State())


@pytest.mark.parametrize(
    "bad",
    [
        dict(stages=()),
        dict(stages=(50.0, 20.0, 100.0)),
        dict(stages=(10.0, 50.0)),
        dict(max_failure_rate=1.0),
        dict(advance_fraction=0.0),
        dict(min_reports=0),
    ],
)
def test_bad_plans_are_refused(bad: dict) -> None:
    with pytest.raises(BadInput):
        plan(**bad)

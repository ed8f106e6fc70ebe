"""Staged rollouts: who gets a release when, and when to stop.

Pure: no I/O, time passed in (epoch seconds). hawkBit's idea: the fleet is cut into stages —
named canary devices first, then cumulative percentages of the fleet (say 10 %, 50 %, 100 %).
A stage opens the next once enough of its devices report healthy; it halts the rollout by
itself once its failure rate passes the threshold. Support can pause, resume and roll back
by hand.

Which percentage stage a device falls in is a hash of the rollout and device ids: stable for
one rollout (a device never moves stage), different for the next (not always the same
devices first).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from enum import StrEnum

from porchlight.errors import BadInput


class Status(StrEnum):
    RUNNING = "running"
    PAUSED = "paused"
    HALTED = "halted"  # stopped by itself: too many failures
    ROLLED_BACK = "rolled_back"
    DONE = "done"
    SUPERSEDED = "superseded"  # a newer rollout replaced it


@dataclass(frozen=True)
class Plan:
    id: str
    version: str
    from_version: str | None  # what a roll back returns devices to
    canaries: tuple[str, ...] = ()
    stages: tuple[float, ...] = (10.0, 50.0, 100.0)  # cumulative % of the fleet
    advance_fraction: float = 0.8  # share of a stage's devices that must report healthy
    max_failure_rate: float = 0.2  # halt when a stage's failed/reported passes this
    min_reports: int = 3  # ...judged once this many of the stage have reported

    def __post_init__(self) -> None:
        if not self.stages or any(not 0 < s <= 100 for s in self.stages):
            raise BadInput("rollout stages are percentages of the fleet, each above 0 and ≤ 100")
        if list(self.stages) != sorted(set(self.stages)) or self.stages[-1] != 100:
            raise BadInput("rollout stages must rise and end at 100 (e.g. 10, 50, 100)")
        if not 0 < self.advance_fraction <= 1:
            raise BadInput("advance_fraction must be above 0 and at most 1")
        if not 0 <= self.max_failure_rate < 1:
            raise BadInput("max_failure_rate must be at least 0 and below 1")
        if self.min_reports < 1:
            raise BadInput("min_reports must be at least 1")
        if len(self.canaries) > 100:
            raise BadInput("name at most 100 canary devices")


@dataclass(frozen=True)
class State:
    status: Status = Status.RUNNING
    stage: int = 0  # 0: the canaries; i ≥ 1: up to stages[i - 1] % of the fleet
    reason: str = ""
    stage_started_at: float = 0.0


@dataclass(frozen=True)
class Report:
    ok: bool
    reason: str = ""


def bucket(rollout_id: str, device_id: str) -> float:
    """A device's stable place in [0, 100) for this rollout."""
    digest = hashlib.sha256(f"{rollout_id}:{device_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 * 100.0


def stage_of(plan: Plan, device_id: str) -> int:
    if device_id in plan.canaries:
        return 0
    place = bucket(plan.id, device_id)
    for index, percent in enumerate(plan.stages, start=1):
        if place < percent:
            return index
    return len(plan.stages)


def stage_name(plan: Plan, stage: int) -> str:
    return "canaries" if stage == 0 else f"{plan.stages[stage - 1]:g} %"


def target_for(plan: Plan, state: State, device_id: str, device_version: str | None) -> str | None:
    """The version this device should run now, or None to stay as it is."""
    if state.status in (Status.RUNNING, Status.DONE):
        return plan.version if stage_of(plan, device_id) <= state.stage else None
    if state.status is Status.ROLLED_BACK:
        return plan.from_version if device_version == plan.version else None
    return None  # paused, halted, superseded: nobody new gets it; nobody is moved


@dataclass(frozen=True)
class StageProgress:
    stage: int
    name: str
    devices: int
    reported: int
    healthy: int
    failed: int


def progress(
    plan: Plan, fleet: Iterable[str], reports: Mapping[str, Report]
) -> list[StageProgress]:
    counts = {i: [0, 0, 0] for i in range(len(plan.stages) + 1)}
    for device in fleet:
        row = counts[stage_of(plan, device)]
        row[0] += 1
        report = reports.get(device)
        if report is not None:
            row[1 if report.ok else 2] += 1
    return [
        StageProgress(i, stage_name(plan, i), n, ok + bad, ok, bad)
        for i, (n, ok, bad) in counts.items()
    ]


def evaluate(
    plan: Plan,
    state: State,
    fleet: Iterable[str],
    reports: Mapping[str, Report],
    now: float,
) -> State:
    """Advance, halt, or finish a running rollout from the reports so far."""
    stages = progress(plan, fleet, reports)
    while state.status is Status.RUNNING:
        current = stages[state.stage]
        # Canaries are named because they are trusted to tell: one failure stops everything.
        needed = 1 if state.stage == 0 else min(plan.min_reports, max(current.devices, 1))
        if current.failed and current.reported >= needed:
            rate = current.failed / current.reported
            if state.stage == 0 or rate > plan.max_failure_rate:
                return replace(
                    state,
                    status=Status.HALTED,
                    reason=(
                        f"halted at stage {current.name}: {current.failed} of "
                        f"{current.reported} devices failed ({rate:.0%}, threshold "
                        f"{plan.max_failure_rate:.0%})"
                    ),
                )
        if current.healthy < math.ceil(plan.advance_fraction * current.devices):
            return state
        if state.stage == len(plan.stages):
            return replace(state, status=Status.DONE, reason="every stage healthy")
        state = replace(state, stage=state.stage + 1, stage_started_at=now)
    return state


def pause(state: State) -> State:
    if state.status is not Status.RUNNING:
        raise BadInput(f"only a running rollout can be paused (this one is {state.status})")
    return replace(state, status=Status.PAUSED, reason="paused by support")


def resume(state: State, now: float) -> State:
    # A halted rollout stays halted: its failures would halt it again at once. Roll it back,
    # or fix the release and start a new rollout.
    if state.status is not Status.PAUSED:
        raise BadInput(
            f"only a paused rollout can resume (this one is {state.status}); "
            "roll a halted one back or start a new rollout with a fixed release"
        )
    return replace(state, status=Status.RUNNING, reason="resumed by support", stage_started_at=now)


def roll_back(plan: Plan, state: State) -> State:
    if state.status in (Status.ROLLED_BACK, Status.SUPERSEDED):
        raise BadInput(f"this rollout is already {state.status}")
    if plan.from_version is None:
        raise BadInput("this rollout has no version to roll back to")
    return replace(
        state,
        status=Status.ROLLED_BACK,
        reason=f"rolled back by support to {plan.from_version}",
    )

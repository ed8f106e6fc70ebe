"""When the device checks, whether it may install now, and whether a new release is healthy.

Pure: no I/O, no clock; every time is an argument (epoch seconds). The update agent
(`porchlight.provisioning.update_agent`) does the I/O and asks these functions what to do,
as python-tuf's updater asks its trusted metadata set.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from packaging.version import InvalidVersion, Version

from porchlight.provisioning.kiosk_status import KioskStatus


@dataclass(frozen=True)
class UpdatePolicy:
    check_interval_s: float = 30 * 60.0  # Mender's default poll period
    check_jitter_s: float = 10 * 60.0  # ± this, so a fleet does not arrive at once
    # The patient touched the screen less than this ago: they are using it, wait.
    touch_grace_s: float = 120.0
    # A status older than this comes from a kiosk that is not running: it cannot be busy.
    status_stale_s: float = 120.0
    # balena: 15 minutes of health checks before a release is trusted.
    health_window_s: float = 15 * 60.0
    # Rollback after this many crashes of the new release (greenboot: 3 failed boots).
    max_crashes: int = 3
    # ... or after the device came back this many times with the trial still open.
    max_trial_resumes: int = 3


def next_check_at(
    last_check: float | None,
    now: float,
    jitter: float,
    policy: UpdatePolicy,
    *,
    requested: bool = False,
) -> float:
    """When to check next. `jitter` is a random number in [0, 1) drawn by the caller;
    `requested` (support asked) means at once."""
    if requested or last_check is None:
        return now
    if not 0.0 <= jitter < 1.0:
        raise ValueError("jitter must be in [0, 1)")
    return last_check + policy.check_interval_s + (2.0 * jitter - 1.0) * policy.check_jitter_s


def busy_reason(status: KioskStatus | None, now: float, policy: UpdatePolicy) -> str | None:
    """Why installing now would disturb the patient, or None when it would not."""
    if status is None or now - status.updated_at > policy.status_stale_s:
        return None
    if status.activity == "call":
        return "the patient is in a call"
    if status.activity == "questionnaire":
        return "the patient is answering a questionnaire"
    if status.last_touch_at is not None and now - status.last_touch_at < policy.touch_grace_s:
        return "the patient is using the screen"
    return None


def parse_version(text: str) -> Version | None:
    try:
        return Version(text)
    except InvalidVersion:
        return None


class Plan(StrEnum):
    NOTHING = "nothing"  # already on the wanted version, or nothing is wanted
    INSTALL = "install"
    DEFER = "defer"  # wanted, but not now (the patient is busy)
    REFUSE = "refuse"  # wanted, but must never be installed (below the signed minimum)
    SKIP = "skip"  # this version failed here before; wait for another one


@dataclass(frozen=True)
class InstallDecision:
    plan: Plan
    reason: str


def install_decision(
    *,
    current: str | None,
    wanted: str | None,
    failed: Mapping[str, str],
    min_version: str | None,
    busy: str | None,
) -> InstallDecision:
    """Whether to install `wanted` now. A downgrade is allowed (support rolling back by hand)
    but never below the repository's signed `min_version`."""
    if wanted is None or wanted == current:
        return InstallDecision(Plan.NOTHING, "up to date")
    if min_version is not None:
        want, floor = parse_version(wanted), parse_version(min_version)
        if want is None or floor is None or want < floor:
            return InstallDecision(
                Plan.REFUSE,
                f"release {wanted} is older than the signed minimum {min_version} "
                "(a rollback to an older release)",
            )
    if wanted in failed:
        return InstallDecision(Plan.SKIP, f"release {wanted} failed here before: {failed[wanted]}")
    if busy:
        return InstallDecision(Plan.DEFER, f"waiting: {busy}")
    return InstallDecision(Plan.INSTALL, f"installing {wanted}")


@dataclass(frozen=True)
class Trial:
    """A release switched to but not yet committed."""

    version: str
    started_at: float
    crashes: int = 0  # crashes of the new release seen since the switch
    resumes: int = 0  # times the agent came back (restart, power cut) with this trial open


class Verdict(StrEnum):
    COMMIT = "commit"
    ROLLBACK = "rollback"
    WAIT = "wait"


@dataclass(frozen=True)
class TrialDecision:
    verdict: Verdict
    reason: str


def trial_decision(
    trial: Trial, status: KioskStatus | None, now: float, policy: UpdatePolicy
) -> TrialDecision:
    """Commit once the new release reports itself healthy; roll back when it crashes too
    often, keeps failing across restarts, or the health window passes."""
    fresh = status is not None and status.version == trial.version
    fresh = fresh and status.started_at >= math.floor(trial.started_at)  # type: ignore[union-attr]
    problems = status.problems() if fresh and status is not None else None
    if problems == []:
        return TrialDecision(Verdict.COMMIT, f"release {trial.version} is healthy")
    if trial.crashes >= policy.max_crashes:
        return TrialDecision(
            Verdict.ROLLBACK,
            f"release {trial.version} crashed {trial.crashes} times at start",
        )
    if trial.resumes >= policy.max_trial_resumes:
        return TrialDecision(
            Verdict.ROLLBACK,
            f"release {trial.version} was not healthy after {trial.resumes} restarts",
        )
    if now - trial.started_at >= policy.health_window_s:
        if problems:
            why = "failed its health check: " + ", ".join(problems)
        else:
            why = f"did not report healthy within {policy.health_window_s:.0f} s"
        return TrialDecision(Verdict.ROLLBACK, f"release {trial.version} {why}")
    return TrialDecision(Verdict.WAIT, "waiting for the health check")

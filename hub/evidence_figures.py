"""The evidence figures for one care team and one month, from plain facts.

Pure: facts in (appointments, calls, what kiosks measured, what patients answered), figures
out. hub/evidence.py reads the facts from the database and serves the figures as JSON, CSV
and the /evidence page. Each figure says what it counts, so the page can show its workings.

Definitions (docs/patient.md, "Evidence"):
- appointments: booked ones starting in the month, cancelled ones left out; calls with no
  booking are counted apart (`unscheduled_calls`).
- attended: the patient joined (pressed the button or answered the ring) or a call took place;
  did not attend: nobody joined by the did-not-attend time. Rates are over those decided
  (`attended + did_not_attend`); appointments still to come are `pending`.
- outcomes (booked and unscheduled): completed by video, switched to a home visit, technical
  failure; `video_share` and `home_visit_share` are over those with an outcome.
- join time: from admitted (or answering the ring) to picture and sound, measured on the kiosk.
- call quality: share of call minutes sent at 360p or better and audio-only; freeze seconds per
  call (the clinician's picture on the kiosk).
- satisfaction: the five faces (1 very bad … 5 very good), and "would use video again".
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

GOOD_HEIGHT = 360


@dataclass(frozen=True)
class AppointmentFact:
    kind: str  # "booked" | "unscheduled"
    starts_at: datetime
    cancelled: bool
    joined: bool
    call_id: str | None
    outcome: str | None


@dataclass(frozen=True)
class Quality:
    duration_s: float
    connect_s: float | None
    video_s: Mapping[str, float]
    audio_only_s: float
    freeze_s: float

    @classmethod
    def from_body(cls, body: Mapping[str, Any]) -> Quality:
        return cls(
            float(body["duration_s"]),
            None if body["connect_s"] is None else float(body["connect_s"]),
            {str(k): float(v) for k, v in body["video_s"].items()},
            float(body["audio_only_s"]),
            float(body["freeze_s"]),
        )


@dataclass(frozen=True)
class Survey:
    score: int | None
    again: bool | None


def _share(part: float, whole: float) -> float | None:
    return None if whole <= 0 else part / whole


def figures(
    appointments: Iterable[AppointmentFact],
    quality: Mapping[str, Quality],
    surveys: Mapping[str, Survey],
) -> dict[str, Any]:
    """Everything the evidence page shows; None where there is nothing to divide by."""
    booked = [a for a in appointments if a.kind == "booked" and not a.cancelled]
    unscheduled = [a for a in appointments if a.kind == "unscheduled"]
    attended = [a for a in booked if a.joined or a.call_id is not None]
    dna = [a for a in booked if a.outcome == "did_not_attend" and a.call_id is None]
    pending = [a for a in booked if a not in attended and a not in dna]
    decided = len(attended) + len(dna)
    served = [*booked, *unscheduled]
    outcomes = {
        name: sum(1 for a in served if a.outcome == name)
        for name in ("completed", "home_visit", "technical_failure")
    }
    with_outcome = sum(outcomes.values())
    calls = len([a for a in served if a.call_id is not None])

    measured = list(quality.values())
    minutes = sum(q.duration_s for q in measured)
    good = sum(s for q in measured for h, s in q.video_s.items() if int(h) >= GOOD_HEIGHT)
    audio_only = sum(q.audio_only_s for q in measured)
    joins = [q.connect_s for q in measured if q.connect_s is not None]

    scores = [s.score for s in surveys.values() if s.score is not None]
    agains = [s.again for s in surveys.values() if s.again is not None]
    return {
        "appointments": len(booked),
        "attended": len(attended),
        "did_not_attend": len(dna),
        "pending": len(pending),
        "attended_rate": _share(len(attended), decided),
        "dna_rate": _share(len(dna), decided),
        "unscheduled_calls": len(unscheduled),
        "calls": calls,
        "outcomes": outcomes,
        "with_outcome": with_outcome,
        "video_share": _share(outcomes["completed"], with_outcome),
        "home_visit_share": _share(outcomes["home_visit"], with_outcome),
        "technical_failure_share": _share(outcomes["technical_failure"], with_outcome),
        "median_join_s": statistics.median(joins) if joins else None,
        "calls_measured": len(measured),
        "call_minutes": minutes / 60,
        "share_360p_or_better": _share(good, minutes),
        "freeze_s_per_call": (sum(q.freeze_s for q in measured) / len(measured))
        if measured
        else None,
        "audio_only_share": _share(audio_only, minutes),
        "satisfaction": {str(n): scores.count(n) for n in range(1, 6)},
        "ratings": len(scores),
        "mean_satisfaction": statistics.mean(scores) if scores else None,
        "would_use_again": _share(sum(1 for a in agains if a), len(agains)),
        "again_answers": len(agains),
    }


# (key, label) for the CSV and the page's table, in reading order.
ROWS = (
    ("appointments", "Appointments booked"),
    ("attended", "Attended"),
    ("did_not_attend", "Did not attend"),
    ("pending", "Still to come"),
    ("attended_rate", "Attended rate"),
    ("dna_rate", "Did-not-attend rate"),
    ("unscheduled_calls", "Calls without a booking"),
    ("video_share", "Completed by video (share of outcomes)"),
    ("home_visit_share", "Switched to a home visit (share of outcomes)"),
    ("technical_failure_share", "Technical failure (share of outcomes)"),
    ("median_join_s", "Median join time (s, admitted to picture)"),
    ("calls_measured", "Calls measured"),
    ("share_360p_or_better", "Share of call minutes at 360p or better"),
    ("freeze_s_per_call", "Freeze seconds per call"),
    ("audio_only_share", "Share of call minutes audio-only"),
    ("ratings", "Ratings given"),
    ("mean_satisfaction", "Mean rating (1-5)"),
    ("would_use_again", "Would use video again"),
)

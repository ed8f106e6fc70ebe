"""The evidence page (`/evidence`) and its data: a care team's month in numbers.

`GET /api/evidence?team_id=…&month=YYYY-MM` answers the figures (hub/evidence_figures.py)
for clinicians and nurses of that team; `GET /api/evidence.csv` the same as a CSV file for a
report. Only counts and shares leave: no names, no record contents. Months are the hub's
local calendar months. Did-not-attend is brought up to date first. Practice patients
(hub/practice.py) are left out entirely: their appointments, calls, ratings and call quality.
"""

from __future__ import annotations

import csv
import io
import json
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import FileResponse, Response
from sqlalchemy import Engine, select

from porchlight.hub.appointments import (
    appointments,
    call_log,
    mark_did_not_attend,
    rules_of,
)
from porchlight.hub.auth import PersonIdentity, require_person
from porchlight.hub.evidence_figures import (
    ROWS,
    AppointmentFact,
    Quality,
    Survey,
    figures,
)
from porchlight.hub.inbox import records
from porchlight.hub.practice import not_practice
from porchlight.hub.services import services
from porchlight.hub.store import Role
from porchlight.kiosk.records import RecordKind

STATIC_DIR = Path(__file__).parent / "static"
# Ratings and call measurements may arrive days after the call (a kiosk offline for a while).
LATE_RECORDS = timedelta(days=14)
MONTH_PATTERN = r"^20\d{2}-(0[1-9]|1[0-2])$"  # 2000-01 … 2099-12


def month_bounds(month: str, now: datetime) -> tuple[datetime, datetime]:
    """The first instant of `month` (YYYY-MM) and of the next, in the hub's local zone."""
    year, mon = (int(part) for part in month.split("-"))
    zone = now.astimezone().tzinfo
    start = datetime.combine(date(year, mon, 1), time(0), tzinfo=zone)
    following = date(year + mon // 12, mon % 12 + 1, 1)
    return start, datetime.combine(following, time(0), tzinfo=zone)


def team_month(engine: Engine, team_id: str, start: datetime, end: datetime) -> dict[str, Any]:
    """Read the facts for one team and month, and work out the figures (real patients only:
    a practice call is a rehearsal, not care)."""
    with engine.connect() as conn:
        rows = conn.execute(
            select(appointments).where(
                appointments.c.team_id == team_id,
                appointments.c.starts_at >= start,
                appointments.c.starts_at < end,
                not_practice(appointments.c.patient_id),
            )
        ).all()
        calls = conn.execute(
            select(call_log.c.call_id, call_log.c.patient_id).where(
                call_log.c.team_id == team_id,
                call_log.c.started_at >= start,
                call_log.c.started_at < end,
                not_practice(call_log.c.patient_id),
            )
        ).all()
        call_ids = {c.call_id for c in calls}
        patients = sorted({c.patient_id for c in calls})
        measured = (
            conn.execute(
                select(records.c.kind, records.c.content, records.c.recorded_at).where(
                    records.c.patient_id.in_(patients),
                    records.c.kind.in_([RecordKind.CALL_QUALITY.value, RecordKind.SURVEY.value]),
                    records.c.recorded_at >= start,
                    records.c.recorded_at < end + LATE_RECORDS,
                )
            ).all()
            if patients
            else []
        )
    facts = [
        AppointmentFact(
            kind=r.kind,
            starts_at=r.starts_at,
            cancelled=r.cancelled_at is not None,
            joined=r.joined_at is not None,
            call_id=r.call_id,
            outcome=r.outcome,
        )
        for r in rows
    ]
    quality: dict[str, Quality] = {}
    surveys: dict[str, Survey] = {}
    # The newest record per call wins (a rating given after a partial one, say).
    for kind, content, _at in sorted(measured, key=lambda m: m.recorded_at):
        body = json.loads(content)["body"]
        if body["call_id"] not in call_ids:
            continue
        if kind == RecordKind.CALL_QUALITY.value:
            quality[body["call_id"]] = Quality.from_body(body)
        else:
            surveys[body["call_id"]] = Survey(body["score"], body["again"])
    return figures(facts, quality, surveys)


router = APIRouter()
CareTeam = Annotated[PersonIdentity, Depends(require_person(Role.CLINICIAN, Role.NURSE))]
Month = Annotated[str | None, Query(pattern=MONTH_PATTERN, description="YYYY-MM; default this")]


def _evidence(request: Request, person: PersonIdentity, team_id: str | None, month: str | None):
    hub = services(request)
    now = hub.clock()
    team = team_id or (min(person.teams) if person.teams else None)
    if team is None or team not in person.teams:
        raise HTTPException(404, "No such care team among yours.")
    found = hub.store.get_team(team)
    if found is None:
        raise HTTPException(404, "No such care team among yours.")
    month = month or now.astimezone().strftime("%Y-%m")
    start, end = month_bounds(month, now)
    mark_did_not_attend(hub.store.engine, now, rules_of(request))
    out = team_month(hub.store.engine, team, start, end)
    return {"team_id": team, "team_name": found.name, "month": month, "figures": out}


@router.get("/api/evidence", summary="A care team's month in figures (clinicians and nurses)")
def evidence(
    request: Request, person: CareTeam, team_id: str | None = None, month: Month = None
) -> dict[str, Any]:
    return _evidence(request, person, team_id, month)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4f}".rstrip("0").rstrip(".")
    return str(value)


@router.get(
    "/api/evidence.csv",
    summary="The same figures as a CSV file",
    response_class=Response,
    responses={200: {"content": {"text/csv": {}}}},
)
def evidence_csv(
    request: Request, person: CareTeam, team_id: str | None = None, month: Month = None
) -> Response:
    data = _evidence(request, person, team_id, month)
    figs = data["figures"]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(["team", "month", "figure", "label", "value"])
    rows = [(key, label, figs[key]) for key, label in ROWS]
    rows += [
        (f"outcome_{name}", f"Outcome: {name.replace('_', ' ')}", count)
        for name, count in figs["outcomes"].items()
    ]
    rows += [(f"rating_{n}", f"Rated {n} of 5", count) for n, count in figs["satisfaction"].items()]
    for key, label, value in rows:
        writer.writerow([data["team_name"], data["month"], key, label, _cell(value)])
    filename = f"porchlight-evidence-{data['month']}.csv"
    return Response(
        out.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


@router.get("/evidence", include_in_schema=False)
def evidence_page() -> FileResponse:
    return FileResponse(STATIC_DIR / "evidence.html", media_type="text/html")

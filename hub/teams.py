"""Care teams: who may see which patients. Pure policy; the store keeps the memberships.

Every patient belongs to one care team; people belong to any number of teams. Clinicians see
the waiting room, calls and records of their teams' patients only; nurses enrol devices for
their teams' patients. A hub with a single team needs no set-up: patients and people created
without a team join the default team.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

DEFAULT_TEAM_ID = "default"
DEFAULT_TEAM_NAME = "Care team"


def can_see(person_teams: Iterable[str], patient_team: str | None) -> bool:
    """A patient with no team is seen by nobody (the safe default for stray records)."""
    return patient_team is not None and patient_team in frozenset(person_teams)


def visible_rows(
    rows: Iterable[Mapping[str, Any]],
    patient_teams: Mapping[str, str | None],
    person_teams: Iterable[str],
) -> list[Mapping[str, Any]]:
    """The rows (each with a "patient_id") whose patient is in one of `person_teams`."""
    teams = frozenset(person_teams)
    return [r for r in rows if can_see(teams, patient_teams.get(r["patient_id"]))]

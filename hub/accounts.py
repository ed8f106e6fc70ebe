"""Accounts and care teams, for admins: list people, add a person, add a team, set a
person's teams. Admins manage who may log in; they see no patients or records."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from porchlight.hub import auth
from porchlight.hub.api import _FORBIDDEN, _INVALID, _UNAUTHORISED, ErrorBody
from porchlight.hub.auth import PersonIdentity, require_person
from porchlight.hub.nurse import TeamOut
from porchlight.hub.services import services
from porchlight.hub.store import Person, Role

router = APIRouter(tags=["admin"])
Admin = Annotated[PersonIdentity, Depends(require_person(Role.ADMIN))]
_BAD = {400: {"model": ErrorBody, "description": "the input is not valid"}}


class PersonOut(BaseModel):
    username: str
    display_name: str
    role: str
    teams: list[str]


class NewPerson(BaseModel):
    username: str = Field(min_length=1, max_length=64, pattern=r"^\S+$")
    display_name: str = Field(min_length=1, max_length=200)
    role: Role
    password: str = Field(min_length=8, max_length=1024)
    teams: list[str] = Field(default_factory=list, max_length=50)


class NewTeam(BaseModel):
    name: str = Field(min_length=1, max_length=200)


class TeamList(BaseModel):
    teams: list[str] = Field(max_length=50)


def _person_out(person: Person, teams: frozenset[str]) -> PersonOut:
    return PersonOut(
        username=person.username,
        display_name=person.display_name,
        role=person.role.value,
        teams=sorted(teams),
    )


@router.get(
    "/api/admin/people", response_model=list[PersonOut], responses={**_UNAUTHORISED, **_FORBIDDEN}
)
def list_people(request: Request, _admin: Admin) -> list[PersonOut]:
    """Every account with its role and teams (never a password hash)."""
    return [_person_out(p, t) for p, t in services(request).store.list_people()]


@router.post(
    "/api/admin/people",
    response_model=PersonOut,
    status_code=201,
    responses={**_BAD, **_UNAUTHORISED, **_FORBIDDEN, **_INVALID},
)
def add_person(body: NewPerson, request: Request, _admin: Admin) -> PersonOut:
    """Add an account in the given care teams (at least 8-character password)."""
    hub = services(request)
    known = {t.id for t in hub.store.list_teams()}
    if any(t not in known for t in body.teams):
        return JSONResponse(  # type: ignore[return-value]
            {"error": "bad_request", "message": "No such care team; add the team first."},
            status_code=400,
        )
    person = hub.store.add_person(
        body.username,
        body.display_name,
        body.role,
        auth.hash_password(body.password),
        now=hub.clock(),
        teams=body.teams,
    )
    return _person_out(person, frozenset(body.teams))


@router.put(
    "/api/admin/people/{username}/teams",
    response_model=PersonOut,
    responses={**_BAD, **_UNAUTHORISED, **_FORBIDDEN, **_INVALID},
)
async def set_teams(username: str, body: TeamList, request: Request, _admin: Admin) -> PersonOut:
    """Make these exactly the person's care teams: their next request, and their clinic pages
    already open (help pushes, the waiting room), follow at once."""
    hub = services(request)

    def work() -> tuple[Person, frozenset[str]]:
        hub.store.set_person_teams(username, body.teams)
        person = hub.store.get_person(username)
        assert person is not None  # set_person_teams refused an unknown person
        return person, hub.store.teams_of_person(username)

    person, teams = await run_in_threadpool(work)
    await hub.signalling.person_teams_changed(person.username, teams)
    return _person_out(person, teams)


@router.post(
    "/api/admin/teams",
    response_model=TeamOut,
    status_code=201,
    responses={**_BAD, **_UNAUTHORISED, **_FORBIDDEN, **_INVALID},
)
def add_team(body: NewTeam, request: Request, _admin: Admin) -> TeamOut:
    hub = services(request)
    team = hub.store.add_team(body.name, now=hub.clock())
    return TeamOut(team_id=team.id, name=team.name)

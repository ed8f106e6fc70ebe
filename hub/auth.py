"""Who is asking: device bearer tokens, people's passwords and login sessions.

Plain functions do the checking (store and time passed in); thin FastAPI dependencies and
WebSocket helpers wrap them. Only hashes of tokens and passwords are ever stored, and no
credential appears in an error message or a log line.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import secrets
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from fastapi import Request, WebSocket
from starlette.concurrency import run_in_threadpool

from porchlight.errors import BadInput, NotAuthorised
from porchlight.hub.services import services
from porchlight.hub.store import Person, Role, Store
from porchlight.hub.teams import can_see
from porchlight.hub.throttle import Guard
from porchlight.protocol import CLOSE_FORBIDDEN, CLOSE_NOT_AUTHORISED, SESSION_COOKIE

# Roles that may see and admit patients in the waiting room.
CLINICAL_ROLES = frozenset({Role.CLINICIAN})

_BEARER = "bearer"
_MAX_TOKEN_CHARS = 200


class Forbidden(NotAuthorised):
    """Authenticated, but this role may not do that (HTTP 403, WebSocket 4403)."""


@dataclass(frozen=True)
class DeviceIdentity:
    device_id: str
    patient_id: str
    display_name: str
    team_id: str | None = None  # the patient's care team


@dataclass(frozen=True)
class PersonIdentity:
    username: str
    display_name: str
    role: Role
    session_sha256: str
    session_expires: datetime
    teams: frozenset[str] = frozenset()  # care teams, as of this request or socket


# -- secrets ------------------------------------------------------------------------------


def new_token() -> str:
    """32 random bytes, URL-safe base64: a device token or a session id."""
    return secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _hasher() -> PasswordHasher:
    return PasswordHasher()


def hash_password(password: str) -> str:
    if len(password) < 8:
        raise BadInput("a password needs at least 8 characters")
    return _hasher().hash(password)


@functools.cache
def _decoy_hash() -> str:
    # Verified against when the username is unknown, so a wrong name takes as long as a
    # wrong password and usernames cannot be discovered by timing.
    return _hasher().hash(secrets.token_urlsafe(16))


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return _hasher().verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


# -- devices ------------------------------------------------------------------------------


def bearer_token(authorization: str | None) -> str:
    if not authorization:
        raise NotAuthorised(
            "No device credential: send 'Authorization: Bearer <device token>'. "
            "Enrol the device if it has no token."
        )
    scheme, _, token = authorization.partition(" ")
    token = token.strip()
    if scheme.lower() != _BEARER or not token or len(token) > _MAX_TOKEN_CHARS:
        raise NotAuthorised(
            "The Authorization header is not 'Bearer <device token>'; send the device token."
        )
    return token


def authenticate_device(store: Store, authorization: str | None, now: datetime) -> DeviceIdentity:
    """The device this Authorization header belongs to; NotAuthorised if none or revoked."""
    token_hash = hash_token(bearer_token(authorization))
    found = store.device_by_token_hash(token_hash)
    if found is None or not hmac.compare_digest(found[0].token_sha256, token_hash):
        raise NotAuthorised("This device credential is not known to the hub. Re-enrol the device.")
    device, patient = found
    if device.revoked:
        raise NotAuthorised("This device has been withdrawn. Ask the clinic to enrol it again.")
    store.touch_device(device.id, now=now)
    return DeviceIdentity(
        device.id, patient.id, patient.display_name, store.team_of_patient(patient.id)
    )


# -- people -------------------------------------------------------------------------------


def login(
    store: Store,
    username: str,
    password: str,
    *,
    now: datetime,
    ttl_s: float,
    guard: Guard | None = None,
    source: str = "",
) -> tuple[str, PersonIdentity]:
    """Check the password and open a session; returns (session token, identity).

    With a `guard`, too many wrong passwords for this username or from this `source` raise
    Throttled before the password is even looked at, so a blocked guesser learns nothing.
    """
    keys = {"user": username.strip().lower(), "source": source}
    if guard is not None:
        guard.check(keys, now)
    person = store.get_person(username)
    if person is None:
        verify_password(_decoy_hash(), password)
        if guard is not None:
            guard.failed(keys, now)
        raise NotAuthorised("Wrong username or password. Check both and try again.")
    if not verify_password(person.password_hash, password):
        if guard is not None:
            guard.failed(keys, now)
        raise NotAuthorised("Wrong username or password. Check both and try again.")
    if guard is not None:
        guard.succeeded(keys)
    if _hasher().check_needs_rehash(person.password_hash):
        store.update_person(username, password_hash=_hasher().hash(password))
    token = new_token()
    session = store.add_session(
        hash_token(token), person.username, now=now, expires=now + timedelta(seconds=ttl_s)
    )
    return token, _identity(
        person, session.id_sha256, session.expires, store.teams_of_person(person.username)
    )


def authenticate_session(store: Store, token: str | None, now: datetime) -> PersonIdentity:
    """The person whose session cookie this is; NotAuthorised if missing, unknown or expired."""
    if not token or len(token) > _MAX_TOKEN_CHARS:
        raise NotAuthorised("You are not logged in. Log in on the clinic page.")
    token_hash = hash_token(token)
    found = store.get_session(token_hash)
    if found is None or not hmac.compare_digest(found[0].id_sha256, token_hash):
        raise NotAuthorised("Your session is not known (logged out?). Log in again.")
    session, person = found
    if session.expires <= now:
        store.delete_session(token_hash)
        raise NotAuthorised("Your session has expired. Log in again.")
    return _identity(
        person, session.id_sha256, session.expires, store.teams_of_person(person.username)
    )


def logout(store: Store, token: str | None) -> str | None:
    """End the session this cookie names, if any; returns its id hash."""
    if not token or len(token) > _MAX_TOKEN_CHARS:
        return None
    token_hash = hash_token(token)
    return token_hash if store.delete_session(token_hash) else None


def check_role(person: PersonIdentity, roles: Iterable[Role]) -> PersonIdentity:
    allowed = frozenset(roles)
    if allowed and person.role not in allowed:
        raise Forbidden(
            f"Your role ({person.role.value}) cannot do this; it needs "
            f"{' or '.join(sorted(r.value for r in allowed))}."
        )
    return person


def _identity(
    person: Person, session_sha256: str, expires: datetime, teams: frozenset[str] = frozenset()
) -> PersonIdentity:
    return PersonIdentity(
        person.username, person.display_name, person.role, session_sha256, expires, teams
    )


def check_patient_in_teams(store: Store, person: PersonIdentity, patient_id: str) -> None:
    """Forbidden unless the patient is in one of the person's care teams.

    An unknown patient id passes: the route itself answers "not found" (or an empty search)
    exactly as before, and ids are random UUIDs, so that tells a guesser nothing useful.
    """
    team = store.team_of_patient(patient_id)
    if team is None and store.get_patient(patient_id) is None:
        return
    if not can_see(person.teams, team):
        raise Forbidden("This patient is not in your care team.")


# -- FastAPI dependencies -----------------------------------------------------------------
# Sync functions on purpose: FastAPI runs them in its threadpool, so the store never blocks
# the event loop.


def require_device(request: Request) -> DeviceIdentity:
    hub = services(request)
    return authenticate_device(hub.store, request.headers.get("authorization"), hub.clock())


def require_person(*roles: Role) -> Callable[[Request], PersonIdentity]:
    """A dependency: the logged-in person, who must hold one of `roles` (any role if none)."""

    def dependency(request: Request) -> PersonIdentity:
        hub = services(request)
        person = authenticate_session(hub.store, request.cookies.get(SESSION_COOKIE), hub.clock())
        return check_role(person, roles)

    return dependency


def _patient_id_of(request: Request) -> str | None:
    """The patient a request is about: the `patient_id` path parameter, or FHIR's
    `?patient=ID` / `?patient=Patient/ID`."""
    patient_id = request.path_params.get("patient_id")
    if patient_id is None:
        value = request.query_params.get("patient", "").strip().removeprefix("Patient/")
        patient_id = value or None
    return patient_id


def require_patient_access(*roles: Role) -> Callable[[Request], PersonIdentity]:
    """A dependency for routes about one patient (path `{patient_id}` or FHIR `?patient=`):
    the logged-in person must hold one of `roles` and be in the patient's care team."""

    def dependency(request: Request) -> PersonIdentity:
        hub = services(request)
        person = require_person(*roles)(request)
        patient_id = _patient_id_of(request)
        if patient_id is not None and len(patient_id) <= 64:
            check_patient_in_teams(hub.store, person, patient_id)
        return person

    return dependency


# Clinicians of the patient's care team: for the records, today and FHIR routes.
require_care_team_clinician = require_patient_access(*CLINICAL_ROLES)


def require_clinician_or_device(request: Request) -> DeviceIdentity | PersonIdentity:
    """A device (by its bearer token) or a logged-in clinician."""
    if request.headers.get("authorization"):
        return require_device(request)
    return require_person(*CLINICAL_ROLES)(request)


# -- WebSockets ---------------------------------------------------------------------------
# The socket is accepted first so a refusal can carry the protocol's close code (4401/4403);
# closing before accept would only give the client a bare HTTP 403.


def _same_origin(websocket: WebSocket) -> bool:
    """A browser's WebSocket must come from a page served by this hub (no cross-site use)."""
    origin = websocket.headers.get("origin")
    if origin is None:
        return True  # not a browser; the session cookie still has to be valid
    origin_netloc = urlsplit(origin).netloc.lower()
    allowed = {websocket.headers.get("host", "").lower()}
    public_url = services(websocket).config.public_url
    if public_url:
        allowed.add(urlsplit(public_url).netloc.lower())
    return origin_netloc in allowed


async def _refuse(websocket: WebSocket, exc: NotAuthorised) -> None:
    code = CLOSE_FORBIDDEN if isinstance(exc, Forbidden) else CLOSE_NOT_AUTHORISED
    # A close reason is at most 123 bytes.
    await websocket.close(code=code, reason=str(exc).encode()[:123].decode(errors="ignore"))


async def accept_device(websocket: WebSocket) -> DeviceIdentity | None:
    """Accept the socket and authenticate the device; closes with 4401 and returns None if not."""
    hub = services(websocket)
    await websocket.accept()
    try:
        return await run_in_threadpool(
            authenticate_device, hub.store, websocket.headers.get("authorization"), hub.clock()
        )
    except NotAuthorised as exc:
        await _refuse(websocket, exc)
        return None


async def accept_person(websocket: WebSocket, roles: Iterable[Role]) -> PersonIdentity | None:
    """Accept the socket and authenticate its session; closes with 4401/4403 if refused."""
    hub = services(websocket)
    await websocket.accept()
    try:
        if not _same_origin(websocket):
            raise Forbidden("This page is not served by this hub; open the hub's clinic page.")
        person = await run_in_threadpool(
            authenticate_session, hub.store, websocket.cookies.get(SESSION_COOKIE), hub.clock()
        )
        return check_role(person, roles)
    except NotAuthorised as exc:
        await _refuse(websocket, exc)
        return None

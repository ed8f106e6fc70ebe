"""The practice patient: every care team's pretend patient, whose kiosk clinicians may ring.

Each care team has one practice patient (table `practice_patients`, a flag beside the ordinary
`patients` row, named "Practice patient (not real)"). Migration 0008 made one for every team
that existed then; a team made later gets its own when one of its clinicians' clinic page first
asks (`GET /api/practice`), and `porchlight demo` makes the demo team's. Not at hub start:
other features' lists would gain a patient nobody asked for. Its kiosk is a real Porchlight
kiosk (KioskCore, headless, simulated device: test-pattern camera, tone) run as a subprocess
(hub/practice_kiosk.py) that the hub starts only when a clinician of the team wants it, with a
device credential the hub mints each time (written 0600 into the kiosk's own folder under the
hub's data dir, never shown). The kiosk queues a scripted check-in and vitals at start, answers
a ring by pressing its button, and stops itself after a quiet spell; the hub stops it when the
hub stops.

Practice patients are left out of the evidence (hub/evidence.py filters on this table).

Routes (clinicians of the team; others get 404, as for any patient not in their teams): `GET
/api/practice` lists your teams' practice patients; `POST /api/practice/{id}/start` starts its
kiosk and answers once the kiosk is connected (then ring it as any patient); `POST
/api/practice/{id}/waiting-room` also presses its button, to rehearse admitting."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import os
import shutil
import sys
import tempfile
import uuid
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request
from pydantic import BaseModel
from sqlalchemy import (
    Column,
    ColumnElement,
    Engine,
    ForeignKey,
    String,
    Table,
    insert,
    select,
)
from sqlalchemy.exc import IntegrityError
from starlette.concurrency import run_in_threadpool

from porchlight.errors import BadInput, TransportFailed
from porchlight.hub import auth
from porchlight.hub.auth import PersonIdentity, require_person
from porchlight.hub.config import HubConfig
from porchlight.hub.db import UTCDateTime, metadata
from porchlight.hub.services import Clock, services
from porchlight.hub.store import Role, Store
from porchlight.hub.teams import can_see

log = logging.getLogger(__name__)

PRACTICE_NAME = "Practice patient (not real)"
# The practice kiosk's own settings (hub/practice_kiosk.py reads them from its command line).
QUIET_S = 600.0  # no call for this long: the practice kiosk stops (zero cost until used)
START_TIMEOUT_S = 60.0  # a practice kiosk not connected by then did not start
PRESS_WAIT_S = 15.0  # how long a press waits for the kiosk's home screen
FOLDER = "practice"

practice_patients = Table(
    "practice_patients",
    metadata,
    Column(
        "patient_id", String(36), ForeignKey("patients.id", ondelete="CASCADE"), primary_key=True
    ),
    Column(
        "team_id",
        String(36),
        ForeignKey("teams.id", ondelete="CASCADE"),
        nullable=False,
        unique=True,
    ),
    Column("created", UTCDateTime(), nullable=False),
)


@dataclass(frozen=True)
class PracticePatient:
    patient_id: str
    team_id: str
    device_id: str


def practice_ids(team_id: str) -> PracticePatient:
    """Fixed ids per team, so two hub instances making it at once make the same rows."""
    return PracticePatient(
        patient_id=str(uuid.uuid5(uuid.NAMESPACE_URL, f"porchlight:practice:{team_id}")),
        team_id=team_id,
        device_id=str(uuid.uuid5(uuid.NAMESPACE_URL, f"porchlight:practice-device:{team_id}")),
    )


def practice_patient_ids() -> Any:
    """A subquery of every practice patient's id (for `column.not_in(...)`)."""
    return select(practice_patients.c.patient_id)


def not_practice(patient_column: Any) -> ColumnElement[bool]:
    """A WHERE clause keeping rows whose patient is a real one."""
    return patient_column.not_in(practice_patient_ids())


def is_practice(engine: Engine, patient_id: str) -> bool:
    with engine.connect() as conn:
        row = conn.execute(
            select(practice_patients.c.patient_id).where(
                practice_patients.c.patient_id == patient_id
            )
        ).first()
    return row is not None


def ensure_for_team(store: Store, team_id: str, now: datetime) -> PracticePatient:
    """Make the team's practice patient if it has none yet (safe to run again, and at once)."""
    ids = practice_ids(team_id)
    with store.engine.connect() as conn:
        found = conn.execute(
            select(practice_patients.c.patient_id).where(practice_patients.c.team_id == team_id)
        ).first()
    if found is not None:
        return ids
    if store.get_patient(ids.patient_id) is None:
        with contextlib.suppress(BadInput):  # made by another request or instance meanwhile
            store.add_patient(PRACTICE_NAME, now=now, patient_id=ids.patient_id, team_id=team_id)
    with contextlib.suppress(IntegrityError), store.engine.begin() as conn:
        conn.execute(
            insert(practice_patients).values(
                patient_id=ids.patient_id, team_id=team_id, created=now
            )
        )
    return ids


def ensure_all(store: Store, now: datetime) -> list[PracticePatient]:
    """Every care team's practice patient (run at hub start and by the demo)."""
    return [ensure_for_team(store, team.id, now) for team in store.list_teams()]


def of_patient(engine: Engine, patient_id: str) -> PracticePatient | None:
    with engine.connect() as conn:
        team = conn.execute(
            select(practice_patients.c.team_id).where(practice_patients.c.patient_id == patient_id)
        ).scalar_one_or_none()
    return None if team is None else practice_ids(team)


# -- the practice kiosks ---------------------------------------------------------------------


def local_hub_url(config: HubConfig, port: int) -> str:
    """Where a kiosk on this machine reaches this hub (plain HTTP: it is the same host)."""
    host = config.host
    if host in ("", "0.0.0.0", "::", "localhost"):
        host = "127.0.0.1"
    with contextlib.suppress(ValueError):
        if ipaddress.ip_address(host).version == 6:
            host = f"[{host}]"
    return f"http://{host}:{port}"


def _loopback(config: HubConfig) -> bool:
    if config.host == "localhost":
        return True
    try:
        return ipaddress.ip_address(config.host).is_loopback
    except ValueError:
        return False


class PracticeKiosks:
    """The practice kiosk processes this hub instance runs: started on demand, one per team."""

    def __init__(self, config: HubConfig, store: Store, clock: Clock) -> None:
        self.config = config
        self.store = store
        self.clock = clock
        self._procs: dict[str, asyncio.subprocess.Process] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._sockets: Path | None = None
        self.quiet_s = QUIET_S

    def folder(self, team_id: str) -> Path:
        return self.config.data_dir / FOLDER / practice_ids(team_id).patient_id

    def sim_socket(self, team_id: str) -> Path:
        """The practice kiosk's simulated-device socket: in a private folder of its own, as
        a Unix socket's path must be short (about 100 bytes) and data dirs can be long."""
        if self._sockets is None:
            self._sockets = Path(tempfile.mkdtemp(prefix="porchlight-practice-"))
        return self._sockets / f"{practice_ids(team_id).patient_id[:8]}.sock"

    def running(self, team_id: str) -> bool:
        proc = self._procs.get(team_id)
        return proc is not None and proc.returncode is None

    async def start(
        self, practice: PracticePatient, hub_url: str, conn_of: Any, *, press: bool = False
    ) -> None:
        """Start the team's practice kiosk unless it runs; return once the hub has its socket
        (`conn_of()`: the id of the patient's kiosk socket, or None)."""
        lock = self._locks.setdefault(practice.team_id, asyncio.Lock())
        async with lock:
            stale = None
            if not self.running(practice.team_id):
                stale = conn_of()  # a kiosk that just stopped may not have been noticed yet
                await self._spawn(practice, hub_url)

            def connected() -> bool:
                return conn_of() not in (None, stale)

            proc = self._procs[practice.team_id]
            loop = asyncio.get_running_loop()
            deadline = loop.time() + START_TIMEOUT_S
            # Polled: the kiosk's socket arrives through signalling, which has no waiter to
            # hand out; the deadline bounds the wait.
            while not connected():
                if proc.returncode is not None:
                    log.warning(
                        "the practice kiosk stopped while starting (exit %s); see %s",
                        proc.returncode,
                        self.folder(practice.team_id) / "kiosk.log",
                    )
                    raise TransportFailed(
                        "The practice kiosk stopped while starting; try again, and tell "
                        "support if it keeps happening."
                    )
                if loop.time() > deadline:
                    raise TransportFailed("The practice kiosk did not connect in time; try again.")
                await asyncio.sleep(0.1)
        if press:
            await self.press(practice.team_id)

    async def press(self, team_id: str) -> None:
        """Press and release the practice kiosk's button (its simulated device's socket)."""
        from porchlight.device.sim_control import sim_request

        sock = self.sim_socket(team_id)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + PRESS_WAIT_S
        try:
            # Its home screen first: just after a call it says goodbye, and a press then is
            # not a call (as on any kiosk). Polled through its socket, bounded by the deadline.
            while (state := (await asyncio.to_thread(sim_request, sock, "status"))["state"]) in (
                "ending",
                "ringing",
                "joining",
            ) and loop.time() < deadline:
                await asyncio.sleep(0.2)
            if state == "waiting":
                return
            if state != "idle":
                raise TransportFailed(
                    "The practice patient is busy (in a call or offline); try again shortly."
                )
            await asyncio.to_thread(sim_request, sock, "press")
            await asyncio.to_thread(sim_request, sock, "release")
        except OSError:
            raise TransportFailed("The practice kiosk is not answering; try again.") from None

    async def _spawn(self, practice: PracticePatient, hub_url: str) -> None:
        folder = self.folder(practice.team_id)
        await asyncio.to_thread(self._prepare, practice, folder, hub_url)
        args = [
            sys.executable,
            "-m",
            "porchlight.hub.practice_kiosk",
            "--data-dir",
            str(folder),
            "--quiet-s",
            str(self.quiet_s),
            "--sim-socket",
            str(self.sim_socket(practice.team_id)),
        ]
        if _loopback(self.config):
            # A hub on loopback (the demo, tests): the browser is on this machine too.
            args += ["--ice-host", "127.0.0.1"]
        env = {k: v for k, v in os.environ.items() if not k.startswith("PORCHLIGHT_")}
        env.update(PORCHLIGHT_DATA_DIR=str(folder), PYTHONUNBUFFERED="1")
        with open(folder / "kiosk.log", "ab") as out:
            proc = await asyncio.create_subprocess_exec(
                *args, stdin=asyncio.subprocess.DEVNULL, stdout=out, stderr=out, env=env
            )
        self._procs[practice.team_id] = proc
        log.info("practice kiosk started (pid %d)", proc.pid)

    def _prepare(self, practice: PracticePatient, folder: Path, hub_url: str) -> None:
        """A fresh credential for the practice device (blocking: a worker thread)."""
        from porchlight.kiosk.credential import DeviceCredential, save_credential

        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        token = auth.new_token()
        if self.store.get_device(practice.device_id) is None:
            self.store.add_device(
                practice.patient_id,
                auth.hash_token(token),
                now=self.clock(),
                device_id=practice.device_id,
            )
        else:
            self.store.set_device_token(practice.device_id, auth.hash_token(token))
        save_credential(
            folder,
            DeviceCredential(
                hub_url=hub_url,
                device_id=practice.device_id,
                patient_id=practice.patient_id,
                token=token,
            ),
        )

    async def stop_all(self, timeout: float = 10.0) -> None:
        """Stop every practice kiosk (the hub is stopping): SIGTERM, then SIGKILL."""
        procs, self._procs = list(self._procs.values()), {}
        for proc in procs:
            if proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.terminate()
        for proc in procs:
            try:
                await asyncio.wait_for(proc.wait(), timeout)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                await proc.wait()
        if self._sockets is not None:
            shutil.rmtree(self._sockets, ignore_errors=True)
            self._sockets = None


# -- routes ------------------------------------------------------------------------------------

router = APIRouter(tags=["practice"])
Clinician = Annotated[PersonIdentity, Depends(require_person(Role.CLINICIAN))]


class PracticeOut(BaseModel):
    patient_id: str
    display_name: str
    team_id: str
    team_name: str
    running: bool


def kiosks_of(request: Request) -> PracticeKiosks:
    hub = services(request)
    if not hub.config.practice_patient:
        raise HTTPException(404, "This hub has no practice patients (hub.practice_patient).")
    return request.app.state.practice


@router.get(
    "/api/practice",
    response_model=list[PracticeOut],
    summary="Your care teams' practice patients (ring them to rehearse a call)",
)
def list_practice(request: Request, person: Clinician) -> list[PracticeOut]:
    hub = services(request)
    kiosks = kiosks_of(request)
    now = hub.clock()
    names = {t.id: t.name for t in hub.store.list_teams()}
    out = []
    for team_id in sorted(person.teams):
        if team_id not in names:
            continue
        ids = ensure_for_team(hub.store, team_id, now)
        out.append(
            PracticeOut(
                patient_id=ids.patient_id,
                display_name=PRACTICE_NAME,
                team_id=team_id,
                team_name=names[team_id],
                running=kiosks.running(team_id),
            )
        )
    return out


class StartedOut(BaseModel):
    patient_id: str
    connected: bool


async def _start(request: Request, person: PersonIdentity, patient_id: str, press: bool):
    hub = services(request)
    kiosks = kiosks_of(request)
    practice = await run_in_threadpool(of_patient, hub.store.engine, patient_id[:64])
    if practice is None or not can_see(person.teams, practice.team_id):
        raise HTTPException(404, "No such practice patient in your care teams.")
    port = request.scope.get("server", (None, hub.config.port))[1] or hub.config.port
    room = hub.signalling.room
    try:
        await kiosks.start(
            practice,
            local_hub_url(hub.config, int(port)),
            lambda: room.device_conn(practice.patient_id),
            press=press,
        )
    except TransportFailed as exc:
        raise HTTPException(503, str(exc)) from None
    return StartedOut(patient_id=practice.patient_id, connected=True)


@router.post(
    "/api/practice/{patient_id}/start",
    response_model=StartedOut,
    summary="Start the practice patient's kiosk (then ring it as any patient)",
)
async def start_practice(patient_id: str, request: Request, person: Clinician) -> StartedOut:
    return await _start(request, person, patient_id, press=False)


@router.post(
    "/api/practice/{patient_id}/waiting-room",
    response_model=StartedOut,
    summary="Put the practice patient in the waiting room (its kiosk presses its button)",
)
async def practice_waiting(patient_id: str, request: Request, person: Clinician) -> StartedOut:
    return await _start(request, person, patient_id, press=True)

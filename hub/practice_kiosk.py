"""The practice patient's kiosk: a real headless Porchlight kiosk with a scripted patient.

`python -m porchlight.hub.practice_kiosk --data-dir DIR` is what hub/practice.py starts. It
runs the ordinary kiosk (kiosk/runner.py: KioskCore, simulated device with the test-pattern
camera and the tone, no screen, no speech) from the credential the hub wrote in DIR, and plays
a prompt patient on it:

- at start it queues the default check-in's answers and a set of vitals through the outbox,
  so the clinician finds them as for any patient;
- a ring is answered with a press of the button after `ANSWER_AFTER_S`;
- after a call it rates it (good, would use video again), as a patient would;
- it stops by itself after `--quiet-s` seconds with no call, or when the hub that started it
  is gone (its parent process changed).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

from porchlight.device.config import DeviceConfig
from porchlight.kiosk.config import KioskConfig
from porchlight.kiosk.core import KioskCore
from porchlight.kiosk.credential import credential_path
from porchlight.kiosk.questionnaire import default_checkin
from porchlight.kiosk.records import Record, answers_record, vitals_record
from porchlight.kiosk.runner import run_kiosk
from porchlight.kiosk.view import KioskState, KioskView

log = logging.getLogger("porchlight.practice_kiosk")

ANSWER_AFTER_S = 1.5  # a prompt patient: the clinician hears it ring, then it answers
PRESS_S = 0.2  # how long the pretend finger stays on the button
RATING = 4  # "good"
WATCH_EVERY_S = 1.0

# The scripted check-in: answers to the default check-in (kiosk/questionnaire.py) and vitals
# in the usual ranges, so nothing is flagged.
ANSWERS = {"breathing": "same", "pain": False, "medicines": True, "feeling": "okay"}
VITALS = {"spo2": 97, "pulse": 72, "temperature": 36.8}


def scripted_checkin(patient_id: str, now: datetime) -> list[Record]:
    """Today's check-in answers and vitals for the practice patient (fresh ids each time)."""
    return [
        answers_record(
            default_checkin(),
            ANSWERS,
            record_id=str(uuid.uuid4()),
            patient_id=patient_id,
            now=now,
        ),
        vitals_record(VITALS, record_id=str(uuid.uuid4()), patient_id=patient_id, now=now),
    ]


class PracticePatient:
    """Plays the patient on a running KioskCore: answers rings, rates calls, keeps quiet time."""

    def __init__(self, core: KioskCore, quiet_s: float, stop: asyncio.Event) -> None:
        self.core = core
        self.quiet_s = quiet_s
        self.stop = stop
        self.last_busy = time.monotonic()
        self._answering = False
        self._rated: str = ""
        self._parent = os.getppid()
        self._tasks: set[asyncio.Task[None]] = set()

    def start(self) -> None:
        self.core.subscribe(self._on_view)
        self._spawn(self._queue_checkin())
        self._spawn(self._watch())

    def _spawn(self, coro) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _on_view(self, view: KioskView) -> None:
        if view.state is not KioskState.IDLE:
            self.last_busy = time.monotonic()
        if view.state is KioskState.RINGING and not self._answering:
            self._answering = True
            self._spawn(self._answer())
        if view.step and view.step != self._rated:
            self._rated = view.step
            if view.step == "faces":
                self.core.survey_face(RATING)
            elif view.step == "again":
                self.core.survey_again(True)
        if not view.step:
            self._rated = ""

    async def _answer(self) -> None:
        try:
            await asyncio.sleep(ANSWER_AFTER_S)
            if self.core.view.state is KioskState.RINGING:
                button = self.core.device.button
                button.press()  # the simulated pin's edge: exactly what a real press does
                await asyncio.sleep(PRESS_S)
                button.release()
        finally:
            self._answering = False

    async def _queue_checkin(self) -> None:
        records = self.core.records
        if records is None:
            log.warning("no outbox: the scripted check-in was not queued")
            return
        await asyncio.to_thread(
            records.save, scripted_checkin(records.patient_id, datetime.now(UTC))
        )

    async def _watch(self) -> None:
        while not self.stop.is_set():
            await asyncio.sleep(WATCH_EVERY_S)
            if os.getppid() != self._parent:
                log.info("the hub that started this practice kiosk is gone; stopping")
                self.stop.set()
            elif not credential_path(self.core.config.data_dir).exists():
                log.info("the hub refused this practice kiosk's credential; stopping")
                self.stop.set()
            elif time.monotonic() - self.last_busy > self.quiet_s:
                log.info("no practice call for %.0f s; stopping", self.quiet_s)
                self.stop.set()


async def run(data_dir: Path, quiet_s: float, ice_hosts: list[str], sim_socket: Path) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    config = KioskConfig(
        data_dir=data_dir,
        ice_host_addresses=ice_hosts,
        sim_control_path=sim_socket,
        device=DeviceConfig(simulate=True, speech=False),
    )
    players: list[PracticePatient] = []

    def started(core: KioskCore) -> None:
        player = PracticePatient(core, quiet_s, stop)
        players.append(player)
        player.start()

    await run_kiosk(config, ui=False, stop=stop, on_started=started)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m porchlight.hub.practice_kiosk")
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--quiet-s", type=float, default=600.0)
    parser.add_argument("--ice-host", action="append", default=[])
    parser.add_argument("--sim-socket", type=Path, required=True)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    asyncio.run(run(args.data_dir, args.quiet_s, args.ice_host, args.sim_socket))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

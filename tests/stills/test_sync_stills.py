"""Stills through the outbox to the real hub (its PUT/GET /api/device/stills and the still
record): bytes up first in paced, resumable chunks, then the record commits them. Through a
TCP proxy that cuts the link; the kiosk process is SIGKILLed mid-upload and restarted. The
hub's copy is read back as the clinician reads it and its SHA-256 compared."""

from __future__ import annotations

import hashlib
import multiprocessing
import os
import random
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from outbox import conftest as outbox_fixtures

from porchlight.hub.stills import StillFiles, StillLimits
from porchlight.kiosk.outbox import Outbox, OutboxConfig
from porchlight.kiosk.sync import KioskRecords, SyncConfig, SyncWorker
from porchlight.kiosk.sync_policy import EntryStatus
from porchlight.protocol import DEVICE_STILLS_PATH

from .conftest import jpeg

# The real hub on 127.0.0.1 and the link-cutting proxy, as tests/outbox uses them.
hub_database = outbox_fixtures.hub_database
hub = outbox_fixtures.hub
proxy = outbox_fixtures.proxy

FAST = {"backoff_base_s": 0.2, "backoff_cap_s": 2.0, "probe_interval_s": 0.2}


def open_kiosk(outbox_path: Path, hub_url: str, token: str, patient_id: str, **cfg) -> KioskRecords:
    box = Outbox.open(OutboxConfig(path=outbox_path), now=time.time(), resume=True)
    worker = SyncWorker(
        box,
        hub_url=hub_url,
        token=token,
        patient_id=patient_id,
        config=SyncConfig(**{**FAST, **cfg}),
    )
    worker.start()
    return KioskRecords(box, worker, patient_id)


def hub_progress(hub, still_id: str) -> tuple[int, int | None]:
    answer = hub.device().get(f"{hub.url}{DEVICE_STILLS_PATH}/{still_id}", timeout=5)
    answer.raise_for_status()
    return answer.json()["received"], answer.json()["size"]


def hub_copy(hub, still_id: str) -> bytes:
    """The still as the clinician's page loads it."""
    answer = hub.person().get(f"{hub.url}/api/stills/{still_id}", timeout=10)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "image/jpeg"
    return answer.content


def wait_until(condition, timeout: float, what: str, poll: float = 0.05):
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(poll)  # poll interval; bounded by the deadline


def test_a_still_taken_while_the_hub_is_away_arrives_whole_when_it_is_back(hub, proxy, tmp_path):
    proxy.cut("refuse")
    kiosk = open_kiosk(tmp_path / "outbox.db", proxy.url, hub.token, hub.patient_id)
    try:
        data = jpeg(1280, 720, seed=3)
        still_id = kiosk.add_still(
            data, call_id=None, width=1280, height=720, now=datetime.now(UTC)
        )
        assert not kiosk.wait_sent([still_id], timeout=2)  # nothing gets through a cut link
        status = kiosk.outbox.status(time.time())
        assert (status.stills_pending, status.still_bytes_left) == (1, len(data))
        assert hub_progress(hub, still_id) == (0, None)
        proxy.restore()
        assert kiosk.wait_sent([still_id], timeout=30)
        assert kiosk.outbox.status(time.time()).still_bytes_left == 0
    finally:
        kiosk.close()
    got = hub_copy(hub, still_id)
    assert hashlib.sha256(got).hexdigest() == hashlib.sha256(data).hexdigest()


def test_records_do_not_wait_behind_a_paced_still_and_the_budget_holds(hub, proxy, tmp_path):
    kiosk = open_kiosk(tmp_path / "outbox.db", proxy.url, hub.token, hub.patient_id)
    budget = 64_000  # bit/s: 8 kB/s, a quarter of a 256 kbit/s link
    try:
        kiosk.set_upload_budget(budget)
        data = jpeg(1280, 720, seed=4)  # ~450 kB: about a minute at this budget
        still_id = kiosk.add_still(
            data, call_id="call-x", width=1280, height=720, now=datetime.now(UTC)
        )
        first, _ = wait_until(
            lambda: (p := hub_progress(hub, still_id))[0] > 0 and p, 10, "the first chunk"
        )
        started = time.monotonic()
        # A check-in made during the upload goes at once, not after the still.
        vitals = outbox_fixtures.vitals(patient=hub.patient_id)
        kiosk.save([vitals])
        assert kiosk.wait_sent([vitals.id], timeout=3)
        assert hub_progress(hub, still_id)[0] < len(data)
        # The upload keeps to its budget (payload only; headers are counted against it too).
        wait_until(lambda: time.monotonic() - started > 3.0, 5, "three seconds of upload")
        received, _ = hub_progress(hub, still_id)
        took = time.monotonic() - started
        chunk = 4 * 1024  # chunks are half a second of budget, at least 4 KiB
        assert received - first <= budget / 8 * took + chunk
        assert received - first >= budget / 8 * took * 0.5  # and does use it
        # Lifting the budget (the call ended) lets the rest go at once.
        kiosk.set_upload_budget(None)
        assert kiosk.wait_sent([still_id], timeout=30)
    finally:
        kiosk.close()
    assert hashlib.sha256(hub_copy(hub, still_id)).hexdigest() == hashlib.sha256(data).hexdigest()


def test_bytes_that_do_not_match_are_dropped_by_the_hub_and_sent_again(hub, proxy, tmp_path):
    data = jpeg(640, 480, seed=5)
    kiosk = open_kiosk(tmp_path / "outbox.db", proxy.url, hub.token, hub.patient_id)
    kiosk.worker.stop()  # hold the worker while the hub is given wrong bytes under that id
    still_id = kiosk.add_still(data, call_id=None, width=640, height=480, now=datetime.now(UTC))
    wrong = bytes(len(data))
    put = hub.device().put(
        f"{hub.url}{DEVICE_STILLS_PATH}/{still_id}",
        data=wrong,
        headers={
            "Content-Type": "application/octet-stream",
            "Content-Range": f"bytes 0-{len(wrong) - 1}/{len(wrong)}",
        },
        timeout=10,
    )
    assert put.status_code == 200 and put.json()["complete"], put.text
    # The kiosk's file says nothing is up; the hub says all is. The hub's word counts (GET),
    # the record finds the bytes do not match, the hub drops them, the kiosk starts from 0.
    proxy.bytes_up = 0
    worker = SyncWorker(
        kiosk.outbox,
        hub_url=proxy.url,
        token=hub.token,
        patient_id=hub.patient_id,
        config=SyncConfig(**FAST),
    )
    worker.start()
    try:
        assert worker.wait_acked([still_id], timeout=30)
    finally:
        worker.stop()
        kiosk.outbox.close()
    assert proxy.bytes_up > len(data)  # it really sent the bytes again
    assert hashlib.sha256(hub_copy(hub, still_id)).hexdigest() == hashlib.sha256(data).hexdigest()


def test_a_still_the_hub_will_not_take_yet_backs_off_alone(tmp_path):
    """The hub refuses a second still today (429, its per-kiosk limit): that still waits with
    its own backoff while the kiosk's other records keep going; once the hub takes stills
    again it arrives."""
    own = outbox_fixtures.start_hub(tmp_path / "hub")
    try:
        files = StillFiles(
            own.server.store.engine, Path(own.server.config.data_dir) / "stills",
            StillLimits(max_per_day=1),
        )  # fmt: skip
        own.server.app.state.still_files = files
        kiosk = open_kiosk(tmp_path / "outbox.db", own.url, own.token, own.patient_id)
        try:
            now = datetime.now(UTC)
            first = kiosk.add_still(jpeg(seed=7), call_id=None, width=640, height=480, now=now)
            assert kiosk.wait_sent([first], timeout=20)
            second_data = jpeg(seed=8)
            second = kiosk.add_still(second_data, call_id=None, width=640, height=480, now=now)
            wait_until(
                lambda: (
                    kiosk.outbox._db.execute(
                        "SELECT attempts FROM outbox WHERE record_id=?", [second]
                    ).fetchone()[0]
                    >= 2
                ),
                20,
                "the refused still to back off twice",
            )
            vitals = outbox_fixtures.vitals(patient=own.patient_id)
            kiosk.save([vitals])
            assert kiosk.wait_sent([vitals.id], timeout=3)  # not held up by the refused still
            assert kiosk.outbox.entry_status(second) is EntryStatus.PENDING
            assert hub_progress(own, second) == (0, None)
            files.limits = StillLimits()  # a new day
            assert kiosk.wait_sent([second], timeout=30)
        finally:
            kiosk.close()
        assert hashlib.sha256(hub_copy(own, second)).hexdigest() == (
            hashlib.sha256(second_data).hexdigest()
        )
    finally:
        own.server.stop()


# --- SIGKILL mid-upload ---------------------------------------------------------------------


def kiosk_process(outbox_path: str, hub_url: str, token: str, patient_id: str, add: bool,
                  budget: float | None, ready_path: str, seed: int = 6,
                  size: tuple[int, int] = (1280, 720)) -> None:  # fmt: skip
    """A kiosk (outbox + sync worker) in its own process, until it is killed."""
    kiosk = open_kiosk(Path(outbox_path), hub_url, token, patient_id)
    kiosk.set_upload_budget(budget)
    if add:
        width, height = size
        still_id = kiosk.add_still(
            jpeg(width, height, seed=seed),
            call_id=None,
            width=width,
            height=height,
            now=datetime.now(UTC),
        )
        Path(ready_path).write_text(still_id)
    else:
        Path(ready_path).write_text("started")
    while True:  # the worker runs on its own thread; this one only waits to be killed
        time.sleep(3600)


@pytest.mark.timeout(120)
def test_a_kiosk_killed_mid_upload_resumes_and_the_still_arrives_whole(hub, proxy, tmp_path):
    ctx = multiprocessing.get_context("spawn")
    outbox_path, ready = tmp_path / "outbox.db", tmp_path / "ready"
    data = jpeg(1280, 720, seed=6)  # what the kiosk process takes
    args = (str(outbox_path), proxy.url, hub.token, hub.patient_id)

    def run(add: bool, budget: float | None):
        ready.unlink(missing_ok=True)
        child = ctx.Process(target=kiosk_process, args=(*args, add, budget, str(ready)))
        child.start()
        wait_until(lambda: ready.exists() and ready.read_text(), 60, "the kiosk process")
        return child

    def kill(child) -> None:
        os.kill(child.pid, 9)  # SIGKILL: no cleanup, mid-chunk or mid-commit
        child.join(timeout=10)
        assert child.exitcode == -9

    # 1. Taken and paced (200 kbit/s ≈ 25 kB/s): killed a third of the way up.
    child = run(add=True, budget=200_000)
    still_id = ready.read_text()
    wait_until(lambda: hub_progress(hub, still_id)[0] >= len(data) // 3, 60, "a third")
    kill(child)
    at_first_kill, size = hub_progress(hub, still_id)
    assert size == len(data) and at_first_kill < len(data)
    # 2. Started again, killed again two thirds of the way up.
    child = run(add=False, budget=200_000)
    wait_until(lambda: hub_progress(hub, still_id)[0] >= 2 * len(data) // 3, 60, "two thirds")
    kill(child)
    at_second_kill, _ = hub_progress(hub, still_id)
    assert at_first_kill < at_second_kill < len(data)
    # 3. Started again while the hub is unreachable; the link comes back; unpaced now.
    proxy.cut("refuse")
    child = run(add=False, budget=None)
    proxy.bytes_up = 0
    proxy.restore()
    try:
        wait_until(lambda: _acked(outbox_path, still_id), 60, "the still acknowledged")
    finally:
        kill(child)
    # It resumed where the hub was: far fewer bytes went up than the whole still.
    assert proxy.bytes_up < len(data) - at_second_kill + 20_000
    got = hub_copy(hub, still_id)
    assert len(got) == len(data)
    assert hashlib.sha256(got).hexdigest() == hashlib.sha256(data).hexdigest()


def _acked(outbox_path: Path, still_id: str) -> bool:
    box = Outbox.open(OutboxConfig(path=outbox_path), now=time.time())  # a reader, like the CLI
    try:
        return box.entry_status(still_id) is EntryStatus.ACKED
    finally:
        box.close()


@pytest.mark.timeout(240)
def test_stills_survive_random_kills_each_arriving_once_and_intact(hub, proxy, tmp_path):
    """Chaos in the style of tests/outbox/test_chaos.py: a kiosk process takes a still, is
    SIGKILLed at a random moment (mid-chunk, between chunks, mid-commit of the record), and
    starts again, several times, with the link cut now and then; then it runs to the end."""
    rng = random.Random(20261124)
    ctx = multiprocessing.get_context("spawn")
    outbox_path, ready = tmp_path / "outbox.db", tmp_path / "ready"
    made: dict[str, bytes] = {}
    killed_mid_upload = 0
    kills = 6
    for k in range(kills):
        ready.unlink(missing_ok=True)
        seed = 100 + k
        args = (str(outbox_path), proxy.url, hub.token, hub.patient_id, True, 300_000,
                str(ready), seed, (640, 480))  # fmt: skip
        child = ctx.Process(target=kiosk_process, args=args)
        child.start()
        wait_until(lambda: ready.exists() and ready.read_text(), 60, "the kiosk process")
        made[ready.read_text()] = jpeg(640, 480, seed=seed)
        if k % 3 == 2:
            proxy.cut(rng.choice(["refuse", "blackhole"]))
        deadline = time.monotonic() + rng.uniform(0.2, 3.0)  # the random moment it dies
        wait_until(lambda d=deadline: time.monotonic() >= d, 5, "the moment to kill", 0.01)
        os.kill(child.pid, 9)
        child.join(timeout=10)
        proxy.restore()
        for sid, data in made.items():
            if 0 < hub_progress(hub, sid)[0] < len(data):
                killed_mid_upload += 1
    assert killed_mid_upload >= 2  # the kills really did cut uploads short
    # The last run is not killed: everything must drain.
    ready.unlink(missing_ok=True)
    args = (str(outbox_path), proxy.url, hub.token, hub.patient_id, False, None, str(ready))
    child = ctx.Process(target=kiosk_process, args=args)
    child.start()
    try:
        wait_until(lambda: all(_acked(outbox_path, sid) for sid in made), 120, "every still")
    finally:
        os.kill(child.pid, 9)
        child.join(timeout=10)
    listed = hub.person().get(f"{hub.url}/api/patients/{hub.patient_id}/stills", timeout=10)
    assert listed.status_code == 200, listed.text
    on_hub = [s["still_id"] for s in listed.json()["stills"]]
    assert set(made) <= set(on_hub)
    assert len(on_hub) == len(set(on_hub))  # each once
    for still_id, data in made.items():
        assert hashlib.sha256(hub_copy(hub, still_id)).hexdigest() == (
            hashlib.sha256(data).hexdigest()
        ), still_id


def test_the_worker_says_how_much_of_its_stills_is_still_to_go(hub, proxy, tmp_path):
    """What the call reads to decide whether to make room for a still (kiosk/still_pacing.py):
    the bytes not yet on the hub, as the sync worker last saw; 0 once they are."""
    proxy.cut("refuse")
    kiosk = open_kiosk(tmp_path / "outbox.db", proxy.url, hub.token, hub.patient_id)
    try:
        assert kiosk.still_backlog_bytes == 0
        data = jpeg(640, 480, seed=8)
        still_id = kiosk.add_still(data, call_id=None, width=640, height=480, now=datetime.now(UTC))
        wait_until(lambda: kiosk.still_backlog_bytes == len(data), 10, "the backlog seen")
        proxy.restore()
        assert kiosk.wait_sent([still_id], timeout=30)
        wait_until(lambda: kiosk.still_backlog_bytes == 0, 10, "the backlog gone")
    finally:
        kiosk.close()

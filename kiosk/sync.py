"""The sync worker: sends the outbox to the hub's inbox with `requests`, in its own thread.

The asyncio loop (Kivy, aiortc) is never blocked: `kick()` only sets an event. Decisions —
what to send, when to retry, when to probe — come from the pure `sync_policy`; this module
does the I/O and writes every outcome to the outbox before acting on the next one.

An entry is marked acknowledged only from the hub's per-record answer. A batch that timed out
may have been stored anyway; it is resent and the hub answers "duplicate", which also counts.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import logging
import random
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

from porchlight.config import load as load_config
from porchlight.kiosk.outbox import OUTBOX_FILE, Outbox, OutboxConfig
from porchlight.kiosk.questionnaire import Questionnaire, default_checkin
from porchlight.kiosk.records import Record
from porchlight.kiosk.sync_policy import (
    Action,
    Entry,
    EntryStatus,
    Outcome,
    SyncMachine,
    SyncPolicyConfig,
    backoff_delay,
    choose_batch,
    record_outcome,
)

log = logging.getLogger(__name__)

RECORDS_PATH = "/api/records"
HEALTH_PATH = "/healthz"
QUESTIONNAIRE_PATH = "/api/device/questionnaire"
QUESTIONNAIRE_META = "questionnaire"


@dataclass
class SyncConfig:
    """`porchlight.config.load(SyncConfig, "sync")`: PORCHLIGHT_SYNC_* variables."""

    batch_max_records: int = 250
    batch_max_bytes: int = 256 * 1024
    backoff_base_s: float = 1.0
    backoff_cap_s: float = 300.0
    probe_interval_s: float = 1.0
    connect_timeout_s: float = 3.0
    read_timeout_s: float = 30.0
    gzip: bool = True  # ~4x fewer bytes on a slow rural link, for a little CPU
    purge_every_s: float = 3600.0
    questionnaire_every_s: float = 900.0

    def policy(self) -> SyncPolicyConfig:
        return SyncPolicyConfig(
            batch_max_records=self.batch_max_records,
            batch_max_bytes=self.batch_max_bytes,
            backoff_base_s=self.backoff_base_s,
            backoff_cap_s=self.backoff_cap_s,
            probe_interval_s=self.probe_interval_s,
        )


def http_base(hub_url: str) -> str:
    """The hub's HTTP base URL (the credential may hold its ws:// form)."""
    url = hub_url.rstrip("/")
    for ws, http in (("ws://", "http://"), ("wss://", "https://")):
        if url.startswith(ws):
            return http + url[len(ws) :]
    return url


@dataclass(frozen=True)
class _Reply:
    """What one POST came to. `results` is None unless the hub answered per record."""

    reachable: bool
    status: int | None = None
    results: dict[str, dict[str, Any]] | None = None


class SyncWorker:
    def __init__(
        self,
        outbox: Outbox,
        *,
        hub_url: str,
        token: str,
        patient_id: str,
        config: SyncConfig | None = None,
        session: requests.Session | None = None,
        clock: Callable[[], float] = time.time,
        rand: Callable[[], float] = random.random,
        on_change: Callable[[], None] | None = None,
    ) -> None:
        self._outbox = outbox
        self._base = http_base(hub_url)
        self._patient_id = patient_id
        self._config = config or SyncConfig()
        self._session = session or requests.Session()
        self._session.headers["Authorization"] = f"Bearer {token}"
        self._clock = clock
        self._rand = rand
        self._on_change = on_change
        self.machine = SyncMachine(self._config.policy())
        self._wake = threading.Event()
        self._kicked = threading.Event()
        self._stopping = threading.Event()
        self._acked = threading.Condition()
        self._thread: threading.Thread | None = None
        self._last_purge = float("-inf")
        self._last_questionnaire = float("-inf")

    # --- lifecycle -----------------------------------------------------------------------

    def start(self) -> None:
        if self._thread is not None:
            return
        self._outbox.faults_to_records(self._patient_id, self._clock())
        self._thread = threading.Thread(target=self._run, name="porchlight-sync", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        with contextlib.suppress(Exception):
            self._session.close()

    def kick(self) -> None:
        """The hub is reachable again (e.g. the kiosk's WebSocket reconnected), or something
        new was recorded: try now. Cheap, thread-safe, never blocks."""
        self._kicked.set()
        self._wake.set()

    def wait_acked(self, record_ids: Iterable[str], timeout: float) -> bool:
        """Block until the hub has acknowledged all these records, or `timeout` passes."""
        ids = list(record_ids)
        deadline = time.monotonic() + timeout

        def done() -> bool:
            return all(self._outbox.entry_status(r) is EntryStatus.ACKED for r in ids)

        with self._acked:
            while not done():
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._acked.wait(min(left, 0.5))
        return True

    def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                wait = self.step()
            except Exception:  # a bug or a storage fault must not kill syncing for good
                log.exception("sync step failed; trying again shortly")
                wait = self._config.backoff_base_s
            if wait > 0 and self._wake.wait(wait):
                self._wake.clear()

    # --- one step ------------------------------------------------------------------------

    def step(self) -> float:
        """Do what the policy says now; return how long to wait before the next step."""
        now = self._clock()
        if self._kicked.is_set():
            self._kicked.clear()
            self.machine.kicked(now)
        if now - self._last_purge >= self._config.purge_every_s:
            self._last_purge = now
            self._outbox.purge(now)
        action, wait = self.machine.decide(now, self._outbox.next_due_at())
        if action is Action.SEND:
            self._send_batch(now)
            return 0.0
        if action is Action.PROBE:
            self.machine.probed(now, reachable=self._probe())
            return 0.0
        if now - self._last_questionnaire >= self._config.questionnaire_every_s:
            self._refresh_questionnaire(now)
        return wait

    def _send_batch(self, now: float) -> None:
        limit = self.machine.batch_limit
        due = self._outbox.due_entries(now, limit)
        batch = choose_batch(due, now, limit, self._config.batch_max_bytes)
        claimed = self._outbox.claim(batch, now)
        if not claimed:
            return
        ids = [e.record_id for e, _ in claimed]
        reply = self._post(b'{"records":[' + b",".join(c for _, c in claimed) + b"]}")
        now = self._clock()
        if reply.results is not None:
            self._apply_results([e for e, _ in claimed], reply.results, now)
            self.machine.sent(now)
        elif reply.status in (400, 413, 422):
            if self.machine.refused_whole(len(ids)):
                self._outbox.mark_held([(ids[0], f"hub refused the request ({reply.status})")], now)
            else:
                self._outbox.release(ids)
        else:
            self._outbox.release(ids)
            delay = self.machine.failed(now, self._rand(), reachable=reply.reachable)
            log.info(
                "sync: %d record(s) not sent (%s); next try in %.1f s",
                len(ids),
                f"HTTP {reply.status}" if reply.status else "hub unreachable",
                delay,
            )
        self._changed()

    def _apply_results(
        self, entries: list[Entry], results: dict[str, dict[str, Any]], now: float
    ) -> None:
        acked: list[str] = []
        held: list[tuple[str, str]] = []
        retry: list[tuple[str, float]] = []
        for entry in entries:
            rid = entry.record_id
            result = results.get(rid, {})
            outcome = record_outcome(result.get("status"))
            if outcome is Outcome.ACK:
                acked.append(rid)
            elif outcome is Outcome.HOLD:
                held.append((rid, f"{result.get('status')}: {result.get('message', '')!s}"))
            else:
                delay = backoff_delay(entry.attempts + 1, self._rand(), self.machine.cfg)
                retry.append((rid, now + delay))
        self._outbox.mark_acked(acked, now)
        if held:
            log.warning("sync: the hub refused %d record(s) for good; kept as held", len(held))
            self._outbox.mark_held(held, now)
        if retry:
            self._outbox.mark_retry(retry, "hub could not store it yet")
        if acked:
            with self._acked:
                self._acked.notify_all()

    def _post(self, body: bytes) -> _Reply:
        headers = {"Content-Type": "application/json", "Accept-Encoding": "gzip"}
        if self._config.gzip:
            body = gzip.compress(body, compresslevel=6)
            headers["Content-Encoding"] = "gzip"
        try:
            resp = self._session.post(
                self._base + RECORDS_PATH,
                data=body,
                headers=headers,
                timeout=(self._config.connect_timeout_s, self._config.read_timeout_s),
            )
        except requests.RequestException as exc:
            log.info("sync: hub not reachable (%s)", type(exc).__name__)
            return _Reply(reachable=False)
        if resp.status_code != 200:
            return _Reply(reachable=True, status=resp.status_code)
        try:
            results = resp.json()["results"]
            by_id = {r["id"]: r for r in results if isinstance(r, dict) and "id" in r}
        except (ValueError, KeyError, TypeError):
            return _Reply(reachable=True, status=502)  # an answer we cannot read: retry later
        return _Reply(reachable=True, status=200, results=by_id)

    def _probe(self) -> bool:
        try:
            self._session.get(self._base + HEALTH_PATH, timeout=(1.0, 2.0))
        except requests.RequestException:
            return False
        return True

    def _refresh_questionnaire(self, now: float) -> None:
        """Keep the care team's questionnaire for this patient on the device, so the check-in
        works offline. Any failure keeps the copy we have."""
        self._last_questionnaire = now
        try:
            resp = self._session.get(self._base + QUESTIONNAIRE_PATH, timeout=(3.0, 10.0))
            if resp.status_code != 200:
                return
            questionnaire = Questionnaire.from_fhir(resp.json())
        except (requests.RequestException, ValueError):
            return
        self._outbox.set_meta(QUESTIONNAIRE_META, json.dumps(questionnaire.to_fhir()))

    def _changed(self) -> None:
        if self._on_change is not None:
            try:
                self._on_change()
            except Exception:
                log.exception("sync on_change callback failed")


def current_questionnaire(outbox: Outbox) -> Questionnaire:
    """The questionnaire the hub last assigned to this patient, else the default check-in."""
    raw = outbox.get_meta(QUESTIONNAIRE_META)
    if raw:
        with contextlib.suppress(ValueError):
            return Questionnaire.from_fhir(json.loads(raw))
    return default_checkin()


class KioskRecords:
    """The outbox and its sync worker as the kiosk uses them: save, wait for the hub, kick.

    `open_records()` makes one; `close()` stops the worker and closes the outbox. Blocking
    calls (all but `kick`) belong on a worker thread, not the event loop."""

    def __init__(self, outbox: Outbox, worker: SyncWorker, patient_id: str) -> None:
        self.outbox, self.worker, self.patient_id = outbox, worker, patient_id

    def save(self, records: list[Record]) -> None:
        self.outbox.add_many(records, now=time.time())
        self.worker.kick()

    def wait_sent(self, record_ids: list[str], timeout: float) -> bool:
        return self.worker.wait_acked(record_ids, timeout)

    def questionnaire(self) -> Questionnaire:
        return current_questionnaire(self.outbox)

    def kick(self) -> None:
        self.worker.kick()

    def close(self) -> None:
        self.worker.stop()
        self.outbox.close()


def open_records(data_dir: Path, hub_url: str, token: str, patient_id: str) -> KioskRecords:
    """Open `<data_dir>/outbox.db` (resuming entries left in flight) and start syncing.

    Settings: [outbox] / PORCHLIGHT_OUTBOX_* and [sync] / PORCHLIGHT_SYNC_*. A bad outbox
    file is moved aside inside Outbox.open, so this does not fail on one."""
    outbox_config = load_config(OutboxConfig, "outbox", path=Path(data_dir) / OUTBOX_FILE)
    outbox = Outbox.open(outbox_config, now=time.time(), resume=True)
    worker = SyncWorker(
        outbox,
        hub_url=hub_url,
        token=token,
        patient_id=patient_id,
        config=load_config(SyncConfig, "sync"),
    )
    worker.start()
    return KioskRecords(outbox, worker, patient_id)

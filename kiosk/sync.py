"""The sync worker: sends the outbox to the hub's inbox with `requests`, in its own thread.

The asyncio loop (Kivy, aiortc) is never blocked: `kick()` only sets an event. Decisions —
what to send, when to retry, when to probe — come from the pure `sync_policy`; this module
does the I/O and writes every outcome to the outbox before acting on the next one.

An entry is marked acknowledged only from the hub's per-record answer. A batch that timed out
may have been stored anyway; it is resent and the hub answers "duplicate", which also counts.

Stills (issue 10): their bytes go up first, in chunks (`PUT /api/device/stills/{id}` with
`Content-Range`), paced to the upload budget and chunk size (`upload_pacing`; during a call
the link's headroom, `still_pacing`), resuming from the offset the
hub confirmed; then the still's record goes in an ordinary batch, which commits it. Batches of
ordinary records always go before the next chunk, so a long upload never holds them up.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import json
import logging
import random
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import requests

from porchlight.config import load as load_config
from porchlight.errors import BadInput
from porchlight.kiosk.outbox import OUTBOX_FILE, Outbox, OutboxConfig, StillUpload, new_record_id
from porchlight.kiosk.questionnaire import Questionnaire, default_checkin
from porchlight.kiosk.records import Record, RecordKind, canonical_id, iso_utc
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
from porchlight.kiosk.upload_pacing import TokenBucket, upload_budget
from porchlight.protocol import DEVICE_STILLS_PATH, MAX_STILL_BYTES

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
    # Upload budget for stills' bytes in bit/s (0: unpaced). The kiosk sets it to the link's
    # headroom during a call (KioskRecords.set_upload_budget) so a still never starves the call.
    still_upload_bps: float = 0.0

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
        budget = self._config.still_upload_bps
        self._bucket = TokenBucket(upload_budget(budget) if budget > 0 else None)
        self._bucket_lock = threading.Lock()  # set_upload_budget comes from other threads
        # Stills whose offset was checked with the hub (GET) since this worker started: the
        # hub's word, not our file's, decides where an upload resumes after a restart.
        self._checked: set[str] = set()
        # Stills' bytes not yet on the hub, as of the last step (read from other threads).
        self.still_backlog_bytes = 0

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

    def set_upload_budget(self, bps: float | None, chunk_bytes: int | None = None) -> None:
        """Pace stills' bytes to `bps` bit/s from now on (None: unpaced; below 8 kbit/s, even
        0, counts as 8 kbit/s so a still keeps moving), in chunks of `chunk_bytes` (None: half
        a second of budget). Thread-safe."""
        rate = upload_budget(bps)
        with self._bucket_lock:
            self._bucket.set_rate(rate, time.monotonic(), chunk_bytes)
        self._wake.set()

    @property
    def upload_budget(self) -> float | None:
        with self._bucket_lock:
            return self._bucket.rate_bps

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
        self.still_backlog_bytes = self._outbox.still_backlog()
        action, wait = self.machine.decide(now, self._outbox.next_due_at())
        if action is Action.SEND:
            # Ordinary records (and stills whose bytes are all up) first; a still's next chunk
            # only when no batch is due, so a long upload never holds records back.
            if self._outbox.due_entries(now, 1):
                self._send_batch(now)
                return 0.0
            return self._upload_step(now)
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
        if retry:
            # A still the hub could not commit: its bytes were missing, or did not match and
            # were dropped. Ask the hub where to resume (GET) before the record goes again.
            self._checked.difference_update(self._outbox.forget_uploaded(r for r, _ in retry))
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

    # --- stills: bytes up first --------------------------------------------------------

    def _upload_step(self, now: float) -> float:
        """Send the next chunk of the oldest due still, if the budget allows; return how long
        to wait before the next step."""
        upload = self._outbox.next_upload(now)
        if upload is None:
            return self._config.probe_interval_s  # nothing due after all (a race): look again
        if upload.record_id not in self._checked:
            return self._check_upload(upload, now)
        with self._bucket_lock:  # the bucket runs on the monotonic clock: pacing, not dates
            n = min(self._bucket.chunk, upload.size - upload.uploaded)
            wait = self._bucket.wait_s(n, time.monotonic())
            if wait > 0:
                return wait
            self._bucket.take(n, time.monotonic())
        start = upload.uploaded
        chunk = self._outbox.still_chunk(upload.record_id, start, n)
        headers = {
            "Content-Type": "application/octet-stream",
            "Content-Range": f"bytes {start}-{start + len(chunk) - 1}/{upload.size}",
        }
        try:
            resp = self._session.put(
                self._still_url(upload.record_id),
                data=chunk,
                headers=headers,
                timeout=(self._config.connect_timeout_s, self._config.read_timeout_s),
            )
        except requests.RequestException as exc:
            return self._upload_unreachable(exc)
        return self._upload_answer(upload, resp, self._clock())

    def _check_upload(self, upload: StillUpload, now: float) -> float:
        """Ask the hub how much of this still it has (after a restart, or an `error`)."""
        try:
            resp = self._session.get(
                self._still_url(upload.record_id),
                timeout=(self._config.connect_timeout_s, self._config.read_timeout_s),
            )
        except requests.RequestException as exc:
            return self._upload_unreachable(exc)
        now = self._clock()
        if resp.status_code != 200:
            return self._upload_failed(upload, f"HTTP {resp.status_code} to GET", now)
        progress = _progress(resp)
        if progress is None:
            return self._upload_failed(upload, "unreadable answer to GET", now)
        received, size = progress
        if size not in (None, upload.size) or received > upload.size:
            self._hold_still(upload, "the hub holds a different still under this id", now)
            return 0.0
        self._outbox.set_uploaded(upload.record_id, received)
        self._checked.add(upload.record_id)
        self.machine.sent(now)
        return 0.0

    def _upload_answer(self, upload: StillUpload, resp: requests.Response, now: float) -> float:
        status = resp.status_code
        if status in (200, 409):  # 409: the hub has another offset; resume from its own
            progress = _progress(resp)
            if progress is None:
                self._checked.discard(upload.record_id)
                return self._upload_failed(upload, f"unreadable answer to PUT ({status})", now)
            self._outbox.set_uploaded(upload.record_id, progress[0])
            self.machine.sent(now)
            if progress[0] >= upload.size:
                self._changed()  # the record can go in the next batch
            return 0.0
        if status == 413:
            self._hold_still(upload, "the still is larger than the hub accepts (413)", now)
            return 0.0
        if status == 400:
            self._hold_still(upload, "the hub refused the still's bytes (400)", now)
            return 0.0
        return self._upload_failed(upload, f"HTTP {status} to PUT", now)

    def _upload_unreachable(self, exc: Exception) -> float:
        """Nothing got through: the same link-level backoff and probing as a failed batch."""
        now = self._clock()
        delay = self.machine.failed(now, self._rand(), reachable=False)
        log.info("sync: still upload: hub not reachable (%s); next try in %.1f s",
                 type(exc).__name__, delay)  # fmt: skip
        return 0.0

    def _upload_failed(self, upload: StillUpload, why: str, now: float) -> float:
        """The hub answered but did not take the chunk: this still alone backs off (a hub
        without the stills endpoints must not hold back ordinary records)."""
        delay = backoff_delay(upload.attempts + 1, self._rand(), self.machine.cfg)
        self._outbox.retry_upload(upload.record_id, now + delay, f"still upload: {why}")
        log.info("sync: still upload failed (%s); that still retries in %.1f s", why, delay)
        return 0.0

    def _hold_still(self, upload: StillUpload, why: str, now: float) -> None:
        log.warning("sync: still held: %s", why)
        self._outbox.mark_held([(upload.record_id, why)], now)
        self._checked.discard(upload.record_id)
        self._changed()

    def _still_url(self, record_id: str) -> str:
        return f"{self._base}{DEVICE_STILLS_PATH}/{record_id}"

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


def _progress(resp: requests.Response) -> tuple[int, int | None] | None:
    """`{"received", "size"}` from the hub's stills endpoints, or None if unreadable."""
    try:
        body = resp.json()
        received, size = body["received"], body["size"]
    except (ValueError, KeyError, TypeError):
        return None
    if type(received) is not int or received < 0:
        return None
    if size is not None and (type(size) is not int or size < 0):
        return None
    return received, size


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

    def add_still(
        self, jpeg: bytes, *, call_id: str | None, width: int, height: int, now: datetime
    ) -> str:
        """Keep a still (a JPEG taken in a call) in the outbox — record and bytes in one
        transaction — and have it sent; returns its record id (the `still_id`). BadInput if
        it is not a JPEG, is empty or too large, or its fields are wrong."""
        record = still_record(
            jpeg,
            call_id=call_id,
            width=width,
            height=height,
            record_id=new_record_id(),
            patient_id=self.patient_id,
            now=now,
        )
        self.outbox.add_still(record, bytes(jpeg), now=now.timestamp())
        self.worker.kick()
        return record.id

    def set_upload_budget(self, bps: float | None, chunk_bytes: int | None = None) -> None:
        """Pace stills' bytes to `bps` bit/s (None: unpaced) in chunks of `chunk_bytes` (None:
        half a second of budget); during a call the link's headroom (kiosk/still_pacing.py),
        None after it. Below 8 kbit/s (even 0) counts as 8 kbit/s so a still always arrives.
        ValueError for a negative or non-number, or a chunk outside 1-32 KiB. Cheap,
        thread-safe."""
        self.worker.set_upload_budget(bps, chunk_bytes)

    @property
    def still_backlog_bytes(self) -> int:
        """Stills' bytes not yet on the hub, as the sync worker last saw. Cheap, thread-safe."""
        return self.worker.still_backlog_bytes

    def wait_sent(self, record_ids: list[str], timeout: float) -> bool:
        return self.worker.wait_acked(record_ids, timeout)

    def questionnaire(self) -> Questionnaire:
        return current_questionnaire(self.outbox)

    def kick(self) -> None:
        self.worker.kick()

    def close(self) -> None:
        self.worker.stop()
        self.outbox.close()


JPEG_MAGIC = b"\xff\xd8\xff"


def still_record(
    jpeg: bytes,
    *,
    call_id: str | None,
    width: int,
    height: int,
    record_id: str,
    patient_id: str,
    now: datetime,
) -> Record:
    """The `still` record that describes these JPEG bytes (size, SHA-256), validated."""
    if not isinstance(jpeg, bytes | bytearray | memoryview):
        raise BadInput("a still must be the JPEG's bytes")
    data = bytes(jpeg)
    if not data.startswith(JPEG_MAGIC):
        raise BadInput("a still must be a JPEG (it does not start with FF D8 FF)")
    if len(data) > MAX_STILL_BYTES:
        raise BadInput(
            f"a still may be at most {MAX_STILL_BYTES} bytes (this one is {len(data)}); "
            "encode it at a lower JPEG quality"
        )
    body = {
        "call_id": call_id,
        "width": width,
        "height": height,
        "content_type": "image/jpeg",
        "size": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
    }
    record = Record(canonical_id(record_id), patient_id, RecordKind.STILL, iso_utc(now), body)
    return Record.from_wire(record.to_wire())


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

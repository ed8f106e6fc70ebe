"""The sync worker sends a still in the chunks the kiosk's pacing asks for (kiosk/still_pacing.py:
small ones on a slow link during a call), follows a new size mid-upload, and goes back to big
unpaced chunks after the call. Against the real hub on 127.0.0.1; every PUT's body is seen
through a response hook on the worker's own requests session."""

from __future__ import annotations

import hashlib
import threading
import time
from datetime import UTC, datetime

import requests
from outbox import conftest as outbox_fixtures

from porchlight.kiosk.outbox import Outbox, OutboxConfig
from porchlight.kiosk.sync import KioskRecords, SyncConfig, SyncWorker
from porchlight.kiosk.upload_pacing import MAX_CHUNK
from porchlight.protocol import DEVICE_STILLS_PATH

from .conftest import jpeg

hub_database = outbox_fixtures.hub_database
hub = outbox_fixtures.hub

FAST = {"backoff_base_s": 0.2, "backoff_cap_s": 2.0, "probe_interval_s": 0.2}


class PutSizes:
    """Body sizes of the still PUTs the worker's session made, in order."""

    def __init__(self) -> None:
        self.sizes: list[int] = []
        self.changed = threading.Condition()

    def hook(self, response: requests.Response, *args, **kwargs) -> None:
        request = response.request
        if request.method == "PUT" and DEVICE_STILLS_PATH in (request.url or ""):
            with self.changed:
                self.sizes.append(len(request.body or b""))
                self.changed.notify_all()

    def wait_for(self, count: int, timeout: float) -> list[int]:
        with self.changed:
            ok = self.changed.wait_for(lambda: len(self.sizes) >= count, timeout)
            assert ok, f"only {len(self.sizes)} of {count} chunks went within {timeout} s"
            return list(self.sizes)


def open_kiosk(tmp_path, hub, puts: PutSizes) -> KioskRecords:
    box = Outbox.open(OutboxConfig(path=tmp_path / "outbox.db"), now=time.time(), resume=True)
    session = requests.Session()
    session.hooks["response"].append(puts.hook)
    worker = SyncWorker(
        box,
        hub_url=hub.url,
        token=hub.token,
        patient_id=hub.patient_id,
        config=SyncConfig(**FAST),
        session=session,
    )
    worker.start()
    return KioskRecords(box, worker, hub.patient_id)


def test_chunks_follow_the_pacing_and_grow_again_after_the_call(hub, tmp_path):
    puts = PutSizes()
    kiosk = open_kiosk(tmp_path, hub, puts)
    data = jpeg(1280, 720, seed=7)  # ~450 kB
    try:
        # A slow link in a call: 1.1 kB chunks (a rural line's share), at a high budget so
        # the test does not wait on the pacing itself.
        kiosk.set_upload_budget(2_000_000, chunk_bytes=1100)
        still_id = kiosk.add_still(
            data, call_id="call-x", width=1280, height=720, now=datetime.now(UTC)
        )
        small = puts.wait_for(5, 30)
        assert all(n <= 1100 for n in small)
        # The link got better: the next chunks are the new size.
        kiosk.set_upload_budget(2_000_000, chunk_bytes=8000)
        # (one chunk of the old size may have been on its way)
        seen = len(puts.sizes) + 1
        later = puts.wait_for(seen + 3, 30)[seen:]
        assert all(1100 < n <= 8000 for n in later), later
        # The call ended: unpaced, the biggest chunks.
        kiosk.set_upload_budget(None)
        assert kiosk.wait_sent([still_id], timeout=60)
        assert max(puts.sizes) == MAX_CHUNK
    finally:
        kiosk.close()
    answer = hub.person().get(f"{hub.url}/api/stills/{still_id}", timeout=10)
    assert answer.status_code == 200
    assert hashlib.sha256(answer.content).hexdigest() == hashlib.sha256(data).hexdigest()

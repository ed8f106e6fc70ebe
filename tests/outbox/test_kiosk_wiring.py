"""The kiosk core opens the outbox and its sync worker, and kicks the worker the moment its
WebSocket to the hub is back: records go out at once, not after the worker's own backoff."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime

from porchlight.device.config import DeviceConfig
from porchlight.hub.seed import DEMO_DEVICE_ID
from porchlight.kiosk.config import KioskConfig
from porchlight.kiosk.core import KioskCore
from porchlight.kiosk.credential import DeviceCredential, save_credential
from porchlight.kiosk.hub_link import LinkTimings
from porchlight.kiosk.outbox import new_record_id
from porchlight.kiosk.records import vitals_record


async def until(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)  # polling a condition, bounded by the deadline


async def test_core_syncs_records_and_kicks_on_reconnect(hub, proxy, tmp_path, monkeypatch):
    # The worker alone would wait ten minutes after a failure and never probe: only the
    # core's kick on reconnect can make the record go out quickly.
    for name, value in (("PROBE_INTERVAL_S", "600"), ("BACKOFF_BASE_S", "600")):
        monkeypatch.setenv(f"PORCHLIGHT_SYNC_{name}", value)
    monkeypatch.setenv("PORCHLIGHT_SYNC_BACKOFF_CAP_S", "600")
    data = tmp_path / "kiosk"
    save_credential(data, DeviceCredential(proxy.url, DEMO_DEVICE_ID, hub.patient_id, hub.token))
    config = KioskConfig(
        data_dir=data,
        device=DeviceConfig(simulate=True, speaker="sim", speech=False),
    )
    core = KioskCore(config, link_timings=LinkTimings(backoff_first_s=0.1, backoff_cap_s=0.3))
    await core.start()
    try:
        assert core.records is not None and core.records.outbox.durable
        assert core.records.outbox.path == data / "outbox.db"
        await until(lambda: core.status()["hub_connected"], 10, "the hub link")

        proxy.cut("refuse")
        await until(lambda: not core.status()["hub_connected"], 30, "the link to drop")
        rec = vitals_record(
            {"spo2": 97, "pulse": 70},
            record_id=new_record_id(),
            patient_id=hub.patient_id,
            now=datetime.now(UTC),
        )
        await asyncio.to_thread(core.records.save, [rec])
        assert not await asyncio.to_thread(core.records.wait_sent, [rec.id], 1.0)

        proxy.restore()
        await until(lambda: core.status()["hub_connected"], 10, "the link to come back")
        back = time.monotonic()
        assert await asyncio.to_thread(core.records.wait_sent, [rec.id], 5.0)
        assert time.monotonic() - back <= 2.0
    finally:
        await core.stop()
    assert core.records is None

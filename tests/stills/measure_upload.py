"""Measure a still's upload through the outbox at a budget: time, and bytes on the wire.

    python tests/stills/measure_upload.py 75000     # bit/s (a quarter of 300 kbit/s)
    python tests/stills/measure_upload.py 0         # unpaced

A real hub on 127.0.0.1 behind bench/netlab.py's counting TcpProxy; the kiosk's outbox and
sync worker in this process; a 640×480 noise JPEG (~150 kB)."""

from __future__ import annotations

import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from outbox.conftest import load_bench, start_hub

from stills.conftest import jpeg
from stills.test_sync_stills import open_kiosk


def main(budget: float) -> None:
    tmp = Path(tempfile.mkdtemp())
    hub = start_hub(tmp / "hub")
    try:
        with load_bench("netlab").TcpProxy(hub.server.port) as proxy:
            kiosk = open_kiosk(tmp / "outbox.db", proxy.url, hub.token, hub.patient_id)
            kiosk.set_upload_budget(budget if budget > 0 else None)
            data = jpeg(640, 480, seed=9)
            started = time.monotonic()
            still_id = kiosk.add_still(
                data, call_id=None, width=640, height=480, now=datetime.now(UTC)
            )
            if not kiosk.wait_sent([still_id], 600):
                raise SystemExit("the still did not arrive within 10 minutes")
            took = time.monotonic() - started
            kiosk.close()
            print(
                f"budget {'unpaced' if budget <= 0 else f'{budget:.0f} bit/s'}, still "
                f"{len(data)} B: {took:.1f} s; on the wire {proxy.bytes_up} B "
                f"({proxy.bytes_up / len(data):.2f}x the still), "
                f"{proxy.bytes_up * 8 / took / 1000:.1f} kbit/s"
            )
    finally:
        hub.server.stop()


if __name__ == "__main__":
    main(float(sys.argv[1]) if len(sys.argv) > 1 else 75_000.0)

"""Enqueue latency: validate a vitals record and commit it with its outbox entry (one
transaction, WAL, synchronous=FULL — an fsync per record), as the check-in screen does.

    python bench/outbox_enqueue.py [--n 2000] [--dir /var/tmp]

Prints p50/p99/max in ms. Target: p99 ≤ 10 ms. Run it on the storage the kiosk really uses
(an SD card is much slower to fsync than a laptop SSD)."""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from porchlight.kiosk.outbox import Outbox, OutboxConfig, new_record_id
from porchlight.kiosk.records import vitals_record


def _quantiles(samples: list[float]) -> tuple[float, float]:
    q = statistics.quantiles(samples, n=100)
    return q[49], q[98]


def fsync_baseline(n: int, folder: Path) -> dict[str, float]:
    """The floor: append ~300 bytes and fsync, n times. synchronous=FULL costs one of these
    per record, so the enqueue cannot be faster than this disk."""
    path = folder / "fsync-probe"
    fd = os.open(path, os.O_CREAT | os.O_WRONLY | os.O_APPEND, 0o600)
    samples = []
    try:
        for _ in range(n):
            started = time.perf_counter()
            os.write(fd, b"x" * 300)
            os.fsync(fd)
            samples.append((time.perf_counter() - started) * 1000)
    finally:
        os.close(fd)
        path.unlink()
    p50, p99 = _quantiles(samples)
    return {"fsync_p50_ms": p50, "fsync_p99_ms": p99}


def run(n: int, folder: Path) -> dict[str, float]:
    box = Outbox.open(OutboxConfig(path=folder / "outbox.db"), now=time.time())
    assert box._db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    samples = []
    for i in range(n):
        started = time.perf_counter()
        rec = vitals_record(
            {"spo2": 90 + i % 10, "pulse": 60 + i % 50, "temperature": 36.5},
            record_id=new_record_id(),
            patient_id="bench-patient",
            now=datetime.now(UTC),
            confirmed=True,  # some values are unusual on purpose: flagged, as after a check
        )
        box.add(rec, now=time.time())
        samples.append((time.perf_counter() - started) * 1000)
    box.close()
    p50, p99 = _quantiles(samples)
    return {"n": n, "p50_ms": p50, "p99_ms": p99, "max_ms": max(samples)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--dir", type=Path, default=None, help="folder for the outbox file")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        result = run(args.n, Path(tmp))
        result.update(fsync_baseline(args.n, Path(tmp)))
    print(
        f"enqueue (validate + 1 transaction, synchronous=FULL), n={result['n']}: "
        f"p50 {result['p50_ms']:.2f} ms, p99 {result['p99_ms']:.2f} ms, "
        f"max {result['max_ms']:.2f} ms (target p99 <= 10 ms)"
    )
    print(
        f"this disk's floor, one 300-byte append + fsync: p50 {result['fsync_p50_ms']:.2f} ms, "
        f"p99 {result['fsync_p99_ms']:.2f} ms"
    )
    print(json.dumps(result))


if __name__ == "__main__":
    main()

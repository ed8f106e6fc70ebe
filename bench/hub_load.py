"""Hub capacity: kiosks held with heartbeats, and sync ingest, on SQLite or PostgreSQL.

The hub runs as real `porchlight hub` processes (one or two, on 127.0.0.1; two share one
PostgreSQL). Simulated kiosks are lightweight clients in this process, no media:

- presence: each kiosk opens /ws/device with its own token, says hello, then pings every
  `--heartbeat-s` (the protocol's 10 s, random phase); heartbeat latency is ping → pong,
  sampled after every kiosk is connected. A share of kiosks join the waiting room, wait for
  `waiting`, and leave a few seconds later. Kiosks are spread over the instances.
- sync ingest: `--senders` kiosks post batches of `--batch` new vitals records to
  /api/records for `--sync-s` seconds; records/s counts records the hub answered "stored".

Every loop is bounded in count and time. Only 127.0.0.1 is used.

    python bench/hub_load.py --database postgresql --kiosks 2000
    python bench/hub_load.py --database postgresql --instances 2 --kiosks 2000
    python bench/hub_load.py --database sqlite --kiosks 2000

Targets (issue 9, one hub process with PostgreSQL on 2 cores): ≥ 2,000 kiosks held with p99
heartbeat latency < 100 ms; sync ingest ≥ 1,000 records/s.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import random
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import httpx
import websockets
from sqlalchemy import insert

from porchlight.hub.db import devices, patients
from porchlight.hub.pg_cluster import TemporaryPostgres
from porchlight.hub.store import Store
from porchlight.kiosk.records import vitals_record
from porchlight.protocol import DEVICE_WS_PATH

START_TIMEOUT_S = 60.0


def quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Kiosk:
    patient_id: str
    token: str


def make_kiosks(database_url: str, count: int) -> list[Kiosk]:
    """`count` patients, each with one kiosk credential, inserted in bulk."""
    store = Store.open(database_url)
    now = datetime.now(UTC)
    kiosks = [Kiosk(str(uuid.uuid4()), secrets.token_urlsafe(32)) for _ in range(count)]
    with store.engine.begin() as conn:
        conn.execute(
            insert(patients),
            [
                {"id": k.patient_id, "display_name": f"Load {i}", "created": now}
                for i, k in enumerate(kiosks)
            ],
        )
        conn.execute(
            insert(devices),
            [
                {
                    "id": str(uuid.uuid4()),
                    "patient_id": k.patient_id,
                    "token_sha256": hashlib.sha256(k.token.encode()).hexdigest(),
                    "created": now,
                }
                for k in kiosks
            ],
        )
    store.close()
    return kiosks


class Hubs:
    """`porchlight hub` subprocesses sharing one database."""

    def __init__(self, database_url: str, count: int, folder: Path) -> None:
        self.processes: list[subprocess.Popen[bytes]] = []
        self.urls: list[str] = []
        for i in range(count):
            port = free_port()
            env = {
                **os.environ,
                "PORCHLIGHT_HUB_DATABASE_URL": database_url,
                "PORCHLIGHT_HUB_HOST": "127.0.0.1",
                "PORCHLIGHT_HUB_PORT": str(port),
                "PORCHLIGHT_HUB_DATA_DIR": str(folder / f"hub{i}"),
            }
            log = (folder / f"hub{i}.log").open("wb")
            self.processes.append(
                subprocess.Popen(
                    [sys.executable, "-c", "from porchlight.cli import main; main()", "hub"],
                    env=env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            )
            self.urls.append(f"http://127.0.0.1:{port}")
        deadline = time.monotonic() + START_TIMEOUT_S
        with httpx.Client(timeout=1) as client:
            for url, process in zip(self.urls, self.processes, strict=True):
                while True:
                    if process.poll() is not None or time.monotonic() > deadline:
                        raise RuntimeError(f"hub at {url} did not start; see {folder}")
                    try:
                        if client.get(url + "/readyz").status_code == 200:
                            break
                    except httpx.TransportError:
                        pass
                    time.sleep(0.1)

    def stop(self) -> None:
        for process in self.processes:
            process.send_signal(signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()


@dataclass
class PresenceResult:
    connected: int = 0
    failed: int = 0
    dropped: int = 0
    latencies: list[float] = field(default_factory=list)
    joins: list[float] = field(default_factory=list)


async def run_kiosk(
    url: str,
    kiosk: Kiosk,
    result: PresenceResult,
    *,
    measuring: asyncio.Event,
    stop_at: float,
    heartbeat_s: float,
    join: bool,
    rng: random.Random,
) -> None:
    ws_url = "ws" + url[len("http") :] + DEVICE_WS_PATH
    try:
        ws = await websockets.connect(
            ws_url,
            additional_headers={"Authorization": f"Bearer {kiosk.token}"},
            ping_interval=None,  # our own heartbeats, measured
            open_timeout=30,
            close_timeout=2,
        )
    except Exception:
        result.failed += 1
        return
    result.connected += 1
    try:
        await ws.send(json.dumps({"type": "hello", "state": "idle"}))
        await asyncio.wait_for(ws.recv(), 30)  # welcome
        await asyncio.sleep(rng.uniform(0, heartbeat_s))
        joined = False
        while time.monotonic() < stop_at:
            sent = time.perf_counter()
            waiter = await ws.ping()
            await asyncio.wait_for(waiter, 10)
            if measuring.is_set():
                result.latencies.append(time.perf_counter() - sent)
            if join and measuring.is_set() and not joined:
                joined = True
                started = time.perf_counter()
                await ws.send(json.dumps({"type": "join"}))
                while json.loads(await asyncio.wait_for(ws.recv(), 10))["type"] != "waiting":
                    pass
                result.joins.append(time.perf_counter() - started)
                await asyncio.sleep(2)
                await ws.send(json.dumps({"type": "leave"}))
            await asyncio.sleep(max(0.0, min(heartbeat_s, stop_at - time.monotonic())))
    except Exception:
        result.dropped += 1
    finally:
        await ws.close()


async def presence(
    urls: list[str],
    kiosks: list[Kiosk],
    *,
    ramp_per_s: float,
    hold_s: float,
    heartbeat_s: float,
    join_share: float,
) -> PresenceResult:
    result = PresenceResult()
    measuring = asyncio.Event()
    rng = random.Random(9)
    ramp_s = len(kiosks) / ramp_per_s
    stop_at = time.monotonic() + ramp_s + heartbeat_s + hold_s
    tasks = []
    for i, kiosk in enumerate(kiosks):
        tasks.append(
            asyncio.create_task(
                run_kiosk(
                    urls[i % len(urls)],
                    kiosk,
                    result,
                    measuring=measuring,
                    stop_at=stop_at,
                    heartbeat_s=heartbeat_s,
                    join=rng.random() < join_share,
                    rng=rng,
                )
            )
        )
        await asyncio.sleep(1 / ramp_per_s)
    # Every kiosk has connected and had time for its first heartbeat: measure from here.
    await asyncio.sleep(heartbeat_s)
    measuring.set()
    await asyncio.wait(tasks, timeout=hold_s + 60)
    return result


def _batch(patient_id: str, size: int, rng: random.Random) -> list[dict]:
    now = datetime.now(UTC)
    return [
        vitals_record(
            {"spo2": rng.randint(92, 99), "pulse": rng.randint(55, 95)},
            record_id=str(uuid.uuid4()),
            patient_id=patient_id,
            now=now,
        ).to_wire()
        for _ in range(size)
    ]


async def ingest(
    urls: list[str], kiosks: list[Kiosk], *, senders: int, batch: int, seconds: float
) -> tuple[int, int, float, list[float]]:
    """(records stored, records refused, elapsed s, batch latencies)."""
    rng = random.Random(1)
    # Batches are made before the clock starts: the kiosk made them long before, too.
    per_sender = [
        [_batch(kiosks[s].patient_id, batch, rng) for _ in range(int(seconds * 20))]
        for s in range(senders)
    ]
    stored = refused = 0
    latencies: list[float] = []
    deadline = time.monotonic() + seconds

    async def sender(s: int) -> None:
        nonlocal stored, refused
        url = urls[s % len(urls)]
        headers = {"Authorization": f"Bearer {kiosks[s].token}"}
        async with httpx.AsyncClient(base_url=url, headers=headers, timeout=30) as client:
            for records in per_sender[s]:
                if time.monotonic() >= deadline:
                    return
                started = time.perf_counter()
                answer = await client.post("/api/records", json={"records": records})
                latencies.append(time.perf_counter() - started)
                results = answer.json()["results"]
                stored += sum(1 for r in results if r["status"] == "stored")
                refused += sum(1 for r in results if r["status"] != "stored")

    started = time.monotonic()
    await asyncio.gather(*(sender(s) for s in range(senders)))
    return stored, refused, time.monotonic() - started, latencies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", choices=["sqlite", "postgresql"], default="postgresql")
    parser.add_argument("--instances", type=int, default=1)
    parser.add_argument("--kiosks", type=int, default=2000)
    parser.add_argument("--ramp-per-s", type=float, default=200.0)
    parser.add_argument("--hold-s", type=float, default=30.0)
    parser.add_argument("--heartbeat-s", type=float, default=10.0)
    parser.add_argument("--join-share", type=float, default=0.05)
    parser.add_argument("--senders", type=int, default=4)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--sync-s", type=float, default=15.0)
    parser.add_argument("--skip-presence", action="store_true")
    parser.add_argument("--skip-sync", action="store_true")
    args = parser.parse_args()
    if args.database == "sqlite" and args.instances != 1:
        parser.error("several instances need PostgreSQL")
    try:
        import uvloop

        uvloop.install()  # the simulated kiosks share this process's one core
    except ImportError:
        pass

    with tempfile.TemporaryDirectory(prefix="porchlight-load-") as tmp:
        folder = Path(tmp)
        pg = (
            TemporaryPostgres(max_connections=300).start()
            if args.database == "postgresql"
            else None
        )
        try:
            url = pg.url("hub") if pg else f"sqlite:///{folder / 'hub.db'}"
            kiosks = make_kiosks(url, max(args.kiosks, args.senders))
            hubs = Hubs(url, args.instances, folder)
            try:
                print(
                    f"hub_load: {args.database}, {args.instances} instance(s), 2 cores shared "
                    "with PostgreSQL and the load generator"
                )
                if not args.skip_presence:
                    result = asyncio.run(
                        presence(
                            hubs.urls,
                            kiosks[: args.kiosks],
                            ramp_per_s=args.ramp_per_s,
                            hold_s=args.hold_s,
                            heartbeat_s=args.heartbeat_s,
                            join_share=args.join_share,
                        )
                    )
                    lat = [x * 1000 for x in result.latencies]
                    print(
                        f"presence: {result.connected}/{args.kiosks} kiosks connected, "
                        f"{result.failed} failed to connect, {result.dropped} dropped; "
                        f"{len(lat)} heartbeats: median {statistics.median(lat):.1f} ms, "
                        f"p99 {quantile(lat, 0.99):.1f} ms, max {max(lat):.1f} ms"
                        if lat
                        else f"presence: {result.connected} connected, no heartbeats measured"
                    )
                    if result.joins:
                        joins = [x * 1000 for x in result.joins]
                        print(
                            f"  joins: {len(joins)}, join → waiting median "
                            f"{statistics.median(joins):.1f} ms, p99 {quantile(joins, 0.99):.1f} ms"
                        )
                if not args.skip_sync:
                    stored, refused, elapsed, batch_latency = asyncio.run(
                        ingest(
                            hubs.urls,
                            kiosks,
                            senders=args.senders,
                            batch=args.batch,
                            seconds=args.sync_s,
                        )
                    )
                    print(
                        f"sync ingest: {stored / elapsed:.0f} records/s stored "
                        f"({stored} in {elapsed:.1f} s, {refused} not stored), batches of "
                        f"{args.batch} from {args.senders} kiosks: median "
                        f"{statistics.median(batch_latency) * 1000:.0f} ms, p99 "
                        f"{quantile(batch_latency, 0.99) * 1000:.0f} ms"
                    )
            finally:
                hubs.stop()
        finally:
            if pg is not None:
                pg.stop()
    print("targets: ≥ 2,000 kiosks with p99 heartbeat < 100 ms; ≥ 1,000 records/s")


if __name__ == "__main__":
    main()

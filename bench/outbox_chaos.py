"""Chaos run: a kiosk process (writer + sync worker) SIGKILLed at random points, again and
again, while the hub is restarted (sometimes SIGKILLed too) and the link is cut in between.
At the end, every record the writer was told was saved must be on the hub exactly once, with
the content the kiosk made.

    python bench/outbox_chaos.py --kills 1000          # the benchmark
    python bench/outbox_chaos.py --kills 200 --json    # what CI runs (tests/outbox/test_chaos.py)

Pieces (all on 127.0.0.1):
- the hub: `python bench/outbox_chaos.py hub ...` in its own process, on a fixed port;
- a TcpProxy (bench/netlab.py) in front of it, which cuts the link (reset or black hole);
- the kiosk: a forkserver child that opens the outbox (resuming in-flight entries), runs the
  SyncWorker, and writes records; after each commit it appends the record id to a log — that
  line is "acknowledged to the writer". The parent SIGKILLs it after a random 20-500 ms.

Counted: lost = acknowledged ids missing on the hub; duplicated = hub rows beyond one per id,
plus ids the hub saw with other content (conflicts), plus hub rows the kiosk never made.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import multiprocessing
import os
import random
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from netlab import TcpProxy  # noqa: E402

PRELOAD = ["porchlight.kiosk.sync", "porchlight.kiosk.outbox", "porchlight.kiosk.records"]


# --- the hub process ----------------------------------------------------------------------


def hub_main(data_dir: Path, port: int, host: str = "127.0.0.1") -> None:
    """Run a hub until SIGTERM; seed it on first start (seed.json holds the device token)."""
    from porchlight import atomic
    from porchlight.hub.config import HubConfig
    from porchlight.hub.seed import seed_demo
    from porchlight.hub.server import HubServer

    server = HubServer(HubConfig(data_dir=data_dir, host=host), port=port).start()
    seed_file = data_dir / "seed.json"
    if not seed_file.exists():
        demo = seed_demo(server.store)
        atomic.write_json(seed_file, {"patient_id": demo.patient_id, "token": demo.device_token})
    print("ready", flush=True)
    signal.signal(signal.SIGTERM, lambda *_: (server.stop(), os._exit(0)))
    while True:
        signal.pause()


# --- the kiosk process (forkserver child) -------------------------------------------------


def kiosk_main(
    outbox_path: str,
    hub_url: str,
    token: str,
    patient_id: str,
    log_path: str,
    seed: int,
    write: bool,
) -> None:
    from datetime import UTC, datetime

    from porchlight.kiosk.outbox import Outbox, OutboxConfig, new_record_id
    from porchlight.kiosk.records import vitals_record
    from porchlight.kiosk.sync import SyncConfig, SyncWorker

    box = Outbox.open(OutboxConfig(path=Path(outbox_path)), now=time.time(), resume=True)
    worker = SyncWorker(
        box,
        hub_url=hub_url,
        token=token,
        patient_id=patient_id,
        config=SyncConfig(
            batch_max_records=50,
            backoff_base_s=0.05,
            backoff_cap_s=0.5,
            probe_interval_s=0.1,
            connect_timeout_s=0.5,
            read_timeout_s=2.0,
        ),
    )
    worker.start()
    if not write:  # drain: run until nothing is left to send
        while box.status(time.time()).unsent:
            worker.kick()
            time.sleep(0.05)  # a bounded poll; the parent enforces the deadline
        worker.stop()
        os._exit(0)
    rng = random.Random(seed)
    log = os.open(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    while True:
        rec = vitals_record(
            {"spo2": rng.randint(93, 100), "pulse": rng.randint(55, 100)},
            record_id=new_record_id(),
            patient_id=patient_id,
            now=datetime.now(UTC),
        )
        box.add(rec, now=time.time())
        os.write(log, (rec.id + "\n").encode())  # acknowledged to the writer
        worker.kick()
        time.sleep(rng.uniform(0.0, 0.02))


# --- the conductor ------------------------------------------------------------------------


@dataclass
class ChaosResult:
    kills: int
    hub_restarts: int
    hub_sigkills: int
    link_cuts: int
    acknowledged: int
    made: int
    on_hub: int
    lost: int
    duplicated: int
    content_mismatches: int
    held: int
    seconds: float


class Hub:
    def __init__(self, data_dir: Path, port: int) -> None:
        self.data_dir, self.port = data_dir, port
        self.proc: subprocess.Popen[str] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, __file__, "hub", str(self.data_dir), str(self.port)],
            stdout=subprocess.PIPE,
            text=True,
        )
        line = self.proc.stdout.readline() if self.proc.stdout else ""
        if line.strip() != "ready":
            raise RuntimeError("the chaos hub did not start")

    def stop(self, hard: bool) -> None:
        if self.proc is None:
            return
        self.proc.send_signal(signal.SIGKILL if hard else signal.SIGTERM)
        self.proc.wait(timeout=20)
        self.proc = None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(kills: int, seed: int, workdir: Path, *, drain_timeout_s: float = 120.0) -> ChaosResult:
    rng = random.Random(seed)
    started = time.monotonic()
    hub_dir, kiosk_dir = workdir / "hub", workdir / "kiosk"
    hub_dir.mkdir(parents=True)
    kiosk_dir.mkdir(parents=True)
    hub = Hub(hub_dir, _free_port())
    hub.start()
    creds = json.loads((hub_dir / "seed.json").read_text())
    proxy = TcpProxy(hub.port)
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(PRELOAD)
    outbox_path, log_path = kiosk_dir / "outbox.db", kiosk_dir / "acknowledged.log"
    restarts = sigkills = cuts = 0
    hub_down_until = -1
    try:
        for k in range(kills):
            args = (str(outbox_path), proxy.url, creds["token"], creds["patient_id"],
                    str(log_path), rng.randrange(2**32), True)  # fmt: skip
            child = ctx.Process(target=kiosk_main, args=args)
            child.start()
            time.sleep(rng.uniform(0.02, 0.5))  # the random point at which it dies
            child.kill()  # SIGKILL
            child.join()
            if k == hub_down_until:
                hub.start()
            if k % 25 == 12:  # the hub dies now and comes back after the next kill
                hard = restarts % 2 == 0  # every other restart is a SIGKILL
                hub.stop(hard=hard)
                restarts += 1
                sigkills += hard
                hub_down_until = k + 1
            if k % 7 == 3:
                proxy.cut(rng.choice(["refuse", "blackhole"]))
                cuts += 1
            elif k % 7 == 5:
                proxy.restore()
        if hub.proc is None:
            hub.start()
        proxy.restore()
        args = (str(outbox_path), proxy.url, creds["token"], creds["patient_id"],
                str(log_path), 0, False)  # fmt: skip
        drain = ctx.Process(target=kiosk_main, args=args)
        drain.start()
        drain.join(drain_timeout_s)
        if drain.is_alive():
            drain.kill()
            drain.join()
    finally:
        proxy.close()
        hub.stop(hard=False)
    return _count(
        kills, restarts, sigkills, cuts, outbox_path, log_path, hub_dir / "hub.db", creds,
        time.monotonic() - started,
    )  # fmt: skip


def _count(
    kills: int,
    restarts: int,
    sigkills: int,
    cuts: int,
    outbox_path: Path,
    log_path: Path,
    hub_db: Path,
    creds: dict[str, str],
    seconds: float,
) -> ChaosResult:
    lines = log_path.read_text().split("\n") if log_path.exists() else []
    acknowledged = {line for line in lines[:-1] if len(line) == 36}
    kiosk = sqlite3.connect(outbox_path)
    made = {
        rid: hashlib.sha256(content.encode()).hexdigest()
        for rid, content in kiosk.execute("SELECT id, content FROM records")
    }
    held = kiosk.execute("SELECT COUNT(*) FROM outbox WHERE status='held'").fetchone()[0]
    kiosk.close()
    hub = sqlite3.connect(hub_db)
    rows = hub.execute(
        "SELECT id, content_sha256 FROM records WHERE patient_id=? AND kind='vitals'",
        [creds["patient_id"]],
    ).fetchall()
    conflicts = hub.execute("SELECT COUNT(*) FROM record_conflicts").fetchone()[0]
    hub.close()
    on_hub = {rid: digest for rid, digest in rows}
    phantom = sum(1 for rid in on_hub if rid not in made)
    return ChaosResult(
        kills=kills,
        hub_restarts=restarts,
        hub_sigkills=sigkills,
        link_cuts=cuts,
        acknowledged=len(acknowledged),
        made=len(made),
        on_hub=len(on_hub),
        lost=len(acknowledged - on_hub.keys()),
        duplicated=(len(rows) - len(on_hub)) + conflicts + phantom,
        content_mismatches=sum(1 for rid, d in on_hub.items() if rid in made and made[rid] != d),
        held=held,
        seconds=round(seconds, 1),
    )


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "hub":
        hub_main(Path(sys.argv[2]), int(sys.argv[3]), *sys.argv[4:5])
        return
    ap = argparse.ArgumentParser(description="SIGKILL chaos run of the kiosk outbox and sync.")
    ap.add_argument("--kills", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--json", action="store_true", help="print only the JSON result")
    args = ap.parse_args()
    seed = args.seed if args.seed is not None else random.randrange(2**32)
    with tempfile.TemporaryDirectory(prefix="porchlight-chaos-") as tmp:
        result = run(args.kills, seed, Path(tmp))
    if args.json:
        print(json.dumps({**asdict(result), "seed": seed}))
        return
    print(
        f"chaos (seed {seed}): {result.kills} SIGKILLs of the kiosk, {result.hub_restarts} hub "
        f"restarts ({result.hub_sigkills} by SIGKILL), {result.link_cuts} link cuts, "
        f"{result.seconds} s"
    )
    print(
        f"records: {result.acknowledged} acknowledged to the writer, {result.made} in the "
        f"outbox, {result.on_hub} on the hub; lost {result.lost}, duplicated "
        f"{result.duplicated}, content mismatches {result.content_mismatches}, held {result.held}"
    )


if __name__ == "__main__":
    main()

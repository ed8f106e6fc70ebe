"""Time to drain 10,000 queued records to the hub, and bytes on the wire per record.

    python bench/outbox_drain.py                 # clean link (127.0.0.1, through a counting proxy)
    python bench/outbox_drain.py --rate 1mbit    # network lab: namespaces + veth + tbf (root)
    python bench/outbox_drain.py --rate 1mbit --loss 0.01

The hub runs in its own process (bench/outbox_chaos.py's hub), the kiosk's SyncWorker in
another, with an outbox filled beforehand. The clock runs from the worker's start until the
outbox holds nothing unsent. Bytes per record: TCP payload both ways (clean link, counted by
the proxy) or bytes through the kiosk's veth, headers included (network lab).
Target: 10,000 records in ≤ 30 s at 1 Mbit/s.
"""

from __future__ import annotations

import argparse
import json
import socket
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from netlab import NetLab, TcpProxy  # noqa: E402


def worker_main(outbox_path: str, hub_url: str, token: str, patient_id: str) -> None:
    from porchlight.kiosk.outbox import Outbox, OutboxConfig
    from porchlight.kiosk.sync import SyncConfig, SyncWorker

    box = Outbox.open(OutboxConfig(path=Path(outbox_path)), now=time.time(), resume=True)
    ids = [r[0] for r in box._db.execute("SELECT record_id FROM outbox WHERE status='pending'")]
    worker = SyncWorker(box, hub_url=hub_url, token=token, patient_id=patient_id,
                        config=SyncConfig(read_timeout_s=60))  # fmt: skip
    started = time.monotonic()
    worker.start()
    ok = worker.wait_acked(ids, timeout=600)
    seconds = time.monotonic() - started
    worker.stop()
    print(json.dumps({"ok": ok, "records": len(ids), "seconds": seconds}), flush=True)


def fill(outbox_path: Path, patient_id: str, n: int) -> None:
    from porchlight.kiosk.outbox import Outbox, OutboxConfig, new_record_id
    from porchlight.kiosk.records import vitals_record

    box = Outbox.open(OutboxConfig(path=outbox_path), now=time.time())
    recs = [
        vitals_record(
            {"spo2": 94 + i % 6, "pulse": 60 + i % 40, "temperature": 36.5},
            record_id=new_record_id(),
            patient_id=patient_id,
            now=datetime.now(UTC),
        )
        for i in range(n)
    ]
    box.add_many(recs, now=time.time())
    box.close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start_hub(prefix: list[str], data_dir: Path, port: int, host: str) -> subprocess.Popen:
    proc = subprocess.Popen(
        [
            *prefix,
            sys.executable,
            str(HERE / "outbox_chaos.py"),
            "hub",
            str(data_dir),
            str(port),
            host,
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    if proc.stdout is None or proc.stdout.readline().strip() != "ready":
        proc.kill()
        raise RuntimeError("the hub did not start")
    return proc


def _run_worker(prefix: list[str], outbox: Path, url: str, creds: dict) -> dict:
    out = subprocess.run(
        [*prefix, sys.executable, __file__, "worker", str(outbox), url, creds["token"],
         creds["patient_id"]],
        capture_output=True, text=True, timeout=900, check=True,
    )  # fmt: skip
    return json.loads(out.stdout.strip().splitlines()[-1])


def _veth_bytes(lab: NetLab) -> int:
    dev = f"{lab.name}k"
    total = 0
    for counter in ("tx_bytes", "rx_bytes"):
        stat = f"/sys/class/net/{dev}/statistics/{counter}"
        out = subprocess.run(
            lab.exec_args(lab.kiosk_ns, ["cat", stat]), capture_output=True, text=True, check=True
        )
        total += int(out.stdout)
    return total


def run(n: int, rate: str | None, loss: float) -> dict:
    with tempfile.TemporaryDirectory(prefix="porchlight-drain-") as tmp:
        work = Path(tmp)
        (work / "hub").mkdir()
        outbox = work / "kiosk" / "outbox.db"
        port = _free_port()
        if rate is None:
            hub = _start_hub([], work / "hub", port, "127.0.0.1")
            try:
                creds = json.loads((work / "hub" / "seed.json").read_text())
                fill(outbox, creds["patient_id"], n)
                with TcpProxy(port) as proxy:
                    result = _run_worker([], outbox, proxy.url, creds)
                    wire = proxy.bytes_up + proxy.bytes_down
                    result.update(bytes_up=proxy.bytes_up, bytes_down=proxy.bytes_down)
            finally:
                hub.terminate()
                hub.wait(20)
            result.update(link="clean (127.0.0.1)", wire_bytes=wire, counted="TCP payload")
        else:
            with NetLab(rate=rate, loss=loss) as lab:
                hub = _start_hub(lab.exec_args(lab.hub_ns, []), work / "hub", port, lab.hub_addr)
                try:
                    creds = json.loads((work / "hub" / "seed.json").read_text())
                    fill(outbox, creds["patient_id"], n)
                    before = _veth_bytes(lab)
                    url = f"http://{lab.hub_addr}:{port}"
                    result = _run_worker(lab.exec_args(lab.kiosk_ns, []), outbox, url, creds)
                    wire = _veth_bytes(lab) - before
                finally:
                    hub.terminate()
                    hub.wait(20)
            result.update(
                link=f"{rate} tbf" + (f", {loss:.1%} loss" if loss else ""),
                wire_bytes=wire,
                counted="veth bytes incl. headers",
            )
        result["bytes_per_record"] = result["wire_bytes"] / max(1, result["records"])
        return result


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "worker":
        worker_main(*sys.argv[2:6])
        return
    ap = argparse.ArgumentParser(description="Drain time and bytes per record for the outbox.")
    ap.add_argument("--n", type=int, default=10_000)
    ap.add_argument("--rate", default=None, help="e.g. 1mbit (network lab; needs root)")
    ap.add_argument("--loss", type=float, default=0.0, help="random loss 0-1 (network lab)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    result = run(args.n, args.rate, args.loss)
    if args.json:
        print(json.dumps(result))
        return
    print(
        f"drain {result['records']} records over {result['link']}: {result['seconds']:.1f} s "
        f"({'all acknowledged' if result['ok'] else 'NOT all acknowledged'}); "
        f"{result['bytes_per_record']:.0f} bytes/record on the wire ({result['counted']})"
    )


if __name__ == "__main__":
    main()

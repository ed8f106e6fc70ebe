"""The join-time link probe, alone, across the network lab, many times: how far do its
estimates spread on one link? (issue 4: one rural call in nine started from 965 kbit/s.)

Two roles in the lab's namespaces: `hub` runs the real hub on the lab address (seeded with
the demo kiosk) and notes when each probe message reached it (the moment it acknowledges);
`kiosk` connects as the real kiosk does (kiosk/hub_link.py) and runs the real probe
(kiosk/link_probe.py) `--runs` times, each after the link has been idle a while (as a kiosk
is before the patient presses the button), noting when each message was queued and each
ack arrived and how many TCP segments the kiosk retransmitted. Both clocks are
CLOCK_MONOTONIC of one machine, so the three timelines line up.

Printed: every probe's estimate and the rung the call would start on, then the spread
(min, median, max) and the share of probes whose start rung does not fit the link. With
`--json FILE` every timeline is kept (tests/video/probe_traces/ holds some, replayed by
tests/video/test_link_probe.py).

    sudo flock /tmp/porchlight-lab.lock python bench/link_probe.py [--runs 20]
        [--profile rural | --rate 2500 --delay-ms 25] [--json out.json] [--show 3]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import netlab  # noqa: E402

HUB_PORT = 8766
IDLE_S = 3.0  # between probes: longer than TCP's RTO, so each starts from an idle cwnd


def retransmitted_segments() -> int:
    """TCP segments this network namespace has retransmitted (its /proc/net/snmp)."""
    lines = Path("/proc/net/snmp").read_text().splitlines()
    heads, values = (line.split() for line in lines if line.startswith("Tcp:"))
    return int(values[heads.index("RetransSegs")])


async def hub_role(args: argparse.Namespace) -> None:
    from porchlight.hub import messages
    from porchlight.hub.config import HubConfig
    from porchlight.hub.seed import seed_demo
    from porchlight.hub.server import HubServer

    arrivals: list[tuple[float, int]] = []
    ack = messages.probe_ack

    def noted_ack(seq: int) -> dict[str, Any]:  # the hub answers a probe the moment it reads it
        arrivals.append((time.monotonic(), seq))
        return ack(seq)

    messages.probe_ack = noted_ack  # bench instrumentation only: the hub's code is unchanged
    data = Path(args.data)
    server = HubServer(HubConfig(host=args.addr, data_dir=data / "hub"), port=HUB_PORT)
    await asyncio.to_thread(server.start)
    seed = seed_demo(server.store)
    (data / "seed.json").write_text(json.dumps(seed.device_credential(server.url)))
    print("ready", flush=True)
    await asyncio.to_thread(sys.stdin.readline)  # the orchestrator says when
    Path(args.out).write_text(json.dumps(arrivals))
    await asyncio.to_thread(server.stop)


async def kiosk_role(args: argparse.Namespace) -> None:
    from porchlight.kiosk.hub_link import HubLink, LinkUp
    from porchlight.kiosk.link_probe import LinkProbe

    seed = json.loads((Path(args.data) / "seed.json").read_text())
    up = asyncio.Event()
    probe: LinkProbe | None = None
    acks: list[tuple[float, int]] = []

    def on_event(event: Any) -> None:
        if isinstance(event, LinkUp):
            up.set()
            return
        message = getattr(event, "message", None)
        if message and message.get("type") == "probe_ack" and probe is not None:
            acks.append((time.monotonic(), message["seq"]))
            probe.on_ack(message["seq"])

    link = HubLink(
        seed["hub_url"], seed["token"], hello=lambda: {"type": "hello", "state": "idle"},
        on_event=on_event,
    )  # fmt: skip
    await link.start()
    await asyncio.wait_for(up.wait(), 30)
    runs = []
    for _ in range(args.runs):
        await asyncio.sleep(IDLE_S)
        sends: list[tuple[float, int]] = []

        def send(message: dict[str, Any], sends: list[tuple[float, int]] = sends) -> bool:
            sends.append((time.monotonic(), message["seq"]))
            return link.send(message)

        acks = []
        retrans = retransmitted_segments()
        probe = LinkProbe(send)
        started = time.monotonic()
        estimate = await probe.run()
        # Let what is still in flight arrive, so the next probe starts on an idle link.
        deadline = time.monotonic() + 20
        while len(acks) < len(sends) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        runs.append(
            {
                "started": started,
                "duration_s": probe.duration_s,
                "estimate_bps": estimate,
                "sends": sends,
                "acks": acks,
                "retransmitted": retransmitted_segments() - retrans,
            }
        )
        print(json.dumps({"run": len(runs), "estimate_bps": estimate}), flush=True)
    await link.stop()
    Path(args.out).write_text(json.dumps(runs))


def start_rung(bps: float | None) -> str:
    from porchlight.kiosk.ladder import Ladder

    return Ladder(start_bps=bps).rung.name


def fits(rung: str, link_bps: float) -> bool:
    """Would the call's start rung (video + audio + retransmission room) fit the link?"""
    from porchlight.kiosk.ladder import Ladder

    ladder = Ladder(start_bps=link_bps)
    return ladder.rungs.index(ladder.rung) <= [r.name for r in ladder.rungs].index(rung)


def role_argv(lab: netlab.NetLab, ns: str, *argv: str) -> list[str]:
    return lab.exec_args(ns, [sys.executable, str(Path(__file__).resolve()), *argv])


def orchestrate(args: argparse.Namespace) -> None:
    profile = netlab.PROFILES[args.profile]
    if args.rate:  # a steady link of this rate instead (the lab call test's 2.5 Mbit/s, say)
        profile = netlab.Profile(
            f"{args.rate}kbit", ((0, args.rate),), delay_ms=args.delay_ms, loss=0.0, seconds=60
        )
    link_bps = profile.steps[0][1] * 1000 * 0.973  # tbf measured 292 kbit/s at 300kbit
    work = Path(tempfile.mkdtemp(prefix="probe-bench-"))
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    print(f"load before: {Path('/proc/loadavg').read_text().split()[:3]}", flush=True)
    with profile.lab() as lab, (work / "hub.log").open("w") as hub_log:
        hub = subprocess.Popen(
            role_argv(lab, lab.hub_ns, "hub", "--addr", lab.hub_addr, "--data", str(work),
                      "--out", str(work / "hub.json")),
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=hub_log, text=True, env=env,
        )  # fmt: skip
        try:
            assert hub.stdout is not None and hub.stdin is not None
            if hub.stdout.readline().strip() != "ready":
                raise RuntimeError(f"the hub role did not start; see {work / 'hub.log'}")
            with (work / "kiosk.log").open("w") as kiosk_log:
                subprocess.run(
                    role_argv(lab, lab.kiosk_ns, "kiosk", "--addr", lab.kiosk_addr, "--data",
                              str(work), "--out", str(work / "kiosk.json"), "--runs",
                              str(args.runs)),
                    check=True, stderr=kiosk_log, env=env, timeout=60 + args.runs * 30,
                )  # fmt: skip
            hub.stdin.write("stop\n")
            hub.stdin.flush()
            hub.wait(timeout=30)
        finally:
            if hub.poll() is None:
                hub.kill()
                hub.wait()
    print(f"load after: {Path('/proc/loadavg').read_text().split()[:3]}", flush=True)
    runs = json.loads((work / "kiosk.json").read_text())
    arrivals = json.loads((work / "hub.json").read_text())
    for run in runs:
        t0, t1 = run["started"], run["started"] + 60
        run["arrivals"] = [(t, s) for t, s in arrivals if t0 <= t < t1 and s < 100_000_000]
        run["arrivals"] = run["arrivals"][: len(run["sends"])]
    report(runs, link_bps, args.show)
    if args.json:
        Path(args.json).write_text(json.dumps({"profile": args.profile, "runs": runs}))
        print(f"timelines: {args.json}")


def report(runs: list[dict[str, Any]], link_bps: float, show: int) -> None:
    estimates = [r["estimate_bps"] for r in runs]
    misfits = 0
    for i, run in enumerate(runs, 1):
        bps = run["estimate_bps"]
        rung = start_rung(bps)
        ok = fits(rung, link_bps)
        misfits += not ok
        text = "none" if bps is None else f"{bps / 1000:6.0f} kbit/s"
        print(
            f"probe {i:2d}: {text}  start {rung:8s}{'' if ok else ' (does not fit)'}  "
            f"acks {len(run['acks']):2d}/{len(run['sends']):2d}  "
            f"tcp retransmits {run['retransmitted']}"
        )
    # The timelines of the first few (or the ones that went wrong): sent, at hub, acked.
    shown = [r for r in runs if not fits(start_rung(r["estimate_bps"]), link_bps)][:show]
    shown += [r for r in runs if r not in shown][: max(0, show - len(shown))]
    for run in shown:
        t0 = run["started"]
        at_hub = dict((s, t) for t, s in run["arrivals"])
        acked = dict((s, t) for t, s in run["acks"])
        print(f"-- probe from {t0:.3f}: estimate {run['estimate_bps']}")
        for t, seq in run["sends"]:
            hub_t = at_hub.get(seq)
            ack_t = acked.get(seq)
            print(
                f"   seq {seq:2d} queued {t - t0:6.3f}  at hub "
                f"{'   -  ' if hub_t is None else f'{hub_t - t0:6.3f}'}  acked "
                f"{'   -  ' if ack_t is None else f'{ack_t - t0:6.3f}'}"
            )
    known = [e for e in estimates if e is not None]
    if known:
        print(
            f"estimates (kbit/s), {len(known)} of {len(runs)}: min {min(known) / 1000:.0f}, "
            f"median {statistics.median(known) / 1000:.0f}, max {max(known) / 1000:.0f}; "
            f"start rung does not fit the {link_bps / 1000:.0f} kbit/s link in {misfits} of "
            f"{len(runs)}"
        )


def main() -> None:
    logging.basicConfig(level=logging.WARNING)
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("role", nargs="?", choices=["hub", "kiosk"])
    parser.add_argument("--addr")
    parser.add_argument("--data")
    parser.add_argument("--out")
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--profile", default="rural", choices=sorted(netlab.PROFILES))
    parser.add_argument("--rate", type=int, help="kbit/s: a steady lossless link instead")
    parser.add_argument("--delay-ms", type=int, default=25, help="one way, with --rate")
    parser.add_argument("--json")
    parser.add_argument("--show", type=int, default=3, help="print this many timelines")
    args = parser.parse_args()
    if args.role == "hub":
        asyncio.run(hub_role(args))
    elif args.role == "kiosk":
        asyncio.run(kiosk_role(args))
    else:
        with contextlib.suppress(KeyboardInterrupt):
            orchestrate(args)


if __name__ == "__main__":
    main()

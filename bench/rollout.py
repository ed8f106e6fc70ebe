"""Benchmark: a full staged rollout to N simulated devices against one hub process.

    python bench/rollout.py                       # 200 devices, 1 MB release
    python bench/rollout.py --devices 50 --json   # smaller, machine-readable

The hub runs as its own process (`porchlight hub`), serving the TUF repository from its data
folder; the devices are real update agents (`porchlight.provisioning.fleet_sim`), each with
its own folder tree, trusted metadata and credential, checking in rounds, `--workers` at a
time (a fleet's timers overlap). Two canaries, then 10 %, 50 %, 100 % of the fleet.

Measured:
- time: from starting the rollout until the hub reports it done (every device installed and
  reported healthy), and how many check rounds that took;
- bytes served: TUF metadata and release files the devices received (counted as they read
  them), in total and per device;
- hub CPU: user + system CPU seconds of the hub process during the rollout (from /proc), and
  as a share of one core over the rollout's wall time;
- heartbeats: after the rollout, every device sends `--heartbeat-rounds` plain heartbeats
  (the agent's service sends one a minute, which carries "check now" from support): the hub's
  CPU per heartbeat, and how many devices one core carries at one heartbeat a minute.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import requests

from porchlight.hub import auth
from porchlight.hub.seed import DEMO_PASSWORD, ensure_person
from porchlight.hub.store import Role, Store
from porchlight.provisioning.fleet_sim import build_device, run_round
from porchlight.provisioning.release import build_release
from porchlight.provisioning.repository import Repository, RepositoryConfig, init_repository
from porchlight.provisioning.sim_release import build_sim_wheel, sim_requirement


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = int(fields[11]) + int(fields[12])  # utime, stime
    return ticks / os.sysconf("SC_CLK_TCK")


def _wait_healthy(url: str, proc: subprocess.Popen[bytes], timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit("the hub exited while starting")
        try:
            if requests.get(url + "/healthz", timeout=1).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.1)  # poll with a deadline
    raise SystemExit("the hub did not start")


def run(
    devices: int, workers: int, release_kb: int, work: Path, heartbeat_rounds: int = 3
) -> dict[str, object]:
    now = datetime.now(UTC)
    hub_dir = work / "hub"
    repo_cfg = RepositoryConfig(
        path=hub_dir / "releases", keys_dir=work / "keys", root_keys_dir=work / "root-keys"
    )
    root = init_repository(repo_cfg, now=now)
    files = {}
    for version, padding in (("1.0.0", 0), ("2.0.0", release_kb * 1024)):
        wheel = build_sim_wheel(version, "healthy", work / "wheels" / version, padding=padding)
        files[version] = build_release(
            version, [wheel], work / "out", requirement=sim_requirement(version), now=now
        )
    repo = Repository.open(repo_cfg)
    repo.add_release(files["2.0.0"], "2.0.0")
    repo.publish(now=now)

    store = Store.open(f"sqlite:///{hub_dir / 'hub.db'}")
    ensure_person(store, "support", "Support", Role.SUPPORT, DEMO_PASSWORD)
    tokens = {}
    for index in range(devices):
        patient = store.add_patient(f"Bench patient {index}", now=now)
        tokens[f"bench-{index:04d}"] = token = auth.new_token()
        store.add_device(
            patient.id, auth.hash_token(token), now=now, device_id=f"bench-{index:04d}"
        )
    store.close()

    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    hub = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "porchlight.cli",
            "hub",
            "--data-dir",
            str(hub_dir),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_healthy(url, hub)
        fleet = [
            build_device(
                work / "devices" / device_id,
                device_id=device_id,
                token=token,
                hub_url=url,
                bootstrap_root=root,
                first_release=files["1.0.0"],
                first_version="1.0.0",
            )
            for device_id, token in sorted(tokens.items())
        ]
        run_round(fleet, workers)  # first heartbeats: the hub learns the fleet's version
        support = requests.Session()
        support.post(
            url + "/api/login", json={"username": "support", "password": DEMO_PASSWORD}
        ).raise_for_status()
        received_before = sum(d.bytes_received for d in fleet)
        cpu_before = _cpu_seconds(hub.pid)
        started = time.monotonic()
        support.post(
            url + "/api/fleet/rollouts",
            json={"version": "2.0.0", "canaries": sorted(tokens)[:2], "stages": [10, 50, 100]},
        ).raise_for_status()
        rounds, status = 0, "running"
        while status == "running" and rounds < 50:
            run_round(fleet, workers)
            rounds += 1
            status = support.get(url + "/api/fleet/rollouts").json()["rollouts"][0]["status"]
        seconds = time.monotonic() - started
        cpu = _cpu_seconds(hub.pid) - cpu_before
        served = sum(d.bytes_received for d in fleet) - received_before
        on_new = sum(1 for d in fleet if d.version == "2.0.0")
        unreachable = sum(1 for d in fleet for r in d.results if r.outcome == "unreachable")
        # Steady state: the rollout is done, each beat is one heartbeat with nothing to do.
        beat_cpu_before, beat_started = _cpu_seconds(hub.pid), time.monotonic()
        for _ in range(heartbeat_rounds):
            run_round(fleet, workers)
        beat_seconds = time.monotonic() - beat_started
        beat_cpu = _cpu_seconds(hub.pid) - beat_cpu_before
        beats = heartbeat_rounds * devices
    finally:
        hub.terminate()
        hub.wait(timeout=15)
    return {
        "devices": devices,
        "workers": workers,
        "release_bytes": files["2.0.0"].stat().st_size,
        "status": status,
        "devices_on_new_version": on_new,
        "rounds": rounds,
        "checks_that_could_not_reach_the_hub": unreachable,
        "seconds": round(seconds, 2),
        "bytes_served": served,
        "bytes_per_device": round(served / devices),
        "hub_cpu_seconds": round(cpu, 2),
        "hub_cpu_share_of_one_core": round(cpu / seconds, 3) if seconds else None,
        "heartbeats": beats,
        "heartbeats_per_second": round(beats / beat_seconds, 1) if beat_seconds else None,
        "hub_cpu_ms_per_heartbeat": round(1000 * beat_cpu / beats, 2) if beats else None,
        "devices_per_core_at_one_heartbeat_a_minute": (
            round(60 * beats / beat_cpu) if beat_cpu else None
        ),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--devices", type=int, default=200)
    parser.add_argument("--workers", type=int, default=8, help="devices checking at once")
    parser.add_argument("--release-kb", type=int, default=1024, help="size of the new release")
    parser.add_argument(
        "--heartbeat-rounds", type=int, default=3, help="plain heartbeats per device afterwards"
    )
    parser.add_argument("--json", action="store_true", help="print one JSON line only")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="porchlight-rollout-") as folder:
        result = run(
            args.devices, args.workers, args.release_kb, Path(folder), args.heartbeat_rounds
        )
    if args.json:
        print(json.dumps(result))
        return
    print(
        f"rollout to {result['devices']} devices ({result['workers']} checking at once), "
        f"release {result['release_bytes'] / 1e6:.2f} MB"
    )
    print(
        f"  status: {result['status']}, {result['devices_on_new_version']} on the new version, "
        f"{result['rounds']} check rounds, "
        f"{result['checks_that_could_not_reach_the_hub']} checks could not reach the hub"
    )
    print(f"  time: {result['seconds']} s")
    print(
        f"  bytes served: {result['bytes_served'] / 1e6:.1f} MB "
        f"({result['bytes_per_device'] / 1e3:.0f} kB per device)"
    )
    print(
        f"  hub CPU: {result['hub_cpu_seconds']} s "
        f"({result['hub_cpu_share_of_one_core']:.0%} of one core)"
    )
    print(
        f"  heartbeats afterwards: {result['heartbeats']} at "
        f"{result['heartbeats_per_second']}/s, hub CPU {result['hub_cpu_ms_per_heartbeat']} ms "
        f"each: one core carries {result['devices_per_core_at_one_heartbeat_a_minute']} "
        "devices at one heartbeat a minute"
    )


if __name__ == "__main__":
    main()

"""Join time on loopback: press → patient in the waiting room; admit → first decoded frame.

Real parts throughout: the hub (uvicorn, SQLite), a KioskCore with the simulated button,
test-pattern camera and tone, and a real aiortc clinician peer. Times are measured with one
monotonic clock in one process, from the button edge to the moment the clinician's WebSocket
delivers the waiting-room update, and from the admit message to the first decoded video frame
on each side.

    python bench/join_time.py [--joins 20]

Targets (issue 2): ≤ 1 s median and ≤ 2 s p90 on loopback.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

from porchlight.clinician_peer import ClinicianPeer
from porchlight.device.config import DeviceConfig
from porchlight.hub.config import load_config
from porchlight.hub.seed import seed_demo
from porchlight.hub.server import HubServer
from porchlight.kiosk.config import KioskConfig
from porchlight.kiosk.core import KioskCore
from porchlight.kiosk.credential import DeviceCredential


def quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def wait_until(predicate, timeout: float, what: str, step: float = 0.005):
    deadline = time.monotonic() + timeout
    while not (value := predicate()):
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        await asyncio.sleep(step)
    return value


async def run(joins: int, data: Path) -> dict[str, list[float]]:
    hub = HubServer(load_config(data_dir=data / "hub"), port=0).start()
    try:
        seed = seed_demo(hub.store)
        credential = DeviceCredential(hub.url, seed.device_id, seed.patient_id, seed.device_token)
        config = KioskConfig(
            data_dir=data / "kiosk",
            ice_host_addresses=["127.0.0.1"],
            ending_s=0.0,
            device=DeviceConfig(simulate=True, speech=False),
        )
        config.data_dir.mkdir(parents=True)
        core = KioskCore(config, credential=credential)
        await core.start()
        results: dict[str, list[float]] = {
            "press_to_waiting_room": [],
            "admit_to_first_frame_clinician": [],
            "admit_to_first_frame_kiosk": [],
        }
        async with ClinicianPeer(hub.url, seed.username, seed.password) as clinician:
            await wait_until(lambda: core.status()["state"] == "idle", 30, "kiosk idle")
            for _ in range(joins):
                pressed = time.monotonic()
                core.button_down()
                core.button_up()
                await clinician.wait_for(lambda: seed.patient_id in clinician.waiting_seen_at, 10)
                results["press_to_waiting_room"].append(
                    clinician.waiting_seen_at[seed.patient_id] - pressed
                )
                await wait_until(lambda: core.status()["state"] == "waiting", 10, "waiting")
                call = await clinician.admit(seed.patient_id)
                # Counters are per call: only this call's id with frames counts.
                await wait_until(
                    lambda c=call: (
                        c.call_id
                        and (s := core.status())["call_id"] == c.call_id
                        and s.get("frames_received", 0) > 0
                    ),
                    20,
                    "kiosk frame",
                )
                kiosk_frame = time.monotonic()
                await clinician.wait_for(lambda c=call: c.first_video_frame_at is not None, 20)
                results["admit_to_first_frame_clinician"].append(
                    call.first_video_frame_at - call.admitted_at
                )
                results["admit_to_first_frame_kiosk"].append(kiosk_frame - call.admitted_at)
                await clinician.hang_up()
                await wait_until(lambda: core.status()["state"] == "idle", 20, "kiosk idle")
                await clinician.wait_for(
                    lambda: seed.patient_id not in clinician.waiting_seen_at, 10
                )
        await core.stop()
        return results
    finally:
        hub.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--joins", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="porchlight-bench-") as tmp:
        results = asyncio.run(run(args.joins, Path(tmp)))
    print(f"join time over {args.joins} joins on loopback (seconds)")
    print(f"{'measure':34} {'median':>8} {'p90':>8} {'max':>8}")
    for name, values in results.items():
        print(
            f"{name:34} {statistics.median(values):8.3f} {quantile(values, 0.9):8.3f}"
            f" {max(values):8.3f}"
        )
    print("targets: median ≤ 1.000 s, p90 ≤ 2.000 s")


if __name__ == "__main__":
    main()

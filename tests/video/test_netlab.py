"""bench/netlab.py's call features on real namespaces: delay each way, outage, rate change,
offered-byte counters. Needs root (CI runs as root)."""

from __future__ import annotations

import json
import subprocess
import sys

from .lab import load_netlab

ECHO = """
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind((sys.argv[1], 9999))
print("ready", flush=True)
while True:
    data, peer = s.recvfrom(4096); s.sendto(data, peer)
"""
PING = """
import json, socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(0.5)
rtts = []
for i in range(int(sys.argv[2])):
    t = time.monotonic(); s.sendto(b"x" * 200, (sys.argv[1], 9999))
    try:
        s.recvfrom(4096); rtts.append(time.monotonic() - t)
    except TimeoutError:
        rtts.append(None)
print(json.dumps(rtts))
"""


def pings(lab, count: int) -> list[float | None]:
    out = subprocess.run(
        lab.exec_args(lab.kiosk_ns, [sys.executable, "-c", PING, lab.hub_addr, str(count)]),
        check=True, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    return json.loads(out.stdout)


def test_delay_outage_rate_and_counters() -> None:
    netlab = load_netlab()
    with netlab.NetLab(rate="1mbit", delay_ms=40) as lab:
        echo = subprocess.Popen(
            lab.exec_args(lab.hub_ns, [sys.executable, "-c", ECHO, lab.hub_addr]),
            stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        try:
            assert echo.stdout is not None and echo.stdout.readline().strip() == "ready"
            rtts = pings(lab, 5)
            assert all(r is not None and 0.075 < r < 0.2 for r in rtts), rtts  # 2 × 40 ms
            before = lab.offered_bytes("kiosk")
            assert before >= 5 * 200

            lab.outage(True)
            assert pings(lab, 2) == [None, None]
            lab.outage(False)
            assert all(r is not None for r in pings(lab, 2))

            lab.set_rate("300kbit")
            shown = subprocess.run(
                lab.exec_args(lab.kiosk_ns, ["tc", "qdisc", "show", "dev", f"{lab.name}k"]),
                check=True, capture_output=True, text=True,
            ).stdout  # fmt: skip
            assert "rate 300Kbit" in shown
            assert lab.offered_bytes("kiosk") > before
        finally:
            echo.kill()
            echo.wait()
    gone = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert lab.kiosk_ns not in gone and lab.hub_ns not in gone


def test_profiles_are_the_ones_the_benchmarks_use() -> None:
    netlab = load_netlab()
    p1 = netlab.PROFILES["p1"]
    assert [p1.rate_at(t) for t in (0, 39.9, 40, 60, 80, 99)] == [1000, 1000, 2500, 600, 1000, 1000]
    assert p1.delay_ms == 50 and p1.seconds == 100
    rural = netlab.PROFILES["rural"]
    assert (rural.rate_at(30), rural.delay_ms, rural.loss) == (300, 100, 0.02)

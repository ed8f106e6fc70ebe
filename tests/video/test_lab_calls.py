"""Whole calls across the network lab (namespaces, veth, tbf, NFQUEUE delay, iptables drops):
the real KioskCore in one namespace, the real hub and the clinician twin in the other.

- the link's rate steps down: the kiosk's rung drops and what it offers fits the link;
  the rate comes back: the rung climbs again;
- the link drops for 20 s: the call carries on by itself within 5 s of the link returning;
- the link drops for longer than the kiosk waits: both sides are told, the kiosk goes home
  saying "Call dropped — press the button to rejoin".

Needs root (CI runs as root), iproute2, iptables, and netfilterqueue for the delay.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from porchlight.kiosk.ladder import DEFAULT_RUNGS, Ladder

from .lab import load_bench

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]

RUNGS = {r.name: r for r in DEFAULT_RUNGS}


def wire_kbps(rung_name: str) -> float:
    rung = RUNGS.get(rung_name)
    return 0.0 if rung is None else Ladder().wire_bps(rung) / 1000


def offered_kbps(lab, seconds: float) -> float:
    before, t = lab.offered_bytes("kiosk"), time.monotonic()
    time.sleep(seconds)  # a measuring window, not synchronisation
    return (lab.offered_bytes("kiosk") - before) * 8 / (time.monotonic() - t) / 1000


def test_rate_steps_down_and_back_up(tmp_path: Path) -> None:
    video_lab = load_bench("video_lab")
    netlab = load_bench("netlab")
    lab = netlab.NetLab(rate="2500kbit", delay_ms=25)
    with video_lab.CallLab(tmp_path, lab, kiosk_camera="640x360@30") as call:
        status = call.join()
        assert status["link_estimate_bps"] > 1_500_000  # the probe saw a fast link
        start = call.wait_status(lambda s: s["rung"] == "360p30", 20, "the top rung")
        assert (start["sent_width"], start["sent_height"]) == (640, 360)

        lab.set_rate("300kbit")
        dropped_at = time.monotonic()
        fitted = call.wait_status(
            lambda s: s["rung"] and wire_kbps(s["rung"]) <= 300, 5, "a rung that fits 300 kbit/s"
        )
        assert time.monotonic() - dropped_at <= 5
        assert fitted["sent_height"] <= 270
        time.sleep(3)  # let the queue the old rate built drain, then measure what is offered
        assert offered_kbps(lab, 5) <= 330

        lab.set_rate("2500kbit")
        call.wait_status(
            lambda s: s["rung"] in ("360p20", "360p30") and s["sent_height"] == 360,
            45,
            "the rung to climb back",
        )
    # The clinician kept seeing the patient throughout, at the sizes the kiosk chose.
    frames = call.reports["clinic"]["call"]["frames"]
    assert {(w, h) for _, w, h in frames} >= {(640, 360), (320, 180)} or len(frames) > 300


def test_short_outage_resumes_and_a_long_one_ends_plainly(tmp_path: Path) -> None:
    video_lab = load_bench("video_lab")
    netlab = load_bench("netlab")
    lab = netlab.NetLab(rate="2000kbit", delay_ms=25)
    with video_lab.CallLab(tmp_path, lab, kiosk_camera="320x180@15",
                           clinic_camera="320x180@15") as call:  # fmt: skip
        call.join()
        call.wait_status(lambda s: s["video_frames"] > 30, 20, "frames", clinic=True)

        # 20 s without a link: the call is still there when it returns, and resumes.
        lab.outage(True)
        time.sleep(20)  # the outage itself
        before = call.clinic_status()["video_frames"]
        lab.outage(False)
        back_at = time.monotonic()  # one monotonic clock for every process on this machine
        call.wait_status(
            lambda s: s["video_frames"] > before + 10, 10, "the patient's picture back", True
        )
        kiosk = call.wait_status(
            lambda s: s["show_video"] and s["frames_received"] > 0, 10, "the kiosk's picture"
        )
        assert kiosk["state"] == "in_call"
        assert call.clinic_status()["ended"] is None

        # Longer than the kiosk waits (40 s): both sides are told.
        lab.outage(True)
        went = time.monotonic()
        call.wait_status(lambda s: s["state"] in ("idle", "offline"), 50, "home")
        assert 38 <= time.monotonic() - went <= 48
        lab.outage(False)
        ended = call.wait_status(lambda s: s["ended"], 40, "the clinician told", clinic=True)
        assert ended["ended"] == "patient_lost"
        idle = call.wait_status(lambda s: s["state"] == "idle", 30, "the kiosk back online")
        assert idle["headline"].startswith("Call dropped")
    # From the clinician's frame log: the first frame of the patient after the short outage.
    frames = [t for t, _, _ in call.reports["clinic"]["call"]["frames"]]
    resumed_s = min(t for t in frames if t > back_at) - back_at
    print(f"picture back {resumed_s:.2f} s after the link")
    assert resumed_s <= 5.0

"""A still in a call: time from "take still" to the whole still shown, and what it costs the
live picture (issue 10).

A real call across the network lab (bench/video_lab.py CallLab: the real kiosk with a
1280x720 test-pattern camera, the real hub, the clinician twin). After the call settles the
clinician asks for a still as the clinic page does (`take_still`); the kiosk captures a
full-resolution JPEG into its outbox, the sync worker uploads it in chunks paced to a quarter
of the ladder's link estimate, then commits the record; the clinician gets `still_ready` and
fetches the JPEG whole (what the page shows). Reported per run:

- take → shown: asking to the JPEG fetched whole (its SHA-256 checked against what the
  kiosk announced size-wise and served intact);
- freeze in the clinician's live picture (sum of gaps over 500 ms between decoded frames)
  during the transfer, and in a window of the same length just before it (the baseline on
  the same link in the same run); the target is no freeze over 500 ms caused by the still.

Profiles: "clean" (no shaping) and "rural" (300 kbit/s, 2 % loss, 100 ms one way).

    sudo python bench/still_transfer.py [--runs 3] [--profiles clean,rural]
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import netlab  # noqa: E402
import video_lab  # noqa: E402

FREEZE_GAP_S = 0.5
SETTLE_S = 20.0  # the ladder finds its rung, the probe's first climbs are over
KIOSK_CAMERA = "1280x720@30"
CLINIC_CAMERA = "640x360@30"
PROFILES = {
    "clean": netlab.NetLab,
    "rural": netlab.PROFILES["rural"].lab,
}


def freeze(times: list[float], start: float, end: float) -> float:
    points = [start, *(t for t in times if start <= t <= end), end]
    return sum(b - a for a, b in itertools.pairwise(points) if b - a > FREEZE_GAP_S)


def longest_gap(times: list[float], start: float, end: float) -> float:
    points = [start, *(t for t in times if start <= t <= end), end]
    return max(b - a for a, b in itertools.pairwise(points))


def run_once(profile: str, work: Path) -> dict[str, Any]:
    lab = PROFILES[profile]()
    with video_lab.CallLab(
        work, lab, kiosk_camera=KIOSK_CAMERA, clinic_camera=CLINIC_CAMERA
    ) as call:
        call.join(timeout=120)
        time.sleep(SETTLE_S)  # the call runs on its own; this is how long we let it
        assert call.clinic is not None
        call.clinic.send("still")
        still = call.clinic.expect("still", 600)
        time.sleep(2.0)  # frames after the still, for the window's end
    frames = [t for t, _, _ in call.reports["clinic"]["call"]["frames"]]
    asked, shown = still["asked_at"], still["shown_at"]
    span = shown - asked
    return {
        "take_to_shown_s": span,
        "take_to_taken_s": still["taken_at"] - asked,
        "size": still["size"],
        "served_whole": still["served_bytes"] == still["size"],
        "resolution": f"{still['width']}x{still['height']}",
        "freeze_during_s": freeze(frames, asked, shown),
        "longest_gap_during_s": longest_gap(frames, asked, shown),
        "freeze_before_s": freeze(frames, asked - span, asked),
        "longest_gap_before_s": longest_gap(frames, asked - span, asked),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--profiles", default="clean,rural")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="porchlight-still-") as scratch:
        for profile in args.profiles.split(","):
            runs = []
            for n in range(args.runs):
                result = run_once(profile, Path(scratch) / f"{profile}-{n}")
                runs.append(result)
                print(
                    f"{profile} run {n + 1}: {result['resolution']} {result['size'] / 1000:.0f} kB "
                    f"whole={result['served_whole']} take→shown {result['take_to_shown_s']:.1f} s; "
                    f"live picture freeze during {result['freeze_during_s']:.2f} s "
                    f"(longest gap {result['longest_gap_during_s']:.2f} s), same span before "
                    f"{result['freeze_before_s']:.2f} s ({result['longest_gap_before_s']:.2f} s)",
                    flush=True,
                )

            def med(key: str, rs: list[dict[str, Any]] = runs) -> float:
                return statistics.median(r[key] for r in rs)

            print(
                f"{profile}: median of {len(runs)}: take→shown {med('take_to_shown_s'):.1f} s; "
                f"freeze during the transfer {med('freeze_during_s'):.2f} s "
                f"(longest gap {med('longest_gap_during_s'):.2f} s) vs before "
                f"{med('freeze_before_s'):.2f} s ({med('longest_gap_before_s'):.2f} s)",
                flush=True,
            )


if __name__ == "__main__":
    main()

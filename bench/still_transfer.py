"""A still in a call: time from "take still" to the whole still shown, and what it costs the
live picture (issue 10).

A real call across the network lab (bench/video_lab.py CallLab: the real kiosk with a
1280x720 test-pattern camera, the real hub, the clinician twin). After the call settles the
clinician asks for a still as the clinic page does (`take_still`); the kiosk captures a
full-resolution JPEG into its outbox, the sync worker uploads it in chunks paced to the link's
headroom (kiosk/still_pacing.py: the ladder's estimate minus what the call sends), then commits
the record; the clinician gets `still_ready` and
fetches the JPEG whole (what the page shows). Reported per run:

- take → shown: asking to the JPEG fetched whole (its SHA-256 checked against what the
  kiosk announced size-wise and served intact);
- freeze in the clinician's live picture (sum of gaps over 500 ms between decoded frames)
  during the transfer, and in a window of the same length just before it (the baseline on
  the same link in the same run, never reaching back into the call's first BASELINE_FROM_S);
  the target is no freeze over 500 ms caused by the still;
- the live picture's frame rate during the transfer and in that span before (a still that
  would take long makes room: the video runs a rung lower, kiosk/still_pacing.py);
- every gap over 500 ms during the transfer and in the whole settled call before it (from
  BASELINE_FROM_S after media flowed to the ask), so the summary can say how often the link
  itself freezes the picture with no still on it (gaps per minute, before vs during).

The machine's load (`/proc/loadavg`) is printed with every run: on a shared machine a figure
taken under load is noise.

Profiles: "clean" (no shaping) and "rural" (300 kbit/s, 2 % loss, 100 ms one way).

    sudo flock /tmp/porchlight-lab.lock python bench/still_transfer.py [--runs 5]
        [--profiles clean,rural] [--json out.json]
"""

from __future__ import annotations

import argparse
import itertools
import json
import shutil
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
SETTLE_S = 30.0  # the ladder finds its rung, the probe's first climbs are over
# The baseline never looks at the call's first seconds (the first keyframes, the first rung).
BASELINE_FROM_S = 8.0
KIOSK_CAMERA = "1280x720@30"
CLINIC_CAMERA = "640x360@30"
PROFILES = {
    "clean": netlab.NetLab,
    "rural": netlab.PROFILES["rural"].lab,
}


def freeze(times: list[float], start: float, end: float) -> float:
    points = [start, *(t for t in times if start <= t <= end), end]
    return sum(b - a for a, b in itertools.pairwise(points) if b - a > FREEZE_GAP_S)


def gaps(times: list[float], start: float, end: float) -> list[float]:
    """Every gap between decoded frames in [start, end] (the window's edges count as frames)."""
    points = [start, *(t for t in times if start <= t <= end), end]
    return [b - a for a, b in itertools.pairwise(points)]


def longest_gap(times: list[float], start: float, end: float) -> float:
    return max(gaps(times, start, end))


def freezes(times: list[float], start: float, end: float) -> list[float]:
    return [round(g, 2) for g in gaps(times, start, end) if g > FREEZE_GAP_S]


def fps(times: list[float], start: float, end: float) -> float:
    return sum(start <= t <= end for t in times) / (end - start) if end > start else 0.0


def load() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def run_once(profile: str, work: Path) -> dict[str, Any]:
    lab = PROFILES[profile]()
    with video_lab.CallLab(
        work, lab, kiosk_camera=KIOSK_CAMERA, clinic_camera=CLINIC_CAMERA
    ) as call:
        call.join(timeout=120)
        flowing = time.monotonic()
        time.sleep(SETTLE_S)  # the call runs on its own; this is how long we let it
        assert call.clinic is not None
        call.clinic.send("still")
        still = call.clinic.expect("still", 600)
        time.sleep(2.0)  # frames after the still, for the window's end
    frames = [t for t, _, _ in call.reports["clinic"]["call"]["frames"]]
    asked, shown = still["asked_at"], still["shown_at"]
    span = shown - asked
    settled = flowing + BASELINE_FROM_S
    before = max(settled, asked - span)
    return {
        "load": load(),
        "take_to_shown_s": span,
        "take_to_taken_s": still["taken_at"] - asked,
        "size": still["size"],
        "served_whole": still["served_bytes"] == still["size"],
        "resolution": f"{still['width']}x{still['height']}",
        "freeze_during_s": freeze(frames, asked, shown),
        "longest_gap_during_s": longest_gap(frames, asked, shown),
        "before_s": asked - before,
        "freeze_before_s": freeze(frames, before, asked),
        "longest_gap_before_s": longest_gap(frames, before, asked),
        "fps_during": fps(frames, asked, shown),
        "fps_before": fps(frames, before, asked),
        "freezes_during": freezes(frames, asked, shown),
        "settled_before_s": asked - settled,
        "freezes_settled_before": freezes(frames, settled, asked),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--profiles", default="clean,rural")
    parser.add_argument("--json", type=Path, help="write every run's figures here")
    args = parser.parse_args()
    every: dict[str, list[dict[str, Any]]] = {}
    with tempfile.TemporaryDirectory(prefix="porchlight-still-") as scratch:
        for profile in args.profiles.split(","):
            runs = every.setdefault(profile, [])
            for n in range(args.runs):
                work = Path(scratch) / f"{profile}-{n}"
                try:
                    result = run_once(profile, work)
                except (RuntimeError, AssertionError) as exc:
                    # A run that failed keeps its roles' logs (the scratch directory goes).
                    kept = Path(tempfile.mkdtemp(prefix=f"porchlight-still-failed-{profile}-"))
                    shutil.copytree(work, kept, dirs_exist_ok=True)
                    print(f"{profile} run {n + 1} FAILED: {exc}; logs in {kept}", flush=True)
                    continue
                runs.append(result)
                print(
                    f"{profile} run {n + 1} (load {result['load']}): {result['resolution']} "
                    f"{result['size'] / 1000:.0f} kB whole={result['served_whole']} "
                    f"take→shown {result['take_to_shown_s']:.1f} s; live picture "
                    f"{result['fps_during']:.1f} fps during, {result['fps_before']:.1f} before; "
                    "freeze during "
                    f"{result['freeze_during_s']:.2f} s (longest gap "
                    f"{result['longest_gap_during_s']:.2f} s), {result['before_s']:.0f} s before "
                    f"{result['freeze_before_s']:.2f} s ({result['longest_gap_before_s']:.2f} s); "
                    f"gaps > {FREEZE_GAP_S} s during {result['freezes_during']}, in the "
                    f"{result['settled_before_s']:.0f} s settled before "
                    f"{result['freezes_settled_before']}",
                    flush=True,
                )
            if runs:
                summarise(profile, runs)
    if args.json:
        args.json.write_text(json.dumps(every, indent=1))


def summarise(profile: str, runs: list[dict[str, Any]]) -> None:
    def med(key: str) -> float:
        return statistics.median(r[key] for r in runs)

    def per_minute(gaps_key: str, seconds_key: str) -> str:
        count = sum(len(r[gaps_key]) for r in runs)
        seconds = sum(r[seconds_key] for r in runs)
        return f"{count} in {seconds:.0f} s ({60 * count / seconds:.1f}/min)" if seconds else "-"

    print(
        f"{profile}: median of {len(runs)}: take→shown {med('take_to_shown_s'):.1f} s; "
        f"freeze during the transfer {med('freeze_during_s'):.2f} s "
        f"(longest gap {med('longest_gap_during_s'):.2f} s) vs same span before "
        f"{med('freeze_before_s'):.2f} s ({med('longest_gap_before_s'):.2f} s); live picture "
        f"{med('fps_during'):.1f} fps during vs {med('fps_before'):.1f} before\n"
        f"{profile}: longest gap per run during "
        f"{[round(r['longest_gap_during_s'], 2) for r in runs]} vs before "
        f"{[round(r['longest_gap_before_s'], 2) for r in runs]}; gaps > {FREEZE_GAP_S} s during "
        f"the transfers {per_minute('freezes_during', 'take_to_shown_s')}, in the settled "
        f"call before {per_minute('freezes_settled_before', 'settled_before_s')}; "
        f"load now {load()}",
        flush=True,
    )


if __name__ == "__main__":
    main()

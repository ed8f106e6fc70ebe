"""Adaptive video on bad links, side by side: Porchlight, stock aiortc, Chromium.

Each system makes a call across the network lab (bench/netlab.py: namespaces, veth, tbf,
NFQUEUE delay, iptables loss) while a profile plays on the link, and we measure, at the
receiver of the patient's picture (kiosk → clinic) and on the kiosk's side of the link:

- freeze: the sum of gaps over 500 ms between decoded frames (and per capacity drop: the
  freeze within 10 s after it);
- fit: after each capacity drop, the seconds until what the sender offers to the link
  (1-s window, counted before the rate limit drops anything) is under the new capacity;
- recover: after each capacity rise, the seconds until the delivered pixels × fps (1-s
  window) reach 90 % of what the best fitting rung delivers at the new capacity;
- pixels × fps delivered on average, frame rate and size (median), and the longest audio
  gap at the receiver (count of gaps over 300 ms).

Systems: `porchlight` — the real kiosk (KioskCore, link probe, ladder) and the hub with
the clinician twin (Porchlight both ways), camera 640x360 (16:9, the rungs' shape);
`stock` — aiortc 1.16 as it comes, both ends, camera 640x480; `chromium` — headless
Chromium at both ends (its own transport-cc congestion control), its fake camera playing the
same picture from a file. Every camera shows FFmpeg's testsrc2 (moving, detailed: hard to
encode) at 30 fps.

Profiles (bench/netlab.py PROFILES): "rural" 300 kbit/s, 100 ms each way, 2 % loss, 60 s;
"p1" (RFC 8867 §5.1) 1.0 → 2.5 at 40 s → 0.6 at 60 s → 1.0 at 80 s Mbit/s, 50 ms each way.

    sudo python bench/video_adapt.py [--runs 2] [--profiles rural,p1]
                                      [--systems porchlight,stock,chromium] [--json FILE]
                                      [--keep DIR] [--traces tests/video/traces]

`--traces DIR` writes each profile's first Porchlight run as a recorded ladder trace (what
tests/video/test_ladder_traces.py replays). Each run's line ends with the machine's 1-minute
load before and after it: on a shared machine, compare systems within one invocation.

Needs root, iproute2, iptables, netfilterqueue (Debian libnetfilter-queue-dev), Chromium.
"""

from __future__ import annotations

import argparse
import bisect
import itertools
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import netlab  # noqa: E402
import video_lab  # noqa: E402

from porchlight.kiosk.ladder import Ladder, LadderConfig  # noqa: E402
from porchlight.kiosk.send_policy import scaled_size  # noqa: E402

CAMERA = "640x480@30"  # stock aiortc and Chromium, as in ../shared/PLATFORM.md's anchors
# Porchlight's kiosk camera is 16:9 (its rungs are 16:9 boxes: 180p is 320x180) and, like
# the others, a 30 fps test pattern of about the same number of pixels.
PORCHLIGHT_CAMERA = "640x360@30"
TESTSRC_Y4M_SECONDS = 10
FREEZE_GAP_S = 0.5
AUDIO_GAP_S = 0.3
DROP_WINDOW_S = 10.0
TARGETS = {
    "fit_s": 2.0,
    "freeze_per_drop_s": 1.0,
    "recover_s": 10.0,
    "rural_min": (320, 180, 15),
    "audio_gap_s": 0.3,
}


# ---------------------------------------------------------------- measuring


class OfferedRate:
    """Samples the kiosk side's offered-byte counter every 0.25 s on a thread."""

    def __init__(self, lab: netlab.NetLab) -> None:
        self.lab = lab
        self.samples: list[tuple[float, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> OfferedRate:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.samples.append((time.monotonic(), self.lab.offered_bytes("kiosk")))
            except Exception:  # the lab is closing
                return
            self._stop.wait(0.25)

    def rate_at(self, t: float, window: float = 1.0) -> float | None:
        """bit/s offered over (t - window, t]."""
        inside = [(ts, b) for ts, b in self.samples if t - window - 0.13 <= ts <= t]
        if len(inside) < 2 or inside[-1][0] - inside[0][0] <= 0:
            return None
        return (inside[-1][1] - inside[0][1]) * 8 / (inside[-1][0] - inside[0][0])


def best_pixel_rate(kbit: int, camera: str) -> float:
    """Pixels × fps of the best rung that fits a clean link of `kbit` (for this camera)."""
    width, height = (int(x) for x in camera.split("@")[0].split("x"))
    rung = Ladder(LadderConfig(max_height=height)).best_rung_for(kbit * 1000)
    if rung.audio_only:
        return 0.0
    w, h = scaled_size(width, height, rung.width, rung.height)
    return w * h * rung.fps


def freeze(frames: list[float], start: float, end: float) -> float:
    inside = [t for t in frames if start <= t <= end]
    if not inside:
        return end - start
    points = [start, *inside, end]
    return sum(b - a for a, b in itertools.pairwise(points) if b - a > FREEZE_GAP_S)


def pixel_rate(frames: list[tuple[float, int, int]], start: float, end: float) -> float:
    return sum(w * h for t, w, h in frames if start <= t < end) / max(1e-9, end - start)


def analyse(
    profile: netlab.Profile,
    t0: float,
    frames: list[tuple[float, int, int]],
    audio: list[float],
    offered: OfferedRate,
    camera: str,
    audio_resolution_s: float = 0.0,
) -> dict[str, Any]:
    end = t0 + profile.seconds
    times = [t for t, _, _ in frames]
    out: dict[str, Any] = {
        "freeze_s": freeze(times, t0, end),
        "pixels_fps": pixel_rate(frames, t0, end),
        "fps": len([t for t in times if t0 <= t < end]) / profile.seconds,
    }
    sizes = [(w, h) for t, w, h in frames if t0 <= t < end]
    out["size"] = statistics.median_low(sizes) if sizes else None
    # Per second: frame rate and height, for "at least 320x180 at 15 fps".
    per_second = []
    for s in range(int(profile.seconds)):
        a, b = t0 + s, t0 + s + 1
        inside = [(w, h) for t, w, h in frames if a <= t < b]
        per_second.append((len(inside), min((h for _, h in inside), default=0)))
    out["fps_median"] = statistics.median(n for n, _ in per_second)
    out["height_median"] = statistics.median(h for _, h in per_second)
    # After the first 5 s; 14 frames in a given second still count as 15 fps (a frame lands
    # either side of a second's edge).
    ok = [n >= 14 and h >= 180 for n, h in per_second[5:]]
    out["share_at_least_180p15"] = sum(ok) / max(1, len(ok))
    inside_audio = [t for t in audio if t0 <= t <= end]
    gaps = [b - a for a, b in itertools.pairwise(inside_audio)]
    out["audio_gap_max_s"] = max(gaps, default=profile.seconds)
    out["audio_gaps_over_300ms"] = sum(1 for g in gaps if g > AUDIO_GAP_S + audio_resolution_s)
    drops, rises = [], []
    for (_, before), (at, after) in zip(profile.steps, profile.steps[1:], strict=False):
        t = t0 + at
        if after < before:
            fit = None
            probe = t
            while probe <= t + 20:
                rate = offered.rate_at(probe)
                if rate is not None and rate <= after * 1000:
                    fit = probe - t
                    break
                probe += 0.25
            drops.append(
                {"at": at, "kbit": after, "fit_s": fit,
                 "freeze_s": freeze(times, t, t + DROP_WINDOW_S)}
            )  # fmt: skip
        else:
            target = 0.9 * best_pixel_rate(after, camera)
            recover = None
            probe = t + 1
            while probe <= t + 20:
                if pixel_rate(frames, probe - 1, probe) >= target:
                    recover = probe - t
                    break
                probe += 0.25
            rises.append({"at": at, "kbit": after, "recover_s": recover})
    out["drops"], out["rises"] = drops, rises
    return out


# ---------------------------------------------------------------- one run


def run_porchlight(profile: netlab.Profile, work: Path) -> dict[str, Any]:
    lab = profile.lab()
    with (
        video_lab.CallLab(
            work, lab, kiosk_camera=PORCHLIGHT_CAMERA, clinic_camera=PORCHLIGHT_CAMERA
        ) as call,
        OfferedRate(lab) as offered,
    ):
        call.join(timeout=90)
        t0 = time.monotonic()
        player = netlab.ProfilePlayer(lab, profile).start()
        time.sleep(profile.seconds)  # the profile plays on its own thread
        player.stop()
    clinic = call.reports["clinic"]["call"]
    result = analyse(
        profile, t0, clinic["frames"], clinic["audio_times"], offered, PORCHLIGHT_CAMERA
    )
    # The other direction (clinician → kiosk), from the kiosk's 100 ms samples.
    kiosk_samples = call.reports["kiosk"]["samples"]
    samples = [s for s in kiosk_samples if t0 <= s["t"] <= t0 + profile.seconds]
    per_second: dict[int, list[dict[str, Any]]] = {}
    for s in samples:
        per_second.setdefault(int(s["t"] - t0), []).append(s)
    heights = [min((s["remote"] or [0])[0] for s in group) for group in per_second.values()]
    rates = reverse_fps(kiosk_samples, t0, profile.seconds)
    result["reverse_fps_median"] = statistics.median(rates) if rates else 0
    result["reverse_fps_mean"] = statistics.fmean(rates) if rates else 0
    result["reverse_share_at_least_15fps"] = sum(r >= 14 for r in rates[5:]) / max(
        1, len(rates[5:])
    )
    result["reverse_height_median"] = statistics.median(heights) if heights else 0
    result["rungs"] = sorted({s["rung"] for s in samples if s["rung"]})
    result["link_estimate_bps"] = call.reports["kiosk"].get("link_estimate_bps")
    result["trace"] = recorded_trace(profile, t0, call.reports["kiosk"])
    return result


def reverse_fps(samples: list[dict[str, Any]], t0: float, seconds: float) -> list[float]:
    """Frames of the clinician's picture decoded at the kiosk in each second from `t0`.

    The kiosk's counter is sampled about every 0.1 s; its value at each second's edge is
    interpolated between the samples either side. (Counting from the first to the last sample
    inside a second spans only about 0.88 s of it, and read 13 fps off a 15 fps picture.)
    """
    times = [s["t"] for s in samples]
    counts = [s["frames_received"] for s in samples]
    if len(times) < 2 or times[0] > t0:
        return []
    # The kiosk stops sampling as the call ends, a moment before or after the last second's end.
    whole = min(int(seconds), int(times[-1] - t0 + 0.2))

    def at(t: float) -> float:
        i = min(max(1, bisect.bisect_right(times, t)), len(times) - 1)
        (ta, ca), (tb, cb) = (times[i - 1], counts[i - 1]), (times[i], counts[i])
        return ca + (cb - ca) * (t - ta) / (tb - ta) if tb > ta else cb

    return [at(t0 + s + 1) - at(t0 + s) for s in range(whole)]


def recorded_trace(profile: netlab.Profile, t0: float, kiosk: dict[str, Any]) -> dict[str, Any]:
    """The kiosk ladder's inputs and decisions, times from the profile's start: the recorded
    traces tests/video/test_ladder_traces.py replays."""
    runs = kiosk["ladder"]
    samples = [dict(s) for run in runs for s in run["samples"]]
    for s in samples:
        s["now"] = round(s["now"] - t0, 3)
        if s.get("remb_at") is not None:
            s["remb_at"] = round(s["remb_at"] - t0, 3)
    decisions = [
        (round(t - t0, 3), rung, why) for run in runs for t, rung, why, _ in run["decisions"]
    ]
    return {
        "profile": profile.name,
        "steps": profile.steps,
        "start_bps": kiosk.get("link_estimate_bps"),
        "samples": samples,
        "decisions": decisions,
    }


def testsrc_y4m(path: Path) -> Path:
    """The aiortc cameras' picture (FFmpeg testsrc2, 640x480 at 30 fps) as a file Chromium's
    fake camera plays in a loop, so every system encodes the same picture."""
    if path.exists():
        return path
    import av

    source = av.open("testsrc2=size=640x480:rate=30", format="lavfi")
    with av.open(str(path), "w", format="yuv4mpegpipe") as out:
        stream = out.add_stream("rawvideo", rate=30)
        stream.width, stream.height, stream.pix_fmt = 640, 480, "yuv420p"
        for i, frame in enumerate(source.decode(video=0)):
            if i >= 30 * TESTSRC_Y4M_SECONDS:
                break
            for packet in stream.encode(frame.reformat(format="yuv420p")):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    source.close()
    return path


def run_pair(kind: str, profile: netlab.Profile, work: Path) -> dict[str, Any]:
    lab = profile.lab()
    y4m = testsrc_y4m(work.parent / "testsrc2.y4m") if kind == "chromium" else None
    with (
        video_lab.PeerPair(work, lab, kind, camera=CAMERA, chromium_y4m=y4m) as pair,
        OfferedRate(lab) as offered,
    ):
        time.sleep(2)  # media starts
        t0 = time.monotonic()
        player = netlab.ProfilePlayer(lab, profile).start()
        time.sleep(profile.seconds)
        player.stop()
    receiver = pair.reports["receiver"]
    return analyse(
        profile,
        t0,
        [tuple(f) for f in receiver["frames"]],  # type: ignore[misc]
        receiver["audio_times"],
        offered,
        CAMERA,
        audio_resolution_s=receiver.get("audio_resolution_s", 0.0),
    )


def run_one(system: str, profile: netlab.Profile, work: Path) -> dict[str, Any]:
    if system == "porchlight":
        return run_porchlight(profile, work)
    return run_pair(system, profile, work)


# ---------------------------------------------------------------- report


def med(values: list[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return statistics.median(known) if known else None


def fmt(value: float | None, unit: str = "", digits: int = 1) -> str:
    return "never" if value is None else f"{value:.{digits}f}{unit}"


def summarise(results: dict[str, dict[str, list[dict[str, Any]]]]) -> str:
    lines = []
    for profile, systems in results.items():
        lines.append(
            f"\nprofile {profile} (medians of {max(len(r) for r in systems.values())} runs)"
        )
        lines.append(
            f"{'system':12} {'freeze s':>9} {'px×fps M':>9} {'fps':>5} {'height':>7} "
            f"{'audio gap max':>14} {'>300ms':>7}  per drop: fit s / freeze s   per rise: recover s"
        )
        for system, runs in systems.items():
            drops = [
                f"{fmt(med([r['drops'][i]['fit_s'] for r in runs]))}/"
                f"{fmt(med([r['drops'][i]['freeze_s'] for r in runs]))}"
                for i in range(len(runs[0]["drops"]))
            ]
            rises = [
                fmt(med([r["rises"][i]["recover_s"] for r in runs]))
                for i in range(len(runs[0]["rises"]))
            ]
            lines.append(
                f"{system:12} {fmt(med([r['freeze_s'] for r in runs])):>9} "
                f"{fmt(med([r['pixels_fps'] / 1e6 for r in runs]), '', 2):>9} "
                f"{fmt(med([r['fps_median'] for r in runs]), '', 0):>5} "
                f"{fmt(med([r['height_median'] for r in runs]), '', 0):>7} "
                f"{fmt(med([r['audio_gap_max_s'] for r in runs]), ' s', 2):>14} "
                f"{fmt(med([r['audio_gaps_over_300ms'] for r in runs]), '', 0):>7}  "
                f"{' '.join(drops) or '-':26} {' '.join(rises) or '-'}"
            )
            if system == "porchlight":
                lines.append(
                    f"{'':12} reverse (clinician → kiosk): fps "
                    f"{fmt(med([r['reverse_fps_median'] for r in runs]), '', 0)} (mean "
                    f"{fmt(med([r['reverse_fps_mean'] for r in runs]))}, seconds ≥ 14: "
                    f"{fmt(med([100 * r['reverse_share_at_least_15fps'] for r in runs]), ' %', 0)}"
                    f"), height "
                    f"{fmt(med([r['reverse_height_median'] for r in runs]), '', 0)}; "
                    f"share of seconds ≥ 320x180@15 kiosk → clinic: "
                    f"{fmt(med([100 * r['share_at_least_180p15'] for r in runs]), ' %', 0)}; "
                    "probe: "
                    + ", ".join(
                        "none"
                        if r.get("link_estimate_bps") is None
                        else f"{r['link_estimate_bps'] / 1000:.0f}"
                        for r in runs
                    )
                    + " kbit/s"
                )
    lines.append(
        "\ntargets: fit ≤ 2 s after a drop; freeze ≤ 1 s per drop; recover to ≥ 90 % of the "
        "best fitting rung ≤ 10 s; rural two-way ≥ 320x180 at 15 fps; no audio gap > 300 ms; "
        "Porchlight's freeze no worse than Chromium's."
    )
    return "\n".join(lines)


def porchlight_extras(result: dict[str, Any]) -> str:
    """The reverse picture and the probe's start estimate, for a Porchlight run's line."""
    if "reverse_fps_mean" not in result:
        return ""
    probe = result.get("link_estimate_bps")
    return (
        f"reverse fps {result['reverse_fps_median']:.1f} (mean {result['reverse_fps_mean']:.1f}), "
        f"probe {'none' if probe is None else f'{probe / 1000:.0f} kbit/s'}, "
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--profiles", default="rural,p1")
    parser.add_argument("--systems", default="porchlight,stock,chromium")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--keep", type=Path, help="keep each run's logs and reports here")
    parser.add_argument(
        "--traces", type=Path, help="write each profile's first Porchlight trace here"
    )
    args = parser.parse_args()
    results: dict[str, dict[str, list[dict[str, Any]]]] = {}
    with tempfile.TemporaryDirectory(prefix="porchlight-adapt-") as scratch:
        tmp = args.keep or scratch
        for profile_name in args.profiles.split(","):
            profile = netlab.PROFILES[profile_name]
            results[profile_name] = {}
            for system in args.systems.split(","):
                runs = results[profile_name].setdefault(system, [])
                for run in range(args.runs):
                    work = Path(tmp) / f"{profile_name}-{system}-{run}"
                    started = time.monotonic()
                    load_before = os.getloadavg()[0]
                    result = run_one(system, profile, work)
                    # This machine is shared: say how busy it was (1-minute load, 2 cores).
                    result["load"] = [load_before, os.getloadavg()[0]]
                    trace = result.pop("trace", None)
                    if args.traces and trace is not None and run == 0:
                        args.traces.mkdir(parents=True, exist_ok=True)
                        (args.traces / f"{profile_name}.json").write_text(json.dumps(trace))
                    runs.append(result)
                    print(
                        f"{profile_name} {system} run {run + 1}: "
                        f"freeze {result['freeze_s']:.1f} s, "
                        f"{result['pixels_fps'] / 1e6:.2f} Mpx/s, fps {result['fps_median']:.0f}, "
                        f"{porchlight_extras(result)}"
                        f"({time.monotonic() - started:.0f} s, load "
                        f"{result['load'][0]:.1f}→{result['load'][1]:.1f})",
                        flush=True,
                    )
                    if args.json:
                        args.json.write_text(json.dumps(results, indent=1))
    print(summarise(results))


if __name__ == "__main__":
    main()

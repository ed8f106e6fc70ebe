"""Encode time per frame at each rung of the ladder, with the Raspberry Pi 4 budget beside it.

Porchlight's VP8 encoder (kiosk/rtc.py AdaptiveVp8Encoder: libvpx realtime, the rung's rate,
the thread count aiortc would choose) encodes FFmpeg's testsrc2 (moving and detailed: a hard
picture) scaled to each rung, at the rung's frame rate, for `--seconds` of video. Reported:
the median and 90th percentile of the time libvpx takes per frame here, and the output rate.

The Pi 4 figure is an estimate: this machine's time × (Pi 4 time / this machine's time) at
1080p, with the Pi 4's 1080p time taken from ../shared/ANCHORS.md ("a Pi 4 encodes 1080p30
at ~5 fps in software" = 200 ms a frame). The budget is the ladder's: encoding may take
`cpu_budget` (60 %) of the frame interval, leaving the rest for decoding, audio and the
screen; above it the ladder steps down by itself (kiosk/ladder.py).

    python bench/video_encode.py [--seconds 5] [--cpu-used -6]
"""

from __future__ import annotations

import argparse
import statistics
import time

import av
from av.video.reformatter import VideoReformatter

from porchlight.kiosk import rtc
from porchlight.kiosk.ladder import DEFAULT_RUNGS, LadderConfig, Rung
from porchlight.kiosk.send_policy import FramePacer

PI4_1080P_MS = 200.0  # ../shared/ANCHORS.md: 1080p30 at ~5 fps on a Pi 4
REFERENCE = Rung("1080p30", 1920, 1080, 30, 3_000_000)


def source_frames(seconds: float) -> list[av.VideoFrame]:
    container = av.open("testsrc2=size=1920x1080:rate=30", format="lavfi")
    frames = []
    for frame in container.decode(video=0):
        if len(frames) >= seconds * 30:
            break
        frames.append(frame)
    container.close()
    return frames


def measure(rung: Rung, frames: list[av.VideoFrame], cpu_used: int) -> dict[str, float]:
    reformatter = VideoReformatter()
    encoder = rtc.AdaptiveVp8Encoder(rung.video_bps, fps=rung.fps, cpu_used=cpu_used)
    pacer = FramePacer(rung.fps)
    scaled = [
        rtc._reformat(reformatter, f, rung.width, rung.height) for f in frames if pacer.take(f.time)
    ]
    times, bits = [], 0
    for frame in scaled:
        started = time.perf_counter()
        payloads, _ = encoder.encode(frame)
        times.append(time.perf_counter() - started)
        bits += 8 * sum(len(p) for p in payloads)
    times = times[3:]  # the first frames include opening the encoder
    return {
        "median_ms": 1000 * statistics.median(times),
        "p90_ms": 1000 * statistics.quantiles(times, n=10)[-1],
        "kbps": bits / (len(scaled) / rung.fps) / 1000,
        "frames": len(scaled),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--cpu-used", type=int, default=-6)
    args = parser.parse_args()
    frames = source_frames(args.seconds)
    budget_share = LadderConfig().cpu_budget
    reference = measure(REFERENCE, frames, args.cpu_used)
    factor = PI4_1080P_MS / reference["median_ms"]
    print(
        f"VP8 encode time per frame (libvpx realtime, cpu-used {args.cpu_used}), testsrc2; "
        f"this machine's 1080p: {reference['median_ms']:.1f} ms → Pi 4 factor ×{factor:.1f}"
    )
    print(
        f"{'rung':8} {'size':>9} {'fps':>4} {'kbit/s':>7} {'median ms':>10} {'p90 ms':>7} "
        f"{'Pi 4 est. ms':>13} {'Pi 4 budget ms':>15}  fits?"
    )
    for rung in DEFAULT_RUNGS:
        m = measure(rung, frames, args.cpu_used)
        pi = m["median_ms"] * factor
        budget = 1000 / rung.fps * budget_share
        print(
            f"{rung.name:8} {rung.width:>4}x{rung.height:<4} {rung.fps:>4} {m['kbps']:>7.0f} "
            f"{m['median_ms']:>10.1f} {m['p90_ms']:>7.1f} {pi:>13.0f} {budget:>15.0f}  "
            f"{'yes' if pi <= budget else 'no'}"
        )
    print(
        "Pi 4 est. = this machine's median × the 1080p factor (an estimate, not a Pi "
        f"measurement); budget = {budget_share:.0%} of the frame interval (the ladder's "
        "cpu_budget: above it the kiosk steps down by itself)."
    )


if __name__ == "__main__":
    main()

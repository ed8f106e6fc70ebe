"""What a full-resolution camera costs the kiosk before the encoder (issue 10).

The close look needs the camera to give more pixels than the rung sends. This measures the
CPU the kiosk spends on the camera side of a call for each camera size, at the same rung:
the test-pattern camera itself (FFmpeg's testsrc2, delivered in real time), the sending
track (kiosk/rtc.py ScaledTrack: scale, or crop then scale, to the rung), and the self-view
conversion of the camera's frame (RGB, 320 px wide). The VP8 encoder is left out on purpose:
it works on the rung's picture, so its cost does not depend on the camera's size. A real
V4L2 camera would cost less than testsrc2 (no pattern to draw) but more to convert (YUYV).

    python bench/camera_cost.py [--seconds 10] [--rung 640x360@30]

Prints, per camera size, the share of one core used (process CPU time / wall time) with
the whole picture and with a close look at a quarter of the frame.
"""

from __future__ import annotations

import argparse
import asyncio
import time

from porchlight.device.camera import open_camera
from porchlight.device.config import DeviceConfig
from porchlight.kiosk import rtc
from porchlight.kiosk.view_region import Region

SIZES = ((640, 480), (1280, 720), (1920, 1080))
SELF_VIEW_WIDTH = 320


async def run(
    width: int,
    height: int,
    fps: int,
    rung: tuple[int, int, float],
    seconds: float,
    region: Region | None,
) -> tuple[float, int]:
    camera = open_camera(DeviceConfig(camera_width=width, camera_height=height, camera_fps=fps))
    latest: list = [None]
    # As in the kiosk (kiosk/call.py): the self-view is tee'd off the camera, whole frames.
    observed = rtc.ObservedTrack(camera, lambda f: latest.__setitem__(0, f))
    track = rtc.ScaledTrack(observed, width=rung[0], height=rung[1], fps=rung[2])
    track.set_region(region)
    loop = asyncio.get_running_loop()
    await track.recv()  # the camera is open and running
    frames = 0
    cpu0, wall0 = time.process_time(), time.monotonic()
    while time.monotonic() - wall0 < seconds:
        await track.recv()
        frames += 1
        # The self-view: the camera's frame (the close look's crop of it), 320 px wide, at
        # the rung's rate here (the kiosk converts the newest camera frame whenever idle).
        await loop.run_in_executor(None, rtc.frame_to_rgb, latest[0], SELF_VIEW_WIDTH, track.crop)
    cpu, wall = time.process_time() - cpu0, time.monotonic() - wall0
    track.stop()
    await camera.wait_closed()
    return cpu / wall, frames


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--rung", default="640x360@30", help="WIDTHxHEIGHT@FPS sent")
    parser.add_argument("--camera-fps", type=int, default=30)
    args = parser.parse_args()
    size, _, rate = args.rung.partition("@")
    rw, rh = (int(v) for v in size.split("x"))
    rung = (rw, rh, float(rate or 30))
    print(f"rung {rw}x{rh}@{rung[2]:g}, camera at {args.camera_fps} fps, {args.seconds:g} s each")
    print("camera      whole picture      close look (a quarter)")
    for width, height in SIZES:
        whole, n1 = asyncio.run(run(width, height, args.camera_fps, rung, args.seconds, None))
        look, n2 = asyncio.run(
            run(width, height, args.camera_fps, rung, args.seconds, Region(0.25, 0.25, 0.5, 0.5))
        )
        print(
            f"{width}x{height:<5}  {100 * whole:5.1f} % of a core ({n1 / args.seconds:4.1f} fps)"
            f"   {100 * look:5.1f} % of a core ({n2 / args.seconds:4.1f} fps)"
        )


if __name__ == "__main__":
    main()

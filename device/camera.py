"""The kiosk's camera as an aiortc video track: a moving test pattern, or a V4L2 camera."""

from __future__ import annotations

import os

import av
from aiortc.mediastreams import MediaStreamTrack

from porchlight.device.av_source import AvSourceTrack
from porchlight.device.config import TEST_CAMERA, DeviceConfig
from porchlight.errors import DeviceFault

# Frames waiting for the encoder: one spare so a short stall does not drop a frame.
KEEP_FRAMES = 2


def open_camera(config: DeviceConfig) -> MediaStreamTrack:
    """A video track at the configured size and rate; the camera opens on the first recv().

    "test": FFmpeg's testsrc2 (moving, textured, so the encoder works as hard as on a real
    picture), delivered in real time. Otherwise a V4L2 device such as /dev/video0.
    """
    size = f"{config.camera_width}x{config.camera_height}"
    if config.camera == TEST_CAMERA:
        graph = f"testsrc2=size={size}:rate={config.camera_fps}"
        return AvSourceTrack.lavfi(
            "video", graph, description="the test-pattern camera", keep=KEEP_FRAMES
        )
    path = config.camera
    if not os.path.exists(path):
        raise DeviceFault(
            f"camera {path} is not there: check the camera is plugged in and "
            f"device.camera names it (or use {TEST_CAMERA!r})"
        )
    options = {"video_size": size, "framerate": str(config.camera_fps)}
    return AvSourceTrack(
        "video",
        lambda: av.open(path, format="v4l2", options=options),
        description=f"camera {path}",
        paced=False,  # a real camera delivers frames in real time by itself
        keep=KEEP_FRAMES,
    )

"""The test-pattern camera: real, moving frames at the configured size and rate, in real time."""

from __future__ import annotations

import asyncio

import pytest
from aiortc.mediastreams import MediaStreamError

from porchlight.device.camera import open_camera
from porchlight.device.config import DeviceConfig
from porchlight.errors import DeviceFault


async def test_test_pattern_gives_moving_frames_at_the_configured_size_and_rate(timed_frames):
    track = open_camera(DeviceConfig(camera_width=320, camera_height=240, camera_fps=30))
    assert track.kind == "video"
    frames, elapsed = await timed_frames(track, 20)
    assert {(f.width, f.height) for f in frames} == {(320, 240)}
    # 20 frame intervals at 30 fps is 0.667 s: not faster than real time, and not far slower.
    assert 0.6 <= elapsed <= 1.2
    assert [f.pts for f in frames] == list(range(21))
    assert frames[-1].time == pytest.approx(20 / 30)
    # The picture moves: the luma of frame 0 and frame 10 differ.
    assert bytes(frames[0].planes[0]) != bytes(frames[10].planes[0])
    # And is textured, not a flat colour.
    luma = bytes(frames[5].planes[0])
    assert len(set(luma)) > 50


async def test_stopping_the_track_ends_it_and_its_reader_thread():
    track = open_camera(DeviceConfig(camera_width=160, camera_height=120))
    await track.recv()
    track.stop()
    assert track.readyState == "ended"
    with pytest.raises(MediaStreamError):
        await track.recv()
    await track.wait_closed()
    assert track.exited.is_set()


async def test_a_slow_consumer_gets_fresh_frames_not_a_backlog():
    track = open_camera(DeviceConfig(camera_width=160, camera_height=120, camera_fps=30))
    try:
        await track.recv()
        await asyncio.sleep(0.5)  # the consumer stalls for 15 frame times
        frame = await track.recv()
    finally:
        track.stop()
    # The frame handed over is from about now, not the one after the first.
    assert frame.time >= 0.35


def test_a_missing_v4l2_camera_is_a_clear_device_fault():
    with pytest.raises(DeviceFault, match="not there"):
        open_camera(DeviceConfig(camera="/dev/porchlight-no-such-camera"))


async def test_a_v4l2_path_that_is_not_a_camera_ends_the_track_with_the_reason():
    track = open_camera(DeviceConfig(camera="/dev/null"))
    with pytest.raises(MediaStreamError):
        await asyncio.wait_for(track.recv(), 10)
    assert track.error and "/dev/null" in track.error
    assert track.readyState == "ended"

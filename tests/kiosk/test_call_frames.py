"""kiosk/call.py FrameFeeder: frames reach the screen as RGB, newest first, off the loop."""

from __future__ import annotations

import concurrent.futures
import threading

import av
import numpy

from porchlight.kiosk.call import FrameFeeder
from porchlight.kiosk.view import LatestFrame

from .conftest import wait_until


def frame(value: int, width: int = 640, height: int = 480) -> av.VideoFrame:
    rgb = numpy.full((height, width, 3), value, dtype=numpy.uint8)
    return av.VideoFrame.from_ndarray(rgb, format="rgb24")


class RecordingExecutor:
    """Runs conversions on a thread and notes that it did (so we know it left the loop)."""

    def __init__(self) -> None:
        self.threads: set[str] = set()

    def submit(self, fn, *args):
        future: concurrent.futures.Future = concurrent.futures.Future()

        def run() -> None:
            self.threads.add(threading.current_thread().name)
            try:
                future.set_result(fn(*args))
            except BaseException as exc:
                future.set_exception(exc)

        threading.Thread(target=run, name="convert").start()
        return future


async def test_large_frames_convert_off_the_loop_and_only_the_newest_is_kept() -> None:
    sink = LatestFrame()
    shown: list[int] = []
    executor = RecordingExecutor()
    feeder = FrameFeeder(sink, executor=executor, on_shown=lambda: shown.append(1))
    for value in range(10, 110, 10):  # ten frames arrive faster than they can be converted
        feeder.offer(frame(value))
    await wait_until(
        lambda: sink.latest()[1] is not None and sink.latest()[1][0, 0, 0] == 100,
        5,
        "the newest frame",
    )
    seq, rgb = sink.latest()
    assert rgb.shape == (480, 640, 3) and rgb.dtype == numpy.uint8
    assert executor.threads == {"convert"}
    assert len(shown) < 10  # stale frames were skipped, not queued
    assert seq == len(shown)
    await feeder.close()


async def test_small_frames_convert_inline_and_self_view_is_scaled() -> None:
    sink = LatestFrame()
    feeder = FrameFeeder(sink, max_width=160)
    feeder.offer(frame(200, 320, 240))
    await wait_until(lambda: sink.latest()[1] is not None, 5, "a frame")
    assert sink.latest()[1].shape == (120, 160, 3)
    await feeder.close()


async def test_a_bad_frame_does_not_stop_the_picture(caplog) -> None:
    sink = LatestFrame()
    feeder = FrameFeeder(sink)
    feeder.offer(object())  # not a frame at all
    await wait_until(lambda: "could not convert" in caplog.text, 5, "the bad frame to be seen")
    feeder.offer(frame(50, 64, 48))
    await wait_until(lambda: sink.latest()[1] is not None, 5, "the next good frame")
    await feeder.close()

"""A live media track read from an FFmpeg input (lavfi test sources, V4L2 cameras) through av.

Why not aiortc's MediaPlayer: its queue is unbounded, so a consumer that falls behind (a
slow encoder on a Pi) makes memory and latency grow without limit, and with lavfi it reads
up to a second ahead. Here a thread decodes, paces synthetic sources by their timestamps
(never faster than real time), and keeps only the newest few frames: a live picture, not a
growing backlog. The thread starts on the first `recv()` and ends on `stop()`.
"""

from __future__ import annotations

import asyncio
import errno
import fractions
import logging
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

import av
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

log = logging.getLogger(__name__)

AUDIO_RATE = 48000
AUDIO_FRAME_SAMPLES = 960  # 20 ms, what aiortc's Opus encoder sends per packet


class AvSourceTrack(MediaStreamTrack):
    def __init__(
        self,
        kind: str,
        open_input: Callable[[], Any],
        *,
        description: str,
        paced: bool,
        keep: int,
    ) -> None:
        """`open_input()` returns an av input container (called on the reader thread).

        paced: wait for each frame's time (synthetic sources produce frames instantly);
        keep: how many decoded frames may wait for the consumer before the oldest is dropped.
        """
        super().__init__()
        self.kind = kind
        self.description = description
        self.error: str | None = None  # why the source stopped early, for diagnostics
        self.exited = threading.Event()  # set when the reader thread has closed the input
        self._open_input = open_input
        self._paced = paced
        self._keep = keep
        self._queue: asyncio.Queue[Any] = asyncio.Queue()
        self._quit = threading.Event()
        self._thread: threading.Thread | None = None

    @classmethod
    def lavfi(cls, kind: str, graph: str, *, description: str, keep: int) -> AvSourceTrack:
        """A synthetic source from an FFmpeg filter graph, delivered in real time."""
        return cls(
            kind,
            lambda: av.open(graph, format="lavfi"),
            description=description,
            paced=True,
            keep=keep,
        )

    async def recv(self) -> Any:
        if self.readyState != "live":
            raise MediaStreamError
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._run,
                args=(asyncio.get_running_loop(),),
                name=f"porchlight-{self.kind}-source",
                daemon=True,
            )
            self._thread.start()
        frame = await self._queue.get()
        if frame is None:
            self.stop()
            raise MediaStreamError
        return frame

    def stop(self) -> None:
        super().stop()
        self._quit.set()
        self._queue.put_nowait(None)  # wakes a recv() that is waiting
        if self._thread is None:
            self.exited.set()

    async def wait_closed(self, timeout: float = 5.0) -> None:
        """After stop(): wait until the reader thread has closed the input."""
        if not await asyncio.to_thread(self.exited.wait, timeout):
            raise TimeoutError(f"{self.description} did not close within {timeout} s")

    # -- the reader thread -------------------------------------------------------------------

    def _deliver(self, frame: Any) -> None:
        if frame is not None:
            while self._queue.qsize() >= self._keep:
                self._queue.get_nowait()  # the consumer is behind: drop the oldest
        self._queue.put_nowait(frame)

    def _post(self, loop: asyncio.AbstractEventLoop, frame: Any) -> bool:
        try:
            loop.call_soon_threadsafe(self._deliver, frame)
        except RuntimeError:  # the loop has closed: nobody is listening any more
            return False
        return True

    def _run(self, loop: asyncio.AbstractEventLoop) -> None:
        try:
            container = self._open_input()
        except Exception as exc:
            self.error = f"cannot open {self.description}: {exc}"
            log.warning("%s", self.error)
            self._post(loop, None)
            self.exited.set()
            return
        try:
            self._read(container, loop)
        except Exception as exc:
            self.error = f"{self.description} failed: {exc}"
            log.warning("%s", self.error)
        finally:
            container.close()
            self._post(loop, None)
            self.exited.set()

    def _read(self, container: Any, loop: asyncio.AbstractEventLoop) -> None:
        streams = container.streams.video if self.kind == "video" else container.streams.audio
        if not streams:
            raise ValueError(f"no {self.kind} stream")
        convert = _rebase_video() if self.kind == "video" else _to_mic_frames()
        origin: float | None = None
        while not self._quit.is_set():
            try:
                for decoded in container.decode(streams[0]):
                    for frame in convert(decoded):
                        if self._paced:
                            if origin is None:
                                origin = time.monotonic() - frame.time
                            delay = origin + frame.time - time.monotonic()
                            if delay > 0 and self._quit.wait(delay):
                                return
                        if self._quit.is_set() or not self._post(loop, frame):
                            return
                return  # the input ended
            except av.FFmpegError as exc:
                # Live devices answer "try again" when no frame is ready yet.
                if exc.errno != errno.EAGAIN:
                    raise
                self._quit.wait(0.01)


def _rebase_video() -> Callable[[Any], Iterable[Any]]:
    """Start timestamps at 0 (webcams count from boot), keeping the source's time base."""
    first: list[int] = []

    def convert(frame: Any) -> Iterable[Any]:
        if frame.pts is None:
            return ()
        if not first:
            first.append(frame.pts)
        frame.pts -= first[0]
        return (frame,)

    return convert


def _to_mic_frames() -> Callable[[Any], Iterable[Any]]:
    """Any audio in, 20 ms frames of 48 kHz mono s16 out, timestamped by sample count."""
    resampler = av.AudioResampler(
        format="s16", layout="mono", rate=AUDIO_RATE, frame_size=AUDIO_FRAME_SAMPLES
    )
    time_base = fractions.Fraction(1, AUDIO_RATE)
    samples = [0]

    def convert(frame: Any) -> Iterable[Any]:
        out = resampler.resample(frame)
        for f in out:
            f.pts = samples[0]
            f.time_base = time_base
            samples[0] += f.samples
        return out

    return convert

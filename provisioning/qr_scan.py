"""Reading QR codes from camera frames (zxing-cpp), for enrolment and Wi-Fi at setup.

`decode_qr(image)` is plain computation on one greyscale or RGB array. `QrScanner` pulls
frames from an aiortc video track (the kiosk camera, or a test track), decodes a few a
second in a worker thread so the event loop never waits on it, and hands each new text it
finds to `on_text`. It owns its task: `start()`, `stop()`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

import numpy
import zxingcpp

log = logging.getLogger(__name__)

SCANS_PER_SECOND = 4.0


def decode_qr(image: numpy.ndarray) -> list[str]:
    """The texts of the QR codes in `image` (HxW greyscale or HxWx3 RGB, uint8)."""
    if image.ndim == 3:
        # Luma: the decoder binarises anyway; one channel is a third of the work.
        image = (image[..., :3] @ numpy.array([0.299, 0.587, 0.114])).astype(numpy.uint8)
    found = zxingcpp.read_barcodes(image, formats=zxingcpp.BarcodeFormat.QRCode)
    return [r.text for r in found if r.valid and r.text]


def frame_to_grey(frame: Any) -> numpy.ndarray:
    """An av.VideoFrame as a greyscale array (blocking work: run it in a worker thread)."""
    return frame.to_ndarray(format="gray")


class QrScanner:
    def __init__(
        self,
        track: Any,
        on_text: Callable[[str], None],
        *,
        scans_per_second: float = SCANS_PER_SECOND,
    ) -> None:
        self.track = track
        self.on_text = on_text
        self.interval_s = 1.0 / scans_per_second
        self._task: asyncio.Task[None] | None = None
        self._last: str | None = None
        self.frames_scanned = 0

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="qr-scanner")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        with contextlib.suppress(Exception):
            self.track.stop()

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        next_scan = 0.0
        while True:
            try:
                frame = await self.track.recv()
            except Exception as exc:  # the camera went away: say so once and stop scanning
                log.warning("QR scanning stopped: the camera failed (%s)", type(exc).__name__)
                return
            if loop.time() < next_scan:
                continue  # keep draining frames so the picture stays current
            next_scan = loop.time() + self.interval_s
            texts = await asyncio.to_thread(lambda f=frame: decode_qr(frame_to_grey(f)))
            self.frames_scanned += 1
            for text in texts:
                if text != self._last:  # the same code held up is reported once
                    self._last = text
                    self.on_text(text)

"""One video call from the kiosk: camera and microphone out, the clinician's picture and voice in.

The kiosk is the offerer: after `admitted` it builds a complete offer (every ICE candidate in
it, no trickle), the hub relays it, and the clinician's answer is applied. Remote video frames
are converted to RGB off the event loop and only the newest is kept for the screen; remote
audio goes to the speaker; the camera is tee'd so the self-view shows what is sent. Counters
feed `KioskCore.status()`. `close()` stops everything and may be called more than once.

The close look (issue 10): `set_region()` crops the camera before the rung's scaling, and the
self-view shows the same camera pixels. `take_still()` grabs the camera's next whole frame
(full resolution, not the rung's) and encodes it as JPEG off the loop.

aiortc specifics live in kiosk/rtc.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import Executor
from dataclasses import asdict, dataclass
from typing import Any, Protocol

from aiortc import MediaStreamTrack
from aiortc.mediastreams import MediaStreamError

from porchlight.errors import DeviceFault
from porchlight.kiosk import rtc
from porchlight.kiosk.adaptive_media import AdaptiveMedia
from porchlight.kiosk.ladder import Decision, LadderConfig, Rung
from porchlight.kiosk.view import LatestFrame
from porchlight.kiosk.view_region import Crop, Region

log = logging.getLogger(__name__)

# Frames up to this size are converted on the loop; larger ones in the executor.
INLINE_CONVERT_PIXELS = 320 * 240
SELF_VIEW_WIDTH = 320  # the self-view is small; converting it small saves CPU on a Pi
REPORT_EVERY_S = 2.0  # how often the clinician gets a link report
STILL_WAIT_S = 5.0  # a camera that gives no frame this long cannot take a still
# A peer connection rides out a network drop this long (ICE consent); longer drops are
# recovered with a fresh connection (kiosk/state.py) or the call is given up.
OUTAGE_TOLERANCE_S = 40.0


class AudioSink(Protocol):
    """Where the clinician's voice goes: the device speaker (porchlight.device.speaker)."""

    def play_call_audio(self, track: MediaStreamTrack) -> None: ...

    async def stop_call_audio(self) -> None: ...


@dataclass
class CallCounters:
    frames_sent: int = 0  # camera frames handed to the encoder (after scaling and pacing)
    frames_received: int = 0  # remote video frames decoded
    frames_shown: int = 0  # remote frames converted for the screen (newest-only: may skip)
    self_frames_shown: int = 0
    audio_frames_received: int = 0
    rung: str = ""  # the ladder's current rung, e.g. "360p30" or "audio only"
    rung_changes: int = 0
    link_quality: str = ""  # good / fair / poor
    sent_width: int = 0
    sent_height: int = 0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class FrameFeeder:
    """Converts frames to RGB for a LatestFrame, newest first: a busy converter skips frames."""

    def __init__(
        self,
        sink: LatestFrame,
        *,
        max_width: int | None = None,
        executor: Executor | None = None,
        on_shown: Callable[[], None] = lambda: None,
        crop: Callable[[], Crop | None] = lambda: None,
    ) -> None:
        self._sink = sink
        self._max_width = max_width
        self._crop = crop
        self._executor = executor
        self._on_shown = on_shown
        self._pending: Any = None
        self._task: asyncio.Task[None] | None = None

    def offer(self, frame: Any) -> None:
        self._pending = frame
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._drain())

    async def _drain(self) -> None:
        loop = asyncio.get_running_loop()
        while self._pending is not None:
            frame, self._pending = self._pending, None
            crop = self._crop()
            try:
                if rtc.frame_pixels(frame) <= INLINE_CONVERT_PIXELS:
                    rgb = rtc.frame_to_rgb(frame, self._max_width, crop)
                else:
                    rgb = await loop.run_in_executor(
                        self._executor, rtc.frame_to_rgb, frame, self._max_width, crop
                    )
            except Exception:  # a damaged frame must not stop the picture
                log.exception("could not convert a video frame")
                continue
            self._sink.put(rgb)
            self._on_shown()

    async def close(self) -> None:
        self._pending = None
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


class CallSession:
    """A call between this kiosk and one clinician, identified by the hub's `call_id`."""

    def __init__(
        self,
        call_id: str,
        ice_servers: Iterable[Mapping[str, Any]],
        *,
        camera: MediaStreamTrack | None,
        microphone: MediaStreamTrack | None,
        audio_sink: AudioSink | None,
        remote_frames: LatestFrame,
        local_frames: LatestFrame,
        host_addresses: Iterable[str] = (),
        ice_transport_policy: str = "all",
        turn_tls: ssl.SSLContext | None = None,
        on_connected: Callable[[str], None] = lambda call_id: None,
        on_failed: Callable[[str, str], None] = lambda call_id, reason: None,
        on_report: Callable[[str, dict[str, Any]], None] = lambda call_id, report: None,
        on_quality: Callable[[str, str], None] = lambda call_id, quality: None,
        on_rung: Callable[[str, Rung], None] = lambda call_id, rung: None,
        on_estimate: Callable[[str, float], None] = lambda call_id, bps: None,
        ladder_config: LadderConfig | None = None,
        start_bps: float | None = None,
        executor: Executor | None = None,
    ) -> None:
        self.call_id = call_id
        self.counters = CallCounters()
        self._ice_servers = list(ice_servers)
        self._camera = camera
        self._microphone = microphone
        self._audio_sink = audio_sink
        self._host_addresses = tuple(host_addresses)
        self._on_connected = on_connected
        self._on_failed = on_failed
        self._remote = FrameFeeder(remote_frames, executor=executor, on_shown=self._shown)
        self._self_view = FrameFeeder(
            local_frames,
            max_width=SELF_VIEW_WIDTH,
            executor=executor,
            on_shown=self._self_shown,
            crop=self._crop,
        )
        self._executor = executor
        self._region: Region | None = None
        self._still_waiters: list[asyncio.Future[Any]] = []
        self._on_estimate = on_estimate
        self._on_report = on_report
        self._on_quality = on_quality
        self._on_rung = on_rung
        rtc.tolerate_outages(OUTAGE_TOLERANCE_S)
        self._pc = rtc.new_peer_connection(
            self._ice_servers, ice_transport_policy, turn_tls=turn_tls
        )
        self.media = AdaptiveMedia(
            self._pc, ladder_config=ladder_config, start_bps=start_bps, on_decision=self._decided
        )
        self._last_report = float("-inf")
        self._tasks: set[asyncio.Task[None]] = set()
        self._closed = False
        self._reported = False
        self.last_media_at: float | None = None  # loop time of the last remote frame
        self._pc.on("track", self._on_track)
        self._pc.on("connectionstatechange", self._on_state)

    # ------------------------------------------------------------ public

    async def start(self) -> str:
        """Add our tracks and return the complete SDP offer."""
        # With no camera or microphone we still receive: the patient must see and hear.
        video = None
        if self._camera is not None:
            # The self-view shows the camera as it is; the encoder gets the rung's picture.
            camera = rtc.ObservedTrack(self._camera, self._camera_frame)
            video = self.media.video_track(camera, on_frame=self._frame_sent)
            video.set_region(self._region)
        for kind, track in (("video", video), ("audio", self._microphone)):
            direction = "sendrecv" if track is not None else "recvonly"
            rtc.prefer_codecs(self._pc.addTransceiver(track or kind, direction=direction))
        self.media.prepare()
        return await rtc.complete_offer(self._pc, self._host_addresses)

    async def apply_answer(self, sdp: str) -> None:
        await rtc.apply_answer(self._pc, sdp)

    def set_region(self, region: Region | None) -> None:
        """The clinician's close look (None: the whole picture), from the next frame on."""
        self._region = region
        if self.media.scaled is not None:
            self.media.scaled.set_region(region)

    async def take_still(self, timeout: float = STILL_WAIT_S) -> tuple[bytes, int, int]:
        """The camera's next whole frame as JPEG: (bytes, width, height).

        DeviceFault if there is no camera or it gives no frame within `timeout`."""
        if self._camera is None or self._closed:
            raise DeviceFault("no camera in this call: a still cannot be taken")
        waiter: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._still_waiters.append(waiter)
        try:
            frame = await asyncio.wait_for(waiter, timeout)
        except TimeoutError:
            raise DeviceFault(
                f"the camera gave no picture within {timeout:g} s: check it is connected"
            ) from None
        finally:
            with contextlib.suppress(ValueError):
                self._still_waiters.remove(waiter)
        loop = asyncio.get_running_loop()
        jpeg = await loop.run_in_executor(self._executor, rtc.encode_jpeg, frame)
        return jpeg, int(frame.width), int(frame.height)

    @property
    def connection_state(self) -> str:
        return self._pc.connectionState

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        await self.media.stop()
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self._audio_sink is not None:
            with contextlib.suppress(Exception):
                await self._audio_sink.stop_call_audio()
        await self._remote.close()
        await self._self_view.close()
        await self._pc.close()
        for track in (self._camera, self._microphone):
            if track is not None:
                track.stop()
        for track in (self._camera, self._microphone):
            wait_closed = getattr(track, "wait_closed", None)
            if wait_closed is not None:  # a real camera must be free before it opens again
                with contextlib.suppress(Exception):
                    await wait_closed()

    # ------------------------------------------------------------ internals

    def _crop(self) -> Crop | None:
        scaled = self.media.scaled
        return scaled.crop if scaled is not None else None

    def _camera_frame(self, frame: Any) -> None:
        """Every camera frame, whole: to the self-view, and to a still that waits for one."""
        waiters, self._still_waiters = self._still_waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(frame)
        self._self_view.offer(frame)

    def _shown(self) -> None:
        self.counters.frames_shown += 1

    def _self_shown(self) -> None:
        self.counters.self_frames_shown += 1

    def _frame_sent(self, frame: Any) -> None:
        self.counters.frames_sent += 1

    def _decided(self, decision: Decision) -> None:
        c = self.counters
        if decision.changed:
            c.rung_changes += 1
            self._on_rung(self.call_id, decision.rung)
        c.rung = decision.rung.name
        ladder = self.media.ladder
        if ladder is not None:
            self._on_estimate(self.call_id, ladder.estimate_bps)
        report = self.media.report
        if report is not None:
            c.sent_width, c.sent_height = report.width, report.height
        if decision.quality != c.link_quality:
            c.link_quality = decision.quality
            self._on_quality(self.call_id, decision.quality)
        now = asyncio.get_running_loop().time()
        if report is not None and now - self._last_report >= REPORT_EVERY_S:
            self._last_report = now
            self._on_report(self.call_id, report.as_message())

    def _media_seen(self) -> None:
        self.last_media_at = asyncio.get_running_loop().time()

    def _on_track(self, track: MediaStreamTrack) -> None:
        if track.kind == "video":
            self._spawn(self._pull_video(track))
        elif track.kind == "audio":
            self._spawn(self._pull_audio(track))

    def _spawn(self, coro: Any) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _pull_video(self, track: MediaStreamTrack) -> None:
        with contextlib.suppress(MediaStreamError):
            while True:
                frame = await track.recv()
                self.counters.frames_received += 1
                self._media_seen()
                self._remote.offer(frame)

    def _count_audio(self, frame: Any) -> None:
        self.counters.audio_frames_received += 1
        self._media_seen()

    async def _pull_audio(self, track: MediaStreamTrack) -> None:
        counted = rtc.ObservedTrack(track, self._count_audio)
        if self._audio_sink is not None:
            self._audio_sink.play_call_audio(counted)
            return
        # No speaker: drain anyway, as aiortc queues undelivered frames without limit.
        with contextlib.suppress(MediaStreamError):
            while True:
                await counted.recv()

    def _on_state(self) -> None:
        state = self._pc.connectionState
        log.info("call media %s", state)
        if self._closed or self._reported:
            return
        if state == "connected":
            self.media.start()
            self._on_connected(self.call_id)
        elif state in ("failed", "closed"):
            self._reported = True
            self._on_failed(self.call_id, f"media_{state}")

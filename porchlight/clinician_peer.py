"""A simulated clinician: logs in to the hub, watches the waiting room, admits, answers.

A real WebRTC peer (aiortc) with a test-pattern camera and a tone, speaking the same protocol
as the clinic page. It sends and receives like the kiosk (kiosk/adaptive_media.py: the
bandwidth ladder, the receive-side fixes) unless `adaptive=False` (stock aiortc, for the
benchmarks' comparison); a fresh offer for the call replaces the connection (the kiosk
getting a dropped call back), and the kiosk's link reports are kept. Like the clinic page, it
asks the hub for its ICE servers and transport policy for each connection (fresh TURN
credentials; relay-only when the hub says so). It is the clinician's
twin for integration tests and benchmarks, and lets support staff check a kiosk's call path
end to end without a person at the other end.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import requests
import websockets
from aiortc import MediaStreamTrack, RTCPeerConnection
from aiortc.mediastreams import MediaStreamError

from porchlight.device.audio import open_microphone
from porchlight.device.camera import open_camera
from porchlight.device.config import DeviceConfig
from porchlight.errors import HubRefused, NotAuthorised, TransportFailed
from porchlight.ice_servers import IceSettings, fetch_ice_settings
from porchlight.kiosk import rtc
from porchlight.kiosk.adaptive_media import AdaptiveMedia
from porchlight.kiosk.hub_link import _NoDebug
from porchlight.protocol import CLINIC_WS_PATH, SESSION_COOKIE, ClinicianSays, HubToClinician

log = logging.getLogger(__name__)


@dataclass
class CallRecord:
    """What this clinician saw of one call; times are time.monotonic()."""

    call_id: str
    patient_id: str
    admitted_at: float
    offer_at: float | None = None
    first_video_frame_at: float | None = None
    video_frames: int = 0
    audio_frames: int = 0
    frame_size: tuple[int, int] | None = None
    ended: str | None = None
    offers: int = 0  # more than one: the kiosk reconnected the call's media
    offer_sdp: str = ""  # the kiosk's latest offer and this peer's answer to it
    answer_sdp: str = ""
    link_reports: list[dict[str, Any]] = field(default_factory=list)  # the kiosk's `stats`
    # With record_frames: (time, width, height) of every decoded video frame, and the time of
    # every decoded audio frame (for freeze and audio-gap figures).
    frames: list[tuple[float, int, int]] = field(default_factory=list)
    audio_times: list[float] = field(default_factory=list)


@dataclass
class ClinicianPeer:
    hub_url: str
    username: str
    password: str
    host_addresses: Iterable[str] = ("127.0.0.1",)
    # A laptop webcam's picture (the kiosk's camera defaults to more, for the close look).
    camera: DeviceConfig = field(
        default_factory=lambda: DeviceConfig(simulate=True, camera_width=640, camera_height=480)
    )
    waiting: dict[str, dict[str, Any]] = field(default_factory=dict)
    call: CallRecord | None = None
    adaptive: bool = True
    record_frames: bool = False
    # Issue 10: the newest decoded picture of the call (an av.VideoFrame), and the still
    # messages the hub sent (still_taken, still_progress, still_ready), in order.
    last_video_frame: Any = None
    stills: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._ws: Any = None
        self._pc: RTCPeerConnection | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._changed = asyncio.Condition()
        self._reader: asyncio.Task[None] | None = None
        self.waiting_seen_at: dict[str, float] = {}
        self.media: AdaptiveMedia | None = None
        self._http = requests.Session()  # carries the login's session cookie
        # The ICE settings of the latest connection (what the hub handed out for it).
        self.ice: IceSettings | None = None

    # ------------------------------------------------------------ connection

    def _login(self) -> str:
        response = self._http.post(
            f"{self.hub_url}/api/login",
            json={"username": self.username, "password": self.password},
            timeout=10,
        )
        if response.status_code != 200:
            raise NotAuthorised(f"the hub refused the clinician login ({response.status_code})")
        return response.cookies[SESSION_COOKIE]

    async def connect(self) -> None:
        session = await asyncio.to_thread(self._login)
        url = "ws" + self.hub_url[len("http") :] + CLINIC_WS_PATH
        self._ws = await websockets.connect(
            url,
            additional_headers={"Cookie": f"{SESSION_COOKIE}={session}"},
            # At DEBUG websockets logs headers (the session cookie) and frames (patient ids).
            logger=_NoDebug(logging.getLogger("websockets.client"), {}),
        )
        await self._send({"type": ClinicianSays.HELLO})
        self._reader = asyncio.create_task(self._read())

    async def close(self) -> None:
        await self._close_call()
        self._http.close()
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._reader
        if self._ws is not None:
            await self._ws.close()

    async def __aenter__(self) -> ClinicianPeer:
        await self.connect()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def _send(self, message: dict[str, Any]) -> None:
        await self._ws.send(json.dumps(message))

    async def _read(self) -> None:
        async for raw in self._ws:
            message = json.loads(raw)
            kind = message.get("type")
            if kind == HubToClinician.WAITING_ROOM:
                now = time.monotonic()
                self.waiting = {p["patient_id"]: p for p in message["patients"]}
                for patient_id, patient in self.waiting.items():
                    if patient.get("state") == "waiting":
                        self.waiting_seen_at.setdefault(patient_id, now)
                for gone in set(self.waiting_seen_at) - set(self.waiting):
                    del self.waiting_seen_at[gone]
            elif kind == HubToClinician.OFFER and self.call is not None:
                self.call.offer_at = time.monotonic()
                await self._answer(message["call_id"], message["sdp"])
            elif kind == HubToClinician.STATS and self.call is not None:
                self.call.link_reports.append({**message, "at": time.monotonic()})
            elif kind == HubToClinician.ENDED and self.call is not None:
                self.call.ended = message.get("reason", "ended")
                await self._close_call()
            elif kind in (
                HubToClinician.STILL_TAKEN,
                HubToClinician.STILL_PROGRESS,
                HubToClinician.STILL_READY,
            ):
                self.stills.append(message)
            elif kind == HubToClinician.ERROR:
                self.last_error = message
            async with self._changed:
                self._changed.notify_all()

    async def wait_for(self, predicate: Any, timeout: float) -> Any:
        """Wait until `predicate()` is truthy (re-checked on every hub message and frame)."""
        async with self._changed:
            return await asyncio.wait_for(self._changed.wait_for(predicate), timeout)

    async def _poke(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    # ------------------------------------------------------------------ call

    async def admit(self, patient_id: str) -> CallRecord:
        if patient_id not in self.waiting:
            raise HubRefused("that patient is not in the waiting room")
        self.call = CallRecord(call_id="", patient_id=patient_id, admitted_at=time.monotonic())
        await self._send({"type": ClinicianSays.ADMIT, "patient_id": patient_id})
        return self.call

    async def _answer(self, call_id: str, sdp: str) -> None:
        assert self.call is not None
        self.call.call_id = call_id
        self.call.offers += 1
        await self._close_call()  # a fresh offer for this call: it replaces the connection
        self.call.offer_sdp = sdp
        try:
            ice = await asyncio.to_thread(fetch_ice_settings, self._http, self.hub_url)
        except (TransportFailed, NotAuthorised) as exc:
            log.error("not answering the kiosk's offer: %s", exc)
            return
        self.ice = ice
        pc = rtc.new_peer_connection(ice.servers, ice.policy)
        self._pc = pc
        media = AdaptiveMedia(pc) if self.adaptive else None
        self.media = media
        camera = open_camera(self.camera)
        pc.addTrack(media.video_track(camera) if media is not None else camera)
        pc.addTrack(open_microphone(self.camera))

        @pc.on("track")
        def on_track(track: MediaStreamTrack) -> None:
            self._spawn(self._consume(track))

        @pc.on("connectionstatechange")
        def on_state() -> None:
            if media is not None and pc.connectionState == "connected":
                media.start()

        answer = await rtc.complete_answer(
            pc, sdp, self.host_addresses, prepare=media.prepare if media else lambda: None
        )
        self.call.answer_sdp = answer
        await self._send({"type": ClinicianSays.ANSWER, "call_id": call_id, "sdp": answer})

    async def _consume(self, track: MediaStreamTrack) -> None:
        call = self.call
        while call is not None:
            try:
                frame = await track.recv()
            except MediaStreamError:
                return
            now = time.monotonic()
            if track.kind == "video":
                if call.first_video_frame_at is None:
                    call.first_video_frame_at = now
                call.video_frames += 1
                call.frame_size = (frame.width, frame.height)
                self.last_video_frame = frame
                if self.record_frames:
                    call.frames.append((now, frame.width, frame.height))
                await self._poke()
            else:
                call.audio_frames += 1
                if self.record_frames:
                    call.audio_times.append(now)

    async def request(self, message: dict[str, Any]) -> None:
        """Send an in-call request as the clinic page does: `view`, `prompt`, `take_still`."""
        await self._send(message)

    async def hang_up(self) -> None:
        if self.call is not None and self.call.call_id:
            await self._send({"type": ClinicianSays.HANGUP, "call_id": self.call.call_id})
            self.call.ended = "clinician_ended"
        await self._close_call()

    async def drop_media(self) -> None:
        """Lose the call's media without hanging up, as a browser whose network fails would;
        the kiosk is expected to get the call back with a fresh offer."""
        await self._close_call()

    async def _close_call(self) -> None:
        pc, self._pc = self._pc, None
        media, self.media = self.media, None
        if media is not None:
            await media.stop()
        if pc is not None:
            await pc.close()
        for task in list(self._tasks):
            task.cancel()

    def _spawn(self, coro: Any) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

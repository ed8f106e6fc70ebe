"""The one adapter between Porchlight and aiortc/aioice/av.

Everything that knows how aiortc, aioice or PyAV work inside lives here, so an upgrade breaks
one module and the checks in tests/kiosk/test_call_rtc.py say exactly what moved:

- peer connections always get an explicit RTCConfiguration (never aiortc's public STUN default);
- codec preferences: VP8 (+ RTX) for video, Opus for audio;
- host candidates: aioice never offers 127.0.0.1, and on a kiosk we may want to offer only
  certain addresses; `offer_host_addresses()` chooses them for gathering done inside it;
- frame conversion to RGB arrays for the screen, and a track wrapper that sees every frame the
  encoder takes (the self-view tee and the "frames sent" counter);
- adaptive sending (the ladder's rung applied): `ScaledTrack` scales and paces camera frames
  before the encoder; `AdaptiveVp8Encoder` replaces aiortc's VP8 encoder in the sender (our
  own bit rate with the ~2× overshoot calibrated away and a floor that suits the low rungs,
  a keyframe after each switch, REMB only recorded, never applied); `SteadyOpusEncoder`
  keeps the voice at a fixed, modest rate; `RetransmitBudget` answers NACKs sparingly;
- the receive side: aiortc's jitter buffers and NACK generator are replaced by the policies
  in kiosk/receive_policy.py (no long stall after loss, polite NACKs);
- ICE consent that survives a short outage (`tolerate_outages`), and getStats read into
  plain numbers (`read_stats`).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import fractions
import functools
import logging
import math
import queue
import ssl
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aioice.ice
import aioice.turn
import av
import numpy
from aiortc import (
    MediaStreamTrack,
    RTCConfiguration,
    RTCIceServer,
    RTCIceTransportPolicy,
    RTCPeerConnection,
    RTCRtpReceiver,
    RTCRtpSender,
    RTCRtpTransceiver,
    RTCSessionDescription,
)
from aiortc.codecs import opus as aiortc_opus
from aiortc.codecs import vpx as aiortc_vpx
from aiortc.jitterbuffer import JitterFrame
from aiortc.mediastreams import VIDEO_TIME_BASE, convert_timebase
from av.video.reformatter import VideoReformatter

from porchlight.errors import BadInput, ConfigError
from porchlight.kiosk.receive_policy import NackPolicy, PacketView, PlayoutBuffer
from porchlight.kiosk.send_policy import (
    FramePacer,
    OvershootCalibrator,
    RateGuard,
    RetransmitBudget,
    scaled_size,
)
from porchlight.kiosk.view_region import Crop, Region, crop_for, fit_size

log = logging.getLogger(__name__)

VIDEO_CODECS = ("video/VP8", "video/rtx")
AUDIO_CODECS = ("audio/opus",)

# ---------------------------------------------------------------- host addresses

# Which addresses the ICE gathering running in this context offers; None = aioice's own choice.
# A context variable (not a global setting) so two peer connections in one process, e.g. the
# kiosk and a test's clinician, can each choose.
_HOST_ADDRESSES: contextvars.ContextVar[tuple[str, ...] | None] = contextvars.ContextVar(
    "porchlight_ice_host_addresses", default=None
)
_PATCH_MARK = "_porchlight_host_addresses"


def _install_host_address_hook() -> None:
    """Wrap aioice.ice.get_host_addresses once, so the context variable above is honoured.

    aioice's Connection.gather_candidates() looks the function up in its module at call time;
    the wrapper defers to the original whenever no addresses were chosen.
    """
    current = aioice.ice.get_host_addresses
    if getattr(current, _PATCH_MARK, False):
        return
    original = current

    def get_host_addresses(use_ipv4: bool, use_ipv6: bool) -> list[str]:
        chosen = _HOST_ADDRESSES.get()
        if chosen is None:
            return original(use_ipv4=use_ipv4, use_ipv6=use_ipv6)
        return [a for a in chosen if (":" in a and use_ipv6) or (":" not in a and use_ipv4)]

    setattr(get_host_addresses, _PATCH_MARK, True)
    aioice.ice.get_host_addresses = get_host_addresses


@contextlib.contextmanager
def offer_host_addresses(addresses: Iterable[str] | None) -> Iterator[None]:
    """ICE gathering started inside this block offers exactly `addresses` as host candidates.

    Empty or None keeps aioice's normal choice (every interface except loopback). Tasks created
    inside the block (aiortc gathers in tasks) inherit the choice.
    """
    chosen = tuple(addresses or ())
    if not chosen:
        yield
        return
    _install_host_address_hook()
    token = _HOST_ADDRESSES.set(chosen)
    try:
        yield
    finally:
        _HOST_ADDRESSES.reset(token)


# ---------------------------------------------------------------- peer connections


def ice_servers_from_hub(servers: Iterable[Mapping[str, Any]]) -> list[RTCIceServer]:
    """Turn the hub's RTCIceServer dicts into aiortc objects (BadInput if malformed)."""
    result = []
    for server in servers:
        urls = server.get("urls") if isinstance(server, Mapping) else None
        if not urls or not isinstance(urls, str | list):
            raise BadInput("an ICE server from the hub has no urls; check the hub's ICE settings")
        result.append(
            RTCIceServer(
                urls=urls, username=server.get("username"), credential=server.get("credential")
            )
        )
    return result


def new_peer_connection(
    ice_servers: Iterable[Mapping[str, Any]],
    transport_policy: str = "all",
    *,
    turn_tls: ssl.SSLContext | None = None,
) -> RTCPeerConnection:
    """A peer connection with exactly the hub's ICE servers (an empty list on a LAN) and its
    transport policy ("relay": only TURN-relayed candidates, which aioice honours).

    `turn_tls`: how to verify a `turns:` server's certificate (turn_tls_context: the clinic's
    own CA); None verifies it against the system's CAs, as aioice does by itself.
    """
    try:
        policy = RTCIceTransportPolicy(transport_policy)
    except ValueError:
        raise BadInput(
            f"the hub's ICE transport policy {transport_policy!r} is not 'all' or 'relay'"
        ) from None
    _install_turn_tls_log()
    pc = RTCPeerConnection(
        RTCConfiguration(iceServers=ice_servers_from_hub(ice_servers), iceTransportPolicy=policy)
    )
    if turn_tls is not None:
        _verify_turn_tls_with(pc, turn_tls)
    return pc


# ---------------------------------------------------------------- TURN over TLS


def turn_tls_context(ca_file: str | Path | None) -> ssl.SSLContext | None:
    """The TLS settings for `turns:` servers: trust exactly the CA in `ca_file` (PEM), with
    the certificate's name checked as always; None: the system's CAs (aioice's default)."""
    if ca_file is None:
        return None
    try:
        return ssl.create_default_context(cafile=str(ca_file))
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(
            f"kiosk.turn_ca_file {str(ca_file)!r} cannot be read as a PEM CA certificate "
            f"({exc.__class__.__name__}); give the clinic TURN server's CA certificate"
        ) from None


def _verify_turn_tls_with(pc: RTCPeerConnection, context: ssl.SSLContext) -> None:
    """aiortc gives aioice only "use TLS" (True: the system's CAs); aioice hands whatever it
    holds to asyncio as `ssl=`, so each ICE gatherer the connection makes gets `context`."""
    attr = _mangled(pc, RTCPeerConnection, "createDtlsTransport")
    create = getattr(pc, attr)

    def create_dtls_transport() -> Any:
        dtls = create()
        connection = dtls.transport.iceGatherer._connection
        if connection.turn_ssl is True:
            connection.turn_ssl = context
        return dtls

    setattr(pc, attr, create_dtls_transport)


_TLS_LOG_MARK = "_porchlight_turn_tls_log"


def _install_turn_tls_log() -> None:
    """Wrap aioice.turn.create_turn_endpoint once, so a TURN server whose certificate is not
    trusted is logged: aioice drops the error silently (no relayed candidate, no reason)."""
    current = aioice.turn.create_turn_endpoint
    if getattr(current, _TLS_LOG_MARK, False):
        return
    original = current

    @functools.wraps(original)
    async def create_turn_endpoint(*args: Any, **kwargs: Any) -> Any:
        try:
            return await original(*args, **kwargs)
        except ssl.SSLError as exc:
            host, port = kwargs.get("server_addr", ("?", 0))
            reason = getattr(exc, "verify_message", None) or exc.reason or str(exc)
            log.error(
                "refused the TURN server %s:%s over TLS: %s; if the clinic uses its own CA, "
                "set kiosk.turn_ca_file to its certificate",
                host,
                port,
                reason,
            )
            raise

    setattr(create_turn_endpoint, _TLS_LOG_MARK, True)
    aioice.turn.create_turn_endpoint = create_turn_endpoint


def _capabilities(kind: str, wanted: Sequence[str]) -> list[Any]:
    codecs = RTCRtpSender.getCapabilities(kind).codecs
    return [c for mime in wanted for c in codecs if c.mimeType.lower() == mime.lower()]


def prefer_codecs(transceiver: RTCRtpTransceiver) -> None:
    """VP8 for video, Opus for audio: what every browser speaks and what we measured."""
    if transceiver.kind == "video":
        transceiver.setCodecPreferences(_capabilities("video", VIDEO_CODECS))
    elif transceiver.kind == "audio":
        transceiver.setCodecPreferences(_capabilities("audio", AUDIO_CODECS))


async def complete_offer(pc: RTCPeerConnection, host_addresses: Iterable[str] = ()) -> str:
    """Create an offer and gather every candidate into it (no trickle); return the SDP."""
    with offer_host_addresses(host_addresses):
        await pc.setLocalDescription(await pc.createOffer())
    return pc.localDescription.sdp


async def complete_answer(
    pc: RTCPeerConnection,
    offer_sdp: str,
    host_addresses: Iterable[str] = (),
    *,
    prepare: Callable[[], None] = lambda: None,
) -> str:
    """Apply a remote offer, answer it with every candidate gathered; return the SDP.

    `prepare()` runs once the offer has made the transceivers and before anything connects
    (AdaptiveMedia.prepare installs Porchlight's encoders and receive fixes there).
    """
    await pc.setRemoteDescription(RTCSessionDescription(sdp=offer_sdp, type="offer"))
    for transceiver in pc.getTransceivers():
        prefer_codecs(transceiver)
    prepare()
    with offer_host_addresses(host_addresses):
        await pc.setLocalDescription(await pc.createAnswer())
    return pc.localDescription.sdp


async def apply_answer(pc: RTCPeerConnection, sdp: str) -> None:
    await pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="answer"))


# ---------------------------------------------------------------- frames


def frame_pixels(frame: av.VideoFrame) -> int:
    return int(frame.width) * int(frame.height)


def frame_to_rgb(
    frame: av.VideoFrame, max_width: int | None = None, crop: Crop | None = None
) -> numpy.ndarray:
    """HxWx3 uint8 RGB; scaled down (keeping the aspect) when wider than `max_width`.

    With `crop`, only those camera pixels (the close look, for the self-view): the whole
    frame is converted at the scale that makes the crop `max_width` wide, then cut.
    CPU work: call it from an executor for anything but small frames.
    """
    if crop is not None:
        scale = min(1.0, max_width / crop.width) if max_width else 1.0
        width = max(2, round(frame.width * scale) // 2 * 2)
        height = max(2, round(frame.height * scale) // 2 * 2)
        rgb = frame.to_ndarray(format="rgb24", width=width, height=height)
        sx, sy = width / frame.width, height / frame.height
        x0, y0 = round(crop.x * sx), round(crop.y * sy)
        x1, y1 = round((crop.x + crop.width) * sx), round((crop.y + crop.height) * sy)
        return numpy.ascontiguousarray(rgb[y0:y1, x0:x1])
    if max_width and frame.width > max_width:
        height = max(2, round(frame.height * max_width / frame.width) // 2 * 2)
        return frame.to_ndarray(format="rgb24", width=max_width, height=height)
    return frame.to_ndarray(format="rgb24")


JPEG_QSCALE = 2  # FFmpeg's MJPEG quantiser: 2 is about JPEG quality 90


def encode_jpeg(frame: av.VideoFrame) -> bytes:
    """One frame as a baseline JPEG at its own size (FFmpeg's MJPEG encoder).

    CPU work (about 7 ms for 1280x720 on the build machine): call it from an executor."""
    codec = av.CodecContext.create("mjpeg", "w")
    codec.width, codec.height = frame.width, frame.height
    codec.pix_fmt = "yuvj420p"  # full-range 4:2:0, what every JPEG decoder takes
    codec.time_base = fractions.Fraction(1, 1)
    codec.qmin = codec.qmax = JPEG_QSCALE
    # Own reformatter: the self-view may be converting the same frame on another thread.
    still = VideoReformatter().reformat(frame, format="yuvj420p")
    still.pts, still.time_base = 0, codec.time_base
    return b"".join(bytes(p) for p in [*codec.encode(still), *codec.encode(None)])


class ObservedTrack(MediaStreamTrack):
    """Passes a source track's frames to the encoder, showing each one to `observe` first.

    This is the camera tee: the self-view sees exactly what the clinician is sent.
    """

    def __init__(self, source: MediaStreamTrack, observe: Callable[[Any], None]) -> None:
        super().__init__()
        self.kind = source.kind
        self._source = source
        self._observe = observe

    async def recv(self) -> Any:
        frame = await self._source.recv()
        self._observe(frame)
        return frame

    def stop(self) -> None:
        super().stop()
        self._source.stop()


# ---------------------------------------------------------------- adaptive sending


def _reformat(
    reformatter: VideoReformatter, frame: av.VideoFrame, width: int, height: int
) -> av.VideoFrame:
    # Our own reformatter, not frame.reformat(): that one keeps a scaler on the frame, and the
    # self-view converts the same camera frame on another thread at the same time (two threads
    # in one swscale context hang or crash the process: seen in the network lab).
    out = reformatter.reformat(frame, width=width, height=height, format="yuv420p")
    out.pts, out.time_base = frame.pts, frame.time_base
    return out


class FrameCropper:
    """Cuts a rectangle out of frames with FFmpeg's crop filter (no copy, any pixel format).

    The filter graph is rebuilt when the frame's size or format or the rectangle changes.
    Used by one executor job at a time (like a VideoReformatter)."""

    def __init__(self) -> None:
        self._key: tuple[Any, ...] | None = None
        self._graph: Any = None

    def crop(self, frame: av.VideoFrame, crop: Crop) -> av.VideoFrame:
        time_base = frame.time_base or VIDEO_TIME_BASE
        key = (frame.width, frame.height, frame.format.name, time_base, crop)
        if key != self._key:
            graph = av.filter.Graph()
            source = graph.add_buffer(
                width=frame.width, height=frame.height, format=frame.format, time_base=time_base
            )
            cut = graph.add("crop", f"{crop.width}:{crop.height}:{crop.x}:{crop.y}:exact=1")
            sink = graph.add("buffersink")
            source.link_to(cut)
            cut.link_to(sink)
            graph.configure()
            self._graph, self._key = graph, key
        pts = frame.pts
        frame.pts = 0 if pts is None else pts
        try:
            self._graph.push(frame)
            out = self._graph.pull()
        finally:
            frame.pts = pts
        out.pts, out.time_base = pts, frame.time_base
        return out


def _crop_and_scale(
    cropper: FrameCropper,
    reformatter: VideoReformatter,
    frame: av.VideoFrame,
    crop: Crop,
    width: int,
    height: int,
) -> av.VideoFrame:
    return _reformat(reformatter, cropper.crop(frame, crop), width, height)


def _frame_time(frame: Any) -> float:
    t = frame.time
    return float(t) if t is not None else time.monotonic()


class ScaledTrack(MediaStreamTrack):
    """Camera frames for the encoder at the rung's size and frame rate (scaled off the loop).

    `set_rung(width, height, fps)`: fit each frame into width×height (aspect kept, never
    enlarged) and pass at most `fps` frames a second; fps 0 holds video back (audio-only)
    while still reading the camera, so nothing queues up. `on_frame` sees each frame sent.
    `set_region(region)`: the clinician's close look (kiosk/view_region.py): each frame is
    cut to `crop` before scaling (None: the whole frame).
    """

    kind = "video"

    def __init__(
        self,
        source: MediaStreamTrack,
        *,
        width: int,
        height: int,
        fps: float,
        executor: Executor | None = None,
        on_frame: Callable[[Any], None] = lambda frame: None,
    ) -> None:
        super().__init__()
        self._source = source
        self._box = (width, height)
        self._pacer = FramePacer(fps)
        self._executor = executor
        self._on_frame = on_frame
        self._reformatter = VideoReformatter()  # used by one executor job at a time
        self._cropper = FrameCropper()  # likewise
        self._region: Region | None = None
        self._look_box = (width, height)  # the last video rung (audio-only keeps the look)
        self._crop_key: tuple[Any, ...] | None = None
        self.crop: Crop | None = None  # the camera pixels sent now (None: the whole frame)
        self.source_size: tuple[int, int] | None = None
        self.sent_size: tuple[int, int] | None = None

    def set_rung(self, width: int, height: int, fps: float) -> None:
        self._box = (width, height)
        if fps > 0:
            self._look_box = (width, height)
        if fps != self._pacer.fps:
            self._pacer.set_fps(fps)

    def set_region(self, region: Region | None) -> None:
        self._region = region

    def _crop_for(self, width: int, height: int) -> Crop | None:
        key = (self._region, width, height, self._look_box)
        if key != self._crop_key:
            self._crop_key = key
            self.crop = crop_for(self._region, width, height, *self._look_box)
        return self.crop

    async def recv(self) -> Any:
        loop = asyncio.get_running_loop()
        while True:
            frame = await self._source.recv()
            self.source_size = (frame.width, frame.height)
            crop = self._crop_for(frame.width, frame.height)
            if not self._pacer.take(_frame_time(frame)):
                continue
            if crop is not None:
                width, height = fit_size(crop.width, crop.height, *self._box)
                frame = await loop.run_in_executor(
                    self._executor,
                    _crop_and_scale,
                    self._cropper,
                    self._reformatter,
                    frame,
                    crop,
                    width,
                    height,
                )
                self.sent_size = (frame.width, frame.height)
                self._on_frame(frame)
                return frame
            width, height = scaled_size(frame.width, frame.height, *self._box)
            if (width, height) != (frame.width, frame.height) or frame.format.name != "yuv420p":
                frame = await loop.run_in_executor(
                    self._executor, _reformat, self._reformatter, frame, width, height
                )
            self.sent_size = (frame.width, frame.height)
            self._on_frame(frame)
            return frame

    def stop(self) -> None:
        super().stop()
        self._source.stop()


@dataclass
class EncoderStats:
    """What the encoder did since the last `take()`; updated on the encoder's thread."""

    frames: int = 0
    bits: int = 0
    encode_s: float = 0.0  # time spent in libvpx
    skipped: int = 0  # frames the rate guard held back
    keyframes: int = 0
    rebuilds: int = 0


# libvpx options: aiortc's, except a quantizer ceiling of 63 (so the low rungs can reach
# their rate on a detailed picture) and keyframes capped at a few frames' worth of bits
# (a keyframe that takes seconds to cross a slow link is a freeze).
VP8_OPTIONS = {
    "cpu-used": "-6",
    "deadline": "realtime",
    "lag-in-frames": "0",
    "noise-sensitivity": "4",
    "overshoot-pct": "15",
    "partitions": "0",
    "static-thresh": "1",
    "undershoot-pct": "100",
    "max-intra-rate": "400",
}
VP8_QMAX = 63
VPX_CLOCK = 90_000
VPX_TIME_BASE = fractions.Fraction(1, VPX_CLOCK)


class AdaptiveVp8Encoder(aiortc_vpx.Vp8Encoder):
    """aiortc's VP8 encoder, steered by Porchlight instead of by REMB.

    aiortc's sender writes each REMB into `target_bitrate`; here that only records it (for
    the ladder) and `set_rate()` decides. The rate has no 250 kbit/s floor (the low rungs
    need far less), the libvpx target is calibrated so the output lands on the rate, and a
    token bucket skips frames while the output runs over. `encode()` runs on an executor
    thread; the loop talks to it only through `set_rate`, `request_keyframe` and `take_stats`.
    """

    def __init__(self, rate_bps: int = 300_000, *, fps: float = 0.0, cpu_used: int = -6) -> None:
        super().__init__()
        self._lock = threading.Lock()
        self._wanted = int(rate_bps)
        self._options = {**VP8_OPTIONS, "cpu-used": str(cpu_used)}
        self._calibrator = OvershootCalibrator()
        self._guard = RateGuard(self._wanted)
        self._keyframe = False
        self._rebuild = False
        self._codec_target = 0
        self._last_t: float | None = None
        self._fps = fps  # the rung's frame rate (0: unknown)
        self._vpts = 0  # libvpx's own clock, in VPX_TIME_BASE units
        self._stats = EncoderStats()
        self._reformatter = VideoReformatter()
        self.remb_bps: int | None = None
        self.remb_at: float | None = None  # time.monotonic()
        # Called (on the event loop, where aiortc handles RTCP) after each REMB.
        self.on_remb: Callable[[], None] = lambda: None

    # -- what aiortc's sender calls ----------------------------------------------------------

    @property
    def target_bitrate(self) -> int:
        return self._wanted

    @target_bitrate.setter
    def target_bitrate(self, bitrate: int) -> None:
        # aiortc's RTCRtpSender applies each REMB here; keep it as an input, nothing more.
        self.remb_bps = int(bitrate)
        self.remb_at = time.monotonic()
        self.on_remb()

    def encode(self, frame: Any, force_keyframe: bool = False) -> tuple[list[bytes], int | None]:
        t = _frame_time(frame)
        with self._lock:
            wanted = self._wanted
            keyframe = force_keyframe or self._keyframe
            self._keyframe = False
            rebuild = self._rebuild
            self._rebuild = False
        if not keyframe and not self._guard.allow(t):
            with self._lock:
                self._stats.skipped += 1
            return [], None
        # libvpx sizes each frame by its duration: a frame after a skipped one would get the
        # skipped one's bits too and the guard could never lower the rate, only the frame
        # rate. So libvpx sees one frame interval per frame on its own clock; the RTP
        # timestamp still comes from the camera's.
        if self._fps:
            dt = 1.0 / self._fps
        else:
            dt = 1 / 30 if self._last_t is None else max(0.0, min(1.0, t - self._last_t))
        self._last_t = t
        self._vpts += max(1, round(dt * VPX_CLOCK))
        if frame.format.name != "yuv420p":
            frame = self._reformatter.reformat(frame, format="yuv420p")
        target = self._calibrator.codec_target(wanted)
        codec = self.codec
        if (
            codec is None
            or rebuild
            or frame.width != codec.width
            or frame.height != codec.height
            or abs(target - self._codec_target) > 0.1 * self._codec_target
        ):
            self._open(frame.width, frame.height, target)
            keyframe = True  # a new encoder starts with one anyway; say so for the stats
        if keyframe:
            frame.pict_type = av.video.frame.PictureType.I
        pts, time_base = frame.pts, frame.time_base
        frame.pts, frame.time_base = self._vpts, VPX_TIME_BASE
        started = time.perf_counter()
        try:
            data = b"".join(bytes(p) for p in self.codec.encode(frame))
        finally:
            frame.pts, frame.time_base = pts, time_base
        spent = time.perf_counter() - started
        bits = len(data) * 8
        self._guard.spent(bits, t)
        if self._calibrator.observe(bits, dt, self._codec_target):
            with self._lock:
                self._rebuild = True
        with self._lock:
            st = self._stats
            st.frames += 1
            st.bits += bits
            st.encode_s += spent
            st.keyframes += int(keyframe)
        payloads = self._packetize(data, self.picture_id)
        timestamp = convert_timebase(frame.pts, frame.time_base, VIDEO_TIME_BASE)
        self.picture_id = (self.picture_id + 1) % (1 << 15)
        return payloads, timestamp

    def _open(self, width: int, height: int, target: int) -> None:
        codec = av.CodecContext.create("libvpx", "w")
        codec.width, codec.height = width, height
        codec.bit_rate = target
        codec.pix_fmt = "yuv420p"
        codec.time_base = VPX_TIME_BASE
        codec.gop_size = 3000  # keyframes only when asked (after a switch, or a PLI)
        codec.qmin, codec.qmax = 2, VP8_QMAX
        rate = str(target)
        codec.options = {**self._options, "bufsize": rate, "minrate": rate, "maxrate": rate}
        codec.thread_count = aiortc_vpx.number_of_threads(width * height, _cpus())
        self.codec = codec
        self._codec_target = target
        with self._lock:
            self._stats.rebuilds += 1

    # -- what Porchlight calls (from the loop) -----------------------------------------------

    def set_rate(self, rate_bps: int, fps: float = 0.0) -> None:
        """Send about `rate_bps` of video at about `fps` frames a second from the next frame
        on (with a keyframe)."""
        self._fps = fps
        with self._lock:
            if int(rate_bps) != self._wanted:
                self._wanted = int(rate_bps)
                self._keyframe = True
        self._guard.set_rate(rate_bps)

    def set_cap(self, cap_bps: float) -> None:
        """Hold the output to `cap_bps` (at most the rate) by skipping frames: no new
        encoder, no keyframe. For a receiver's REMB a little under the rung's rate."""
        self._guard.set_rate(min(float(self._wanted), cap_bps))

    def request_keyframe(self) -> None:
        with self._lock:
            self._keyframe = True

    def take_stats(self) -> EncoderStats:
        with self._lock:
            stats, self._stats = self._stats, EncoderStats()
        return stats


def _cpus() -> int:
    import os

    return os.cpu_count() or 1


OPUS_BPS = 32_000  # speech at 32 kbit/s: clear, and what the ladder reserves (with headers)


class SteadyOpusEncoder(aiortc_opus.OpusEncoder):
    """aiortc's Opus encoder at a fixed voice rate (aiortc's own is 96 kbit/s), with in-band
    FEC for receivers that use it (browsers). The ladder never touches audio."""

    def __init__(self, bitrate: int = OPUS_BPS) -> None:
        super().__init__()
        self.codec.bit_rate = bitrate
        self.codec.options = {"application": "voip", "fec": "1", "packet_loss": "5"}


def _mangled(obj: Any, cls: type, name: str) -> str:
    attr = f"_{cls.__name__}__{name}"
    if not hasattr(obj, attr):
        raise RuntimeError(
            f"aiortc's {cls.__name__} no longer has {name!r}: this aiortc release moved an "
            "internal that kiosk/rtc.py relies on (see tests/video/test_rtc_internals.py)"
        )
    return attr


def install_encoder(sender: RTCRtpSender, encoder: Any) -> None:
    """Make `sender` encode with `encoder` instead of the one aiortc would create."""
    setattr(sender, _mangled(sender, RTCRtpSender, "encoder"), encoder)


def install_retransmit_budget(
    sender: RTCRtpSender, budget: RetransmitBudget, rate_bps: Callable[[], float]
) -> None:
    """Answer NACKs through `budget` (aiortc resends every packet asked for, every time)."""
    original = sender._retransmit

    async def retransmit(sequence_number: int) -> None:
        if budget.allow(sequence_number, time.monotonic(), rate_bps()):
            await original(sequence_number)

    sender._retransmit = retransmit  # type: ignore[method-assign]


def request_keyframe_from(sender: RTCRtpSender) -> None:
    sender._send_keyframe()


# ---------------------------------------------------------------- the receive side


class _PlayoutAdapter:
    """Looks like aiortc's JitterBuffer to RTCRtpReceiver; decides with PlayoutBuffer."""

    def __init__(self, policy: PlayoutBuffer) -> None:
        self.policy = policy

    @property
    def capacity(self) -> int:
        return self.policy.capacity

    def add(self, packet: Any) -> tuple[bool, JitterFrame | None]:
        view = PacketView(
            packet.sequence_number, packet.timestamp, bool(packet.marker), packet._data
        )
        ask, frames = self.policy.add(view, time.monotonic())
        if not frames:
            return ask, None
        first = JitterFrame(frames[0].data, frames[0].timestamp)
        # The receiver takes one frame per packet; the rest ride along (see _DecoderQueue).
        first.porchlight_more = [JitterFrame(f.data, f.timestamp) for f in frames[1:]]  # type: ignore[attr-defined]
        return ask, first


class _DecoderQueue(queue.Queue):  # type: ignore[type-arg]
    """The receiver's decoder queue, which also queues the frames that rode along."""

    def __init__(self, mapper: Any) -> None:
        super().__init__()
        self._mapper = mapper

    def put(self, item: Any, block: bool = True, timeout: float | None = None) -> None:
        super().put(item, block, timeout)
        if item is None:
            return
        codec, frame = item
        for extra in getattr(frame, "porchlight_more", ()):
            extra.timestamp = self._mapper.map(extra.timestamp)
            super().put((codec, extra), block, timeout)


class _NackAdapter:
    """Looks like aiortc's NackGenerator: `add()` says whether to send a NACK for `missing`."""

    def __init__(self, policy: NackPolicy) -> None:
        self.policy = policy
        self.missing: list[int] = []

    def add(self, packet: Any) -> bool:
        self.missing = self.policy.add(packet.sequence_number, time.monotonic())
        return bool(self.missing)


@dataclass
class ReceiveFixes:
    """The policies now running inside one receiver (for tuning and diagnostics)."""

    kind: str
    playout: PlayoutBuffer
    nack: NackPolicy | None = None

    def set_rtt(self, rtt_s: float) -> None:
        """Wait for a retransmission about one and a half round trips, then give up."""
        if self.kind == "video":
            self.playout.max_wait_s = max(VIDEO_WAIT_S, 1.5 * rtt_s + 0.1)
        if self.nack is not None:
            self.nack.set_rtt(rtt_s)


VIDEO_WAIT_S = 0.25  # at least this long for a hole (a keyframe can take 150 ms to arrive)
AUDIO_WAIT_S = 0.06  # three packets: reordering, not retransmission (audio is not NACKed)


def install_receive_fixes(receiver: RTCRtpReceiver, kind: str) -> ReceiveFixes:
    """Replace the receiver's jitter buffer (and NACK generator, for video) with ours.

    Call before the connection starts receiving (its decoder thread takes the queue then).
    """
    thread = _mangled(receiver, RTCRtpReceiver, "decoder_thread")
    if getattr(receiver, thread) is not None:
        raise RuntimeError("install_receive_fixes() must run before the receiver starts")
    video = kind == "video"
    playout = PlayoutBuffer(video=video, max_wait_s=VIDEO_WAIT_S if video else AUDIO_WAIT_S)
    setattr(receiver, _mangled(receiver, RTCRtpReceiver, "jitter_buffer"), _PlayoutAdapter(playout))
    mapper = getattr(receiver, _mangled(receiver, RTCRtpReceiver, "timestamp_mapper"))
    setattr(receiver, _mangled(receiver, RTCRtpReceiver, "decoder_queue"), _DecoderQueue(mapper))
    fixes = ReceiveFixes(kind, playout)
    nack_attr = _mangled(receiver, RTCRtpReceiver, "nack_generator")
    if getattr(receiver, nack_attr) is not None:
        fixes.nack = NackPolicy()
        setattr(receiver, nack_attr, _NackAdapter(fixes.nack))
    return fixes


# ---------------------------------------------------------------- connection health


def tolerate_outages(seconds: float) -> None:
    """Keep ICE consent through an outage of up to `seconds` (aioice gives up after ~30 s).

    A process-wide aioice setting: every peer connection in this process gets it.
    """
    aioice.ice.CONSENT_FAILURES = max(
        aioice.ice.CONSENT_FAILURES, math.ceil(seconds / aioice.ice.CONSENT_INTERVAL) + 1
    )


@dataclass
class StreamStats:
    """One direction of one kind of media, from getStats (None: not reported yet)."""

    bytes_sent: int = 0
    packets_sent: int = 0
    fraction_lost: float | None = None  # 0-1, the receiver's last report
    packets_lost: int | None = None
    rtt_s: float | None = None
    jitter_s: float | None = None
    report_at: float | None = None  # when that receiver report arrived (time.time())
    packets_received: int = 0  # what we receive of this kind
    received_lost: int = 0


@dataclass
class CallStats:
    video: StreamStats = field(default_factory=StreamStats)
    audio: StreamStats = field(default_factory=StreamStats)


CLOCK_RATES = {"video": 90_000, "audio": 48_000}


async def read_stats(pc: RTCPeerConnection) -> CallStats:
    """getStats as plain numbers per kind (aiortc reports RTCP jitter in timestamp units and
    fractionLost as the raw 0-255 value)."""
    report = await pc.getStats()
    out = CallStats()
    for stat in report.values():
        kind = getattr(stat, "kind", None)
        if kind not in CLOCK_RATES:
            continue
        stream: StreamStats = getattr(out, kind)
        if stat.type == "outbound-rtp":
            stream.bytes_sent += stat.bytesSent
            stream.packets_sent += stat.packetsSent
        elif stat.type == "remote-inbound-rtp":
            stream.fraction_lost = stat.fractionLost / 256
            stream.packets_lost = stat.packetsLost
            stream.rtt_s = stat.roundTripTime
            stream.jitter_s = stat.jitter / CLOCK_RATES[kind]
            stream.report_at = stat.timestamp.timestamp()
        elif stat.type == "inbound-rtp":
            stream.packets_received += stat.packetsReceived
            stream.received_lost += stat.packetsLost
    return out

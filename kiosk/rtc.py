"""The one adapter between Porchlight and aiortc/aioice/av.

Everything that knows how aiortc, aioice or PyAV work inside lives here, so an upgrade breaks
one module and the checks in tests/kiosk/test_call_rtc.py say exactly what moved:

- peer connections always get an explicit RTCConfiguration (never aiortc's public STUN default);
- codec preferences: VP8 (+ RTX) for video, Opus for audio;
- host candidates: aioice never offers 127.0.0.1, and on a kiosk we may want to offer only
  certain addresses; `offer_host_addresses()` chooses them for gathering done inside it;
- frame conversion to RGB arrays for the screen, and a track wrapper that sees every frame the
  encoder takes (the self-view tee and the "frames sent" counter).
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

import aioice.ice
import av
import numpy
from aiortc import (
    MediaStreamTrack,
    RTCConfiguration,
    RTCIceServer,
    RTCPeerConnection,
    RTCRtpSender,
    RTCRtpTransceiver,
    RTCSessionDescription,
)

from porchlight.errors import BadInput

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


def new_peer_connection(ice_servers: Iterable[Mapping[str, Any]]) -> RTCPeerConnection:
    """A peer connection with exactly the hub's ICE servers (an empty list on a LAN)."""
    return RTCPeerConnection(RTCConfiguration(iceServers=ice_servers_from_hub(ice_servers)))


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
    pc: RTCPeerConnection, offer_sdp: str, host_addresses: Iterable[str] = ()
) -> str:
    """Apply a remote offer, answer it with every candidate gathered; return the SDP."""
    await pc.setRemoteDescription(RTCSessionDescription(sdp=offer_sdp, type="offer"))
    for transceiver in pc.getTransceivers():
        prefer_codecs(transceiver)
    with offer_host_addresses(host_addresses):
        await pc.setLocalDescription(await pc.createAnswer())
    return pc.localDescription.sdp


async def apply_answer(pc: RTCPeerConnection, sdp: str) -> None:
    await pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="answer"))


# ---------------------------------------------------------------- frames


def frame_pixels(frame: av.VideoFrame) -> int:
    return int(frame.width) * int(frame.height)


def frame_to_rgb(frame: av.VideoFrame, max_width: int | None = None) -> numpy.ndarray:
    """HxWx3 uint8 RGB; scaled down (keeping the aspect) when wider than `max_width`.

    CPU work: call it from an executor for anything but small frames.
    """
    if max_width and frame.width > max_width:
        height = max(2, round(frame.height * max_width / frame.width) // 2 * 2)
        return frame.to_ndarray(format="rgb24", width=max_width, height=height)
    return frame.to_ndarray(format="rgb24")


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

"""kiosk/rtc.py's hooks into aiortc: still where they were, and doing their job.

The first group fails loudly, naming what moved, if an aiortc/aioice release changes an
internal the adaptive media relies on. The second runs a real call over loopback between two
peer connections set up like the kiosk's and checks the hooks end to end.
"""

from __future__ import annotations

import asyncio
import inspect

import aioice.ice
import av
import pytest
from aiortc import RTCRtpReceiver, RTCRtpSender
from aiortc.codecs import opus as aiortc_opus
from aiortc.codecs import vpx as aiortc_vpx
from aiortc.jitterbuffer import JitterFrame
from aiortc.rtcdtlstransport import RTCCertificate, RTCDtlsTransport
from aiortc.rtcicetransport import RTCIceGatherer, RTCIceTransport
from aiortc.stats import RTCRemoteInboundRtpStreamStats

from porchlight.device.av_source import AvSourceTrack
from porchlight.kiosk import rtc
from porchlight.kiosk.adaptive_media import AdaptiveMedia
from porchlight.kiosk.ladder import LadderConfig


def names(fn) -> set[str]:
    return set(fn.__code__.co_names)


def dtls() -> RTCDtlsTransport:
    return RTCDtlsTransport(
        RTCIceTransport(RTCIceGatherer()), [RTCCertificate.generateCertificate()]
    )


# ---------------------------------------------------------------- what must not move


async def test_sender_internals_used_by_install_encoder_and_the_budget() -> None:
    sender = RTCRtpSender("video", dtls())
    assert hasattr(sender, "_RTCRtpSender__encoder"), "RTCRtpSender.__encoder is gone"
    assert sender._RTCRtpSender__encoder is None
    assert {"_RTCRtpSender__encoder", "get_encoder"} <= names(sender._next_encoded_frame), (
        "RTCRtpSender no longer creates its encoder lazily in _next_encoded_frame: "
        "rtc.install_encoder() would be overwritten"
    )
    rtcp = names(RTCRtpSender._handle_rtcp_packet)
    assert {"target_bitrate", "_retransmit", "_send_keyframe"} <= rtcp, (
        "RTCRtpSender's RTCP handling no longer writes REMB to target_bitrate, resends "
        "through _retransmit or asks for keyframes with _send_keyframe"
    )
    assert inspect.iscoroutinefunction(RTCRtpSender._retransmit)


async def test_receiver_internals_used_by_install_receive_fixes() -> None:
    for kind in ("video", "audio"):
        receiver = RTCRtpReceiver(kind, dtls())
        for name in ("jitter_buffer", "nack_generator", "decoder_queue", "decoder_thread"):
            assert hasattr(receiver, f"_RTCRtpReceiver__{name}"), f"__{name} is gone"
        assert hasattr(receiver, "_RTCRtpReceiver__timestamp_mapper")
    handle = names(RTCRtpReceiver._handle_rtp_packet)
    assert {"add", "missing", "_send_rtcp_nack", "_send_rtcp_pli", "put", "map"} <= handle, (
        "RTCRtpReceiver._handle_rtp_packet changed how it uses the jitter buffer, the NACK "
        "generator or the decoder queue"
    )
    assert "_RTCRtpReceiver__decoder_queue" in names(RTCRtpReceiver.receive), (
        "the decoder thread no longer takes the receiver's queue when receive() starts"
    )
    assert list(inspect.signature(JitterFrame).parameters) == ["data", "timestamp"]


def test_codec_internals_reused_by_the_encoders() -> None:
    assert callable(aiortc_vpx.Vp8Encoder._packetize)
    assert hasattr(aiortc_vpx.Vp8Encoder(), "picture_id")
    assert aiortc_vpx.number_of_threads(640 * 480, 2) >= 1
    assert isinstance(aiortc_opus.OpusEncoder().codec, av.CodecContext)
    fields = RTCRemoteInboundRtpStreamStats.__dataclass_fields__
    assert {"fractionLost", "roundTripTime", "jitter", "packetsLost"} <= set(fields)


def test_aioice_consent_settings_are_still_read_at_run_time() -> None:
    assert isinstance(aioice.ice.CONSENT_FAILURES, int)
    assert isinstance(aioice.ice.CONSENT_INTERVAL, int | float)
    consent = aioice.ice.Connection.query_consent
    assert {"CONSENT_FAILURES", "CONSENT_INTERVAL"} <= names(consent), (
        "aioice's consent check no longer reads CONSENT_FAILURES: rtc.tolerate_outages() "
        "has no effect"
    )


def test_tolerate_outages_raises_the_consent_limit_only() -> None:
    before = aioice.ice.CONSENT_FAILURES
    rtc.tolerate_outages(1.0)
    assert before == aioice.ice.CONSENT_FAILURES
    rtc.tolerate_outages(40.0)
    assert aioice.ice.CONSENT_FAILURES * aioice.ice.CONSENT_INTERVAL >= 40


async def test_install_receive_fixes_refuses_a_receiver_that_already_started() -> None:
    receiver = RTCRtpReceiver("video", dtls())
    receiver._RTCRtpReceiver__decoder_thread = object()
    with pytest.raises(RuntimeError, match="before the receiver starts"):
        rtc.install_receive_fixes(receiver, "video")


# ---------------------------------------------------------------- working end to end


def camera(size: str = "640x360", fps: int = 30) -> AvSourceTrack:
    return AvSourceTrack.lavfi(
        "video", f"testsrc2=size={size}:rate={fps}", description="test camera", keep=2
    )


async def frames_of(track, count: int, timeout: float) -> list:
    out = []

    async def pull() -> None:
        while len(out) < count:
            out.append(await track.recv())

    await asyncio.wait_for(pull(), timeout)
    return out


async def test_a_loopback_call_with_the_adaptive_stack_on_both_ends() -> None:
    kiosk, clinic = rtc.new_peer_connection([]), rtc.new_peer_connection([])
    sender = AdaptiveMedia(kiosk, ladder_config=LadderConfig(max_height=360), start_bps=2e6)
    receiver = AdaptiveMedia(clinic)
    tracks: asyncio.Queue = asyncio.Queue()
    clinic.on("track", tracks.put_nowait)
    try:
        video = sender.video_track(camera())
        rtc.prefer_codecs(kiosk.addTransceiver(video, direction="sendonly"))
        sender.prepare()
        offer = await rtc.complete_offer(kiosk, ["127.0.0.1"])
        answer = await rtc.complete_answer(clinic, offer, ["127.0.0.1"], prepare=receiver.prepare)
        await rtc.apply_answer(kiosk, answer)
        assert sender.encoder is not None and receiver.receive
        track = await asyncio.wait_for(tracks.get(), 10)
        first = await frames_of(track, 10, 20)
        assert (first[-1].width, first[-1].height) == (640, 360)  # 360p30 for a 2 Mbit/s probe

        # The rung changes: the scaler and encoder follow, with a keyframe, no renegotiation.
        keyframes_before = sender.encoder.take_stats().keyframes
        rung = next(r for r in sender.ladder.rungs if r.name == "180p15")
        sender._apply(rung)
        later = await frames_of(track, 40, 20)
        assert (later[-1].width, later[-1].height) == (320, 180)
        assert sender.encoder.take_stats().keyframes + keyframes_before >= 1
        assert sender.encoder.target_bitrate == rung.video_bps

        # Our playout buffer delivered those frames, and aiortc's REMB reached the encoder
        # as a number only (the rate stayed the rung's).
        video_fixes = next(f for f in receiver.receive if f.kind == "video")
        assert video_fixes.playout.skipped_holes == 0
        await asyncio.wait_for(_until(lambda: sender.encoder.remb_bps is not None), 10)
        assert sender.encoder.target_bitrate == rung.video_bps
    finally:
        await kiosk.close()
        await clinic.close()


async def _until(predicate) -> None:
    while not predicate():
        await asyncio.sleep(0.05)

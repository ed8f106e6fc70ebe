"""The bandwidth ladder at work on one peer connection.

`AdaptiveMedia` puts Porchlight's sending and receiving in place on a peer connection's
transceivers (through kiosk/rtc.py) and then, once a second, reads getStats and the encoder,
asks the pure ladder (kiosk/ladder.py) for a rung and applies it: the camera frames are
scaled and paced before the encoder, the encoder gets the rung's rate and a keyframe. A REMB
cut is acted on at once rather than at the next tick. `snapshot()` is the link report the
clinician sees (docs/protocol.md, `stats`).

Both ends use it: the kiosk's CallSession, and the clinician twin (porchlight/clinician_peer).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiortc import MediaStreamTrack, RTCPeerConnection

from porchlight.kiosk import rtc
from porchlight.kiosk.ladder import Decision, Ladder, LadderConfig, LinkSample, Rung
from porchlight.kiosk.send_policy import RetransmitBudget

log = logging.getLogger(__name__)

INTERVAL_S = 1.0
HEADER_BYTES = 62  # RTP + header extensions + SRTP tag + UDP + IPv4, per packet
REMB_REACT_GAP_S = 0.2  # act on a REMB cut at once, but not more often than this
# Receiver reports come every 0.5-1.5 s; a longer silence was an outage.
REPORT_GAP_S = 3.0


@dataclass(frozen=True)
class LinkReport:
    """What the clinician page shows about the patient's picture and link."""

    rung: str
    width: int
    height: int
    fps: float
    video_kbps: float
    audio_kbps: float
    loss: float  # 0-1
    rtt_ms: float | None
    jitter_ms: float | None
    quality: str  # good / fair / poor
    audio_only: bool

    def as_message(self) -> dict[str, Any]:
        return {
            "rung": self.rung,
            "width": self.width,
            "height": self.height,
            "fps": round(self.fps, 1),
            "video_kbps": round(self.video_kbps),
            "audio_kbps": round(self.audio_kbps),
            "loss": round(self.loss, 3),
            "rtt_ms": None if self.rtt_ms is None else round(self.rtt_ms),
            "jitter_ms": None if self.jitter_ms is None else round(self.jitter_ms, 1),
            "quality": self.quality,
            "audio_only": self.audio_only,
        }


class AdaptiveMedia:
    def __init__(
        self,
        pc: RTCPeerConnection,
        *,
        ladder_config: LadderConfig | None = None,
        start_bps: float | None = None,
        on_decision: Callable[[Decision], None] = lambda d: None,
        clock: Callable[[], float] = time.monotonic,
        cpu_used: int = -6,
    ) -> None:
        self._pc = pc
        self._clock = clock
        self._config = ladder_config or LadderConfig()
        self._start_bps = start_bps
        self._on_decision = on_decision
        self._cpu_used = cpu_used
        self.ladder: Ladder | None = None
        self.encoder: rtc.AdaptiveVp8Encoder | None = None
        self.scaled: rtc.ScaledTrack | None = None
        self.receive: list[rtc.ReceiveFixes] = []
        self.retransmits = RetransmitBudget()
        self.decisions: list[tuple[float, Decision]] = []  # the call's rung history
        self.samples: list[LinkSample] = []  # kept for recorded traces (bench, tests)
        self.report: LinkReport | None = None
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._last_update = float("-inf")
        self._prev: tuple[float, rtc.CallStats] | None = None

    # ------------------------------------------------------------ setting up

    def video_track(
        self, camera: MediaStreamTrack, on_frame: Callable[[Any], None] = lambda f: None
    ) -> rtc.ScaledTrack:
        """Wrap the camera so the ladder sets its size and frame rate. Call once."""
        self.ladder = Ladder(self._config, start_bps=self._start_bps, now=self._clock())
        rung = self.ladder.rung
        self.scaled = rtc.ScaledTrack(
            camera, width=rung.width, height=rung.height, fps=rung.fps, on_frame=on_frame
        )
        return self.scaled

    def prepare(self) -> None:
        """Install encoders and receive fixes on every transceiver. Call after the tracks
        are added (and, when answering, after the offer is applied) and before connecting."""
        for transceiver in self._pc.getTransceivers():
            sender = transceiver.sender
            if sender.track is not None and sender.track is self.scaled:
                assert self.ladder is not None
                rung = self.ladder.rung
                self.encoder = rtc.AdaptiveVp8Encoder(
                    rung.video_bps or 100_000, fps=rung.fps, cpu_used=self._cpu_used
                )
                self.encoder.on_remb = self._remb_check
                rtc.install_encoder(sender, self.encoder)
                rtc.install_retransmit_budget(sender, self.retransmits, self._video_rate)
            elif sender.track is not None and sender.kind == "audio":
                rtc.install_encoder(sender, rtc.SteadyOpusEncoder())
            if transceiver.direction in ("sendrecv", "recvonly"):
                fixes = rtc.install_receive_fixes(transceiver.receiver, transceiver.kind)
                self.receive.append(fixes)

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="porchlight-adaptive-media")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    # ------------------------------------------------------------ the loop

    def _video_rate(self) -> float:
        return self.ladder.rung.video_bps if self.ladder is not None else 0.0

    async def _run(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._next_wait())
            self._wake.clear()
            try:
                await self._update()
            except Exception:  # a bad stats read must not end adaptation for the call
                log.exception("link adaptation step failed")

    def _next_wait(self) -> float:
        return max(0.05, INTERVAL_S - (self._clock() - self._last_update))

    def _remb_check(self) -> None:
        """Between ticks: a REMB under what we send is acted on at once."""
        enc, ladder = self.encoder, self.ladder
        if enc is None or ladder is None or enc.remb_bps is None or ladder.rung.audio_only:
            return
        cut = enc.remb_bps < 0.9 * ladder.wire_bps(ladder.rung)
        if cut and self._clock() - self._last_update >= REMB_REACT_GAP_S:
            self._wake.set()

    async def _update(self) -> None:
        now = self._clock()
        stats = await rtc.read_stats(self._pc)
        prev, self._prev = self._prev, (now, stats)
        self._last_update = now
        for fixes in self.receive:
            rtt = stats.video.rtt_s or stats.audio.rtt_s
            if rtt:
                fixes.set_rtt(rtt)
        if prev is None or now - prev[0] <= 0:
            return
        dt = now - prev[0]
        video_bps = _rate(stats.video, prev[1].video, dt)
        audio_bps = _rate(stats.audio, prev[1].audio, dt)
        enc_stats = self.encoder.take_stats() if self.encoder is not None else None
        if self.ladder is None:
            return
        ladder = self.ladder
        video_flowing = not ladder.rung.audio_only
        kind = "video" if video_flowing and stats.video.fraction_lost is not None else "audio"
        loss = getattr(stats, kind).fraction_lost
        if self._report_gap(getattr(stats, kind), getattr(prev[1], kind)):
            # The first report after an outage counts what the outage lost: that says
            # nothing about how much the link carries.
            loss = None
        enc = self.encoder
        sample = LinkSample(
            now=now,
            sent_bps=video_bps + audio_bps,
            remb_bps=enc.remb_bps if enc is not None else None,
            remb_at=enc.remb_at if enc is not None else None,
            loss=loss,
            rtt_s=stats.video.rtt_s or stats.audio.rtt_s,
            jitter_s=stats.video.jitter_s if video_flowing else stats.audio.jitter_s,
            encode_s=(
                enc_stats.encode_s / enc_stats.frames
                if enc_stats is not None and enc_stats.frames
                else None
            ),
        )
        if sample.rtt_s is not None and sample.rtt_s <= 0:
            # aiortc's RTT from the receiver report can come out below zero: not a measurement
            sample = dataclasses.replace(sample, rtt_s=None)
        self.samples.append(sample)
        decision = ladder.update(sample)
        if decision.changed:
            self._apply(decision.rung)
            log.info("rung %s (%s)", decision.rung.name, decision.reason)
        if self.encoder is not None and not decision.rung.audio_only:
            self.encoder.set_cap(decision.video_cap_bps)
        self.decisions.append((now, decision))
        fps = enc_stats.frames / dt if enc_stats is not None else 0.0
        size = self.scaled.sent_size if self.scaled is not None else None
        self.report = LinkReport(
            rung=decision.rung.name,
            width=0 if decision.rung.audio_only or size is None else size[0],
            height=0 if decision.rung.audio_only or size is None else size[1],
            fps=0.0 if decision.rung.audio_only else fps,
            video_kbps=video_bps / 1000,
            audio_kbps=audio_bps / 1000,
            loss=sample.loss or 0.0,
            rtt_ms=None if sample.rtt_s is None else sample.rtt_s * 1000,
            jitter_ms=None if sample.jitter_s is None else sample.jitter_s * 1000,
            quality=decision.quality,
            audio_only=decision.rung.audio_only,
        )
        self._on_decision(decision)

    @staticmethod
    def _report_gap(now: rtc.StreamStats, before: rtc.StreamStats) -> bool:
        if now.report_at is None or before.report_at is None or now.report_at == before.report_at:
            return False
        return now.report_at - before.report_at > REPORT_GAP_S

    def _apply(self, rung: Rung) -> None:
        if self.scaled is not None:
            self.scaled.set_rung(rung.width or 2, rung.height or 2, rung.fps)
        if self.encoder is not None and not rung.audio_only:
            self.encoder.set_rate(rung.video_bps, rung.fps)
            self.encoder.request_keyframe()  # a clean start at the new size, even if lost


def _rate(now: rtc.StreamStats, before: rtc.StreamStats, dt: float) -> float:
    payload = max(0, now.bytes_sent - before.bytes_sent)
    packets = max(0, now.packets_sent - before.packets_sent)
    return (payload + packets * HEADER_BYTES) * 8 / dt

"""The kiosk's microphone as an aiortc audio track, and (re-exported) its speakers.

Microphone frames are always 20 ms of 48 kHz mono s16, whatever the source:

* "tone": quiet, soft beeps from FFmpeg's lavfi (a 440 Hz tone, 0.3 s with a raised-cosine
  envelope every 2 s, peaking at -20 dBFS), in real time: easy on a clinician's ears.
* anything else: an ALSA capture device, read through `arecord` (alsa-utils). The system's
  arecord is used rather than av's own ALSA input because the ALSA library bundled in the
  av wheel does not find the system's ALSA configuration or its plugins (Pulse, PipeWire).
"""

from __future__ import annotations

import asyncio
import contextlib
import fractions
import logging
from typing import Any

import av
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from porchlight.device.av_source import AUDIO_FRAME_SAMPLES, AUDIO_RATE, AvSourceTrack
from porchlight.device.config import TONE_MICROPHONE, DeviceConfig
from porchlight.device.speaker import AlsaSpeaker, SimSpeaker, Sound, Speaker, tone_wav
from porchlight.device.tools import DEVNULL, PIPE, last_message, require_tool, start_tool

__all__ = [
    "AUDIO_FRAME_SAMPLES",
    "AUDIO_RATE",
    "AlsaSpeaker",
    "ArecordTrack",
    "SimSpeaker",
    "Sound",
    "Speaker",
    "open_microphone",
    "open_speaker",
    "tone_wav",
]

log = logging.getLogger(__name__)

ARECORD = "arecord"
# Commas inside the expression are protected by the quotes from lavfi's filter-graph parser.
TONE_GRAPH = (
    "aevalsrc=exprs='0.1*sin(2*PI*440*t)*lt(mod(t,2),0.3)*(1-cos(2*PI*mod(t,2)/0.3))/2'"
    f":s={AUDIO_RATE}:n={AUDIO_FRAME_SAMPLES}"
)
# About 200 ms of tone may wait for a slow consumer before the oldest is dropped.
KEEP_TONE_FRAMES = 10


def open_microphone(config: DeviceConfig) -> MediaStreamTrack:
    """An audio track; the source opens on the first recv()."""
    if config.microphone == TONE_MICROPHONE:
        return AvSourceTrack.lavfi(
            "audio", TONE_GRAPH, description="the test-tone microphone", keep=KEEP_TONE_FRAMES
        )
    return ArecordTrack(config.microphone)


def open_speaker(config: DeviceConfig) -> Speaker:
    """The speaker config.speaker names: "sim" or "alsa"."""
    if config.speaker == "alsa":
        return AlsaSpeaker(
            device=config.speaker_device,
            voice=config.voice,
            wpm=config.speech_wpm,
            speech=config.speech,
        )
    return SimSpeaker(
        voice=config.voice,
        wpm=config.speech_wpm,
        speech=config.speech,
        wav_dir=config.sim_audio_dir,
    )


class ArecordTrack(MediaStreamTrack):
    """An ALSA capture device, read as raw 48 kHz mono s16 from an arecord subprocess."""

    kind = "audio"

    def __init__(self, device: str, *, arecord: str = ARECORD) -> None:
        super().__init__()
        require_tool(
            arecord, package="alsa-utils", instead=f"device.microphone = {TONE_MICROPHONE}"
        )
        self.device = device
        self.error: str | None = None
        self._arecord = arecord
        self._proc: asyncio.subprocess.Process | None = None
        self._samples = 0
        self._time_base = fractions.Fraction(1, AUDIO_RATE)

    async def recv(self) -> Any:
        if self.readyState != "live":
            raise MediaStreamError
        if self._proc is None:
            self._proc = await self._start()
        assert self._proc.stdout is not None
        try:
            data = await self._proc.stdout.readexactly(AUDIO_FRAME_SAMPLES * 2)
        except asyncio.IncompleteReadError:
            await self._failed()
            raise MediaStreamError from None
        frame = av.AudioFrame(format="s16", layout="mono", samples=AUDIO_FRAME_SAMPLES)
        frame.planes[0].update(data)
        frame.sample_rate = AUDIO_RATE
        frame.pts = self._samples
        frame.time_base = self._time_base
        self._samples += AUDIO_FRAME_SAMPLES
        return frame

    async def _start(self) -> asyncio.subprocess.Process:
        try:
            return await start_tool(
                self._arecord,
                *("-q", "-D", self.device, "-t", "raw", "-f", "S16_LE"),
                *("-r", str(AUDIO_RATE), "-c", "1"),
                package="alsa-utils",
                instead=f"device.microphone = {TONE_MICROPHONE}",
                stdin=DEVNULL,
                stdout=PIPE,
            )
        except OSError as exc:
            # aiortc ends a track on MediaStreamError; anything else would kill its sender.
            self.error = f"cannot start {self._arecord}: {exc}"
            log.warning("%s", self.error)
            self.stop()
            raise MediaStreamError from None

    async def _failed(self) -> None:
        proc = self._proc
        if proc is None:
            return
        err = await proc.stderr.read() if proc.stderr else b""
        code = await proc.wait()
        self.error = (
            f"microphone {self.device!r} stopped (exit {code}): {last_message(err)}; "
            "check device.microphone (arecord -L lists the devices)"
        )
        log.warning("%s", self.error)
        self.stop()

    async def wait_closed(self) -> None:
        """After stop(): wait until arecord has exited and its pipes are closed."""
        proc = self._proc
        if proc is None:
            return
        for pipe in (proc.stdout, proc.stderr):
            if pipe is not None:
                await pipe.read()  # to the end, so the pipes are done with
        await proc.wait()

    def stop(self) -> None:
        super().stop()
        proc = self._proc
        if proc is not None and proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()

"""What the kiosk plays: a confirmation beep, spoken prompts, and the far end's call audio.

Two backends with one interface (`Speaker`):

* `AlsaSpeaker` plays through `aplay` (alsa-utils) as asyncio subprocesses, so nothing
  blocks the loop and the system's own ALSA setup (dmix, PipeWire/Pulse plugins) applies.
* `SimSpeaker` plays nothing: it records what it was asked to play, with timestamps, counts
  call-audio frames, and can write its beeps and speech to a folder as WAV files.

A new beep or prompt stops the one still playing: the newest feedback is the one that
matters to the patient. Call audio plays alongside.
"""

from __future__ import annotations

import array
import asyncio
import contextlib
import io
import logging
import math
import shutil
import tempfile
import time
import wave
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import av
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from porchlight.device.speech import ESPEAK, synthesize
from porchlight.device.tools import DEVNULL, PIPE, last_message, require_tool, start_tool
from porchlight.errors import DeviceFault

log = logging.getLogger(__name__)

APLAY = "aplay"
CALL_AUDIO_RATE = 48000
CALL_AUDIO_CHANNELS = 2


@runtime_checkable
class Speaker(Protocol):
    call_audio_frames: int  # frames of far-end audio played (or, simulated, received)

    async def beep(self) -> None:
        """A short confirmation tone; starts within 50 ms, returns when it has played."""

    async def say(self, text: str) -> None:
        """Speak `text` (offline, espeak-ng); returns when spoken. No-op if speech is off."""

    def play_call_audio(self, track: MediaStreamTrack) -> None:
        """Play the far end's audio track until it ends or stop_call_audio() is called."""

    async def stop_call_audio(self) -> None: ...

    async def close(self) -> None: ...


def tone_wav(
    frequency: float = 880.0,
    seconds: float = 0.15,
    volume: float = 0.35,
    rate: int = 48000,
    fade_s: float = 0.01,
) -> bytes:
    """A mono 16-bit WAV of a sine tone with short fades, so it starts and ends without a click."""
    count = int(seconds * rate)
    fade = max(1, int(fade_s * rate))
    samples = array.array("h")
    for i in range(count):
        envelope = min(1.0, i / fade, (count - 1 - i) / fade)
        samples.append(
            int(32767 * volume * envelope * math.sin(2 * math.pi * frequency * i / rate))
        )
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(samples.tobytes())
    return buffer.getvalue()


class _CallAudio:
    """Consuming the far end's audio track: the part both speakers share."""

    def __init__(self) -> None:
        self.call_audio_frames = 0
        self.call_audio_samples = 0
        self._call_task: asyncio.Task[None] | None = None

    @property
    def call_audio_playing(self) -> bool:
        return self._call_task is not None and not self._call_task.done()

    def play_call_audio(self, track: MediaStreamTrack) -> None:
        previous = self._call_task
        if previous is not None:
            previous.cancel()
        self._call_task = asyncio.get_running_loop().create_task(self._consume(track, previous))

    async def stop_call_audio(self) -> None:
        task, self._call_task = self._call_task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def _consume(self, track: MediaStreamTrack, previous: asyncio.Task[None] | None) -> None:
        if previous is not None:
            await asyncio.gather(previous, return_exceptions=True)
        try:
            while True:
                try:
                    frame = await track.recv()
                except MediaStreamError:
                    return
                self.call_audio_frames += 1
                self.call_audio_samples += frame.samples
                await self._call_audio_frame(frame)
        finally:
            await self._call_audio_ended()

    async def _call_audio_frame(self, frame: Any) -> None:
        raise NotImplementedError

    async def _call_audio_ended(self) -> None:
        raise NotImplementedError


@dataclass(frozen=True)
class Sound:
    kind: str  # "beep" or "say"
    at: float  # clock time when it started
    text: str | None = None
    wav: Path | None = None  # where it was written, when the speaker has a folder


class SimSpeaker(_CallAudio):
    def __init__(
        self,
        *,
        voice: str = "en-gb",
        wpm: int = 150,
        speech: bool = True,
        wav_dir: Path | None = None,
        clock: Callable[[], float] = time.monotonic,
        espeak: str = ESPEAK,
    ) -> None:
        super().__init__()
        self.voice = voice
        self.wpm = wpm
        self.speech = speech
        self.wav_dir = wav_dir
        self.sounds: list[Sound] = []
        self._clock = clock
        self._espeak = espeak
        self._changed = asyncio.Condition()
        self._beep = tone_wav()

    @property
    def beeps(self) -> list[Sound]:
        return [s for s in self.sounds if s.kind == "beep"]

    @property
    def said(self) -> list[str]:
        return [s.text or "" for s in self.sounds if s.kind == "say"]

    async def beep(self) -> None:
        sound = await self._record("beep", None)
        if sound.wav is not None:
            await asyncio.to_thread(sound.wav.write_bytes, self._beep)

    async def say(self, text: str) -> None:
        if not self.speech:
            return
        sound = await self._record("say", text)
        if sound.wav is not None:
            await synthesize(text, sound.wav, voice=self.voice, wpm=self.wpm, espeak=self._espeak)

    async def wait_until(
        self, predicate: Callable[[SimSpeaker], bool], timeout: float = 5.0
    ) -> None:
        """Wait until `predicate(self)` holds (checked on every sound and call-audio frame)."""
        async with self._changed:
            await asyncio.wait_for(self._changed.wait_for(lambda: predicate(self)), timeout)

    async def _record(self, kind: str, text: str | None) -> Sound:
        wav = None
        if self.wav_dir is not None:
            wav = self.wav_dir / f"{len(self.sounds):04d}-{kind}.wav"
        sound = Sound(kind, self._clock(), text, wav)
        self.sounds.append(sound)
        await self._notify()
        return sound

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    async def _call_audio_frame(self, frame: Any) -> None:
        await self._notify()

    async def _call_audio_ended(self) -> None:
        await self._notify()

    async def close(self) -> None:
        await self.stop_call_audio()


class AlsaSpeaker(_CallAudio):
    def __init__(
        self,
        *,
        device: str = "default",
        voice: str = "en-gb",
        wpm: int = 150,
        speech: bool = True,
        call_buffer_s: float = 0.12,
        aplay: str = APLAY,
        espeak: str = ESPEAK,
    ) -> None:
        super().__init__()
        require_tool(aplay, package="alsa-utils", instead="device.speaker = sim")
        self.device = device
        self.voice = voice
        self.wpm = wpm
        self.speech = speech
        self._call_buffer_us = int(call_buffer_s * 1_000_000)
        self._aplay = aplay
        self._espeak = espeak
        self._beep = tone_wav()
        self._playing: asyncio.subprocess.Process | None = None
        self._preempted: set[int] = set()
        self._sounds_started = 0
        self._call_player: asyncio.subprocess.Process | None = None
        self._call_resampler: Any = None
        self._call_broken = False

    async def beep(self) -> None:
        await self._play(self._beep)

    async def say(self, text: str) -> None:
        if not self.speech:
            return
        folder = Path(await asyncio.to_thread(tempfile.mkdtemp, prefix="porchlight-say-"))
        try:
            wav = await synthesize(
                text, folder / "say.wav", voice=self.voice, wpm=self.wpm, espeak=self._espeak
            )
            await self._play(await asyncio.to_thread(wav.read_bytes))
        finally:
            await asyncio.to_thread(shutil.rmtree, folder, True)

    async def _play(self, wav: bytes) -> None:
        self._stop_playing()  # the newest sound wins
        self._sounds_started += 1
        mine = self._sounds_started
        proc = await self._aplay_process("-")
        if mine == self._sounds_started:
            self._playing = proc
        else:  # a newer sound started while this aplay was starting
            self._preempted.add(proc.pid)
            proc.terminate()
        try:
            _, err = await proc.communicate(wav)
        finally:
            if self._playing is proc:
                self._playing = None
        if proc.pid in self._preempted:
            self._preempted.discard(proc.pid)
        elif proc.returncode != 0:
            raise DeviceFault(self._alsa_error(err, proc.returncode))

    def _stop_playing(self) -> None:
        proc, self._playing = self._playing, None
        if proc is not None and proc.returncode is None:
            self._preempted.add(proc.pid)
            with contextlib.suppress(ProcessLookupError):
                proc.terminate()

    async def _aplay_process(self, *args: str) -> asyncio.subprocess.Process:
        return await start_tool(
            self._aplay,
            *("-q", "-D", self.device, *args),
            package="alsa-utils",
            instead="device.speaker = sim",
            stdin=PIPE,
            stdout=DEVNULL,
        )

    def _alsa_error(self, err: bytes, code: int | None) -> str:
        return (
            f"cannot play through ALSA device {self.device!r} (exit {code}): "
            f"{last_message(err)}; check device.speaker_device (aplay -L lists the devices)"
        )

    async def _call_audio_frame(self, frame: Any) -> None:
        if self._call_broken:
            return  # keep consuming so the track does not back up; the fault is logged
        if self._call_player is None:
            self._call_player = await self._aplay_process(
                *("-t", "raw", "-f", "S16_LE", "-r", str(CALL_AUDIO_RATE)),
                *("-c", str(CALL_AUDIO_CHANNELS), f"--buffer-time={self._call_buffer_us}", "-"),
            )
            self._call_resampler = av.AudioResampler(
                format="s16", layout="stereo", rate=CALL_AUDIO_RATE
            )
        stdin = self._call_player.stdin
        assert stdin is not None
        try:
            for out in self._call_resampler.resample(frame):
                stdin.write(bytes(out.planes[0])[: out.samples * CALL_AUDIO_CHANNELS * 2])
            await stdin.drain()  # aplay takes audio in real time: this paces us
        except (BrokenPipeError, ConnectionResetError):
            self._call_broken = True
            player = self._call_player
            err = await player.stderr.read() if player.stderr else b""
            log.warning("call audio stopped: %s", self._alsa_error(err, await player.wait()))

    async def _call_audio_ended(self) -> None:
        player, self._call_player = self._call_player, None
        self._call_resampler = None
        self._call_broken = False
        if player is not None:
            if player.stdin is not None and not player.stdin.is_closing():
                player.stdin.close()
            try:
                # aplay plays out what it has buffered, then exits.
                await asyncio.wait_for(self._reap(player), self._call_buffer_us / 1e6 + 1.0)
            except TimeoutError:
                player.kill()
                await self._reap(player)

    @staticmethod
    async def _reap(proc: asyncio.subprocess.Process) -> None:
        if proc.stderr is not None:
            await proc.stderr.read()
        await proc.wait()

    async def close(self) -> None:
        self._stop_playing()
        await self.stop_call_audio()

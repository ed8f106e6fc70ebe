"""Microphone tracks, speakers and speech, with the real tools (espeak-ng, alsa-utils)."""

from __future__ import annotations

import array
import asyncio
import time
import wave

import pytest
from aiortc.mediastreams import MediaStreamError

from porchlight.device.audio import (
    AlsaSpeaker,
    ArecordTrack,
    SimSpeaker,
    Speaker,
    open_microphone,
    open_speaker,
)
from porchlight.device.config import DeviceConfig
from porchlight.device.speaker import tone_wav
from porchlight.device.speech import synthesize
from porchlight.errors import DeviceFault


def peak(frame) -> int:
    samples = array.array("h", bytes(frame.planes[0])[: frame.samples * 2])
    return max(abs(min(samples)), max(samples))


async def test_tone_microphone_gives_quiet_48khz_frames_in_real_time(timed_frames):
    track = open_microphone(DeviceConfig(microphone="tone"))
    assert track.kind == "audio"
    frames, elapsed = await timed_frames(track, 20)
    assert {(f.sample_rate, f.samples, f.format.name, f.layout.name) for f in frames} == {
        (48000, 960, "s16", "mono")
    }
    assert [f.pts for f in frames] == [960 * i for i in range(21)]
    assert 0.35 <= elapsed <= 0.8  # 20 frames of 20 ms: real time, not a burst
    loudest = max(peak(f) for f in frames)  # the first 0.3 s is a beep
    assert 0 < loudest <= 0.11 * 32767  # audible but soft: at most -19 dBFS


async def test_alsa_microphone_reads_through_arecord():
    # ALSA's "null" capture device gives silence, and exists without a sound card.
    track = open_microphone(DeviceConfig(microphone="null"))
    assert isinstance(track, ArecordTrack)
    try:
        frames = [await asyncio.wait_for(track.recv(), 10) for _ in range(5)]
    finally:
        track.stop()
        await track.wait_closed()
    assert {(f.sample_rate, f.samples) for f in frames} == {(48000, 960)}
    assert [f.pts for f in frames] == [0, 960, 1920, 2880, 3840]
    with pytest.raises(MediaStreamError):
        await track.recv()


async def test_a_missing_alsa_microphone_ends_the_track_with_the_reason():
    track = ArecordTrack("porchlight_no_such_device")
    with pytest.raises(MediaStreamError):
        await asyncio.wait_for(track.recv(), 10)
    assert "porchlight_no_such_device" in track.error
    assert track.readyState == "ended"


async def test_espeak_speech_makes_a_non_empty_wav(tmp_path):
    path = await synthesize("Your nurse knows you are waiting.", tmp_path / "s.wav", voice="en-gb")
    with wave.open(str(path)) as w:
        seconds = w.getnframes() / w.getframerate()
        audio = w.readframes(w.getnframes())
    assert 1.0 < seconds < 6.0
    assert max(array.array("h", audio)) > 1000  # speech, not silence


async def test_an_unknown_voice_is_a_clear_device_fault(tmp_path):
    with pytest.raises(DeviceFault, match=r"device\.voice"):
        await synthesize("hello", tmp_path / "s.wav", voice="xx-nowhere")


def test_beep_is_short_soft_and_click_free():
    with wave.open(__import__("io").BytesIO(tone_wav())) as w:
        assert w.getframerate() == 48000
        samples = array.array("h", w.readframes(w.getnframes()))
    assert len(samples) == int(0.15 * 48000)
    assert abs(samples[0]) < 500 and abs(samples[-1]) < 500  # faded in and out
    assert 0.3 * 32767 < max(samples) <= 0.36 * 32767


async def test_sim_speaker_records_what_it_was_asked_to_play(tmp_path):
    clock = iter([10.0, 11.5]).__next__
    speaker = SimSpeaker(wav_dir=tmp_path, clock=clock)
    assert isinstance(speaker, Speaker)
    await speaker.beep()
    await speaker.say("Calling your nurse.")
    assert [(s.kind, s.at, s.text) for s in speaker.sounds] == [
        ("beep", 10.0, None),
        ("say", 11.5, "Calling your nurse."),
    ]
    assert speaker.said == ["Calling your nurse."]
    assert len(speaker.beeps) == 1
    # The folder gets the real sounds, to listen to.
    beep, said = speaker.sounds[0].wav, speaker.sounds[1].wav
    assert beep.read_bytes() == tone_wav()
    with wave.open(str(said)) as w:
        assert w.getnframes() > 0.5 * w.getframerate()
    await speaker.close()


async def test_sim_speaker_beep_starts_at_once_and_speech_can_be_off():
    speaker = SimSpeaker(speech=False)
    called = time.monotonic()
    await speaker.beep()
    assert speaker.sounds[0].at - called < 0.05
    await speaker.say("nobody hears this")
    assert speaker.said == []


async def test_sim_speaker_counts_the_far_ends_audio():
    speaker = SimSpeaker()
    far_end = open_microphone(DeviceConfig())  # any live audio track will do
    speaker.play_call_audio(far_end)
    assert speaker.call_audio_playing
    await speaker.wait_until(lambda s: s.call_audio_frames >= 5, timeout=5)
    await speaker.stop_call_audio()
    assert not speaker.call_audio_playing
    assert speaker.call_audio_samples == 960 * speaker.call_audio_frames
    far_end.stop()


async def test_sim_speaker_notices_the_call_audio_ending():
    speaker = SimSpeaker()
    far_end = open_microphone(DeviceConfig())
    speaker.play_call_audio(far_end)
    await speaker.wait_until(lambda s: s.call_audio_frames >= 1, timeout=5)
    far_end.stop()
    await speaker.wait_until(lambda s: not s.call_audio_playing, timeout=5)


async def test_alsa_speaker_plays_beeps_speech_and_call_audio_through_aplay():
    # ALSA's "null" playback device accepts audio without a sound card.
    speaker = AlsaSpeaker(device="null")
    assert isinstance(speaker, Speaker)
    start = time.monotonic()
    await speaker.beep()
    assert time.monotonic() - start < 1.0
    await speaker.say("Your nurse will see you now.")
    far_end = open_microphone(DeviceConfig())
    speaker.play_call_audio(far_end)
    deadline = time.monotonic() + 5
    while speaker.call_audio_frames < 10:  # aplay's pipe paces the consumer; nothing to await
        assert time.monotonic() < deadline
        await asyncio.sleep(0.02)
    await speaker.stop_call_audio()
    far_end.stop()
    await speaker.close()


async def test_a_new_sound_cuts_off_the_one_playing():
    speaker = AlsaSpeaker(device="null")
    # Start a long prompt and beep over it: both calls finish without error.
    await asyncio.gather(speaker.say("This is a long sentence. " * 5), speaker.beep())
    await speaker.close()


async def test_alsa_speaker_on_a_missing_device_says_what_to_check():
    speaker = AlsaSpeaker(device="porchlight_no_such_device")
    with pytest.raises(DeviceFault, match="speaker_device"):
        await speaker.beep()
    await speaker.close()


def test_speaker_choice_follows_the_config(tmp_path):
    sim = open_speaker(DeviceConfig(speaker="sim", sim_audio_dir=tmp_path, speech=False))
    assert isinstance(sim, SimSpeaker) and sim.wav_dir == tmp_path and not sim.speech
    alsa = open_speaker(DeviceConfig(speaker="alsa", speaker_device="null", voice="en-us"))
    assert isinstance(alsa, AlsaSpeaker) and alsa.device == "null" and alsa.voice == "en-us"

"""Settings for the kiosk's hardware: pins, camera, microphone, speaker, speech.

Loaded with `porchlight.config.load(DeviceConfig, "device")`, so each field can also be set as
PORCHLIGHT_DEVICE_<FIELD> (for example PORCHLIGHT_DEVICE_CAMERA=/dev/video0).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from porchlight.errors import ConfigError

TEST_CAMERA = "test"
TONE_MICROPHONE = "tone"
SPEAKERS = ("sim", "alsa")


@dataclass
class DeviceConfig:
    # None: simulate when this is not a Raspberry Pi (see hardware.should_simulate).
    simulate: bool | None = None
    # BCM pin numbers. The button connects the pin to ground (pull-up, active low).
    button_pin: int = 17
    light_pin: int = 27
    # A hold this long asks to leave the waiting room or the call.
    long_press_s: float = 2.0
    # Contact bounce shorter than this is ignored (our own timing; see button_logic).
    debounce_s: float = 0.03
    # "test" (moving test pattern) or a V4L2 device path such as /dev/video0.
    camera: str = TEST_CAMERA
    # The camera's full resolution: more than the link's rung usually carries, so the
    # clinician's close look (issue 10) has pixels to zoom into, and stills are sharp.
    # 16:9 like the ladder's rungs. bench/camera_cost.py measures what it costs.
    camera_width: int = 1280
    camera_height: int = 720
    camera_fps: int = 30
    # "tone" (quiet test beeps) or an ALSA capture device such as "default" or "plughw:1,0".
    microphone: str = TONE_MICROPHONE
    # "sim" (records what it would play) or "alsa" (plays through aplay).
    speaker: str = "sim"
    # ALSA playback device for the "alsa" speaker.
    speaker_device: str = "default"
    speech: bool = True
    voice: str = "en-gb"
    # Slower than espeak-ng's 175 words a minute: the listeners are often elderly.
    speech_wpm: int = 150
    # The simulated speaker also writes its beeps and speech here as WAV files when set.
    sim_audio_dir: Path | None = None

    def __post_init__(self) -> None:
        for name in ("button_pin", "light_pin"):
            pin = getattr(self, name)
            if not 0 <= pin <= 27:
                raise ConfigError(f"device.{name} must be a BCM GPIO number 0-27, not {pin}")
        if self.button_pin == self.light_pin:
            raise ConfigError("device.button_pin and device.light_pin must be different pins")
        if self.long_press_s <= 0:
            raise ConfigError("device.long_press_s must be more than 0 seconds")
        if not 0 <= self.debounce_s < self.long_press_s:
            raise ConfigError("device.debounce_s must be at least 0 and less than long_press_s")
        if self.camera != TEST_CAMERA and not self.camera.startswith("/dev/"):
            raise ConfigError(
                f"device.camera must be {TEST_CAMERA!r} or a V4L2 device path such as "
                f"/dev/video0, not {self.camera!r}"
            )
        if self.camera_width <= 0 or self.camera_height <= 0 or self.camera_fps <= 0:
            raise ConfigError("device.camera_width, camera_height and camera_fps must be positive")
        if self.camera_width % 2 or self.camera_height % 2:
            raise ConfigError("device.camera_width and camera_height must be even (YUV 4:2:0)")
        if not self.microphone:
            raise ConfigError(
                f"device.microphone must be {TONE_MICROPHONE!r} or an ALSA capture device name"
            )
        if self.speaker not in SPEAKERS:
            raise ConfigError(f"device.speaker must be one of {', '.join(SPEAKERS)}")
        if not 80 <= self.speech_wpm <= 450:
            raise ConfigError("device.speech_wpm must be between 80 and 450 words a minute")

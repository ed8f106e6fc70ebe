"""The device bundle and its settings: simulated off a Pi, one press through to the light."""

from __future__ import annotations

import asyncio

import pytest

from porchlight import config as config_loader
from porchlight.device.audio import AlsaSpeaker, SimSpeaker
from porchlight.device.config import DeviceConfig
from porchlight.device.hardware import is_raspberry_pi, open_device, should_simulate
from porchlight.errors import ConfigError


def test_simulation_is_chosen_off_a_pi_or_when_gpiozero_is_told_to_mock(tmp_path):
    pi = tmp_path / "model"
    pi.write_bytes(b"Raspberry Pi 4 Model B Rev 1.5\x00")
    laptop = tmp_path / "missing"
    assert is_raspberry_pi(pi) and not is_raspberry_pi(laptop)
    auto = DeviceConfig()
    assert should_simulate(auto, env={}, model_file=laptop)
    assert not should_simulate(auto, env={}, model_file=pi)
    assert should_simulate(auto, env={"GPIOZERO_PIN_FACTORY": "mock"}, model_file=pi)
    assert not should_simulate(DeviceConfig(simulate=False), env={}, model_file=laptop)
    assert should_simulate(DeviceConfig(simulate=True), env={}, model_file=pi)


async def test_open_device_simulated_press_reaches_the_kiosk_and_the_light_follows():
    pressed = asyncio.Event()
    device = open_device(DeviceConfig(simulate=True), on_pressed=pressed.set)
    try:
        assert device.simulate and device.pin_factory is not None
        assert device.button.simulated
        assert isinstance(device.speaker, SimSpeaker)
        device.button.press()
        await asyncio.wait_for(pressed.wait(), 1)
        device.light.show("fast_blink")
        await device.speaker.beep()
        assert device.light.pattern == "fast_blink"
        assert len(device.speaker.beeps) == 1
        camera, microphone = device.open_camera(), device.open_microphone()
        assert (await camera.recv()).width == DeviceConfig().camera_width  # the full resolution
        assert (await microphone.recv()).sample_rate == 48000
        camera.stop()
        microphone.stop()
    finally:
        await device.close()
    assert device.light.pattern == "off"


async def test_open_device_uses_the_configured_speaker():
    device = open_device(DeviceConfig(simulate=True, speaker="alsa", speaker_device="null"))
    try:
        assert isinstance(device.speaker, AlsaSpeaker)
        await device.speaker.beep()
    finally:
        await device.close()


def test_settings_come_from_the_environment_and_bad_ones_are_refused():
    env = {
        "PORCHLIGHT_DEVICE_SIMULATE": "false",
        "PORCHLIGHT_DEVICE_BUTTON_PIN": "5",
        "PORCHLIGHT_DEVICE_CAMERA": "/dev/video0",
        "PORCHLIGHT_DEVICE_SIM_AUDIO_DIR": "",
    }
    loaded = config_loader.load(DeviceConfig, "device", env=env)
    assert (loaded.simulate, loaded.button_pin, loaded.camera) == (False, 5, "/dev/video0")
    assert loaded.sim_audio_dir is None
    assert config_loader.load(DeviceConfig, "device", env={}).simulate is None
    for bad, match in [
        ({"PORCHLIGHT_DEVICE_CAMERA": "webcam"}, "device.camera"),
        ({"PORCHLIGHT_DEVICE_BUTTON_PIN": "40"}, "button_pin"),
        ({"PORCHLIGHT_DEVICE_LIGHT_PIN": "17"}, "different pins"),
        ({"PORCHLIGHT_DEVICE_SPEAKER": "hifi"}, "device.speaker"),
        ({"PORCHLIGHT_DEVICE_CAMERA_WIDTH": "641"}, "even"),
        ({"PORCHLIGHT_DEVICE_LONG_PRESS_S": "0"}, "long_press_s"),
    ]:
        with pytest.raises(ConfigError, match=match):
            config_loader.load(DeviceConfig, "device", env=bad)

"""The kiosk's hardware in one bundle, real on a Raspberry Pi and simulated anywhere else.

    device = open_device(config, loop=loop, on_pressed=..., on_held=..., on_released=...)
    device.light.show("slow_blink"); await device.speaker.beep()
    camera, microphone = device.open_camera(), device.open_microphone()
    await device.close()

Simulation swaps only the pins (gpiozero's MockFactory with PWM-capable mock pins); the
camera, microphone and speaker follow their own settings (test pattern, tone, "sim"), so a
laptop can use a real webcam with a simulated button.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from aiortc.mediastreams import MediaStreamTrack
from gpiozero.pins.mock import MockFactory, MockPWMPin

from porchlight.device.audio import open_microphone, open_speaker
from porchlight.device.button import PressButton
from porchlight.device.camera import open_camera
from porchlight.device.config import DeviceConfig
from porchlight.device.light import StatusLight
from porchlight.device.speaker import Speaker

PI_MODEL_FILE = Path("/proc/device-tree/model")


def is_raspberry_pi(model_file: Path = PI_MODEL_FILE) -> bool:
    try:
        return model_file.read_bytes().startswith(b"Raspberry Pi")
    except OSError:
        return False


def should_simulate(
    config: DeviceConfig,
    *,
    env: Mapping[str, str] | None = None,
    model_file: Path = PI_MODEL_FILE,
) -> bool:
    """config.simulate if set; else simulate when gpiozero is told to mock, or off a Pi."""
    if config.simulate is not None:
        return config.simulate
    env = os.environ if env is None else env
    if env.get("GPIOZERO_PIN_FACTORY", "").lower() == "mock":
        return True
    return not is_raspberry_pi(model_file)


def simulated_pin_factory() -> MockFactory:
    """Mock pins that can do PWM, so one factory serves both the button and the light."""
    return MockFactory(pin_class=MockPWMPin)


class Device:
    def __init__(
        self,
        config: DeviceConfig,
        *,
        simulate: bool,
        pin_factory: Any,
        button: PressButton,
        light: StatusLight,
        speaker: Speaker,
    ) -> None:
        self.config = config
        self.simulate = simulate
        self.pin_factory = pin_factory  # None on a Pi: gpiozero's default factory
        self.button = button
        self.light = light
        self.speaker = speaker

    def open_camera(self) -> MediaStreamTrack:
        """A new camera track (each call opens the source again; stop() the old one)."""
        return open_camera(self.config)

    def open_microphone(self) -> MediaStreamTrack:
        return open_microphone(self.config)

    async def close(self) -> None:
        self.button.close()
        self.light.show("off")
        self.light.close()
        await self.speaker.close()


def open_device(
    config: DeviceConfig,
    *,
    loop: asyncio.AbstractEventLoop | None = None,
    pin_factory: Any = None,
    on_pressed: Callable[[], Any] | None = None,
    on_held: Callable[[float], Any] | None = None,
    on_released: Callable[[float], Any] | None = None,
    hold_thresholds: Iterable[float] | None = None,
    speaker: Speaker | None = None,
    env: Mapping[str, str] | None = None,
) -> Device:
    """Open the button, light and speaker, real or simulated (see should_simulate).

    `pin_factory` overrides the choice of pins (tests pass their own MockFactory);
    `speaker` overrides config.speaker.
    """
    simulate = should_simulate(config, env=env)
    speaker = speaker if speaker is not None else open_speaker(config)
    if pin_factory is None and simulate:
        pin_factory = simulated_pin_factory()
    button = PressButton(
        config,
        pin_factory=pin_factory,
        on_pressed=on_pressed,
        on_held=on_held,
        on_released=on_released,
        loop=loop,
        hold_thresholds=hold_thresholds,
    )
    try:
        light = StatusLight(config, pin_factory=pin_factory)
    except Exception:
        button.close()
        raise
    return Device(
        config,
        simulate=simulate,
        pin_factory=pin_factory,
        button=button,
        light=light,
        speaker=speaker,
    )

"""How the kiosk window is set up: size, full screen, video refresh. Read with
`porchlight.config.load(UiConfig, "ui")` (env PORCHLIGHT_UI_<FIELD>)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class UiConfig:
    width: int = 800  # the Raspberry Pi 7" touch screen
    height: int = 480
    fullscreen: bool = False  # True on a device: no window frame, no cursor, Escape ignored
    video_fps: float = 30.0  # how often the UI looks for a new video frame during a call
    light_fps: float = 20.0  # refresh of the simulated status light on screen

"""kiosk/config.py: KioskConfig from defaults, a TOML file, PORCHLIGHT_* variables."""

from __future__ import annotations

from pathlib import Path

import pytest

from porchlight import config
from porchlight.device.config import DeviceConfig
from porchlight.errors import ConfigError
from porchlight.kiosk.config import KioskConfig, load_kiosk_config


def test_defaults_and_sim_socket(tmp_path: Path) -> None:
    cfg = config.load(KioskConfig, "kiosk", env={"PORCHLIGHT_DATA_DIR": str(tmp_path)})
    assert cfg.data_dir == tmp_path
    assert (cfg.window_width, cfg.window_height, cfg.fullscreen) == (800, 480, False)
    assert cfg.ice_host_addresses == []
    assert cfg.sim_socket(simulated=True) == tmp_path / "sim.sock"
    assert cfg.sim_socket(simulated=False) is None
    assert cfg.device is None  # read from [device] / PORCHLIGHT_DEVICE_* when the kiosk starts
    hardware = cfg.device_config(env={"PORCHLIGHT_DEVICE_BUTTON_PIN": "5"})
    assert isinstance(hardware, DeviceConfig) and hardware.button_pin == 5


def test_file_env_and_overrides_for_both_tables(tmp_path: Path) -> None:
    file = tmp_path / "porchlight.toml"
    file.write_text(
        '[kiosk]\nice_host_addresses = ["127.0.0.1"]\nfullscreen = true\n'
        "[device]\nsimulate = true\nlong_press_s = 3.0\n"
    )
    cfg = load_kiosk_config(
        file,
        env={"PORCHLIGHT_KIOSK_WINDOW_WIDTH": "1024", "PORCHLIGHT_DEVICE_CAMERA_FPS": "15"},
        hub_url="http://127.0.0.1:9999",
    )
    assert cfg.ice_host_addresses == ["127.0.0.1"]
    assert cfg.fullscreen is True and cfg.window_width == 1024
    assert cfg.hub_url == "http://127.0.0.1:9999"
    assert cfg.device is not None
    assert cfg.device.simulate is True and cfg.device.long_press_s == 3.0
    assert cfg.device.camera_fps == 15


def test_nested_device_table(tmp_path: Path) -> None:
    file = tmp_path / "porchlight.toml"
    file.write_text("[kiosk.device]\nbutton_pin = 4\n")
    cfg = config.load(KioskConfig, "kiosk", file=file, env={})
    assert cfg.device == DeviceConfig(button_pin=4)


@pytest.mark.parametrize(
    "overrides, what",
    [
        ({"ice_host_addresses": ["localhost"]}, "IP addresses"),
        ({"hub_url": "127.0.0.1:8740"}, "http"),
        ({"window_width": 0}, "positive"),
        ({"join_timeout_s": 0}, "join_timeout_s"),
        ({"device": {"no_such_pin": 1}}, "kiosk.device"),
    ],
)
def test_bad_settings_are_clear_errors(overrides, what) -> None:
    with pytest.raises(ConfigError, match=what):
        config.load(KioskConfig, "kiosk", env={}, **overrides)

"""Suite-wide isolation: nothing a test runs may write into the real home directory.

Kivy, Mesa and Chromium read their environment when first imported or started, so this is
set when pytest loads this file, before any test module imports them.
"""

from __future__ import annotations

import os
import socket
import tempfile
from pathlib import Path

import pytest

_SANDBOX = Path(tempfile.mkdtemp(prefix="porchlight-tests-"))
for _name in ("KIVY_HOME", "XDG_CACHE_HOME", "XDG_CONFIG_HOME", "XDG_DATA_HOME"):
    (_SANDBOX / _name.lower()).mkdir()
    os.environ[_name] = str(_SANDBOX / _name.lower())
os.environ["PORCHLIGHT_DATA_DIR"] = str(_SANDBOX / "data")
os.environ.update(
    {
        "SDL_VIDEODRIVER": "offscreen",
        "KIVY_WINDOW": "sdl2",
        "KIVY_NO_ARGS": "1",
        "KIVY_NO_CONSOLELOG": "1",
        "KIVY_NO_FILELOG": "1",
        "KIVY_NO_CONFIG": "1",
        "GPIOZERO_PIN_FACTORY": "mock",
    }
)
os.environ.pop("DISPLAY", None)
os.environ.pop("WAYLAND_DISPLAY", None)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def port() -> int:
    return free_port()

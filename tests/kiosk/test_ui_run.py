"""The app run exactly as the kiosk runner runs it: `await app.async_run(async_lib="asyncio")`.

In a subprocess: a real app loop opens and closes Kivy's window and event loop, which must not
leak into the other UI tests that share this process's window.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

SUPPORT = Path(__file__).with_name("ui_support.py")


def test_app_runs_on_asyncio_says_ready_and_answers_a_press():
    proc = subprocess.run(
        [sys.executable, str(SUPPORT)],
        capture_output=True,
        text=True,
        timeout=120,
        env=os.environ.copy(),  # tests/conftest.py set the offscreen, sandboxed Kivy env
        check=False,
    )
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    assert proc.returncode == 0 and lines, proc.stdout + proc.stderr
    seen = json.loads(lines[-1].removeprefix("RESULT "))
    assert seen["window"] == [800, 480]
    assert seen["headline_at_ready"] == "Press the button to call your nurse"
    assert seen["headline_after_press"] == "Calling your nurse…"
    assert seen["calls"] == ["ready", "down", "up"]
    assert seen["subscribers_after_stop"] == 0

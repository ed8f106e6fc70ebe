"""Offline speech: espeak-ng renders text to a WAV file, in a subprocess off the event loop."""

from __future__ import annotations

from pathlib import Path

from porchlight.device.tools import DEVNULL, PIPE, last_message, start_tool
from porchlight.errors import DeviceFault

ESPEAK = "espeak-ng"


async def synthesize(
    text: str, path: Path, *, voice: str = "en-gb", wpm: int = 150, espeak: str = ESPEAK
) -> Path:
    """Write `text` spoken by `voice` to the WAV file `path`; returns `path`.

    The text goes in on stdin, not the command line: nothing the kiosk says shows up in a
    process listing, and text starting with "-" is not taken for an option.
    """
    proc = await start_tool(
        espeak,
        *("-v", voice, "-s", str(wpm), "-w", str(path), "--stdin"),
        package="espeak-ng",
        instead="device.speech = false",
        stdin=PIPE,
        stdout=DEVNULL,
    )
    _, err = await proc.communicate(text.encode())
    if proc.returncode != 0:
        raise DeviceFault(
            f"{espeak} failed (exit {proc.returncode}): {last_message(err)}; check "
            f"device.voice ({voice!r}) is an installed voice (espeak-ng --voices)"
        )
    return path

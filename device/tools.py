"""Running the system's audio tools (aplay, arecord, espeak-ng) as asyncio subprocesses.

One place for how they are started and how their failures read: a missing tool names the
Debian package to install and the setting that avoids it; a failing one shows the last line
it printed (ALSA and espeak-ng messages carry no patient data).
"""

from __future__ import annotations

import asyncio
import shutil

from porchlight.errors import DeviceFault

PIPE = asyncio.subprocess.PIPE
DEVNULL = asyncio.subprocess.DEVNULL


def _missing(tool: str, package: str, instead: str) -> DeviceFault:
    return DeviceFault(f"{tool} is not installed: install the {package} package (or set {instead})")


def require_tool(tool: str, *, package: str, instead: str) -> None:
    """Fail now, with what to do, rather than at the first sound."""
    if shutil.which(tool) is None:
        raise _missing(tool, package, instead)


async def start_tool(
    tool: str, *args: str, package: str, instead: str, stdin: int, stdout: int
) -> asyncio.subprocess.Process:
    """Start `tool` with its stderr piped, for last_message()."""
    try:
        return await asyncio.create_subprocess_exec(
            tool, *args, stdin=stdin, stdout=stdout, stderr=PIPE
        )
    except FileNotFoundError:
        raise _missing(tool, package, instead) from None


def last_message(stderr: bytes) -> str:
    lines = stderr.decode(errors="replace").strip().splitlines()
    return lines[-1] if lines else "no message"

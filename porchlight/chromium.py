"""Debian's Chromium as a real clinician browser, for tests and benchmarks.

Playwright drives /usr/bin/chromium (never `playwright install`: nothing is downloaded here).
The flags make it work headless as root with fake camera and microphone, and keep it from
reaching out to any network.
"""

from __future__ import annotations

from typing import Any

CHROMIUM_PATH = "/usr/bin/chromium"

CHROMIUM_ARGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--use-fake-device-for-media-stream",
    "--use-fake-ui-for-media-stream",
    "--allow-loopback-in-peer-connection",
)


def launch(playwright: Any, *extra_args: str) -> Any:
    """Start Chromium through a sync or async Playwright; returns its Browser (or awaitable)."""
    return playwright.chromium.launch(
        executable_path=CHROMIUM_PATH, args=[*CHROMIUM_ARGS, *extra_args]
    )

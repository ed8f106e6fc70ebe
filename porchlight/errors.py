"""Errors rooted by who is to blame.

Each class also derives from the built-in that fits, so callers that only know the standard
library still catch them sensibly. Messages say what is wrong and what to do; they never carry
patient data, credentials or keys.
"""

from __future__ import annotations


class PorchlightError(Exception):
    """Root of every error Porchlight raises on purpose."""


class BadInput(PorchlightError, ValueError):
    """The caller gave us something we cannot accept (a person, a request, a file)."""


class ConfigError(BadInput):
    """A configuration file or PORCHLIGHT_* variable is wrong."""


class NotAuthorised(PorchlightError, PermissionError):
    """Missing, wrong, revoked or expired credential, or a role without the right."""


class HubRefused(PorchlightError):
    """The hub answered, and said no. `status` is the HTTP status or WebSocket close code."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class TransportFailed(PorchlightError, ConnectionError):
    """The link to the hub or the peer failed: nobody said no, nothing got through."""


class DeviceFault(PorchlightError, OSError):
    """The hardware (button, light, camera, microphone, oximeter) or local storage failed."""


class UpdateRejected(PorchlightError):
    """A release failed verification or its health check; nothing was installed."""

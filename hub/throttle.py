"""Counting failed attempts so guessing gets nowhere: per source, per target and overall.

Pure: no clock, no I/O. Each `Throttle` keeps, per key, the times of recent failures inside a
sliding window; a key with `limit` failures in the window is blocked until the oldest one
leaves it. Callers check before the attempt (so a blocked caller learns nothing from the
answer) and record a failure after a wrong guess. Memory is bounded: keys whose failures
have all left the window are dropped, and at most `max_keys` keys are kept (the quietest
are forgotten first, which can only make a flood look smaller, never let one through the
global limit).
"""

from __future__ import annotations

import math
import threading
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from porchlight.errors import BadInput


class Throttled(BadInput):
    """Too many failed attempts; `retry_after_s` says when trying again can work."""

    def __init__(self, message: str, retry_after_s: float) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s

    @property
    def retry_after_header(self) -> str:
        return str(max(1, math.ceil(self.retry_after_s)))


@dataclass
class Throttle:
    """At most `limit` failures per key within `window`."""

    limit: int
    window: timedelta
    max_keys: int = 10_000
    _failures: dict[str, deque[datetime]] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        if self.limit < 1 or self.window <= timedelta(0):
            raise BadInput("a throttle needs a limit of at least 1 and a positive window")

    def retry_after(self, key: str, now: datetime) -> float:
        """Seconds until `key` may try again; 0 when it may try now."""
        failures = self._recent(key, now)
        if len(failures) < self.limit:
            return 0.0
        # Blocked until enough of the oldest failures have left the window.
        unblock = failures[len(failures) - self.limit] + self.window
        return max(0.0, (unblock - now).total_seconds())

    def record_failure(self, key: str, now: datetime) -> None:
        failures = self._recent(key, now)
        if not failures:
            self._failures[key] = failures
        failures.append(now)
        if len(self._failures) > self.max_keys:
            self._forget_quietest()

    def clear(self, key: str) -> None:
        """Forget `key`'s failures (after a success, e.g. a correct password)."""
        self._failures.pop(key, None)

    def _recent(self, key: str, now: datetime) -> deque[datetime]:
        failures = self._failures.get(key)
        if failures is None:
            return deque()
        while failures and failures[0] <= now - self.window:
            failures.popleft()
        if not failures:
            del self._failures[key]
        return failures

    def _forget_quietest(self) -> None:
        by_count = sorted(self._failures, key=lambda k: len(self._failures[k]))
        for key in by_count[: len(self._failures) - self.max_keys]:
            del self._failures[key]


@dataclass
class Guard:
    """A set of throttles asked together: blocked if any of them is.

    Thread-safe (the hub calls it from its worker threads); the throttles themselves are not.
    """

    throttles: dict[str, Throttle]
    message: str
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def check(self, keys: dict[str, str], now: datetime) -> None:
        """Raise Throttled if any named throttle blocks its key."""
        with self._lock:
            wait = max(
                (self.throttles[name].retry_after(key, now) for name, key in keys.items()),
                default=0.0,
            )
        if wait > 0:
            minutes = max(1, math.ceil(wait / 60))
            raise Throttled(
                f"{self.message} Wait {minutes} minute{'s' if minutes != 1 else ''} and try again.",
                wait,
            )

    def failed(self, keys: dict[str, str], now: datetime) -> None:
        with self._lock:
            for name, key in keys.items():
                self.throttles[name].record_failure(key, now)

    def succeeded(self, keys: dict[str, str]) -> None:
        with self._lock:
            for name, key in keys.items():
                if name != GLOBAL:
                    self.throttles[name].clear(key)


GLOBAL = "global"

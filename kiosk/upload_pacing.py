"""How fast a still's bytes may go up: a token bucket over an upload budget in bit/s.

Pure: time (`now`, seconds) is passed in. The sync worker asks `wait_s(n, now)` before it
sends a chunk of `n` bytes and `take(n, now)` when it sends it; during a call the kiosk sets the
budget and the chunk size to the link's headroom (`set_rate`, from kiosk/still_pacing.py) so a
still never starves the call.

Chunks are sized to about half a second of budget (1–32 KiB), or smaller when the caller says
so: a chunk leaves the kiosk at the link's full speed, so a big chunk on a slow link would
queue the call's packets behind it for as long as it takes to send (32 KiB at 300 kbit/s is
0.9 s), however well the average is paced.
"""

from __future__ import annotations

from dataclasses import dataclass

MIN_CHUNK = 1024  # one TCP segment's worth: a rural line's router queue holds ~8 kB
MAX_CHUNK = 32 * 1024
CHUNK_SECONDS = 0.5  # a chunk is about this much of the budget
# What one PUT costs on the wire besides its chunk (request line, headers, TCP/IP, the answer),
# counted against the budget so small chunks do not overspend it.
REQUEST_OVERHEAD = 600
# The least a still gets, whatever the call's estimate: it must keep moving even on a link
# that carries only audio (1 kB/s; an 80 kB still takes under 2 minutes).
MIN_BUDGET_BPS = 8_000.0


def upload_budget(bps: float | None) -> float | None:
    """The budget to pace to for a requested one: None stays unpaced, anything below
    MIN_BUDGET_BPS (including 0: "the link estimate is nothing") is raised to it."""
    if bps is None:
        return None
    if isinstance(bps, bool) or not isinstance(bps, int | float) or not bps >= 0:
        raise ValueError("the upload budget must be a number of bit/s (0 or more), or None")
    return max(float(bps), MIN_BUDGET_BPS)


def chunk_size(rate_bps: float | None) -> int:
    """Bytes per PUT at this budget (None: unpaced, the largest chunk)."""
    if rate_bps is None:
        return MAX_CHUNK
    return int(min(MAX_CHUNK, max(MIN_CHUNK, rate_bps / 8 * CHUNK_SECONDS)))


@dataclass
class TokenBucket:
    """Bytes may go when the bucket holds them; it fills at `rate_bps / 8` bytes a second up to
    one chunk and its overhead (so an idle spell never saves up a burst of several chunks).
    `rate_bps=None` means unpaced; `chunk_bytes=None` means chunks of `chunk_size(rate_bps)`."""

    rate_bps: float | None = None
    tokens: float | None = None  # None: full
    updated_at: float | None = None
    chunk_bytes: int | None = None

    def __post_init__(self) -> None:
        _check_rate(self.rate_bps)
        _check_chunk(self.chunk_bytes)
        if self.tokens is None:
            self.tokens = float(self.burst)

    @property
    def chunk(self) -> int:
        """Bytes per PUT now."""
        return chunk_size(self.rate_bps) if self.chunk_bytes is None else self.chunk_bytes

    @property
    def burst(self) -> int:
        return self.cost(self.chunk)

    def _refill(self, now: float) -> None:
        if self.updated_at is not None and self.rate_bps is not None and now > self.updated_at:
            gained = (now - self.updated_at) * self.rate_bps / 8
            self.tokens = min(float(self.burst), self.tokens + gained)
        self.updated_at = now  # a clock that went back earns nothing, and stalls nothing

    def set_rate(self, rate_bps: float | None, now: float, chunk_bytes: int | None = None) -> None:
        """A new budget (and chunk size, None: `chunk_size(rate_bps)`) from now on; what was
        saved up is kept, capped to the new burst."""
        _check_rate(rate_bps)
        _check_chunk(chunk_bytes)
        self._refill(now)
        self.rate_bps = rate_bps
        self.chunk_bytes = chunk_bytes
        self.tokens = min(self.tokens, float(self.burst))

    @staticmethod
    def cost(n: int) -> int:
        """What sending a chunk of `n` bytes spends."""
        return n + REQUEST_OVERHEAD

    def wait_s(self, n: int, now: float) -> float:
        """Seconds until a chunk of `n` bytes may go (0: now)."""
        if self.rate_bps is None:
            return 0.0
        self._refill(now)
        # A chunk larger than the bucket can ever hold goes once the bucket is full.
        need = min(self.cost(n), self.burst) - self.tokens
        return 0.0 if need <= 0 else need * 8 / self.rate_bps

    def take(self, n: int, now: float) -> None:
        """The chunk went: spend its cost (an oversized chunk puts the bucket in debt, which
        the following waits repay, so the average still keeps to the budget)."""
        if self.rate_bps is None:
            return
        self._refill(now)
        self.tokens -= self.cost(n)


def _check_rate(rate_bps: float | None) -> None:
    if rate_bps is not None and not (isinstance(rate_bps, int | float) and rate_bps > 0):
        raise ValueError("the upload budget must be a positive number of bit/s, or None")


def _check_chunk(chunk_bytes: int | None) -> None:
    if chunk_bytes is not None and not (
        isinstance(chunk_bytes, int) and MIN_CHUNK <= chunk_bytes <= MAX_CHUNK
    ):
        raise ValueError(f"a chunk must be {MIN_CHUNK}-{MAX_CHUNK} bytes, or None")

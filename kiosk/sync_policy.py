"""When and what the sync worker sends: batching, backoff with jitter, per-record outcomes.

Pure: time (`now`, seconds) and randomness (`rand` in [0, 1)) are passed in, so the state
machine can be driven step by step in tests. The worker in `sync.py` does the I/O.

Rules:
- a batch is the oldest due entries by outbox sequence, so each patient's records go out in
  the order they were made; a batch is bounded in records and bytes;
- a link failure (hub unreachable, 5xx, 429) backs off exponentially with jitter, for ever,
  capped; while backed off because the hub was unreachable, a cheap probe runs every
  `probe_interval_s`, and the moment it answers the next batch goes at once;
- the hub answers per record: stored/duplicate → acknowledged (the only way an entry leaves);
  conflict/invalid/forbidden → held (never resent, never blocks the rest); error → that
  record alone retries later with its own backoff;
- a whole batch refused as malformed is split in half until the record at fault is alone,
  then that record is held: one bad record never blocks the queue.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum


@dataclass(frozen=True)
class SyncPolicyConfig:
    batch_max_records: int = 250
    batch_max_bytes: int = 256 * 1024
    backoff_base_s: float = 1.0
    backoff_factor: float = 2.0
    backoff_cap_s: float = 300.0
    probe_interval_s: float = 1.0
    # An idle worker still wakes this often: for retries that fall due, purges, and records
    # another process (`porchlight outbox add`) put in the outbox.
    idle_wake_s: float = 5.0


def backoff_delay(attempt: int, rand: float, cfg: SyncPolicyConfig) -> float:
    """Delay before try number `attempt + 1` (attempt ≥ 1): exponential, capped, with "equal
    jitter" — half fixed, half random — so a fleet coming back does not retry in lockstep,
    yet no retry follows its failure at once."""
    if attempt < 1:
        return 0.0
    exp = min(cfg.backoff_cap_s, cfg.backoff_base_s * cfg.backoff_factor ** min(attempt - 1, 64))
    return exp / 2 + exp / 2 * min(max(rand, 0.0), 1.0)


class EntryStatus(StrEnum):
    PENDING = "pending"
    SENDING = "sending"
    ACKED = "acked"
    HELD = "held"  # the hub refused this record for good (conflict, invalid, forbidden)


@dataclass(frozen=True)
class Entry:
    """What the policy needs to know about one outbox entry."""

    seq: int
    record_id: str
    patient_id: str
    size: int
    attempts: int = 0
    next_try_at: float = 0.0
    status: EntryStatus = EntryStatus.PENDING


def choose_batch(
    entries: Iterable[Entry], now: float, max_records: int, max_bytes: int
) -> list[Entry]:
    """The oldest due pending entries, in sequence order, within the size limits.

    Always at least one entry if any is due, even a large one: the limits bound batches, they
    must not strand a record."""
    due = sorted(
        (e for e in entries if e.status is EntryStatus.PENDING and e.next_try_at <= now),
        key=lambda e: e.seq,
    )
    batch: list[Entry] = []
    size = 0
    for e in due:
        if batch and (len(batch) >= max_records or size + e.size > max_bytes):
            break
        batch.append(e)
        size += e.size
    return batch


class Outcome(StrEnum):
    ACK = "ack"
    HOLD = "hold"
    RETRY = "retry"


# The hub's per-record statuses (hub/inbox.py) and what each means for the device.
RECORD_OUTCOMES = {
    "stored": Outcome.ACK,
    "duplicate": Outcome.ACK,
    "conflict": Outcome.HOLD,
    "invalid": Outcome.HOLD,
    "forbidden": Outcome.HOLD,
}


def record_outcome(status: object) -> Outcome:
    """Anything unknown (or missing) retries: only a clear answer may end an entry's life."""
    return RECORD_OUTCOMES.get(status, Outcome.RETRY) if isinstance(status, str) else Outcome.RETRY


class LinkState(StrEnum):
    READY = "ready"
    BACKING_OFF = "backing_off"  # the hub answered but failed (5xx/429): wait, no probing
    UNREACHABLE = "unreachable"  # nothing got through: wait, and probe to come back early


class Action(StrEnum):
    SEND = "send"
    PROBE = "probe"
    WAIT = "wait"


@dataclass
class SyncMachine:
    """The link-level state: whether to send, probe or wait, and for how long."""

    cfg: SyncPolicyConfig = field(default_factory=SyncPolicyConfig)
    state: LinkState = LinkState.READY
    failures: int = 0
    next_try_at: float = 0.0
    last_probe_at: float = float("-inf")
    batch_limit: int = 0  # records per batch now; shrinks to isolate a poisoned record

    def __post_init__(self) -> None:
        self.batch_limit = self.batch_limit or self.cfg.batch_max_records

    def decide(self, now: float, next_due_at: float | None) -> tuple[Action, float]:
        """What to do now, or how long to wait. `next_due_at`: when the earliest pending entry
        falls due (None: nothing to send)."""
        if next_due_at is None:
            return Action.WAIT, self.cfg.idle_wake_s
        start = max(self.next_try_at, next_due_at)
        if now >= start:
            return Action.SEND, 0.0
        if self.state is LinkState.UNREACHABLE and now < self.next_try_at:
            probe_at = self.last_probe_at + self.cfg.probe_interval_s
            if now >= probe_at:
                return Action.PROBE, 0.0
            return Action.WAIT, min(start, probe_at) - now
        return Action.WAIT, min(start - now, self.cfg.idle_wake_s)

    def sent(self, now: float) -> None:
        """A batch got a per-record answer: the link is fine."""
        self.state = LinkState.READY
        self.failures = 0
        self.next_try_at = now
        self.batch_limit = min(self.cfg.batch_max_records, self.batch_limit * 2)

    def failed(self, now: float, rand: float, *, reachable: bool) -> float:
        """The batch did not get through; returns the backoff delay chosen."""
        self.failures += 1
        delay = backoff_delay(self.failures, rand, self.cfg)
        self.state = LinkState.BACKING_OFF if reachable else LinkState.UNREACHABLE
        self.next_try_at = now + delay
        return delay

    def probed(self, now: float, *, reachable: bool) -> None:
        self.last_probe_at = now
        if reachable:
            self.kicked(now)

    def kicked(self, now: float) -> None:
        """The hub is reachable again (a probe answered, or the kiosk's WebSocket reconnected):
        try at once. The failure count is kept, so a hub that answers but keeps failing batches
        still gets longer and longer pauses."""
        self.next_try_at = min(self.next_try_at, now)

    def refused_whole(self, batch_size: int) -> bool:
        """The hub refused the batch as a whole (a malformed request). Returns True when the
        batch was a single record, which the caller then holds; otherwise halves the batch."""
        if batch_size <= 1:
            return True
        self.batch_limit = max(1, batch_size // 2)
        return False

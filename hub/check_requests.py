"""Where support's "check for updates now" stands, told truthfully. Pure: times passed in.

A request goes out in every heartbeat reply until a heartbeat answers it (hub/fleet.py). That
only works while the device is heard from: a device that is off or offline cannot answer,
and "asked" alone would suggest it soon will. So a request is, as of `now`:

- `waiting`: the device was heard from within `offline_after_s` (about three missed beats of
  its once-a-minute heartbeat): it answers at its next beat;
- `offline`: not heard from since: it will check when it is back (the request waits);
- `expired`: open longer than `expire_after_h` without an answer: the hub stops asking (the
  device checks by itself on its 30-minute schedule when it is back); support may ask again.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum


@dataclass(frozen=True)
class CheckRequestRules:
    """`[check_requests]` / PORCHLIGHT_CHECK_REQUESTS_*."""

    offline_after_s: float = 180.0  # three missed one-minute heartbeats
    expire_after_h: float = 24.0

    @property
    def offline_after(self) -> timedelta:
        return timedelta(seconds=self.offline_after_s)

    @property
    def expire_after(self) -> timedelta:
        return timedelta(hours=self.expire_after_h)


class CheckState(StrEnum):
    WAITING = "waiting"
    OFFLINE = "offline"
    EXPIRED = "expired"


@dataclass(frozen=True)
class CheckRequest:
    state: CheckState
    asked_at: datetime
    asked_s: float  # seconds since support asked, by the hub's clock
    last_heard_s: float  # seconds since the device was last heard from
    expires_at: datetime

    def to_json(self) -> dict[str, object]:
        return {
            "state": self.state.value,
            "asked_at": self.asked_at.isoformat(),
            "asked_s": round(self.asked_s, 1),
            "last_heard_s": round(self.last_heard_s, 1),
            "expires_at": self.expires_at.isoformat(),
        }


def is_expired(asked_at: datetime, now: datetime, rules: CheckRequestRules) -> bool:
    return now - asked_at >= rules.expire_after


def describe(
    asked_at: datetime, last_heard: datetime, now: datetime, rules: CheckRequestRules
) -> CheckRequest:
    """The state of a request asked at `asked_at` of a device last heard at `last_heard`."""
    if is_expired(asked_at, now, rules):
        state = CheckState.EXPIRED
    elif now - last_heard > rules.offline_after:
        state = CheckState.OFFLINE
    else:
        state = CheckState.WAITING
    return CheckRequest(
        state=state,
        asked_at=asked_at,
        asked_s=max(0.0, (now - asked_at).total_seconds()),
        last_heard_s=max(0.0, (now - last_heard).total_seconds()),
        expires_at=asked_at + rules.expire_after,
    )

"""The hub's throttles for guessable secrets, one set per running hub (kept in HubServices)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from porchlight.hub.enrolment import enrolment_guard
from porchlight.hub.throttle import Guard, Throttle

# Wrong passwords: per account (a targeted guesser) and per source address (a sprayer).
LOGIN_FAILURES_PER_USER = 5
LOGIN_FAILURES_PER_SOURCE = 20
LOGIN_WINDOW = timedelta(minutes=15)


def login_guard() -> Guard:
    return Guard(
        {
            "user": Throttle(LOGIN_FAILURES_PER_USER, LOGIN_WINDOW),
            "source": Throttle(LOGIN_FAILURES_PER_SOURCE, LOGIN_WINDOW),
        },
        "Too many wrong passwords.",
    )


@dataclass
class HubGuards:
    login: Guard = field(default_factory=login_guard)
    enrolment: Guard = field(default_factory=enrolment_guard)

"""hub/check_requests.py: where a "check now" stands, from when it was asked, when the device
was last heard from and now (all passed in)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from porchlight.hub.check_requests import CheckRequestRules, CheckState, describe

ASKED = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
RULES = CheckRequestRules(offline_after_s=180, expire_after_h=24)


@pytest.mark.parametrize(
    ("heard", "now", "state"),
    [
        (ASKED - timedelta(seconds=30), ASKED, CheckState.WAITING),
        (ASKED - timedelta(seconds=180), ASKED, CheckState.WAITING),  # three beats: still fine
        (ASKED - timedelta(seconds=181), ASKED, CheckState.OFFLINE),
        (ASKED, ASKED + timedelta(minutes=4), CheckState.OFFLINE),  # went away after the ask
        (ASKED - timedelta(hours=3), ASKED + timedelta(hours=23, minutes=59), CheckState.OFFLINE),
        (ASKED - timedelta(hours=3), ASKED + timedelta(hours=24), CheckState.EXPIRED),
        (ASKED + timedelta(hours=24), ASKED + timedelta(hours=24), CheckState.EXPIRED),
    ],
)
def test_the_state_follows_the_times(heard, now, state):
    assert describe(ASKED, heard, now, RULES).state is state


def test_the_spans_are_the_hubs_and_the_request_says_when_it_expires():
    r = describe(ASKED, ASKED - timedelta(hours=3), ASKED + timedelta(minutes=10), RULES)
    assert (r.asked_s, r.last_heard_s) == (600.0, 3 * 3600 + 600.0)
    assert r.expires_at == ASKED + timedelta(hours=24)
    assert r.to_json()["state"] == "offline"

"""Calls through a real coturn with the hub's short-lived credentials and a relay-only policy:
the kiosk (KioskCore, aiortc) and a real Chromium on the clinic page.

With good credentials both ends offer only relayed candidates, the selected pair is relay to
relay (Chromium's getStats) and video flows both ways. With an expired credential, or one
signed with a secret coturn does not know, coturn refuses both allocations (401, in its
log), neither end has a candidate to offer, and no picture arrives.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.async_api import async_playwright

from porchlight import chromium

from .turn_support import (
    Call,
    Coturn,
    assert_relay_to_relay,
    call_through_chromium,
    candidate_types,
    once_gathered,
    until,
)

pytestmark = [pytest.mark.browser, pytest.mark.timeout(150)]


async def test_relay_only_call_through_coturn_video_both_ways(tmp_path: Path) -> None:
    with Coturn(tmp_path / "turn") as turn:
        call = Call(tmp_path, turn, hub_secret=turn.secret, clock_offset_s=0)
        state = await call_through_chromium(call)
        log = turn.log()

    assert_relay_to_relay(state)
    # Both allocations were made with hub-minted credentials, named without patient data.
    allocated = re.findall(r"username=<(\d+):((?:kiosk|clinic)-[0-9a-f]+)>", log)
    assert {label.split("-")[0] for _, label in allocated} == {"kiosk", "clinic"}
    assert call.seed.patient_id not in log and call.seed.patient_name not in log
    assert turn.secret not in log


@pytest.mark.parametrize(
    ("case", "clock_offset_s", "same_secret"),
    [("expired", -3600.0, True), ("wrong secret", 0.0, False)],
)
async def test_coturn_refuses_expired_or_forged_credentials_and_the_call_cannot_connect(
    tmp_path: Path, case: str, clock_offset_s: float, same_secret: bool
) -> None:
    with Coturn(tmp_path / "turn") as turn:
        # An hour-slow hub clock mints credentials that expired 50 minutes ago (ttl 600 s).
        secret = turn.secret if same_secret else "0123456789abcdef" * 4
        call = Call(tmp_path, turn, hub_secret=secret, clock_offset_s=clock_offset_s)
        try:
            async with async_playwright() as pw:
                browser = await chromium.launch(pw)
                page = await browser.new_page()
                await call.admit(page)
                # Both ends tried coturn with their credentials and were refused.
                await until(
                    lambda: refused_labels(turn.log()) >= {"kiosk", "clinic"},
                    30,
                    f"coturn to refuse both {case} credentials",
                )
                state, frames, kiosk_frames = await once_gathered(page, call)
                await browser.close()
        finally:
            await call.close()
        log = turn.log()

    assert state["policy"] == "relay"
    # Relay only and no allocation: nothing to offer on either side, so no pair, no picture.
    assert candidate_types(state["remoteSdp"]) == [] and candidate_types(state["localSdp"]) == []
    assert state["connection"] != "connected" and state["local"] is None
    assert frames == 0 and kiosk_frames == 0
    assert "incoming packet ALLOCATE processed, success" not in log


def refused_labels(log: str) -> set[str]:
    """Callers whose credential coturn could not verify (its log line for a bad HMAC or an
    expired username under use-auth-secret)."""
    found = re.findall(r"Cannot find credentials of user <\d+:(kiosk|clinic)-[0-9a-f]+>", log)
    return set(found)

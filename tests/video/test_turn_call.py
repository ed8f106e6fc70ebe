"""Calls through a real coturn with the hub's short-lived credentials and a relay-only policy:
the kiosk (KioskCore, aiortc) and a real Chromium on the clinic page.

With good credentials both ends offer only relayed candidates, the selected pair is relay to
relay (Chromium's getStats) and video flows both ways. With an expired credential, or one
signed with a secret coturn does not know, coturn refuses both allocations (401, in its
log), neither end has a candidate to offer, and no picture arrives.
"""

from __future__ import annotations

import asyncio
import re
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from playwright.async_api import async_playwright, expect

from porchlight import chromium
from porchlight.device.config import DeviceConfig
from porchlight.hub.config import HubConfig
from porchlight.hub.seed import seed_demo
from porchlight.hub.server import HubServer
from porchlight.kiosk.config import KioskConfig
from porchlight.kiosk.core import KioskCore
from porchlight.kiosk.credential import DeviceCredential
from porchlight.kiosk.view import KioskState

from .turn_support import Coturn

pytestmark = [pytest.mark.browser, pytest.mark.timeout(150)]

SMALL = {"camera_width": 320, "camera_height": 180, "camera_fps": 15}

# Keeps a reference to each peer connection the page makes, so the test can ask it for
# getStats (the page's own code is untouched: this only observes).
KEEP_PEER_CONNECTIONS = """
window.__pcs = [];
const NativePeerConnection = window.RTCPeerConnection;
window.RTCPeerConnection = class extends NativePeerConnection {
  constructor(...args) { super(...args); window.__pcs.push(this); }
};
"""

PEER_STATE = """
async () => {
  const pc = window.__pcs[window.__pcs.length - 1];
  if (!pc) return null;
  const byId = new Map();
  let pairId = null;
  (await pc.getStats()).forEach((s) => {
    byId.set(s.id, s);
    if (s.type === "transport" && s.selectedCandidatePairId) pairId = s.selectedCandidatePairId;
  });
  const pair = pairId ? byId.get(pairId) : null;
  return {
    policy: pc.getConfiguration().iceTransportPolicy,
    connection: pc.connectionState,
    gathering: pc.iceGatheringState,
    local: pair ? byId.get(pair.localCandidateId).candidateType : null,
    remote: pair ? byId.get(pair.remoteCandidateId).candidateType : null,
    pairBytesReceived: pair ? pair.bytesReceived : 0,
    localSdp: pc.localDescription ? pc.localDescription.sdp : "",
    remoteSdp: pc.remoteDescription ? pc.remoteDescription.sdp : "",
  };
}
"""

VIDEO_FRAMES = """() => {
  const v = document.querySelector('[data-testid=remote-video]');
  return v ? v.getVideoPlaybackQuality().totalVideoFrames : 0;
}"""


MANY_FRAMES = """() => {
  const v = document.querySelector('[data-testid=remote-video]');
  return v && v.getVideoPlaybackQuality().totalVideoFrames > 30;
}"""


async def until(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while not (value := predicate()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)
    return value


def candidate_types(sdp: str) -> list[str]:
    return re.findall(r"a=candidate:.* typ (\w+)", sdp)


class Call:
    """coturn, the hub (relay-only, shared secret), a kiosk and the clinic page in Chromium."""

    def __init__(self, tmp_path: Path, turn: Coturn, *, hub_secret: str, clock_offset_s: float):
        self.tmp_path = tmp_path
        self.turn = turn
        config = HubConfig(
            host="127.0.0.1",
            data_dir=tmp_path / "hub",
            ice_servers=[turn.url],
            turn_secret=hub_secret,
            turn_ttl_s=600,
            ice_transport_policy="relay",
        )
        offset = timedelta(seconds=clock_offset_s)
        self.hub = HubServer(config, port=0, clock=lambda: datetime.now(UTC) + offset).start()
        assert self.hub.store is not None
        self.seed = seed_demo(self.hub.store)
        kiosk = KioskConfig(
            data_dir=tmp_path / "kiosk",
            ice_host_addresses=["127.0.0.1"],
            device=DeviceConfig(simulate=True, speech=False, **SMALL),
        )
        seed, url = self.seed, self.hub.url
        credential = DeviceCredential(url, seed.device_id, seed.patient_id, seed.device_token)
        self.core = KioskCore(kiosk, credential=credential)

    async def admit(self, page) -> None:
        """The patient presses the button; the clinician logs in and admits them."""
        await self.core.start()
        await page.add_init_script(KEEP_PEER_CONNECTIONS)
        await page.goto(self.hub.url + "/clinic")
        await page.get_by_test_id("login-username").fill(self.seed.username)
        await page.get_by_test_id("login-password").fill(self.seed.password)
        await page.get_by_test_id("login-submit").click()
        await expect(page.get_by_test_id("connection-state")).to_have_text("Live")
        await until(lambda: self.core.view.state == KioskState.IDLE, 20, "kiosk idle")
        self.core.button_down()
        self.core.button_up()
        admit = page.locator("[data-testid^='admit-']")
        await expect(admit).to_have_count(1, timeout=10_000)
        await admit.click()

    async def close(self) -> None:
        await self.core.stop()
        self.hub.stop()


async def test_relay_only_call_through_coturn_video_both_ways(tmp_path: Path) -> None:
    with Coturn(tmp_path / "turn") as turn:
        call = Call(tmp_path, turn, hub_secret=turn.secret, clock_offset_s=0)
        try:
            async with async_playwright() as pw:
                browser = await chromium.launch(pw)
                page = await browser.new_page()
                await call.admit(page)
                await page.wait_for_function(MANY_FRAMES, timeout=30_000)
                await until(lambda: call.core.status()["frames_received"] > 20, 30, "kiosk frames")
                state = await page.evaluate(PEER_STATE)
                await browser.close()
        finally:
            await call.close()
        log = turn.log()

    assert state["policy"] == "relay" and state["connection"] == "connected"
    # The pair carrying the call: Chromium's relayed candidate to the kiosk's relayed one.
    assert (state["local"], state["remote"]) == ("relay", "relay")
    assert state["pairBytesReceived"] > 10_000
    # Neither end offered anything but relayed candidates (no host, no server-reflexive).
    assert set(candidate_types(state["remoteSdp"])) == {"relay"}  # the kiosk's offer
    assert set(candidate_types(state["localSdp"])) == {"relay"}  # Chromium's answer
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
                await page.wait_for_function(
                    "() => window.__pcs.length > 0 &&"
                    " window.__pcs[window.__pcs.length - 1].iceGatheringState === 'complete'",
                    timeout=20_000,
                )
                state = await page.evaluate(PEER_STATE)
                frames = await page.evaluate(VIDEO_FRAMES)
                kiosk_frames = call.core.status()["frames_received"]
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

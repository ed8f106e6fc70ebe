"""When fresh TURN credentials cannot be fetched, a call's media reconnects with those of the
newest `welcome` (docs/protocol.md, "TURN").

The real hub mints a credential for every `admitted`, `welcome` and `/api/ice-servers`
answer (hub.turn_secret; the TURN server's address is a closed port, so the call itself runs
on loopback host candidates and no coturn is needed). The kiosk's link to the hub goes
through a TCP relay. The hub's clock moves ten minutes on, the kiosk's socket drops and comes
back (its welcome brings a credential minted then); from then on the relay refuses new
connections while the open socket stays, so the kiosk's GET /api/ice-servers fails. The
clinician's side loses the call's media: the kiosk reconnects it by itself, with the
welcome's credential, not the admission's ten-minute-older one.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from closelook.look_support import (
    MovableClock,
    hub_with_clock,
    in_a_call,
    kiosk_away,
    kiosk_back,
    kiosk_through,
    tcp_proxy_class,
)
from kiosk.conftest import SMALL_CAMERA, clinician_for, free_port, wait_until

from porchlight.kiosk.view import KioskState

SECRET = "0123456789abcdef" * 2
AHEAD = timedelta(minutes=10)


def turn_username(servers: tuple[dict[str, Any], ...]) -> str:
    (turn,) = [s for s in servers if s["urls"][0].startswith("turn:")]
    return turn["username"]


def expiry(username: str) -> int:
    return int(username.split(":", 1)[0])


async def test_media_reconnects_with_the_welcomes_credentials_when_fresh_ones_fail(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    clock = MovableClock()
    turn_url = f"turn:127.0.0.1:{free_port()}?transport=tcp"  # nothing listens there
    settings = {"ice_servers": [turn_url], "turn_secret": SECRET}
    with (
        hub_with_clock(tmp_path, clock, **settings) as hub,
        tcp_proxy_class()(hub.server.port) as proxy,
    ):
        patient_id = hub.seed.patient_id
        core = await kiosk_through(hub, proxy, tmp_path / "k", SMALL_CAMERA)
        try:
            async with clinician_for(hub) as clinician:
                call = await in_a_call(core, clinician, patient_id)
                await clinician.wait_for(lambda: call.video_frames > 5, 30)
                admitted = turn_username(core._call_ice)

                # Later, the kiosk's socket drops and comes back: a newer credential.
                clock.ahead += AHEAD
                await kiosk_away(core, proxy, clinician, patient_id)
                await kiosk_back(core, proxy, clinician, patient_id)

                # New connections to the hub fail now; the open socket keeps going.
                proxy.mode = "refuse"
                caplog.set_level(logging.WARNING, logger="porchlight.kiosk.core")
                await clinician.drop_media()
                await clinician.wait_for(lambda: call.offers >= 2, 30)
                frames = call.video_frames
                await clinician.wait_for(lambda: call.video_frames > frames + 10, 30)
                await wait_until(lambda: core.view.show_video, 20, "the kiosk's picture back")
                assert core.view.state == KioskState.IN_CALL
                assert core.status()["call_id"] == call.call_id and call.ended is None

                # The fetch failed, and the reconnect used a credential minted after the
                # clock moved on: the welcome's (the admission's is the older one).
                assert any(
                    "reconnecting with the last ICE servers" in r.getMessage()
                    for r in caplog.records
                )
                used = turn_username(core._call_ice)
                assert expiry(used) >= expiry(admitted) + AHEAD.total_seconds()
        finally:
            await core.stop()

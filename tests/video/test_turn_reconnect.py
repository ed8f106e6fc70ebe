"""A call that outlives its TURN credentials and then drops comes back by itself.

The hub mints credentials that expire a few seconds after minting (its clock runs behind by
all but LIFETIME_S of turn_ttl_s); coturn checks that expiry whenever a relay is allocated.
The kiosk and the clinician twin both take the hub's ICE servers and relay-only policy (the
twin asks /api/ice-servers for each answer, as the clinic page does). Once the kiosk's
admission credential has expired, the call still runs (an allocation in use outlives it);
then the clinician's side loses the connection, and the kiosk reconnects the call's media
with credentials minted at that moment: coturn accepts them, the call resumes with no
press, and no expired kiosk credential was ever refused.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from porchlight.clinician_peer import ClinicianPeer
from porchlight.device.config import DeviceConfig
from porchlight.kiosk.view import KioskState

from .turn_support import SMALL, Call, Coturn, candidate_types, until

pytestmark = pytest.mark.timeout(150)

LIFETIME_S = 10.0  # how long each minted credential can open a relay
TTL_S = 60.0  # the hub's turn_ttl_s (its lowest allowed value)


def allocations(log: str, kind: str) -> list[int]:
    """Expiry times of the `kind` credentials coturn allocated a relay with, in order."""
    return [
        int(t)
        for t in re.findall(
            rf"user <(\d+):{kind}-[0-9a-f]+>: incoming packet ALLOCATE processed, success", log
        )
    ]


async def test_media_reconnects_with_fresh_turn_credentials_after_they_expired(
    tmp_path: Path,
) -> None:
    with Coturn(tmp_path / "turn") as turn:
        call = Call(
            tmp_path,
            turn,
            hub_secret=turn.secret,
            clock_offset_s=-(TTL_S - LIFETIME_S),
            turn_ttl_s=TTL_S,
        )
        hub, seed, core = call.hub, call.seed, call.core
        clinician = ClinicianPeer(
            hub.url, seed.username, seed.password, camera=DeviceConfig(simulate=True, **SMALL)
        )
        await clinician.connect()
        try:
            await call.join()
            await clinician.wait_for(lambda: seed.patient_id in clinician.waiting_seen_at, 10)
            record = await clinician.admit(seed.patient_id)
            await until(lambda: core.status()["frames_received"] > 20, 30, "kiosk frames")
            await clinician.wait_for(lambda: record.video_frames > 20, 30)
            # The twin used the hub's relay-only settings, like the clinic page.
            assert clinician.ice is not None and clinician.ice.policy == "relay"
            assert set(candidate_types(record.answer_sdp)) == {"relay"}
            assert set(candidate_types(record.offer_sdp)) == {"relay"}

            # The admission's credential expires; the call carries on regardless.
            first = await until(lambda: allocations(turn.log(), "kiosk"), 10, "kiosk relay")
            await until(lambda: time.time() > first[0] + 1, 30, "the credential to expire")
            frames = record.video_frames
            await clinician.wait_for(lambda: record.video_frames > frames + 10, 20)

            # The clinician's side drops; the kiosk gets the call back by itself.
            await clinician.drop_media()
            await clinician.wait_for(lambda: record.offers >= 2, 30)
            frames = record.video_frames
            await clinician.wait_for(lambda: record.video_frames > frames + 10, 30)
            await until(lambda: core.view.show_video, 20, "the kiosk's picture back")
            assert core.view.state == KioskState.IN_CALL
            assert core.status()["call_id"] == record.call_id and record.ended is None
        finally:
            await clinician.close()
            await call.close()
        log = turn.log()

    # The kiosk's relays (one per media transport) used the admission's credential, then
    # ones minted for the reconnect after it had expired (on a slow machine the kiosk may
    # try more than once, each time with a new one); coturn never had to refuse an expired
    # kiosk credential. The twin likewise fetched one for each answer.
    kiosk = sorted(set(allocations(log, "kiosk")))
    assert len(kiosk) >= 2 and kiosk[1] > kiosk[0] + 1
    assert not re.search(r"Cannot find credentials of user <\d+:kiosk-", log)
    assert len(set(allocations(log, "clinic"))) >= 2

"""Two hub processes on one PostgreSQL: the close look the clinician sets through one instance
while the kiosk's socket is down reaches the kiosk when it comes back through the other (the
call's look is room state, kept in room_calls)."""

from __future__ import annotations

import asyncio
import json
import time

from scale.conftest import cluster_db, hub_process  # noqa: F401  (fixtures)
from scale.test_two_instances import _clinic, _kiosk_hello

REGION = {"x": 0.0, "y": 0.55, "w": 0.3, "h": 0.4}


async def _next(ws, want, timeout: float = 10.0) -> dict:
    """The next message `want(message)` accepts (others are skipped)."""
    deadline = time.monotonic() + timeout
    while True:
        message = json.loads(await asyncio.wait_for(ws.recv(), deadline - time.monotonic()))
        if want(message):
            return message


def _typed(kind: str):
    return lambda message: message["type"] == kind


async def test_a_look_set_through_one_hub_reaches_the_kiosk_back_through_the_other(
    cluster_db,  # noqa: F811
    hub_process,  # noqa: F811
):
    kiosks_hub = hub_process(cluster_db.url)
    clinics_hub = hub_process(cluster_db.url)
    demo = cluster_db.demo
    clinic = await _clinic(clinics_hub.url)
    kiosk, _ = await _kiosk_hello(kiosks_hub.ws_url, demo.device_token, state="idle")
    await kiosk.send(json.dumps({"type": "join"}))
    await _next(kiosk, _typed("waiting"))
    await _next(clinic, lambda m: m["type"] == "waiting_room" and m["patients"])
    await clinic.send(json.dumps({"type": "admit", "patient_id": demo.patient_id}))
    call_id = (await _next(kiosk, _typed("admitted")))["call_id"]

    # The kiosk's socket goes; the clinic page, on the other hub, sees it offline.
    await kiosk.close()
    await _next(
        clinic,
        lambda m: (
            m["type"] == "waiting_room" and [p["device_online"] for p in m["patients"]] == [False]
        ),
    )
    await clinic.send(json.dumps({"type": "view", "region": REGION}))
    await clinic.send(json.dumps({"type": "prompt", "prompt": "show_ankles"}))
    # The page's messages are handled in order: once this is refused, both are kept.
    await clinic.send(json.dumps({"type": "prompt", "prompt": None, "call_id": "no-such-call"}))
    assert (await _next(clinic, _typed("error")))["code"] == "unknown_call"

    kiosk, _ = await _kiosk_hello(
        kiosks_hub.ws_url, demo.device_token, state="in_call", call_id=call_id
    )
    assert (await _next(kiosk, _typed("view")))["region"] == REGION
    again = await _next(kiosk, _typed("prompt"))
    assert (again["prompt"], again["again"], again.get("late")) == ("show_ankles", True, None)
    await kiosk.close()
    await clinic.close()

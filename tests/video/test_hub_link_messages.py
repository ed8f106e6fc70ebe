"""The hub's part in adaptive calls: link reports relayed to the clinician, the link probe
answered, and a call the kiosk could not get back ended as 'patient lost'."""

from __future__ import annotations

from .conftest import clinic_socket, device_socket

REPORT = {
    "rung": "180p15",
    "width": 320,
    "height": 180,
    "fps": 15.0,
    "video_kbps": 158,
    "audio_kbps": 54,
    "loss": 0.02,
    "rtt_ms": 210,
    "jitter_ms": 4.5,
    "quality": "fair",
    "audio_only": False,
}


async def start_call(kiosk, clinic, patient_id: str) -> str:
    await kiosk.send({"type": "join"})
    await kiosk.expect("waiting")
    await clinic.send({"type": "admit", "patient_id": patient_id})
    call_id = (await clinic.expect("call_started"))["call_id"]
    assert (await kiosk.expect("admitted"))["call_id"] == call_id
    return call_id


async def test_link_report_goes_to_the_clinician_of_the_call(hub) -> None:
    server, seed = hub
    kiosk, clinic = await device_socket(server, seed), await clinic_socket(server, seed)
    call_id = await start_call(kiosk, clinic, seed.patient_id)
    await kiosk.send({"type": "stats", "call_id": call_id, **REPORT})
    relayed = await clinic.expect("stats")
    assert relayed == {"type": "stats", "call_id": call_id, "patient_id": seed.patient_id, **REPORT}

    # A report for another call, or out of range, is refused and not relayed.
    await kiosk.send({"type": "stats", "call_id": "not-this-call", **REPORT})
    assert (await kiosk.expect("error"))["code"] == "unknown_call"
    await kiosk.send({"type": "stats", "call_id": call_id, **REPORT, "loss": 3})
    refused = await kiosk.expect("error")
    assert refused["code"] == "bad_message" and "loss" in refused["message"]
    await kiosk.send({"type": "stats", "call_id": call_id, **REPORT, "quality": "poor"})
    assert (await clinic.expect("stats"))["quality"] == "poor"


async def test_probe_is_acknowledged_at_once_and_padding_is_capped(hub) -> None:
    server, seed = hub
    kiosk = await device_socket(server, seed)
    for seq in range(5):
        await kiosk.send({"type": "probe", "seq": seq, "pad": "x" * 8192})
    assert [(await kiosk.expect("probe_ack"))["seq"] for _ in range(5)] == [0, 1, 2, 3, 4]
    await kiosk.send({"type": "probe", "seq": 9, "pad": "x" * 20_000})
    assert (await kiosk.expect("error"))["code"] == "bad_message"


async def test_a_dropped_call_ends_for_the_clinician_as_patient_lost(hub) -> None:
    server, seed = hub
    kiosk, clinic = await device_socket(server, seed), await clinic_socket(server, seed)
    call_id = await start_call(kiosk, clinic, seed.patient_id)
    await kiosk.send({"type": "hangup", "call_id": call_id, "reason": "dropped"})
    ended = await clinic.expect("ended")
    assert ended == {"type": "ended", "call_id": call_id, "reason": "patient_lost"}


async def test_an_ordinary_hangup_still_says_patient_ended(hub) -> None:
    server, seed = hub
    kiosk, clinic = await device_socket(server, seed), await clinic_socket(server, seed)
    call_id = await start_call(kiosk, clinic, seed.patient_id)
    await kiosk.send({"type": "hangup", "call_id": call_id})
    assert (await clinic.expect("ended"))["reason"] == "patient_ended"

"""A still taken in a call on the rural line (network lab, 300 kbit/s) arrives whole and once
after the link was lost part way through its upload (issue 10, "Shown by"):

- the link goes down mid-upload, the upload stalls, the link comes back: the clinician is
  told `still_ready`, and the JPEG the hub serves has the SHA-256 of the bytes in the kiosk's
  own outbox file;
- the same, but the kiosk is SIGKILLed while the link is down and started again on its data
  dir before the link returns: the restarted kiosk finishes the upload from its outbox.

Either way the hub holds exactly one still for the patient. The real hub, KioskCore and
clinician twin (bench/video_lab.py), each in its namespace. Needs root, iproute2, iptables
and netfilterqueue (the lab's delay). Run by hand under the lab lock:
`flock /tmp/porchlight-lab.lock nice -n 10 python3 -m pytest -q -p no:cacheprovider
tests/stills/test_lab_still.py`.
"""

from __future__ import annotations

import hashlib
import time
from typing import Any

import pytest

from .test_sync_stills import wait_until

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

OUTAGE_S = 15.0  # shorter than the kiosk waits for a lost call (40 s): the call carries on


def still_stage(
    call, request_id: str, stage: str, timeout: float, at_least: int = 1
) -> list[dict[str, Any]]:
    """The clinician's messages about the still, once it reached `stage` (progress: at least
    `at_least` bytes on the hub). The clinic role waits on its own messages: no polling."""
    command = f"await-still {request_id} {stage} {timeout} {at_least}"
    got = call.ask("clinic", command, "still_stage", timeout + 30)
    assert got["reached"], f"the still never got to {stage!r}: {got['messages']}"
    return got["messages"]


def hub_rows(call) -> list[dict[str, Any]]:
    return call.ask("clinic", "hub-stills", "hub_stills")["rows"]


def kiosk_copy(call, still_id: str) -> bytes:
    """The still's bytes as the kiosk keeps them in its outbox file, checked against the
    SHA-256 and size the kiosk recorded with them."""
    kept = call.outbox_still(still_id)
    assert kept is not None, "the still is not in the kiosk's outbox"
    data = kept["data"]
    assert len(data) == kept["size"]
    assert hashlib.sha256(data).hexdigest() == kept["sha256"]
    return data


def cut_mid_upload(call) -> tuple[str, str, bytes]:
    """Ask for a still; once a quarter of it (not all) is on the hub, take the link down, so
    what arrives is spliced from bytes sent before and after. The clinic's request id, the
    still's id and its bytes as the kiosk captured them."""
    request_id = call.ask("clinic", "ask-still", "still_asked")["request_id"]
    taken = still_stage(call, request_id, "taken", 60)[0]
    assert taken["type"] == "still_taken"
    still_id, size = taken["still_id"], taken["size"]
    still_stage(call, request_id, "progress", 120, at_least=size // 4)
    call.lab.outage(True)
    data = kiosk_copy(call, still_id)
    assert len(data) == size
    assert data[:2] == b"\xff\xd8"  # a JPEG
    (row,) = hub_rows(call)
    assert row["id"] == still_id
    assert row["state"] == "uploading" and 0 < row["received"] < size, row
    print(f"link cut with {row['received']} of {size} bytes on the hub")
    return request_id, still_id, data


def assert_on_hub_once(call, still_id: str, data: bytes) -> None:
    """The hub has this one still for the patient, final, and serves exactly these bytes."""
    rows = hub_rows(call)
    assert [(r["id"], r["state"], r["received"]) for r in rows] == [(still_id, "final", len(data))]
    served = call.ask("clinic", f"fetch-still {still_id}", "fetched_still", 150)
    assert served["listed"] == [still_id]
    assert (served["status"], served["content_type"]) == (200, "image/jpeg")
    assert served["size"] == len(data)
    assert served["sha256"] == hashlib.sha256(data).hexdigest()


def kiosk_outbox(call) -> dict[str, Any]:
    return call.ask("kiosk", "outbox", "outbox")


def test_a_still_cut_off_mid_upload_arrives_whole_when_the_link_returns(rural_call) -> None:
    call = rural_call
    request_id, still_id, data = cut_mid_upload(call)
    time.sleep(OUTAGE_S)  # the outage itself
    (row,) = hub_rows(call)
    assert row["state"] == "uploading" and row["received"] < len(data)  # the upload stalled
    assert kiosk_outbox(call)["still_bytes_left"] > 0
    call.lab.outage(False)
    back = time.monotonic()

    messages = still_stage(call, request_id, "ready", 150)
    print(f"still_ready {time.monotonic() - back:.1f} s after the link returned")
    ready = [m for m in messages if m["type"] == "still_ready"]
    assert len(ready) == 1 and ready[0]["url"].endswith(still_id)
    progress = [m["received"] for m in messages if m["type"] == "still_progress"]
    assert progress == sorted(progress) and progress[-1] == len(data)
    assert_on_hub_once(call, still_id, data)
    wait_until(
        lambda: kiosk_outbox(call)["stills_pending"] == 0,
        30,
        "the kiosk to see it acknowledged",
        0.5,
    )
    assert call.status()["state"] == "in_call"  # the call carried on through the outage


def test_a_still_survives_the_kiosk_killed_while_the_link_is_down(rural_call) -> None:
    call = rural_call
    _, still_id, data = cut_mid_upload(call)
    call.kill_kiosk()
    assert kiosk_copy(call, still_id) == data  # the outbox file kept it through the kill

    call.restart_kiosk()
    outbox = wait_until(lambda: (o := kiosk_outbox(call))["open"] and o, 30, "the outbox open", 0.5)
    assert outbox["stills_pending"] == 1 and 0 < outbox["still_bytes_left"] <= len(data)
    (row,) = hub_rows(call)
    assert row["state"] == "uploading"  # nothing got through while the link was down
    call.lab.outage(False)
    back = time.monotonic()

    wait_until(
        lambda: [r["state"] for r in hub_rows(call)] == ["final"], 150, "the still on the hub", 0.5
    )
    print(f"final on the hub {time.monotonic() - back:.1f} s after the link returned")
    assert_on_hub_once(call, still_id, data)
    wait_until(
        lambda: kiosk_outbox(call)["stills_pending"] == 0,
        30,
        "the kiosk to see it acknowledged",
        0.5,
    )

"""Help requests pushed to the care team's clinic pages the moment the hub stores one.

The inbox (hub/inbox.py) stores records in batches; for each help request newly stored (not a
resend) it asks this module for a `help_request` message and publishes it on the patient's
care-team topic (`team_topic`), which every connected clinic page of that team subscribes to
(hub/signalling.py). The page shows it at once; its slower poll of `GET /api/help-requests`
(hub/help_requests.py) stays as the fallback for a page that was offline when it was pushed.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from porchlight.hub.bus import Bus, Message, team_topic
from porchlight.hub.store import Store
from porchlight.kiosk.records import RecordKind, parse_time
from porchlight.protocol import HubToClinician


def help_request_message(
    record_id: str, patient_id: str, patient_name: str, asked_at: datetime, received_at: datetime
) -> Message:
    """The same fields as `GET /api/help-requests` answers, so the page draws both alike."""
    return {
        "type": HubToClinician.HELP_REQUEST.value,
        "record_id": record_id,
        "patient_id": patient_id,
        "patient_name": patient_name,
        "asked_at": asked_at.isoformat(),
        "received_at": received_at.isoformat(),
    }


def newly_stored_help(
    store: Store,
    patient_id: str,
    items: Sequence[Any],
    stored_ids: set[str],
    received_at: datetime,
) -> list[tuple[str, Message]]:
    """(topic, message) for each help request in the batch that was stored just now.

    `items` are the batch as sent (already validated by the inbox, which put the id of each
    record it stored in `stored_ids`). Blocking (reads the store): call it off the event loop."""
    asked = [
        raw
        for raw in items
        if isinstance(raw, dict)
        and raw.get("kind") == RecordKind.HELP_REQUEST.value
        and raw.get("id") in stored_ids
    ]
    if not asked:
        return []
    team = store.team_of_patient(patient_id)
    patient = store.get_patient(patient_id)
    if team is None or patient is None:
        return []  # no care team to tell; the request still waits in the records
    return [
        (
            team_topic(team),
            help_request_message(
                raw["id"],
                patient_id,
                patient.display_name,
                parse_time(raw["recorded_at"]),
                received_at,
            ),
        )
        for raw in asked
    ]


async def announce(bus: Bus, alerts: Sequence[tuple[str, Message]]) -> None:
    for topic, message in alerts:
        await bus.publish(topic, message)

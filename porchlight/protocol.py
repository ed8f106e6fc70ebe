"""Message types of the hub ⇄ kiosk ⇄ clinician WebSocket protocol (see docs/protocol.md)."""

from __future__ import annotations

from enum import StrEnum

DEVICE_WS_PATH = "/ws/device"
CLINIC_WS_PATH = "/ws/clinic"
SESSION_COOKIE = "porchlight_session"

# WebSocket close codes (4000-4999 are free for applications).
CLOSE_NOT_AUTHORISED = 4401
CLOSE_FORBIDDEN = 4403
CLOSE_REPLACED = 4409  # the same device connected again; the older socket is closed

# How long a waiting patient whose kiosk dropped stays in the list.
WAITING_GRACE_S = 60.0


class DeviceSays(StrEnum):
    HELLO = "hello"
    JOIN = "join"
    LEAVE = "leave"
    OFFER = "offer"
    HANGUP = "hangup"
    RING_ACCEPT = "ring_accept"  # the patient answered a ring (a press, or auto-answer)
    STATS = "stats"  # in a call: the patient's picture and link, relayed to the clinician
    PROBE = "probe"  # link probe while waiting: padding the hub acknowledges at once


class HubToDevice(StrEnum):
    WELCOME = "welcome"
    WAITING = "waiting"
    LEFT = "left"
    ADMITTED = "admitted"
    ANSWER = "answer"
    ENDED = "ended"
    ERROR = "error"
    RING = "ring"  # a clinician of the care team is calling
    RING_STOPPED = "ring_stopped"
    PLAN_CHANGED = "plan_changed"  # settings or appointments changed: fetch the plan again
    PROBE_ACK = "probe_ack"


class ClinicianSays(StrEnum):
    HELLO = "hello"
    ADMIT = "admit"
    ANSWER = "answer"
    HANGUP = "hangup"
    RING = "ring"  # call a patient at home
    RING_CANCEL = "ring_cancel"


class HubToClinician(StrEnum):
    WAITING_ROOM = "waiting_room"
    CALL_STARTED = "call_started"
    OFFER = "offer"
    ENDED = "ended"
    ERROR = "error"
    RINGING = "ringing"  # your ring reached the kiosk
    RING_ENDED = "ring_ended"  # cancelled, no answer, or could not connect
    STATS = "stats"  # the patient's link report (from their kiosk)


class EndReason(StrEnum):
    CLINICIAN_ENDED = "clinician_ended"
    CLINICIAN_LOST = "clinician_lost"
    PATIENT_ENDED = "patient_ended"
    PATIENT_LOST = "patient_lost"
    REPLACED = "replaced"

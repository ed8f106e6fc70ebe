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
    STILL_TAKEN = "still_taken"  # a still was captured and queued in the outbox (issue 10)


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
    VIEW = "view"  # the clinician's close look: the camera region to send (issue 10)
    TAKE_STILL = "take_still"
    PROMPT = "prompt"  # show and say one of PROMPTS large (or clear it)


class ClinicianSays(StrEnum):
    HELLO = "hello"
    ADMIT = "admit"
    ANSWER = "answer"
    HANGUP = "hangup"
    RING = "ring"  # call a patient at home
    RING_CANCEL = "ring_cancel"
    VIEW = "view"  # in a call: zoom and pan into the patient's camera (issue 10)
    TAKE_STILL = "take_still"
    PROMPT = "prompt"


class HubToClinician(StrEnum):
    WAITING_ROOM = "waiting_room"
    CALL_STARTED = "call_started"
    OFFER = "offer"
    ENDED = "ended"
    ERROR = "error"
    RINGING = "ringing"  # your ring reached the kiosk
    RING_ENDED = "ring_ended"  # cancelled, no answer, or could not connect
    STATS = "stats"  # the patient's link report (from their kiosk)
    STILL_TAKEN = "still_taken"  # the kiosk captured the still you asked for (issue 10)
    STILL_PROGRESS = "still_progress"  # bytes of it the hub has
    STILL_READY = "still_ready"  # whole and checked: show it
    HELP_REQUEST = "help_request"  # a patient of your care team asked for help (issue 8)


class EndReason(StrEnum):
    CLINICIAN_ENDED = "clinician_ended"
    CLINICIAN_LOST = "clinician_lost"
    PATIENT_ENDED = "patient_ended"
    PATIENT_LOST = "patient_lost"
    REPLACED = "replaced"


# What a clinician can ask the patient to show (issue 10). The kiosk has the words for each in
# every language; the clinic page shows them in English.
PROMPTS: dict[str, str] = {
    "show_ankles": "Please show me your ankles",
    "hand_to_camera": "Please hold your hand up to the camera",
    "show_where_it_hurts": "Please show me where it hurts",
    "closer_to_light": "Please move closer to the light",
    "face_to_camera": "Please look straight at the camera",
    "hold_still": "Please hold still",
}

# Stills (issue 10): the largest still the hub takes, and the upload path (docs/protocol.md).
MAX_STILL_BYTES = 16 * 1024 * 1024
DEVICE_STILLS_PATH = "/api/device/stills"

"""The WebSocket messages of docs/protocol.md: parsing what arrives, building what leaves.

Incoming frames are validated with pydantic models, one per message type. Unknown fields
are ignored (forward compatibility); an unknown `type` is its own error code so newer
clients can tell "not understood" from "malformed".
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from porchlight.errors import BadInput
from porchlight.hub.waiting_room import KioskState, WaitingPatient
from porchlight.protocol import (
    MAX_STILL_BYTES,
    PROMPTS,
    ClinicianSays,
    DeviceSays,
    EndReason,
    HubToClinician,
    HubToDevice,
)

MAX_SDP_CHARS = 200_000

CallId = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")]
PatientId = Annotated[str, Field(min_length=1, max_length=64)]
Sdp = Annotated[str, Field(min_length=1, max_length=MAX_SDP_CHARS)]


class BadMessage(BadInput):
    """A frame we cannot act on; `code` goes into the `error` reply."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class _Message(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


# -- kiosk → hub --------------------------------------------------------------------------


class DeviceHello(_Message):
    type: Literal[DeviceSays.HELLO]
    state: KioskState = KioskState.IDLE
    call_id: CallId | None = None
    since: datetime | None = None


class DeviceJoin(_Message):
    type: Literal[DeviceSays.JOIN]


class DeviceLeave(_Message):
    type: Literal[DeviceSays.LEAVE]


class DeviceOffer(_Message):
    type: Literal[DeviceSays.OFFER]
    call_id: CallId
    sdp: Sdp


class DeviceHangup(_Message):
    type: Literal[DeviceSays.HANGUP]
    call_id: CallId
    # "dropped": the kiosk gave up reconnecting the call (the clinician hears patient_lost).
    reason: Literal["dropped"] | None = None


class DeviceStats(_Message):
    """The kiosk's link report in a call; relayed to the clinician as it is."""

    type: Literal[DeviceSays.STATS]
    call_id: CallId
    rung: str = Field(default="", max_length=32)
    width: int = Field(default=0, ge=0, le=8192)
    height: int = Field(default=0, ge=0, le=8192)
    fps: float = Field(default=0, ge=0, le=240)
    video_kbps: float = Field(default=0, ge=0, le=1_000_000)
    audio_kbps: float = Field(default=0, ge=0, le=1_000_000)
    loss: float = Field(default=0, ge=0, le=1)
    rtt_ms: float | None = Field(default=None, ge=0, le=600_000)
    jitter_ms: float | None = Field(default=None, ge=0, le=600_000)
    quality: Literal["good", "fair", "poor"] = "fair"
    audio_only: bool = False


MAX_PROBE_PAD = 16_384


class DeviceProbe(_Message):
    """Padding for the join-time link probe; answered at once with probe_ack."""

    type: Literal[DeviceSays.PROBE]
    seq: int = Field(ge=0, le=1_000_000_000)
    pad: str = Field(default="", max_length=MAX_PROBE_PAD)


RingId = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")]


class DeviceRingAccept(_Message):
    type: Literal[DeviceSays.RING_ACCEPT]
    ring_id: RingId


StillId = Annotated[
    str,
    Field(
        min_length=36,
        max_length=36,
        pattern=r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$",
    ),
]
# The clinic page's own id for a still it asked for (docs/protocol.md: 1-64 characters).
RequestId = Annotated[str, Field(min_length=1, max_length=64)]


class DeviceStillTaken(_Message):
    """The kiosk captured the still a clinician asked for and queued it in its outbox."""

    type: Literal[DeviceSays.STILL_TAKEN]
    request_id: RequestId
    still_id: StillId
    size: int = Field(ge=1, le=MAX_STILL_BYTES, strict=True)


DeviceMessage = (
    DeviceHello
    | DeviceJoin
    | DeviceLeave
    | DeviceOffer
    | DeviceHangup
    | DeviceRingAccept
    | DeviceStats
    | DeviceProbe
    | DeviceStillTaken
)

_DEVICE_MODELS: dict[str, type[_Message]] = {
    DeviceSays.HELLO: DeviceHello,
    DeviceSays.JOIN: DeviceJoin,
    DeviceSays.LEAVE: DeviceLeave,
    DeviceSays.OFFER: DeviceOffer,
    DeviceSays.HANGUP: DeviceHangup,
    DeviceSays.RING_ACCEPT: DeviceRingAccept,
    DeviceSays.STATS: DeviceStats,
    DeviceSays.PROBE: DeviceProbe,
    DeviceSays.STILL_TAKEN: DeviceStillTaken,
}

# -- clinician → hub ----------------------------------------------------------------------


class ClinicianHello(_Message):
    type: Literal[ClinicianSays.HELLO]
    call_id: CallId | None = None


class ClinicianAdmit(_Message):
    type: Literal[ClinicianSays.ADMIT]
    patient_id: PatientId


class ClinicianAnswer(_Message):
    type: Literal[ClinicianSays.ANSWER]
    call_id: CallId
    sdp: Sdp


class ClinicianHangup(_Message):
    type: Literal[ClinicianSays.HANGUP]
    call_id: CallId


class ClinicianRing(_Message):
    type: Literal[ClinicianSays.RING]
    patient_id: PatientId


class ClinicianRingCancel(_Message):
    type: Literal[ClinicianSays.RING_CANCEL]
    ring_id: RingId
    reason: Literal["cancelled", "no_answer"] = "cancelled"


Fraction = Annotated[float, Field(ge=0, le=1, strict=True, allow_inf_nan=False)]
MIN_REGION_SIDE = 0.05
_EDGE_SLACK = 1e-9  # x + w computed in floating point may overshoot 1 by a rounding error


class Region(_Message):
    """A part of the camera's whole frame, in fractions (x, y: its top left)."""

    x: Fraction
    y: Fraction
    w: Fraction
    h: Fraction

    @model_validator(mode="after")
    def _inside(self) -> Region:
        if self.w < MIN_REGION_SIDE or self.h < MIN_REGION_SIDE:
            raise ValueError(f"w and h must be at least {MIN_REGION_SIDE}")
        if self.x + self.w > 1 + _EDGE_SLACK or self.y + self.h > 1 + _EDGE_SLACK:
            raise ValueError("the region must lie inside the frame (x + w ≤ 1, y + h ≤ 1)")
        return self


# In a call, for the call's own clinician. `call_id` is optional (the page's call is known);
# when given it must be the page's call.
class ClinicianView(_Message):
    type: Literal[ClinicianSays.VIEW]
    region: Region | None
    call_id: CallId | None = None


class ClinicianTakeStill(_Message):
    type: Literal[ClinicianSays.TAKE_STILL]
    request_id: RequestId
    call_id: CallId | None = None


class ClinicianPrompt(_Message):
    type: Literal[ClinicianSays.PROMPT]
    prompt: Literal[tuple(PROMPTS)] | None  # type: ignore[valid-type]
    call_id: CallId | None = None


ClinicianMessage = (
    ClinicianHello
    | ClinicianAdmit
    | ClinicianAnswer
    | ClinicianHangup
    | ClinicianRing
    | ClinicianRingCancel
    | ClinicianView
    | ClinicianTakeStill
    | ClinicianPrompt
)

_CLINICIAN_MODELS: dict[str, type[_Message]] = {
    ClinicianSays.HELLO: ClinicianHello,
    ClinicianSays.ADMIT: ClinicianAdmit,
    ClinicianSays.ANSWER: ClinicianAnswer,
    ClinicianSays.HANGUP: ClinicianHangup,
    ClinicianSays.RING: ClinicianRing,
    ClinicianSays.RING_CANCEL: ClinicianRingCancel,
    ClinicianSays.VIEW: ClinicianView,
    ClinicianSays.TAKE_STILL: ClinicianTakeStill,
    ClinicianSays.PROMPT: ClinicianPrompt,
}


def _parse(text: str, models: dict[str, type[_Message]]) -> Any:
    try:
        raw = json.loads(text)
    except ValueError:
        raise BadMessage("bad_message", "A message must be one JSON object.") from None
    if not isinstance(raw, dict) or not isinstance(raw.get("type"), str):
        raise BadMessage("bad_message", "A message must be a JSON object with a 'type'.")
    model = models.get(raw["type"])
    if model is None:
        # Not echoed back in full: a type name is short, but cap it anyway.
        raise BadMessage("unknown_type", f"Unknown message type {raw['type'][:40]!r}; ignored.")
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        # Field names and what is wrong with them; never the values (an SDP, an id).
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'message'}: {err['msg']}"
            for err in exc.errors(include_input=False, include_url=False)
        )
        raise BadMessage("bad_message", f"Bad {raw['type']} message: {problems}") from None


def parse_device_message(text: str) -> DeviceMessage:
    message = _parse(text, _DEVICE_MODELS)
    if isinstance(message, DeviceHello) and message.since and message.since.tzinfo is None:
        message = message.model_copy(update={"since": message.since.replace(tzinfo=UTC)})
    return message


def parse_clinician_message(text: str) -> ClinicianMessage:
    return _parse(text, _CLINICIAN_MODELS)


# -- hub → kiosk / clinician --------------------------------------------------------------


def iso(moment: datetime) -> str:
    """An ISO 8601 UTC timestamp with milliseconds and a Z, e.g. 2024-05-01T10:42:00.123Z."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def error(code: str, message: str) -> dict[str, Any]:
    return {"type": HubToDevice.ERROR.value, "code": code, "message": message}


def welcome(
    patient_id: str,
    display_name: str,
    ice_servers: list[dict[str, Any]],
    ice_transport_policy: str = "all",
) -> dict[str, Any]:
    return {
        "type": HubToDevice.WELCOME.value,
        "patient_id": patient_id,
        "display_name": display_name,
        "ice_servers": ice_servers,
        "ice_transport_policy": ice_transport_policy,
    }


def waiting(since: datetime) -> dict[str, Any]:
    return {"type": HubToDevice.WAITING.value, "since": iso(since)}


def left() -> dict[str, Any]:
    return {"type": HubToDevice.LEFT.value}


def admitted(
    call_id: str,
    clinician_name: str,
    ice_servers: list[dict[str, Any]],
    ice_transport_policy: str = "all",
) -> dict[str, Any]:
    return {
        "type": HubToDevice.ADMITTED.value,
        "call_id": call_id,
        "clinician_name": clinician_name,
        "ice_servers": ice_servers,
        "ice_transport_policy": ice_transport_policy,
    }


def answer(call_id: str, sdp: str) -> dict[str, Any]:
    return {"type": HubToDevice.ANSWER.value, "call_id": call_id, "sdp": sdp}


def ended(call_id: str, reason: EndReason) -> dict[str, Any]:
    return {"type": HubToDevice.ENDED.value, "call_id": call_id, "reason": reason.value}


def waiting_room_row(row: WaitingPatient) -> dict[str, Any]:
    return {
        "patient_id": row.patient_id,
        "display_name": row.display_name,
        "state": row.state.value,
        "since": iso(row.since),
        "device_online": row.device_online,
    }


def waiting_room(rows: list[WaitingPatient]) -> dict[str, Any]:
    return {
        "type": HubToClinician.WAITING_ROOM.value,
        "patients": [waiting_room_row(r) for r in rows],
    }


def call_started(call_id: str, patient_id: str, display_name: str) -> dict[str, Any]:
    return {
        "type": HubToClinician.CALL_STARTED.value,
        "call_id": call_id,
        "patient_id": patient_id,
        "display_name": display_name,
    }


def offer(call_id: str, patient_id: str, sdp: str) -> dict[str, Any]:
    return {
        "type": HubToClinician.OFFER.value,
        "call_id": call_id,
        "patient_id": patient_id,
        "sdp": sdp,
    }


# -- ringing (hub/ringing.py) ---------------------------------------------------------------


def ring(ring_id: str, clinician_name: str, auto_answer: bool) -> dict[str, Any]:
    return {
        "type": HubToDevice.RING.value,
        "ring_id": ring_id,
        "clinician_name": clinician_name,
        "auto_answer": auto_answer,
    }


def ring_stopped(ring_id: str, reason: str) -> dict[str, Any]:
    return {"type": HubToDevice.RING_STOPPED.value, "ring_id": ring_id, "reason": reason}


def ringing(ring_id: str, patient_id: str, auto_answer: bool, timeout_s: float) -> dict[str, Any]:
    return {
        "type": HubToClinician.RINGING.value,
        "ring_id": ring_id,
        "patient_id": patient_id,
        "auto_answer": auto_answer,
        "timeout_s": timeout_s,
    }


def ring_ended(ring_id: str, reason: str) -> dict[str, Any]:
    return {"type": HubToClinician.RING_ENDED.value, "ring_id": ring_id, "reason": reason}


def stats(call_id: str, patient_id: str, report: DeviceStats) -> dict[str, Any]:
    """The kiosk's link report for the clinician of the call."""
    fields = report.model_dump(exclude={"type", "call_id"})
    return {"type": HubToClinician.STATS.value, "call_id": call_id, "patient_id": patient_id,
            **fields}  # fmt: skip


def probe_ack(seq: int) -> dict[str, Any]:
    return {"type": HubToDevice.PROBE_ACK.value, "seq": seq}


# -- the close look, stills and prompts (issue 10) ------------------------------------------


def view(region: Region | None) -> dict[str, Any]:
    return {
        "type": HubToDevice.VIEW.value,
        "region": None if region is None else region.model_dump(),
    }


def take_still(request_id: str) -> dict[str, Any]:
    return {"type": HubToDevice.TAKE_STILL.value, "request_id": request_id}


def prompt(key: str | None) -> dict[str, Any]:
    return {"type": HubToDevice.PROMPT.value, "prompt": key}


def prompt_again(key: str | None, *, late: bool) -> dict[str, Any]:
    """The call's prompt once more, to a kiosk whose socket came back (not to be said twice);
    `late`: asked for too long ago to appear now, so kept only if already shown."""
    return {**prompt(key), "again": True, **({"late": True} if late else {})}


def still_taken(taken: DeviceStillTaken, patient_id: str) -> dict[str, Any]:
    return {
        "type": HubToClinician.STILL_TAKEN.value,
        "request_id": taken.request_id,
        "still_id": taken.still_id,
        "size": taken.size,
        "patient_id": patient_id,
    }

"""The kiosk's state machine: events in, a view and a list of effects out.

Pure: no I/O, no clock, no Kivy, aiortc, GPIO or websockets. Every input carries `now`
(monotonic seconds) and the machine answers at once, so a button press gets its beep and its
visible change before any I/O happens (the 200 ms promise). kiosk/core.py feeds it events from
the hub link, the call and the button, and carries out the effects it returns.

Button rules: a press in idle joins the waiting room at once (the press is "used", so holding
on does not also leave); holding for `hold_to_leave_s` while joining, waiting or in a call
leaves or hangs up; every press beeps and shows `pressed` straight away.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from porchlight.kiosk.view import KioskState, KioskView

S = KioskState

# Light patterns (names the device light knows), one per state, told apart without colour.
LIGHT_FOR_STATE = {
    S.IDLE: "steady",
    S.OFFLINE: "heartbeat",
    S.JOINING: "fast_blink",
    S.WAITING: "slow_blink",
    S.IN_CALL: "breathing",
    S.ENDING: "off",
}


@dataclass(frozen=True)
class Timings:
    hold_to_leave_s: float = 2.0
    join_timeout_s: float = 10.0  # joining with no answer from the hub → back home
    connect_timeout_s: float = 30.0  # admitted but no media → give up on the call
    ending_s: float = 5.0  # how long "Call ended — thank you" stays up
    pressed_flash_s: float = 0.6  # `pressed` stays visible at least this long after a press


# ---------------------------------------------------------------- events (inputs)


@dataclass(frozen=True)
class HubConnected:
    """The hub answered our hello (welcome)."""


@dataclass(frozen=True)
class HubLost:
    """The WebSocket to the hub closed or stopped answering pings."""


@dataclass(frozen=True)
class NeedsSetup:
    """The hub refused our credential, or there is none: a person must set the kiosk up."""


@dataclass(frozen=True)
class ButtonPressed:
    pass


@dataclass(frozen=True)
class ButtonHeld:
    seconds: float


@dataclass(frozen=True)
class ButtonReleased:
    held_s: float = 0.0


@dataclass(frozen=True)
class WaitingConfirmed:
    since: str | None = None  # the hub's ISO time the patient joined


@dataclass(frozen=True)
class LeftRoom:
    """The hub says we are no longer in the waiting room."""


@dataclass(frozen=True)
class Admitted:
    call_id: str
    ice_servers: tuple[dict[str, Any], ...] = ()


@dataclass(frozen=True)
class OfferReady:
    call_id: str
    sdp: str


@dataclass(frozen=True)
class AnswerReceived:
    call_id: str
    sdp: str


@dataclass(frozen=True)
class MediaConnected:
    call_id: str


@dataclass(frozen=True)
class MediaFailed:
    call_id: str
    reason: str = "media_failed"


@dataclass(frozen=True)
class CallEnded:
    """The hub says the call is over (`ended`)."""

    call_id: str
    reason: str = ""


@dataclass(frozen=True)
class HubError:
    code: str = ""


@dataclass(frozen=True)
class Tick:
    pass


Event = (
    HubConnected
    | HubLost
    | NeedsSetup
    | ButtonPressed
    | ButtonHeld
    | ButtonReleased
    | WaitingConfirmed
    | LeftRoom
    | Admitted
    | OfferReady
    | AnswerReceived
    | MediaConnected
    | MediaFailed
    | CallEnded
    | HubError
    | Tick
)

# ---------------------------------------------------------------- effects (outputs)


@dataclass(frozen=True)
class SendJoin:
    pass


@dataclass(frozen=True)
class SendLeave:
    pass


@dataclass(frozen=True)
class SendOffer:
    call_id: str
    sdp: str


@dataclass(frozen=True)
class SendHangup:
    call_id: str


@dataclass(frozen=True)
class StartCall:
    call_id: str
    ice_servers: tuple[dict[str, Any], ...] = ()


@dataclass(frozen=True)
class ApplyAnswer:
    call_id: str
    sdp: str


@dataclass(frozen=True)
class EndCall:
    call_id: str


@dataclass(frozen=True)
class Beep:
    pass


@dataclass(frozen=True)
class Say:
    text: str


@dataclass(frozen=True)
class SetLight:
    pattern: str


@dataclass(frozen=True)
class ReconnectNow:
    """Skip the hub link's back-off and try again now (a press while offline)."""


Effect = (
    SendJoin
    | SendLeave
    | SendOffer
    | SendHangup
    | StartCall
    | ApplyAnswer
    | EndCall
    | Beep
    | Say
    | SetLight
    | ReconnectNow
)

# ---------------------------------------------------------------- words

HOME_HEADLINE = "Press the button to call your nurse"
WAITING_HEADLINE = "Your nurse knows you are waiting"
LEAVE_HINT = "To leave, hold the button for 2 seconds"
END_HINT = "To end the call, hold the button for 2 seconds"
ENDED_HEADLINE = "Call ended — thank you"
LOST_HEADLINE = "The call was lost — thank you"
NOTICE_LEFT = "You have left the waiting room"
NOTICE_REMOVED = "You are no longer in the waiting room"
NOTICE_NO_ANSWER = "Your nurse's service did not answer. Please press the button again."
NOTICE_REFUSED = "Could not join the waiting room. Please press the button again."


@dataclass
class _Press:
    down: bool = False
    at: float = 0.0
    used: bool = True  # this press already did its job (join, leave), so a hold does nothing
    flash_until: float = float("-inf")


@dataclass
class KioskMachine:
    """The kiosk's behaviour. Call `handle(event, now)`; read `view`; run the effects."""

    timings: Timings = field(default_factory=Timings)
    now: float = 0.0
    state: KioskState = S.OFFLINE
    hub_up: bool = False
    needs_setup: bool = False
    ever_connected: bool = False
    since: str | None = None  # hub's "waiting since", sent back in hello after a reconnect
    resume_waiting: bool = False  # link lost while waiting: go back to waiting when it returns
    call_id: str | None = None
    media_up: bool = False
    entered_at: float = 0.0
    notice: str = ""  # a one-off explanation shown under the home headline
    call_lost: bool = False
    press: _Press = field(default_factory=_Press)

    def __post_init__(self) -> None:
        self.entered_at = self.now
        self.view = self._render()

    # ------------------------------------------------------------ public

    def handle(self, event: Event, now: float) -> list[Effect]:
        """Apply one event at time `now`; return the effects to carry out, in order."""
        self.now = max(self.now, now)  # time never runs backwards in here
        before_state, before_light = self.state, self.view.light
        effects: list[Effect] = []
        spoken = self._dispatch(event, effects)
        self._check_hold(self.now - self.press.at, effects)
        self._check_timeouts(effects)
        self.view = self._render()
        already_said = spoken or any(isinstance(e, Say) for e in effects)
        if self.state != before_state and not already_said:
            prompt = self._prompt(before_state)
            if prompt:
                effects.append(Say(prompt))
        if self.view.light != before_light:
            effects.append(SetLight(self.view.light))
        return effects

    def hello(self) -> dict[str, Any]:
        """The `hello` to send first on every (re)connect, from what we believe now."""
        if self.state == S.IN_CALL and self.call_id:
            return {"type": "hello", "state": "in_call", "call_id": self.call_id}
        if self.state == S.WAITING or self.resume_waiting:
            msg: dict[str, Any] = {"type": "hello", "state": "waiting"}
            if self.since:
                msg["since"] = self.since
            return msg
        return {"type": "hello", "state": "idle"}

    # ------------------------------------------------------------ transitions

    def _go(self, state: KioskState) -> None:
        if state != self.state:
            self.state = state
            self.entered_at = self.now
            if state != S.IDLE:
                self.notice = ""

    def _home(self, notice: str = "") -> None:
        """Back to the home screen (or offline if the hub is gone)."""
        self.call_id = None
        self.media_up = False
        self.since = None
        self.resume_waiting = False
        self._go(S.IDLE if self.hub_up else S.OFFLINE)
        self.notice = notice if self.state == S.IDLE else ""

    def _end_call(self, effects: list[Effect], *, hang_up: bool, lost: bool) -> None:
        assert self.call_id is not None
        if hang_up:
            effects.append(SendHangup(self.call_id))
        effects.append(EndCall(self.call_id))
        self.call_lost = lost
        self.media_up = False
        self._go(S.ENDING)

    def _dispatch(self, event: Event, effects: list[Effect]) -> bool:
        """Apply `event`; return True when the transition already said its own prompt."""
        st = self.state
        match event:
            case HubConnected():
                self.hub_up, self.needs_setup, self.ever_connected = True, False, True
                if st == S.OFFLINE:
                    if self.resume_waiting:
                        # Our hello said state=waiting with the original since: the hub has
                        # put us back in the room and confirms with `waiting`.
                        self.resume_waiting = False
                        self._go(S.WAITING)
                        effects.append(Say("You are back in the waiting room."))
                        return True
                    self._home()
            case HubLost():
                self.hub_up = False
                if st == S.WAITING:
                    self.resume_waiting = True
                    self._go(S.OFFLINE)
                elif st in (S.IDLE, S.JOINING):
                    self._go(S.OFFLINE)
                # In a call the media is peer to peer and may well carry on; ending finishes
                # its countdown and then shows offline.
            case NeedsSetup():
                self.hub_up = False
                self.needs_setup = True
                if st in (S.IDLE, S.JOINING, S.WAITING):
                    self.resume_waiting = False
                    self._go(S.OFFLINE)
            case ButtonPressed():
                return self._pressed(effects)
            case ButtonHeld(seconds=seconds):
                self._check_hold(max(seconds, self.now - self.press.at), effects)
            case ButtonReleased(held_s=held_s):
                return self._released(held_s, effects)
            case WaitingConfirmed(since=since):
                if st in (S.JOINING, S.WAITING):
                    self.since = since or self.since
                    self._go(S.WAITING)
            case LeftRoom():
                if st in (S.JOINING, S.WAITING):
                    self._home(NOTICE_REMOVED)
            case Admitted(call_id=call_id, ice_servers=ice):
                if st in (S.JOINING, S.WAITING):
                    self.call_id, self.media_up, self.call_lost = call_id, False, False
                    self._go(S.IN_CALL)
                    effects.append(StartCall(call_id, tuple(ice)))
                elif not (st == S.IN_CALL and call_id == self.call_id) and self.hub_up:
                    # Not in the waiting room any more (we left as they admitted): say so.
                    effects.append(SendHangup(call_id))
            case OfferReady(call_id=call_id, sdp=sdp):
                if st == S.IN_CALL and call_id == self.call_id:
                    effects.append(SendOffer(call_id, sdp))
            case AnswerReceived(call_id=call_id, sdp=sdp):
                if st == S.IN_CALL and call_id == self.call_id:
                    effects.append(ApplyAnswer(call_id, sdp))
            case MediaConnected(call_id=call_id):
                if st == S.IN_CALL and call_id == self.call_id:
                    self.media_up = True
            case MediaFailed(call_id=call_id):
                if st == S.IN_CALL and call_id == self.call_id:
                    self._end_call(effects, hang_up=True, lost=True)
            case CallEnded(call_id=call_id):
                if st == S.IN_CALL and call_id == self.call_id:
                    self._end_call(effects, hang_up=False, lost=False)
            case HubError():
                if st == S.JOINING:
                    self._home(NOTICE_REFUSED)
            case Tick():
                pass
        return False

    def _pressed(self, effects: list[Effect]) -> bool:
        effects.append(Beep())
        self.press = _Press(
            down=True, at=self.now, used=False, flash_until=self.now + self.timings.pressed_flash_s
        )
        st = self.state
        if st == S.IDLE:
            self.press.used = True
            self.notice = ""
            effects.append(SendJoin())
            self._go(S.JOINING)
        elif st == S.OFFLINE:
            self.press.used = True
            if self.needs_setup:
                effects.append(Say("This kiosk needs setting up. Please ask your nurse."))
            else:
                effects.append(Say("Not connected yet. The kiosk is trying again by itself."))
                effects.append(ReconnectNow())
            return True
        elif st == S.ENDING:
            self.press.used = True
            self._home()
        return False

    def _released(self, held_s: float, effects: list[Effect]) -> bool:
        if not self.press.down:
            return False
        held = max(held_s, self.now - self.press.at)
        self._check_hold(held, effects)
        was_used = self.press.used
        self.press.down = False
        self.press.used = True
        if not was_used and self.state == S.WAITING:
            effects.append(Say("Your nurse knows you are waiting. " + LEAVE_HINT + "."))
            return True
        return False

    def _check_hold(self, held: float, effects: list[Effect]) -> None:
        if not self.press.down or self.press.used or held < self.timings.hold_to_leave_s:
            return
        st = self.state
        if st in (S.JOINING, S.WAITING):
            self.press.used = True
            if self.hub_up:
                effects.append(SendLeave())
            self._home(NOTICE_LEFT)
        elif st == S.IN_CALL and self.call_id is not None:
            self.press.used = True
            self._end_call(effects, hang_up=True, lost=False)

    def _check_timeouts(self, effects: list[Effect]) -> None:
        t, age = self.timings, self.now - self.entered_at
        if self.state == S.JOINING and age >= t.join_timeout_s:
            effects.append(SendLeave())  # in case the hub heard the join but we missed the reply
            self._home(NOTICE_NO_ANSWER)
        elif self.state == S.IN_CALL and not self.media_up and age >= t.connect_timeout_s:
            self._end_call(effects, hang_up=True, lost=True)
        elif self.state == S.ENDING and age >= t.ending_s:
            self._home()

    # ------------------------------------------------------------ rendering

    def _prompt(self, before: KioskState) -> str:
        st = self.state
        if st == S.IDLE:
            return self.notice or (HOME_HEADLINE if before != S.ENDING else "")
        if st == S.OFFLINE:
            if self.needs_setup:
                return "This kiosk needs setting up. Please ask your nurse."
            return "The kiosk has lost its connection. It is trying again by itself."
        if st == S.JOINING:
            return "Calling your nurse."
        if st == S.WAITING:
            return WAITING_HEADLINE + "."
        if st == S.IN_CALL:
            return "Your nurse is here."
        if st == S.ENDING:
            if self.call_lost:
                return "The call was lost. Thank you."
            return "The call has ended. Thank you."
        return ""

    def _render(self) -> KioskView:
        st = self.state
        pressed = self.press.down or self.now < self.press.flash_until
        link = "good" if self.hub_up else "none"
        light = LIGHT_FOR_STATE[st]
        show_video = False
        if st == S.IDLE:
            words = (HOME_HEADLINE, self.notice or "Ready", "Call my nurse", True)
        elif st == S.OFFLINE:
            if self.needs_setup:
                words = (
                    "This kiosk needs setting up",
                    "Please ask your nurse to set it up again",
                    "",
                    False,
                )
            elif not self.ever_connected:
                words = ("Getting ready", "Connecting to your nurse's service…", "Try again", True)
            elif self.resume_waiting:
                words = (
                    "Not connected",
                    "Trying again by itself — you will be back in the waiting room",
                    "Try again",
                    True,
                )
            else:
                words = ("Not connected", "Trying again by itself", "Try again", True)
        elif st == S.JOINING:
            words = ("Calling your nurse…", "Please wait", "", False)
        elif st == S.WAITING:
            words = (WAITING_HEADLINE, LEAVE_HINT, "Hold to leave", True)
        elif st == S.IN_CALL:
            if self.media_up:
                words = ("You are talking to your nurse", END_HINT, "Hold to end call", True)
                show_video = True
                link = "good"
            else:
                words = ("Your nurse is joining…", END_HINT, "Hold to end call", True)
        else:  # ENDING
            words = (LOST_HEADLINE if self.call_lost else ENDED_HEADLINE, "", "", False)
        headline, detail, label, enabled = words
        return KioskView(
            state=st,
            headline=headline,
            detail=detail,
            button_label=label,
            button_enabled=enabled,
            light=light,
            link=link,
            show_video=show_video,
            pressed=pressed,
        )

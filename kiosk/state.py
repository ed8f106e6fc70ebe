"""The kiosk's state machine: events in, a view and a list of effects out.

Pure: no I/O, no clock, no Kivy, aiortc, GPIO or websockets. Every input carries `now`
(monotonic seconds) and the machine answers at once, so a button press gets its beep and its
visible change before any I/O happens (the 200 ms promise). kiosk/core.py feeds it events from
the hub link, the call and the button, and carries out the effects it returns.

Button rules: a press in idle joins the waiting room at once (the press is "used", so holding
on does not also leave); holding for `hold_to_leave_s` while joining, waiting or in a call
leaves or hangs up; every press beeps and shows `pressed` straight away.

Holding for `hold_for_help_s` (3 s) from the home screen asks the care team for help: the
press already joined (so a quick press still reaches the waiting room in well under a second),
and the long hold takes the patient out again and queues a help request instead. Held for
more than a second, the screen says "keep holding to ask for help".

While ringing (a clinician calls the patient), a press answers; with auto-answer on (the
nurse's setting, and the hub vouches the caller is of the patient's care team) the call is
answered by itself after a spoken and shown countdown. After a call in which picture and sound
flowed, the home screen asks "How was your call?" (five faces, then "Would you use video
again?"); a press of the button instead simply goes on to what the button does at home.

Words come from `words` (kiosk/i18n.py: the patient's language); `spoken` off drops every
`Say` effect (beeps stay).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from porchlight.kiosk.i18n import N_, Words, english
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
    S.RINGING: "ringing",
}
# Home with an appointment close: the light draws the eye (kiosk/appointments.py says when).
REMINDER_LIGHT = "reminder"


@dataclass(frozen=True)
class Timings:
    hold_to_leave_s: float = 2.0
    join_timeout_s: float = 10.0  # joining with no answer from the hub → back home
    connect_timeout_s: float = 30.0  # admitted but no media → give up on the call
    ending_s: float = 5.0  # how long "Call ended — thank you" stays up
    pressed_flash_s: float = 0.6  # `pressed` stays visible at least this long after a press
    hold_for_help_s: float = 3.0  # held this long from the home screen: ask the care team
    help_hint_after_s: float = 1.0  # then say "keep holding" (a normal press is much shorter)
    auto_answer_s: float = 10.0  # the countdown before a ring is answered by itself
    ring_timeout_s: float = 60.0  # nobody answered: stop ringing (the hub gives up too)
    ring_beep_s: float = 2.0  # the ring tone: a beep this often while ringing
    survey_timeout_s: float = 600.0  # "How was your call?" goes away quietly after this
    # A call whose media went quiet: ask for it afresh this long after the hub link is up
    # (the old connection may still come back by itself first), then again every
    # rejoin_every_s; after drop_after_s of quiet, give up and say so.
    rejoin_after_s: float = 2.0
    rejoin_every_s: float = 8.0
    drop_after_s: float = 40.0


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


@dataclass(frozen=True)
class Settings:
    """The patient's kiosk settings (chosen by the nurse on the hub)."""

    words: Words
    spoken: bool = True  # spoken prompts on
    auto_answer: bool = False  # answer the care team's calls by themselves


@dataclass(frozen=True)
class RingReceived:
    """A clinician of the patient's care team is calling (`ring` from the hub)."""

    ring_id: str
    caller: str = ""  # the clinician's display name
    auto_answer: bool = False  # the hub's side of the auto-answer rule


@dataclass(frozen=True)
class RingStopped:
    ring_id: str
    reason: str = ""


@dataclass(frozen=True)
class Agenda:
    """The home screen's line about the next appointment ("" for none)."""

    line: str = ""


@dataclass(frozen=True)
class Remind:
    """An appointment is close: say `text` and show the reminder light for `light_s`."""

    text: str
    light_s: float = 60.0


@dataclass(frozen=True)
class SurveyFace:
    """The patient touched one of the five faces: 1 (very bad) to 5 (very good)."""

    score: int


@dataclass(frozen=True)
class SurveyAgain:
    """The answer to "Would you use video again?"."""

    again: bool


@dataclass(frozen=True)
class MediaStalled:
    """No picture or sound from the clinician for a while (a network drop?)."""

    call_id: str


@dataclass(frozen=True)
class MediaResumed:
    call_id: str


@dataclass(frozen=True)
class HubHeard:
    """A message from the hub arrived (so signalling gets through right now)."""


@dataclass(frozen=True)
class CloseLook:
    """The clinician zoomed into the patient's picture (`view` with a region), or back out."""

    on: bool
    call_id: str | None = None  # None: the call we are in


@dataclass(frozen=True)
class ShowPrompt:
    """The clinician asks the patient to show something (`prompt`); None clears it."""

    key: str | None
    call_id: str | None = None


@dataclass(frozen=True)
class LinkQuality:
    """The bandwidth ladder's word for the call's link: good, fair or poor."""

    call_id: str
    quality: str


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
    | Settings
    | RingReceived
    | RingStopped
    | Agenda
    | Remind
    | SurveyFace
    | SurveyAgain
    | MediaStalled
    | MediaResumed
    | LinkQuality
    | HubHeard
    | CloseLook
    | ShowPrompt
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
    reason: str | None = None  # "dropped": we gave up getting the call back


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


@dataclass(frozen=True)
class SendRingAccept:
    ring_id: str


@dataclass(frozen=True)
class RestartMedia:
    """Connect the call's media afresh (a new offer for the same call)."""

    call_id: str


@dataclass(frozen=True)
class PingHub:
    """Send the hub something it answers at once (is signalling getting through?)."""


@dataclass(frozen=True)
class ProbeLink:
    """Measure the uplink while waiting, so the call starts at a picture that fits."""


@dataclass(frozen=True)
class QueueHelp:
    """Queue a help request for the care team (through the outbox: it waits out any outage)."""


@dataclass(frozen=True)
class QueueSurvey:
    """Queue the patient's rating of the call (through the outbox)."""

    call_id: str
    score: int | None
    again: bool | None


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
    | SendRingAccept
    | QueueHelp
    | QueueSurvey
    | RestartMedia
    | ProbeLink
    | PingHub
)

# ---------------------------------------------------------------- words

# English msgids; the patient sees them through `words` (kiosk/i18n.py).
HOME_HEADLINE = N_("Press the button to call your nurse")
WAITING_HEADLINE = N_("Your nurse knows you are waiting")
LEAVE_HINT = N_("To leave, hold the button for 2 seconds")
END_HINT = N_("To end the call, hold the button for 2 seconds")
ENDED_HEADLINE = N_("Call ended — thank you")
LOST_HEADLINE = N_("The call was lost — thank you")
NOTICE_LEFT = N_("You have left the waiting room")
NOTICE_REMOVED = N_("You are no longer in the waiting room")
NOTICE_NO_ANSWER = N_("Your nurse's service did not answer. Please press the button again.")
NOTICE_REFUSED = N_("Could not join the waiting room. Please press the button again.")
NOTICE_HELP = N_("Your care team has been asked to call you")
NOTICE_MISSED = N_("You missed a call from your nurse")
CALL_BACK = N_("Press the button to call them back")
NOTICE_RING_FAILED = N_("The call could not be connected. Your nurse will try again.")
NOTICE_THANKS = N_("Thank you for your answers")
HELP_HINT = N_("Keep holding to ask your care team for help")
LET_GO_TO_CALL = N_("Let go to call your nurse")
SAY_HELP = N_("I have asked your care team to call you. They will call as soon as they can.")
SURVEY_FACES = N_("How was your call?")
SURVEY_AGAIN = N_("Would you use video again?")
RINGING_HEADLINE = N_("{caller} is calling you")
RINGING_ANONYMOUS = N_("Your nurse is calling you")
ANSWER_HINT = N_("Press the button to answer")
NOTICE_DROPPED = N_("Call dropped — press the button to rejoin")
RECONNECTING_HEADLINE = N_("Reconnecting to your nurse…")
RECONNECTING_DETAIL = N_("The call will come back by itself")
CLOSE_LOOK = N_("Your nurse is looking closely — please hold still")
# What the clinician can ask the patient to show (the keys of porchlight.protocol.PROMPTS).
PROMPT_WORDS = {
    "show_ankles": N_("Please show me your ankles"),
    "hand_to_camera": N_("Please hold your hand up to the camera"),
    "show_where_it_hurts": N_("Please show me where it hurts"),
    "closer_to_light": N_("Please move closer to the light"),
    "face_to_camera": N_("Please look straight at the camera"),
    "hold_still": N_("Please hold still"),
}
HEADLINE_NOTICES = frozenset({NOTICE_HELP, NOTICE_MISSED, NOTICE_THANKS, NOTICE_DROPPED})


@dataclass
class _Press:
    down: bool = False
    at: float = 0.0
    used: bool = True  # this press already did its job (join, leave), so a hold does nothing
    flash_until: float = float("-inf")
    from_home: bool = False  # began on the home screen: a long hold asks for help
    helped: bool = False  # ...and it did


@dataclass
class _Ring:
    ring_id: str
    caller: str
    auto: bool
    at: float
    beeped_at: float
    counted: int | None = None  # the last countdown number said aloud


@dataclass
class _Survey:
    call_id: str
    at: float
    score: int | None = None


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
    words: Words = field(default_factory=english)
    spoken: bool = True
    auto_answer: bool = False
    agenda: str = ""  # the home screen's line about the next appointment
    reminder_light_until: float = float("-inf")
    ring: _Ring | None = None
    answering: bool = False  # joining because a ring was answered, not through the room
    media_was_up: bool = False  # picture and sound flowed in the call that just ended
    survey: _Survey | None = None  # "How was your call?" on the home screen
    call_link: str = ""  # the ladder's word for the call's link (good / fair / poor)
    quiet_since: float | None = None  # the call's media went quiet then (None: flowing)
    heard_since_quiet: float | None = None  # the hub first answered after that, then
    hub_up_at: float = float("-inf")  # when the hub link last came up
    last_rejoin: float = float("-inf")
    last_nudge: float = float("-inf")
    close_look: bool = False  # the clinician is zoomed into the patient's picture
    prompt: str | None = None  # a key of PROMPT_WORDS the clinician asked the patient to do

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
        if not self.spoken:
            effects = [e for e in effects if not isinstance(e, Say)]
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
                self.survey = None
            if state != S.RINGING:
                self.ring = None
            if state != S.JOINING:
                self.answering = False
            if state != S.IN_CALL:
                self.close_look, self.prompt = False, None

    def _home(self, notice: str = "", *, offline_too: bool = False) -> None:
        """Back to the home screen (or offline if the hub is gone)."""
        self.call_id = None
        self.media_up = False
        self.quiet_since = self.heard_since_quiet = None
        self.since = None
        self.resume_waiting = False
        self._go(S.IDLE if self.hub_up else S.OFFLINE)
        self.notice = notice if self.state == S.IDLE or offline_too else ""

    def _after_call(self) -> None:
        """The call is over: home, asking "How was your call?" if there was a real call."""
        call_id, rate = self.call_id, self.media_was_up
        self._home()
        self.media_was_up = False
        if rate and call_id is not None and self.state == S.IDLE:
            self.survey = _Survey(call_id, self.now)

    def _drop_survey(self, effects: list[Effect]) -> None:
        """Leave the survey: what was answered is kept (the rest is simply not known)."""
        survey, self.survey = self.survey, None
        if survey is not None and survey.score is not None:
            effects.append(QueueSurvey(survey.call_id, survey.score, None))

    def _answer_ring(self, effects: list[Effect]) -> None:
        assert self.ring is not None
        effects.append(SendRingAccept(self.ring.ring_id))
        self._go(S.JOINING)
        self.answering = True
        effects.append(Say(self.words(N_("Connecting you to your nurse."))))

    def _end_call(self, effects: list[Effect], *, hang_up: bool, lost: bool) -> None:
        assert self.call_id is not None
        if hang_up:
            effects.append(SendHangup(self.call_id))
        effects.append(EndCall(self.call_id))
        self.call_lost = lost
        self.media_up = False
        self.quiet_since = self.heard_since_quiet = None
        self._go(S.ENDING)

    def _dispatch(self, event: Event, effects: list[Effect]) -> bool:
        """Apply `event`; return True when the transition already said its own prompt."""
        st = self.state
        match event:
            case HubConnected():
                self.hub_up, self.needs_setup, self.ever_connected = True, False, True
                self.hub_up_at = self.now
                self._heard()
                if st == S.OFFLINE:
                    if self.resume_waiting:
                        # Our hello said state=waiting with the original since: the hub has
                        # put us back in the room and confirms with `waiting`.
                        self.resume_waiting = False
                        self._go(S.WAITING)
                        effects.append(Say(self.words(N_("You are back in the waiting room."))))
                        return True
                    # A call dropped while offline: still say so once the kiosk is back.
                    self._home(NOTICE_DROPPED if self.notice == NOTICE_DROPPED else "")
            case HubLost():
                self.hub_up = False
                if st == S.WAITING:
                    self.resume_waiting = True
                    self._go(S.OFFLINE)
                elif st in (S.IDLE, S.JOINING, S.RINGING):
                    self._go(S.OFFLINE)
                # In a call the media is peer to peer and may well carry on; ending finishes
                # its countdown and then shows offline.
            case NeedsSetup():
                self.hub_up = False
                self.needs_setup = True
                if st in (S.IDLE, S.JOINING, S.WAITING, S.RINGING):
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
                    if st == S.JOINING:
                        effects.append(ProbeLink())
                    self._go(S.WAITING)
            case LeftRoom():
                if st in (S.JOINING, S.WAITING):
                    self._home(NOTICE_REMOVED)
            case Admitted(call_id=call_id, ice_servers=ice):
                if st in (S.JOINING, S.WAITING):
                    self.call_id, self.media_up, self.call_lost = call_id, False, False
                    self.media_was_up = False
                    self.call_link, self.quiet_since = "", None
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
                    self.media_was_up = True
            case MediaFailed(call_id=call_id):
                if st == S.IN_CALL and call_id == self.call_id:
                    if self.media_was_up:  # it worked before: get it back, don't end it
                        self._went_quiet()
                    else:
                        self._end_call(effects, hang_up=True, lost=True)
            case MediaStalled(call_id=call_id):
                if st == S.IN_CALL and call_id == self.call_id and self.media_was_up:
                    self._went_quiet()
            case MediaResumed(call_id=call_id):
                if st == S.IN_CALL and call_id == self.call_id:
                    self.quiet_since = self.heard_since_quiet = None
                    self.media_up = True
            case HubHeard():
                self._heard()
            case CloseLook(on=on, call_id=call_id):
                if st == S.IN_CALL and call_id in (None, self.call_id) and on != self.close_look:
                    self.close_look = on
                    if on:
                        effects.append(Say(self.words(CLOSE_LOOK) + "."))
                        return True
            case ShowPrompt(key=key, call_id=call_id):
                known = key is None or key in PROMPT_WORDS
                if st == S.IN_CALL and call_id in (None, self.call_id) and known:
                    self.prompt = key
                    if key is not None:
                        effects.append(Say(self.words(PROMPT_WORDS[key]) + "."))
                        return True
            case LinkQuality(call_id=call_id, quality=quality):
                if st == S.IN_CALL and call_id == self.call_id:
                    self.call_link = quality
            case CallEnded(call_id=call_id):
                if st == S.IN_CALL and call_id == self.call_id:
                    self._end_call(effects, hang_up=False, lost=False)
            case HubError():
                if st == S.JOINING:
                    self._home(NOTICE_RING_FAILED if self.answering else NOTICE_REFUSED)
            case Tick():
                self._tick_ringing(effects)
            case Settings(words=words, spoken=spoken, auto_answer=auto):
                self.words, self.spoken, self.auto_answer = words, spoken, auto
                if self.ring is not None and not auto:
                    self.ring.auto = False  # turned off while ringing: wait for a press
            case Agenda(line=line):
                self.agenda = line
            case Remind(text=text, light_s=light_s):
                if st == S.IDLE or (st == S.OFFLINE and not self.needs_setup):
                    self.reminder_light_until = self.now + light_s
                    effects.append(Say(text))
                    return True
            case RingReceived(ring_id=ring_id, caller=caller, auto_answer=auto):
                if st in (S.IDLE, S.ENDING) and self.hub_up:
                    return self._ringing(ring_id, caller, auto, effects)
            case RingStopped(ring_id=ring_id):
                if st == S.RINGING and self.ring is not None and self.ring.ring_id == ring_id:
                    self._missed(effects)
                    return True
            case SurveyFace(score=score):
                if self.survey is not None and self.survey.score is None and 1 <= score <= 5:
                    self.survey.score = score
                    effects.append(Say(self.words(SURVEY_AGAIN)))
                    return True
            case SurveyAgain(again=again):
                survey = self.survey
                if survey is not None and survey.score is not None:
                    self.survey = None
                    effects.append(QueueSurvey(survey.call_id, survey.score, again))
                    self.notice = NOTICE_THANKS
                    effects.append(Say(self.words(NOTICE_THANKS) + "."))
                    return True
        return False

    def _ringing(self, ring_id: str, caller: str, auto: bool, effects: list[Effect]) -> bool:
        self._drop_survey(effects)
        if self.state == S.ENDING:
            self._home()
        self._go(S.RINGING)
        # Both keys: the hub says the caller is of the care team and auto-answer is on; the
        # kiosk's own copy of the nurse's setting agrees.
        self.ring = _Ring(ring_id, caller, auto and self.auto_answer, self.now, self.now)
        effects.append(Beep())
        who = self._caller_words()
        if self.ring.auto:
            seconds = round(self.timings.auto_answer_s)
            countdown = self.words.n(
                "The call will start by itself in {n} second.",
                "The call will start by itself in {n} seconds.",
                seconds,
            )
            effects.append(Say(f"{who}. {countdown}"))
        else:
            effects.append(Say(f"{who}. {self.words(ANSWER_HINT)}."))
        return True

    def _missed(self, effects: list[Effect]) -> None:
        self._home(NOTICE_MISSED)
        effects.append(Say(f"{self.words(NOTICE_MISSED)}. {self.words(CALL_BACK)}."))

    def _caller_words(self) -> str:
        if self.ring is not None and self.ring.caller:
            return self.words(RINGING_HEADLINE, caller=self.ring.caller)
        return self.words(RINGING_ANONYMOUS)

    def _countdown(self) -> int | None:
        ring = self.ring
        if ring is None or not ring.auto:
            return None
        left = self.timings.auto_answer_s - (self.now - ring.at)
        return max(0, math.ceil(left - 1e-6))  # whole seconds left (float ticks drift a hair)

    def _tick_ringing(self, effects: list[Effect]) -> None:
        ring = self.ring
        if self.state != S.RINGING or ring is None:
            return
        count = self._countdown()
        if count is None:
            if self.now - ring.beeped_at >= self.timings.ring_beep_s:
                ring.beeped_at = self.now
                effects.append(Beep())  # the ring tone; an auto-answer counts aloud instead
        elif 0 < count <= 5 and count != ring.counted:
            ring.counted = count
            effects.append(Say(str(count)))

    def _pressed(self, effects: list[Effect]) -> bool:
        effects.append(Beep())
        self.press = _Press(
            down=True, at=self.now, used=False, flash_until=self.now + self.timings.pressed_flash_s
        )
        st = self.state
        self.press.from_home = st == S.IDLE or (st == S.OFFLINE and not self.needs_setup)
        if st == S.IDLE:
            self.press.used = True
            self.notice = ""
            self._drop_survey(effects)
            effects.append(SendJoin())
            self._go(S.JOINING)
        elif st == S.RINGING:
            self.press.used = True
            self._answer_ring(effects)
            return True
        elif st == S.OFFLINE:
            self.press.used = True
            if self.needs_setup:
                effects.append(
                    Say(self.words(N_("This kiosk needs setting up. Please ask your nurse.")))
                )
            else:
                effects.append(
                    Say(self.words(N_("Not connected yet. The kiosk is trying again by itself.")))
                )
                effects.append(ReconnectNow())
            return True
        elif st == S.ENDING:
            self.press.used = True
            self._after_call()
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
            w = self.words
            effects.append(Say(w(WAITING_HEADLINE) + ". " + w(LEAVE_HINT) + "."))
            return True
        return False

    def _check_hold(self, held: float, effects: list[Effect]) -> None:
        self._check_help(held, effects)
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

    def _check_help(self, held: float, effects: list[Effect]) -> None:
        press = self.press
        if not (press.down and press.from_home and not press.helped):
            return
        if held < self.timings.hold_for_help_s:
            return
        press.helped = True
        st = self.state
        if st not in (S.IDLE, S.OFFLINE, S.JOINING, S.WAITING):
            return  # admitted meanwhile: the nurse is here
        if st in (S.JOINING, S.WAITING) and self.hub_up:
            effects.append(SendLeave())  # the press joined; the hold means "help" instead
        effects.append(QueueHelp())
        self._home(NOTICE_HELP, offline_too=True)
        effects.append(Say(self.words(SAY_HELP)))

    def _helping(self) -> float | None:
        """How far a hold for help has got (0..1), once it is long enough to say so."""
        press, t = self.press, self.timings
        if not (press.down and press.from_home and not press.helped):
            return None
        if self.state not in (S.IDLE, S.OFFLINE, S.JOINING, S.WAITING):
            return None
        held = self.now - press.at
        if held < t.help_hint_after_s:
            return None
        span = max(1e-9, t.hold_for_help_s - t.help_hint_after_s)
        return min(1.0, (held - t.help_hint_after_s) / span)

    def _check_timeouts(self, effects: list[Effect]) -> None:
        t, age = self.timings, self.now - self.entered_at
        if self.state == S.JOINING and age >= t.join_timeout_s:
            effects.append(SendLeave())  # in case the hub heard the join but we missed the reply
            self._home(NOTICE_NO_ANSWER)
        elif self.state == S.IN_CALL and self.quiet_since is not None:
            self._get_call_back(effects)
        elif self.state == S.IN_CALL and not self.media_up and age >= t.connect_timeout_s:
            self._end_call(effects, hang_up=True, lost=True)
        elif self.state == S.ENDING and age >= t.ending_s:
            self._after_call()
        elif self.state == S.RINGING and self.ring is not None:
            if self.ring.auto and self.now - self.ring.at >= t.auto_answer_s:
                self._answer_ring(effects)
            elif age >= t.ring_timeout_s:
                self._missed(effects)
        if self.survey is not None and self.now - self.survey.at >= t.survey_timeout_s:
            self._drop_survey(effects)  # quietly: nobody is punished for walking away

    def _went_quiet(self) -> None:
        if self.quiet_since is None:
            self.quiet_since, self.heard_since_quiet = self.now, None

    def _heard(self) -> None:
        if self.quiet_since is not None and self.heard_since_quiet is None:
            self.heard_since_quiet = self.now

    def _get_call_back(self, effects: list[Effect]) -> None:
        """The call's media is quiet: wait for it, ask for it afresh, or give up.

        A fresh offer only once the hub has answered since the media went quiet (a socket can
        look connected through a whole outage) and the old connection has had
        `rejoin_after_s` from then to come back by itself."""
        t, quiet_since = self.timings, self.quiet_since
        assert quiet_since is not None and self.call_id is not None
        if self.now - quiet_since >= t.drop_after_s:
            call_id = self.call_id
            if self.hub_up:
                effects.append(SendHangup(call_id, reason="dropped"))
            effects.append(EndCall(call_id))
            self.quiet_since = self.heard_since_quiet = None
            self.media_was_up = False  # no "How was your call?" after a dropped call
            self._home(NOTICE_DROPPED, offline_too=True)
            effects.append(Say(self.words(NOTICE_DROPPED) + "."))
        elif self.now - self.last_nudge >= 1.0:
            self.last_nudge = self.now
            # Down: skip the link's back-off (meant for idle times); up: is it really?
            effects.append(PingHub() if self.hub_up else ReconnectNow())
        heard = self.heard_since_quiet
        if (
            self.hub_up
            and self.call_id is not None
            and heard is not None
            and self.now - heard >= t.rejoin_after_s
            and self.now - self.last_rejoin >= t.rejoin_every_s
        ):
            self.last_rejoin = self.now
            effects.append(RestartMedia(self.call_id))

    # ------------------------------------------------------------ rendering

    def _prompt(self, before: KioskState) -> str:
        st, w = self.state, self.words
        if st == S.IDLE:
            if self.survey is not None:
                return w(SURVEY_FACES) + " " + w(N_("Touch one of the faces."))
            return w(self.notice) or (w(HOME_HEADLINE) if before != S.ENDING else "")
        if st == S.OFFLINE:
            if self.needs_setup:
                return w(N_("This kiosk needs setting up. Please ask your nurse."))
            return w(N_("The kiosk has lost its connection. It is trying again by itself."))
        if st == S.JOINING:
            return w(N_("Calling your nurse."))
        if st == S.WAITING:
            return w(WAITING_HEADLINE) + "."
        if st == S.IN_CALL:
            return w(N_("Your nurse is here."))
        if st == S.ENDING:
            if self.call_lost:
                return w(N_("The call was lost. Thank you."))
            return w(N_("The call has ended. Thank you."))
        return ""

    def _render(self) -> KioskView:
        st, w = self.state, self.words
        pressed = self.press.down or self.now < self.press.flash_until
        link = "good" if self.hub_up else "none"
        light = LIGHT_FOR_STATE[st]
        show_video = False
        countdown: int | None = None
        step = ""
        if st == S.IDLE:
            if self.now < self.reminder_light_until:
                light = REMINDER_LIGHT
            if self.survey is not None:
                step = "faces" if self.survey.score is None else "again"
                headline = SURVEY_FACES if step == "faces" else SURVEY_AGAIN
                words = (w(headline), "", w(N_("Call my nurse")), True)
            elif self.notice in HEADLINE_NOTICES:
                # Worth the big words: help was asked for, a call was missed, thanks.
                if self.notice == NOTICE_MISSED:
                    below = w(CALL_BACK)
                else:
                    below = self.agenda or w(HOME_HEADLINE)
                words = (w(self.notice), below, w(N_("Call my nurse")), True)
            elif self.agenda:
                words = (self.agenda, w(self.notice or HOME_HEADLINE), w(N_("Call my nurse")), True)
            else:
                words = (
                    w(HOME_HEADLINE),
                    w(self.notice or N_("Ready")),
                    w(N_("Call my nurse")),
                    True,
                )
        elif st == S.OFFLINE:
            if self.needs_setup:
                words = (
                    w(N_("This kiosk needs setting up")),
                    w(N_("Please ask your nurse to set it up again")),
                    "",
                    False,
                )
            elif not self.ever_connected:
                words = (
                    w(N_("Getting ready")),
                    w(self.notice or N_("Connecting to your nurse's service…")),
                    w(N_("Try again")),
                    True,
                )
            elif self.resume_waiting:
                words = (
                    w(N_("Not connected")),
                    w(N_("Trying again by itself — you will be back in the waiting room")),
                    w(N_("Try again")),
                    True,
                )
            else:
                detail = self.notice or N_("Trying again by itself")
                words = (w(N_("Not connected")), w(detail), w(N_("Try again")), True)
        elif st == S.JOINING:
            if self.answering:
                words = (w(N_("Connecting you to your nurse…")), w(N_("Please wait")), "", False)
            else:
                words = (w(N_("Calling your nurse…")), w(N_("Please wait")), "", False)
        elif st == S.WAITING:
            words = (w(WAITING_HEADLINE), w(LEAVE_HINT), w(N_("Hold to leave")), True)
        elif st == S.IN_CALL:
            if self.quiet_since is not None:
                words = (
                    w(RECONNECTING_HEADLINE),
                    w(RECONNECTING_DETAIL),
                    w(N_("Hold to end call")),
                    True,
                )
                link = "none"
            elif self.media_up:
                words = (
                    w(N_("You are talking to your nurse")),
                    w(END_HINT),
                    w(N_("Hold to end call")),
                    True,
                )
                show_video = True
                link = self.call_link or "good"
            else:
                words = (
                    w(N_("Your nurse is joining…")),
                    w(END_HINT),
                    w(N_("Hold to end call")),
                    True,
                )
        elif st == S.RINGING:
            countdown = self._countdown()
            if countdown is not None:
                detail = w.n(
                    "The call will start by itself in {n} second",
                    "The call will start by itself in {n} seconds",
                    countdown,
                )
            else:
                detail = w(ANSWER_HINT)
            words = (self._caller_words(), detail, w(N_("Answer")), True)
        else:  # ENDING
            words = (w(LOST_HEADLINE if self.call_lost else ENDED_HEADLINE), "", "", False)
        headline, detail, label, enabled = words
        helping = self._helping()
        if helping is not None:
            headline = w(HELP_HINT)
            detail = w(LET_GO_TO_CALL) if st in (S.JOINING, S.WAITING) else ""
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
            countdown=countdown,
            step=step,
            help_fraction=helping,
            language=w.code,
            close_look=w(CLOSE_LOOK) if st == S.IN_CALL and self.close_look else "",
            prompt=w(PROMPT_WORDS[self.prompt]) if st == S.IN_CALL and self.prompt else "",
        )

"""The kiosk's look: colours, type sizes and spacing, in one place.

Pure data (no Kivy), so tests can check every colour pair for contrast and every size against
the floors below without starting a window. Sizes are screen pixels on the 800x480 panel.

Chosen for a patient of 85 with poor eyesight at arm's length: calm, warm off-white screen,
near-black words, one strong colour per action, every text/background pair at least 7:1
(WCAG AAA), and state never shown by colour alone (words and shapes always carry it).
"""

from __future__ import annotations

from dataclasses import dataclass

from porchlight.kiosk.ui_contrast import parse
from porchlight.kiosk.view import KioskState

# ---------------------------------------------------------------- type (px)

BODY_MIN_PX = 32  # no body text smaller than this, anywhere
BUTTON_MIN_PX = 48  # no button text smaller than this

HEADLINE_PX = 44
# The key words of a screen with a button (e.g. "Nurse Patel will call you at 2:30 today"):
# as big as button text, wrapping over lines for a long name.
KEY_HEADLINE_PX = 48
DETAIL_PX = 34
# On a screen with no button the words have the whole screen, so they get bigger.
ROOMY_HEADLINE_PX = 56
ROOMY_DETAIL_PX = 42
HOME_BUTTON_PX = 72  # "Call my nurse": the one thing on the home screen
BUTTON_PX = 60
CALL_BUTTON_PX = 52  # End call, over the picture
PROMPT_PX = 48  # what the nurse asks the patient to show, over the picture (issue 10)
CLOSE_LOOK_PX = 36  # "Your nurse is looking closely — please hold still"

# ---------------------------------------------------------------- layout (px)

MARGIN = 20
GAP = 18
ICON_PX = 96  # the state's shape, left of the words
ROOMY_ICON_PX = 128
CORNER_RADIUS = 28
PRESSED_INSET = 8  # a pressed button visibly sinks in by this much on every side
RING_PX = 6  # the ring round a pressed button
OUTLINE_PX = 5  # the border of a button that is shown but does nothing now
SELF_VIEW = (208, 156)  # the patient's own picture, top right in a call
CALL_BUTTON = (460, 112)
HOLD_BAR_PX = 22  # the bar that fills while the button is held to leave

# ---------------------------------------------------------------- colours

SCREEN = "#F4F1EA"  # warm off-white: less glare than pure white
INK = "#14171A"  # words and shapes on the screen
ON_COLOUR = "#FFFFFF"  # words on a coloured button
CALL_SCREEN = "#000000"  # behind the video, and behind anything drawn over it
ON_CALL_SCREEN = "#FFFFFF"
LAMP_OFF = "#3A3A3A"  # the simulated status light, dark
LAMP_ON = "#FFD54A"  # and fully lit


@dataclass(frozen=True)
class Intent:
    """What a button does, and how it looks at rest and pressed."""

    name: str
    fill: str
    pressed_fill: str
    text: str = ON_COLOUR


CALL = Intent("call", fill="#17561C", pressed_fill="#0B3311")
LEAVE = Intent("leave", fill="#8A1C1C", pressed_fill="#5C0F0F")
NEUTRAL = Intent("neutral", fill="#1F3A5F", pressed_fill="#10223A")
# Shown but doing nothing now: outlined, not filled (a shape difference, not only a colour).
INACTIVE = Intent("inactive", fill=SCREEN, pressed_fill="#E2DDD2", text=INK)

INTENTS = (CALL, LEAVE, NEUTRAL, INACTIVE)

INTENT_FOR_STATE = {
    KioskState.IDLE: CALL,
    KioskState.OFFLINE: NEUTRAL,
    KioskState.JOINING: LEAVE,
    KioskState.WAITING: LEAVE,
    KioskState.IN_CALL: LEAVE,
    KioskState.ENDING: NEUTRAL,
    KioskState.RINGING: CALL,  # "Answer"
}


def intent_for(state: KioskState, enabled: bool) -> Intent:
    return INTENT_FOR_STATE[state] if enabled else INACTIVE


def rgba(colour: str) -> tuple[float, float, float, float]:
    """'#rrggbb' → Kivy's (r, g, b, 1.0)."""
    r, g, b = parse(colour)
    return r, g, b, 1.0


def colour_pairs() -> list[tuple[str, str, str]]:
    """Every (what, foreground, background) pair the kiosk draws, for the contrast tests."""
    pairs = [
        ("words on the screen", INK, SCREEN),
        ("words and indicators over the video", ON_CALL_SCREEN, CALL_SCREEN),
        ("ring round a pressed button", INK, SCREEN),
        ("self-view frame", ON_CALL_SCREEN, CALL_SCREEN),
        ("the nurse's prompt and close-look words over the video", ON_CALL_SCREEN, CALL_SCREEN),
    ]
    for intent in INTENTS:
        pairs.append((f"{intent.name} button text", intent.text, intent.fill))
        pairs.append((f"{intent.name} button text, pressed", intent.text, intent.pressed_fill))
    return pairs

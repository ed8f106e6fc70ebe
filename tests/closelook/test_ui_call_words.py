"""The call screen with the nurse's prompt and the close-look words, in every language the
kiosk speaks, drawn offscreen from the views the real state machine makes: the words shown
are the view's, the prompt is at least 48 px and the close-look words at least 32 px, every
word is 7:1 against what is really behind it, nothing runs off the screen or under the
self-view or the End call button, and a screenshot of each is saved.

Set PORCHLIGHT_SCREENSHOT_DIR=docs/screenshots to refresh the committed screenshots (they go
to <dir>/languages/<lang>/kiosk-call-<what>.png).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from kiosk.ui_support import (
    HEIGHT,
    WIDTH,
    RecordingCore,
    backdrop_of,
    mounted,
    nurse_frame,
    patient_frame,
    pixels,
    pump,
    pump_until,
    visible_labels,
)

from porchlight.kiosk import state as sm
from porchlight.kiosk import ui_theme as theme
from porchlight.kiosk.app import KioskApp
from porchlight.kiosk.i18n import LANGUAGES, words_for
from porchlight.kiosk.ui_contrast import AAA, contrast_ratio
from porchlight.kiosk.widgets import BigButton

CALL_ID = "call-1"
VARIANTS = {
    "prompt": (sm.ShowPrompt("hand_to_camera"),),
    "close-look": (sm.CloseLook(True),),
    "prompt-and-close-look": (sm.CloseLook(True), sm.ShowPrompt("hand_to_camera")),
}


def in_call(language: str, *events: sm.Event) -> RecordingCore:
    core = RecordingCore()
    for event in (
        sm.Settings(words_for(language)),
        sm.HubConnected(),
        sm.ButtonPressed(),
        sm.ButtonReleased(),
        sm.WaitingConfirmed(),
        sm.Admitted(CALL_ID),
        sm.MediaConnected(CALL_ID),
        *events,
    ):
        core.clock.advance(1.0)
        core.machine.handle(event, core.clock())
    return core


def window_rect(widget) -> tuple[float, float, float, float]:
    x, y = widget.to_window(widget.x, widget.y)
    return x, y, x + widget.width, y + widget.height


def overlaps(a, b) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def test_the_prompt_is_large_and_the_words_are_readable_sizes():
    assert theme.PROMPT_PX >= theme.BUTTON_MIN_PX >= 48
    assert theme.CLOSE_LOOK_PX >= theme.BODY_MIN_PX >= 32


@pytest.mark.parametrize("language", list(LANGUAGES))
@pytest.mark.parametrize("variant", list(VARIANTS))
def test_call_screen_with_the_nurses_words(variant, language, tmp_path):
    core = in_call(language, *VARIANTS[variant])
    view = core.view
    assert view.show_video
    core.remote_frames.put(nurse_frame())
    core.local_frames.put(patient_frame())
    app = KioskApp(core, now=core.clock)
    with mounted(app) as root:
        pump_until(lambda: root.call.remote.texture is not None)
        assert root.current == "call"
        notes = root.call.notes
        assert notes.prompt.text == view.prompt
        assert notes.look.text == view.close_look
        shown = {label.text for label in visible_labels(root.current_screen)}
        assert shown == {view.button_label, view.prompt, view.close_look} - {""}
        for label in visible_labels(root.current_screen):
            floor = theme.BUTTON_MIN_PX if isinstance(label, BigButton) else theme.BODY_MIN_PX
            if label is notes.prompt:
                floor = 48
            assert label.font_size >= floor, f"{label.text!r} is {label.font_size}px"
            ratio = contrast_ratio(tuple(label.color), backdrop_of(label))
            assert ratio >= AAA, f"{label.text!r} has contrast {ratio:.2f}"
            x0, y0, x1, y1 = window_rect(label)
            assert x0 >= -1 and y0 >= -1 and x1 <= WIDTH + 1 and y1 <= HEIGHT + 1, label.text
            tw, th = label.texture_size
            assert tw <= label.width + 1 and th <= label.height + 1, f"{label.text!r} overflows"
        # The words sit clear of the patient's own picture, the End call button and the
        # simulated light, all of which stay visible.
        panel = window_rect(notes)
        for other in (root.call.local, root.call.button, root.call.sim):
            assert not overlaps(panel, window_rect(other)), type(other).__name__
        out = Path(os.environ.get("PORCHLIGHT_SCREENSHOT_DIR") or tmp_path) / "languages" / language
        out.mkdir(parents=True, exist_ok=True)
        root.export_to_png(str(out / f"kiosk-call-{variant}.png"))
        assert len({tuple(p) for p in pixels(root)[::8, ::8].reshape(-1, 4)}) > 3
        # Cleared: the panel goes and the picture is whole again.
        core.clock.advance(1.0)
        core.feed(sm.ShowPrompt(None), sm.CloseLook(False))
        pump(2)
        assert notes.opacity == 0 and not notes.prompt.text and not notes.look.text
        assert {label.text for label in visible_labels(root.current_screen)} == {view.button_label}

"""The close look and the clinician's prompts in the kiosk's state machine (kiosk/state.py):
shown and said in the patient's language while in the call, gone when it ends, nothing said
when spoken prompts are off; the words exist for every prompt in every language."""

from __future__ import annotations

import pytest

from porchlight.kiosk import state as sm
from porchlight.kiosk.i18n import LANGUAGES, words_for
from porchlight.protocol import PROMPTS


def in_call(language: str = "en", spoken: bool = True) -> sm.KioskMachine:
    m = sm.KioskMachine(now=0.0)
    for t, event in enumerate(
        (
            sm.Settings(words_for(language), spoken=spoken),
            sm.HubConnected(),
            sm.ButtonPressed(),
            sm.ButtonReleased(),
            sm.WaitingConfirmed(),
            sm.Admitted("c1"),
            sm.MediaConnected("c1"),
        )
    ):
        m.handle(event, float(t))
    assert m.view.show_video
    return m


def said(effects) -> list[str]:
    return [e.text for e in effects if isinstance(e, sm.Say)]


def test_every_protocol_prompt_has_words_and_the_english_is_the_protocols():
    assert sm.PROMPT_WORDS == PROMPTS


def test_a_close_look_is_shown_and_said_once_then_goes():
    m = in_call()
    effects = m.handle(sm.CloseLook(True), 10.0)
    assert m.view.close_look == "Your nurse is looking closely — please hold still"
    assert said(effects) == ["Your nurse is looking closely — please hold still."]
    # Panning about (another region) says nothing more.
    assert said(m.handle(sm.CloseLook(True), 11.0)) == []
    effects = m.handle(sm.CloseLook(False), 12.0)
    assert m.view.close_look == "" and said(effects) == []
    assert m.view.show_video


def test_a_prompt_is_shown_and_said_and_cleared():
    m = in_call()
    effects = m.handle(sm.ShowPrompt("show_ankles"), 10.0)
    assert m.view.prompt == "Please show me your ankles"
    assert said(effects) == ["Please show me your ankles."]
    effects = m.handle(sm.ShowPrompt("hold_still"), 11.0)
    assert m.view.prompt == "Please hold still" and said(effects) == ["Please hold still."]
    effects = m.handle(sm.ShowPrompt(None), 12.0)
    assert m.view.prompt == "" and said(effects) == []


def test_unknown_prompts_and_other_calls_change_nothing():
    m = in_call()
    m.handle(sm.ShowPrompt("show_ankles"), 10.0)
    assert said(m.handle(sm.ShowPrompt("dance"), 11.0)) == []
    assert m.view.prompt == "Please show me your ankles"
    assert said(m.handle(sm.ShowPrompt("hold_still", call_id="other"), 12.0)) == []
    assert said(m.handle(sm.CloseLook(True, call_id="other"), 12.0)) == []
    assert m.view.prompt == "Please show me your ankles" and m.view.close_look == ""


def test_the_call_ending_clears_them():
    m = in_call()
    m.handle(sm.ShowPrompt("show_ankles"), 10.0)
    m.handle(sm.CloseLook(True), 10.0)
    m.handle(sm.CallEnded("c1"), 11.0)
    assert m.view.prompt == "" and m.view.close_look == ""
    assert m.prompt is None and not m.close_look


def test_outside_a_call_they_are_ignored():
    m = sm.KioskMachine(now=0.0)
    m.handle(sm.HubConnected(), 0.0)
    assert said(m.handle(sm.ShowPrompt("show_ankles"), 1.0)) == []
    assert said(m.handle(sm.CloseLook(True), 1.0)) == []
    assert m.view.prompt == "" and m.view.close_look == ""


def test_spoken_prompts_off_shows_but_says_nothing():
    m = in_call(spoken=False)
    assert said(m.handle(sm.ShowPrompt("show_ankles"), 10.0)) == []
    assert said(m.handle(sm.CloseLook(True), 10.0)) == []
    assert m.view.prompt and m.view.close_look


@pytest.mark.parametrize("language", [code for code in LANGUAGES if code != "en"])
def test_the_words_are_translated(language):
    m = in_call(language)
    english = in_call("en")
    for key in PROMPTS:
        said_here = said(m.handle(sm.ShowPrompt(key), 10.0))
        english.handle(sm.ShowPrompt(key), 10.0)
        assert m.view.prompt and m.view.prompt != english.view.prompt, key
        assert said_here == [m.view.prompt + "."]
    m.handle(sm.CloseLook(True), 11.0)
    english.handle(sm.CloseLook(True), 11.0)
    assert m.view.close_look and m.view.close_look != english.view.close_look

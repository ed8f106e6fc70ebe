"""WCAG contrast helper and the kiosk's palette and type scale (pure: no Kivy)."""

from __future__ import annotations

import pytest

from porchlight.errors import BadInput
from porchlight.kiosk import ui_theme as theme
from porchlight.kiosk.ui_contrast import AAA, contrast_ratio, parse, relative_luminance
from porchlight.kiosk.view import KioskState


def test_known_wcag_values():
    assert contrast_ratio("#000000", "#FFFFFF") == pytest.approx(21.0)
    assert contrast_ratio("#123456", "#123456") == pytest.approx(1.0)
    # Well-known reference points: #767676 is the lightest grey passing AA (4.5) on white,
    # #595959 the lightest passing AAA (7).
    assert contrast_ratio("#767676", "#FFFFFF") == pytest.approx(4.54, abs=0.01)
    assert contrast_ratio("#595959", "#FFFFFF") == pytest.approx(7.0, abs=0.01)
    assert relative_luminance("#FF0000") == pytest.approx(0.2126)
    assert relative_luminance((0.0, 1.0, 0.0, 1.0)) == pytest.approx(0.7152)


def test_order_does_not_matter():
    assert contrast_ratio("#1F3A5F", "#F4F1EA") == contrast_ratio("#F4F1EA", "#1F3A5F")


@pytest.mark.parametrize("bad", ["#12345", "#GGGGGG", "red", (1.2, 0, 0), (0, 0), (1, 1, 1, 0.5)])
def test_bad_colours_are_refused(bad):
    with pytest.raises(BadInput):
        parse(bad)


@pytest.mark.parametrize(("what", "fg", "bg"), theme.colour_pairs())
def test_every_colour_pair_is_at_least_7_to_1(what, fg, bg):
    assert contrast_ratio(fg, bg) >= AAA, f"{what}: {fg} on {bg}"


def test_buttons_stand_out_from_the_screen():
    # The edge of every filled button is as clear as its words.
    for intent in (theme.CALL, theme.LEAVE, theme.NEUTRAL):
        assert contrast_ratio(intent.fill, theme.SCREEN) >= AAA, intent.name


def test_type_sizes_meet_the_floors():
    body = (theme.HEADLINE_PX, theme.DETAIL_PX, theme.ROOMY_HEADLINE_PX, theme.ROOMY_DETAIL_PX)
    for size in body:
        assert size >= theme.BODY_MIN_PX >= 32
    for size in (theme.HOME_BUTTON_PX, theme.BUTTON_PX, theme.CALL_BUTTON_PX):
        assert size >= theme.BUTTON_MIN_PX >= 48


def test_every_state_has_a_button_style():
    assert set(theme.INTENT_FOR_STATE) == set(KioskState)
    assert theme.intent_for(KioskState.IDLE, enabled=False) is theme.INACTIVE

"""On-screen presses folded into one button, and the hold-to-leave meter (pure: no Kivy)."""

from __future__ import annotations

import pytest

from porchlight.kiosk.ui_press import HoldMeter, PressGate
from porchlight.kiosk.view import KioskState as S


def test_gate_goes_down_once_and_up_when_the_last_source_lets_go():
    gate = PressGate()
    assert gate.down(("touch", 1)) is True
    assert gate.down("space") is False  # already down: the core must not hear a second press
    assert gate.down("space") is False  # key repeat
    assert gate.up(("touch", 1)) is False
    assert gate.held
    assert gate.up("space") is True
    assert not gate.held
    assert gate.up("space") is False  # a stray key-up does nothing


def test_gate_release_all():
    gate = PressGate()
    assert gate.release_all() is False
    gate.down("space")
    assert gate.release_all() is True
    assert not gate.held


def test_meter_fills_over_the_hold_time():
    meter = HoldMeter(hold_s=2.0)
    assert meter.update(False, S.WAITING, 10.0) is None
    assert meter.update(True, S.WAITING, 10.0) == 0.0
    assert meter.update(True, S.WAITING, 11.0) == pytest.approx(0.5)
    assert meter.update(True, S.WAITING, 15.0) == 1.0
    assert meter.update(False, S.WAITING, 15.1) is None
    assert meter.update(True, S.IN_CALL, 20.0) == 0.0  # a new press starts from empty


def test_meter_ignores_a_press_that_began_elsewhere():
    meter = HoldMeter(hold_s=2.0)
    # Pressed at home (which joins at once), still held while joining: not a hold to leave.
    assert meter.update(True, S.IDLE, 0.0) is None
    assert meter.update(True, S.JOINING, 0.5) is None
    assert meter.update(True, S.JOINING, 3.0) is None
    # Pressed while waiting, then admitted mid-hold: the bar goes away.
    assert meter.update(False, S.WAITING, 4.0) is None
    assert meter.update(True, S.WAITING, 4.0) == 0.0
    assert meter.update(True, S.IN_CALL, 4.5) is None

"""The simulated pulse oximeter twin: plausible readings that pass (or, on purpose, flag)
the kiosk's own validation."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from porchlight.device.oximeter import ReadingSource, SimulatedOximeter, make_reading_source
from porchlight.errors import DeviceFault
from porchlight.kiosk.questionnaire import Level
from porchlight.kiosk.records import NeedsCheck, check_vitals, vitals_record

RID = "0195a3b2-c4d5-7e6f-8a9b-0c1d2e3f4a5b"


def test_readings_are_plausible_and_valid():
    ox = make_reading_source("simulated", seed=3, settle_s=0)
    assert isinstance(ox, ReadingSource) and ox.provides == ("spo2", "pulse")
    readings = [ox.read(timeout=1) for _ in range(300)]
    for r in readings:
        assert set(r.values) == {"spo2", "pulse"}
        assert 96 <= r.values["spo2"] <= 98 and 68 <= r.values["pulse"] <= 76
        assert {f.level for f in check_vitals(r.values)} == {Level.OK}
    assert len({r.values["pulse"] for r in readings}) > 3  # it wanders


def test_an_unusual_patient_is_flagged_by_the_kiosk_rules():
    ox = SimulatedOximeter(seed=1, settle_s=0)
    ox.baseline(spo2=87)
    reading = ox.read(timeout=1)
    with pytest.raises(NeedsCheck):
        vitals_record(reading.values, record_id=RID, patient_id="p", now=datetime.now(UTC))


def test_no_finger_gives_no_reading_within_the_timeout():
    waited = []
    ox = SimulatedOximeter(finger_present=False, sleep=waited.append)
    assert ox.read(timeout=2.5) is None
    assert waited == [2.5]
    slow = SimulatedOximeter(settle_s=5, sleep=waited.append)
    assert slow.read(timeout=1) is None


def test_a_broken_device_raises_a_device_fault():
    ox = SimulatedOximeter(settle_s=0)
    ox.fail()
    with pytest.raises(DeviceFault, match="not answering"):
        ox.read(timeout=1)
    with pytest.raises(DeviceFault, match="Bluetooth devices come later"):
        make_reading_source("ble")

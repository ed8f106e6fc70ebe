"""`porchlight outbox status|add` through the same validation as the check-in screen."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from porchlight.kiosk.credential import DeviceCredential, save_credential
from porchlight.kiosk.outbox import Outbox, OutboxConfig
from porchlight.kiosk.outbox_cli import outbox


@pytest.fixture
def kiosk_dir(tmp_path):
    save_credential(
        tmp_path,
        DeviceCredential("http://127.0.0.1:9", "device-1", "patient-7", "t" * 43),
    )
    return tmp_path


def run(*args):
    return CliRunner().invoke(outbox, list(args), catch_exceptions=False)


def stored(folder):
    box = Outbox.open(OutboxConfig(path=folder / "outbox.db"), now=0)
    try:
        rows = [json.loads(r[0]) for r in box._db.execute("SELECT content FROM records")]
    finally:
        box.close()
    return rows


def test_add_vitals_and_status(kiosk_dir):
    r = run(
        "add", "vitals", "spo2=97", "pulse=72", "temperature=36.9", "--data-dir", str(kiosk_dir)
    )
    assert r.exit_code == 0, r.output
    assert r.output.startswith("saved vitals record ")
    (rec,) = stored(kiosk_dir)
    assert rec["patient_id"] == "patient-7"
    assert rec["body"]["values"] == {"spo2": 97, "pulse": 72, "temperature": 36.9}
    r = run("status", "--data-dir", str(kiosk_dir))
    assert " pending: 1" in r.output and "oldest unsent:" in r.output and "s ago" in r.output
    r = run("status", "--json", "--data-dir", str(kiosk_dir))
    data = json.loads(r.output)
    assert data["counts"]["pending"] == 1 and data["unsent"] == 1
    assert data["oldest_unsent_age_s"] >= 0


def test_impossible_values_are_refused_with_the_range(kiosk_dir):
    r = run("add", "vitals", "spo2=130", "--data-dir", str(kiosk_dir))
    assert r.exit_code != 0
    assert "130 % is not possible" in r.output and "50 % to 100 %" in r.output
    assert stored(kiosk_dir) == []


def test_unusual_values_need_confirm_then_are_flagged(kiosk_dir):
    r = run("add", "vitals", "spo2=89", "pulse=72", "--data-dir", str(kiosk_dir))
    assert r.exit_code != 0 and "Please check that again" in r.output and "--confirm" in r.output
    assert stored(kiosk_dir) == []
    r = run("add", "vitals", "spo2=89", "pulse=72", "--confirm", "--data-dir", str(kiosk_dir))
    assert r.exit_code == 0 and "flagged for the clinician: spo2" in r.output
    assert stored(kiosk_dir)[0]["body"]["flags"] == ["spo2"]


@pytest.mark.parametrize(
    "args, words",
    [
        (["glucose=5"], "not a vital sign"),
        (["pulse"], "not name=value"),
        (["pulse=fast"], "whole number"),
        (["temperature=warm"], "needs a number"),
        (["systolic=120"], "both numbers"),
        ([], "at least one"),
    ],
)
def test_bad_vitals_input(kiosk_dir, args, words):
    r = run("add", "vitals", *args, "--data-dir", str(kiosk_dir))
    assert r.exit_code != 0 and words in r.output
    assert stored(kiosk_dir) == []


def test_add_answers_through_the_checkin_rules(kiosk_dir):
    ok = ["breathing=worse", "pain=no", "medicines=yes", "feeling=well"]
    r = run("add", "answers", *ok, "--data-dir", str(kiosk_dir))
    assert r.exit_code == 0, r.output
    assert stored(kiosk_dir)[0]["body"]["answers"]["pain"] is False
    for bad, words in (
        (["mood=ok", *ok], "not a question"),
        (["breathing=awful", *ok[1:]], "needs one of"),
        (["pain=perhaps", *ok[2:], "breathing=same"], "yes or no"),
        (["breathing=same"], "needs an answer"),
    ):
        r = run("add", "answers", *bad, "--data-dir", str(kiosk_dir))
        assert r.exit_code != 0 and words in r.output, (bad, r.output)
    assert len(stored(kiosk_dir)) == 1


def test_a_kiosk_that_is_not_enrolled_needs_a_patient(tmp_path):
    from porchlight.errors import NotAuthorised

    with pytest.raises(NotAuthorised, match="not set up"):
        run("add", "vitals", "pulse=70", "--data-dir", str(tmp_path))
    r = run("add", "vitals", "pulse=70", "--patient", "p-9", "--data-dir", str(tmp_path))
    assert r.exit_code == 0

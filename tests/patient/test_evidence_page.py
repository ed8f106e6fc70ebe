"""The evidence page in a real Chromium, its figures checked against a month of seeded
appointments and calls (worked out by hand below), and its CSV; plus the pure figures for
edge cases (an empty month, nothing to divide by)."""

from __future__ import annotations

import csv
import io
import os
import tempfile
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests
from kiosk.conftest import seeded_hub
from playwright.sync_api import expect, sync_playwright

from porchlight import chromium
from porchlight.hub.appointments import (
    AppointmentRules,
    Outcome,
    book,
    cancel,
    log_call_ended,
    log_call_started,
    record_outcome,
)
from porchlight.hub.auth import DeviceIdentity
from porchlight.hub.evidence_figures import figures
from porchlight.hub.inbox import store_records
from porchlight.hub.seed import DEMO_PASSWORD
from porchlight.hub.server import HubServer
from porchlight.kiosk.records import call_quality_record, survey_record

SHOTS = Path(os.environ.get("PORCHLIGHT_SCREENSHOT_DIR") or tempfile.mkdtemp(prefix="shots-"))
RULES = AppointmentRules()
MARCH = datetime(2025, 3, 1, tzinfo=UTC)

pytestmark = [pytest.mark.browser]


def day(d: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2025, 3, d, hour, minute, tzinfo=UTC)


def seed_month(server: HubServer, demo_patient: str) -> None:
    """A care team's March: 5 booked appointments (3 attended, 2 not), 1 cancelled, 1 call
    with no booking; a rating and a quality record per call; and noise that must not count
    (another team's call, an April appointment)."""
    store = server.store
    engine = store.engine
    team = store.team_of_patient(demo_patient)
    now = MARCH
    p2 = store.add_patient("Ivor Rees", now=now).id
    p3 = store.add_patient("Zofia Nowak", now=now).id
    other_team = store.add_team("Far away team", now=now).id
    p4 = store.add_patient("Olive Other", now=now, team_id=other_team).id

    def call(patient: str, at: datetime, how: str = "admitted") -> tuple[str, str]:
        call_id = str(uuid.uuid4())
        appt = log_call_started(
            engine, call_id, patient, store.team_of_patient(patient), "clinician", how, at, RULES
        )
        log_call_ended(engine, call_id, "clinician_ended", at + timedelta(minutes=10))
        return call_id, appt

    def measured(patient, call_id, at, duration, connect, video, audio_only, freeze, score, again):
        quality = call_quality_record(
            call_id,
            duration_s=duration,
            connect_s=connect,
            video_s=video,
            audio_only_s=audio_only,
            freeze_s=freeze,
            record_id=str(uuid.uuid4()),
            patient_id=patient,
            now=at,
        )
        rating = survey_record(
            call_id, score, again, record_id=str(uuid.uuid4()), patient_id=patient, now=at
        )
        device = DeviceIdentity("dev-" + patient[:8], patient, "")
        results = store_records(
            engine, device, [quality.to_wire(), rating.to_wire()], now=at, lookup=lambda _: None
        )
        assert [r.status for r in results] == ["stored", "stored"]

    a1 = book(engine, demo_patient, team, day(4, 10), by="nurse", now=now)
    a2 = book(engine, p2, team, day(5, 11), by="nurse", now=now)
    a3 = book(engine, p3, team, day(6, 14), by="nurse", now=now)
    book(engine, demo_patient, team, day(10, 9), by="nurse", now=now)  # nobody joins
    book(engine, p2, team, day(12, 9), by="nurse", now=now)  # nobody joins
    a6 = book(engine, p3, team, day(14, 9), by="nurse", now=now)
    assert cancel(engine, a6.id, now)
    book(engine, p2, team, datetime(2025, 4, 2, 9, tzinfo=UTC), by="nurse", now=now)  # April

    c1, appt = call(demo_patient, day(4, 10, 1))
    assert appt == a1.id
    record_outcome(engine, a1.id, Outcome.COMPLETED, None, by="clinician", now=day(4, 11))
    measured(demo_patient, c1, day(4, 10, 15), 600, 1.2, {480: 500, 240: 60}, 40, 2.0, 5, True)

    c2, appt = call(p2, day(5, 10, 58), how="rang")
    assert appt == a2.id
    record_outcome(engine, a2.id, Outcome.HOME_VISIT, "legs", by="clinician", now=day(5, 12))
    measured(p2, c2, day(5, 11, 10), 300, 2.0, {360: 300}, 0, 0.0, 4, True)

    c3, appt = call(p3, day(6, 14, 2))
    assert appt == a3.id
    record_outcome(
        engine, a3.id, Outcome.TECHNICAL_FAILURE, "no sound", by="clinician", now=day(6, 15)
    )
    measured(p3, c3, day(6, 14, 5), 120, 3.4, {180: 60}, 60, 10.0, 2, False)

    c4, appt = call(demo_patient, day(20, 16))  # no booking near: unscheduled
    record_outcome(engine, appt, Outcome.COMPLETED, None, by="clinician", now=day(20, 17))
    measured(demo_patient, c4, day(20, 16, 5), 180, 0.8, {720: 180}, 0, 2.0, 5, None)

    other = book(engine, p4, other_team, day(7, 9), by="someone", now=now)
    c5, _ = call(p4, day(7, 9, 1))
    record_outcome(engine, other.id, Outcome.COMPLETED, None, by="someone", now=day(7, 10))
    measured(p4, c5, day(7, 9, 5), 60, 9.0, {180: 60}, 0, 30.0, 1, False)


# By hand, from seed_month: 5 booked (A1-A5), 3 attended, 2 did not attend; outcomes
# completed 2 (A1 and the unscheduled call), home visit 1, technical failure 1; join times
# 0.8, 1.2, 2.0, 3.4 → median 1.6 s; 1200 call seconds, 980 at 360p or better (500 + 300 +
# 180), 100 audio-only; freezes 2 + 0 + 10 + 2 = 14 over 4 calls; ratings 5, 4, 2, 5; would
# use again: yes, yes, no.
EXPECTED_TILES = {
    "figure-appointments": "5",
    "figure-attended-rate": "60%",
    "figure-dna-rate": "40%",
    "figure-video-share": "50%",
    "figure-home-visit-share": "25%",
    "figure-median-join": "1.6 s",
    "figure-360p-share": "82%",
    "figure-freeze-per-call": "3.5 s",
    "figure-audio-only-share": "8%",
    "figure-would-use-again": "67%",
}


@pytest.fixture
def hub(tmp_path):
    with seeded_hub(tmp_path) as h:
        seed_month(h.server, h.seed.patient_id)
        yield h.url


def test_the_evidence_page_shows_the_months_figures_and_charts(hub):
    with sync_playwright() as pw:
        browser = chromium.launch(pw)
        page = browser.new_page(viewport={"width": 1280, "height": 1500})
        page.goto(hub + "/evidence")
        page.get_by_test_id("login-username").fill("clinician")
        page.get_by_test_id("login-password").fill(DEMO_PASSWORD)
        page.get_by_test_id("login-submit").click()
        expect(page.get_by_test_id("evidence-view")).to_be_visible()
        page.get_by_test_id("month-input").fill("2025-03")
        page.get_by_test_id("month-input").dispatch_event("change")
        expect(page.get_by_test_id("evidence-scope")).to_have_text("Care team · 2025-03")
        for testid, text in EXPECTED_TILES.items():
            expect(page.get_by_test_id(testid)).to_have_text(text)
        expect(page.get_by_test_id("note-appointments")).to_have_text(
            "and 1 call without a booking"
        )
        # The charts are inline SVG drawn from the same figures.
        bars = {
            "bar-attended": "3",
            "bar-did_not_attend": "2",
            "bar-pending": "0",
            "bar-completed": "2",
            "bar-home_visit": "1",
            "bar-technical_failure": "1",
            "bar-rating-5": "2",
            "bar-rating-4": "1",
            "bar-rating-3": "0",
            "bar-rating-2": "1",
            "bar-rating-1": "0",
        }
        for testid, value in bars.items():
            bar = page.get_by_test_id(testid)
            expect(bar).to_have_attribute("data-value", value)
            assert bar.evaluate("e => e.namespaceURI") == "http://www.w3.org/2000/svg"
        heights = {
            n: float(page.get_by_test_id(f"bar-rating-{n}").get_attribute("height"))
            for n in (5, 4, 2)
        }
        assert heights[5] == pytest.approx(2 * heights[4]) and heights[4] == heights[2]
        expect(page.get_by_test_id("row-mean_satisfaction").locator("td")).to_have_text("4")
        expect(page.get_by_test_id("row-freeze_s_per_call").locator("td")).to_have_text("3.5 s")
        # No script or style came from anywhere but the hub.
        assert all(
            src.startswith(hub) or not src
            for src in page.evaluate("[...document.scripts].map(s => s.src)")
        )
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SHOTS / "evidence.png"), full_page=True)
        # The CSV link downloads the same figures.
        with page.expect_download() as download:
            page.get_by_test_id("csv-link").click()
        rows = list(csv.DictReader(io.StringIO(Path(download.value.path()).read_text())))
        by_key = {r["figure"]: r["value"] for r in rows}
        assert by_key["appointments"] == "5" and by_key["attended_rate"] == "0.6"
        assert by_key["median_join_s"] == "1.6" and by_key["rating_5"] == "2"
        assert by_key["outcome_home_visit"] == "1"
        assert {r["team"] for r in rows} == {"Care team"} and {r["month"] for r in rows} == {
            "2025-03"
        }
        browser.close()


def test_another_teams_figures_stay_with_that_team(hub):
    s = requests.Session()
    assert s.post(hub + "/api/login", json={"username": "clinician", "password": DEMO_PASSWORD}).ok
    teams = s.get(hub + "/api/teams").json()
    assert [t["name"] for t in teams] == ["Care team"]
    got = s.get(hub + "/api/evidence", params={"month": "2025-03"}).json()["figures"]
    assert got["ratings"] == 4 and got["satisfaction"]["1"] == 0  # Olive's call is not here
    assert s.get(hub + "/api/evidence", params={"month": "2025-13"}).status_code == 422
    assert (
        s.get(hub + "/api/evidence", params={"team_id": "not-mine", "month": "2025-03"}).status_code
        == 404
    )
    april = s.get(hub + "/api/evidence", params={"month": "2025-04"}).json()["figures"]
    assert april["appointments"] == 1 and april["dna_rate"] == 1.0


def test_an_empty_month_has_no_shares_rather_than_wrong_ones():
    got = figures([], {}, {})
    assert got["appointments"] == 0 and got["attended_rate"] is None
    assert got["median_join_s"] is None and got["share_360p_or_better"] is None
    assert got["would_use_again"] is None and got["satisfaction"] == {
        "1": 0,
        "2": 0,
        "3": 0,
        "4": 0,
        "5": 0,
    }

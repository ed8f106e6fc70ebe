"""The check-in on the (offscreen) kiosk window, driven by touches: one question per screen,
Back, the "please check that again" screen, and both end messages, with a real outbox and a
real sync worker talking to a real hub. Screenshots go to docs/screenshots/checkin-*.png."""

from __future__ import annotations

import dataclasses
import os
import tempfile
import time
from pathlib import Path

import pytest
from kivy.base import EventLoop
from kivy.core.text import Label as CoreLabel
from kivy.core.window import Window
from kivy.tests.common import UnitTestTouch
from kivy.uix.label import Label

from porchlight.device.oximeter import SimulatedOximeter
from porchlight.kiosk import ui_theme as theme
from porchlight.kiosk.outbox import Outbox, OutboxConfig, new_record_id
from porchlight.kiosk.questionnaire import default_checkin
from porchlight.kiosk.sync import SyncConfig, SyncWorker
from porchlight.kiosk.ui_checkin import SAVED, SENT, CheckinButton, CheckinFlow
from porchlight.kiosk.ui_contrast import contrast_ratio
from porchlight.kiosk.widgets import BigButton

# Screenshots refresh the committed ones only when asked
# (PORCHLIGHT_SCREENSHOT_DIR=docs/screenshots);
# otherwise they go to a temp folder, so a test run never changes the tree.
SHOTS = Path(os.environ.get("PORCHLIGHT_SCREENSHOT_DIR") or tempfile.mkdtemp(prefix="shots-"))


def pump(n: int = 4) -> None:
    for _ in range(n):
        EventLoop.idle()


def find(flow, text: str) -> CheckinButton:
    buttons = [w for w in flow.walk() if isinstance(w, CheckinButton) and w.shown]
    found = [b for b in buttons if b.text == text]
    assert found, f"no button {text!r} on screen: {[b.text for b in buttons]}"
    return found[0]


def tap(flow, text: str, times: int = 1) -> None:
    for _ in range(times):
        button = find(flow, text)
        touch = UnitTestTouch(*button.to_window(*button.center))
        touch.touch_down()
        touch.touch_up()
        pump(2)


def check_readable(flow) -> None:
    """Body text ≥ 32 px, button text ≥ 48 px, every text ≥ 7:1 against what is behind it."""
    for w in flow.walk():
        if not isinstance(w, Label) or not w.text or w.opacity == 0:
            continue
        if isinstance(w, BigButton):  # CheckinButton, and the kiosk's own big button
            if not w.shown:
                continue
            assert w.font_size >= theme.BUTTON_MIN_PX, w.text
            background = w.bg_color
        else:
            assert w.font_size >= theme.BODY_MIN_PX, w.text
            background = theme.rgba(theme.SCREEN)
        assert contrast_ratio(w.color, background) >= 7.0, w.text


def shot(flow, name: str) -> None:
    pump(3)
    check_readable(flow)
    SHOTS.mkdir(parents=True, exist_ok=True)
    flow.export_to_png(str(SHOTS / f"checkin-{name}.png"))


def wait_outcome(flow, timeout: float = 15.0) -> str:
    deadline = time.monotonic() + timeout
    while flow.outcome is None and time.monotonic() < deadline:
        pump(1)
        time.sleep(0.01)  # let the save thread run; bounded by the deadline
    assert flow.outcome is not None, "the check-in never finished"
    pump(2)
    return flow.outcome


@pytest.fixture
def kiosk(hub, proxy, tmp_path):
    box = Outbox.open(OutboxConfig(path=tmp_path / "outbox.db"), now=time.time(), resume=True)
    worker = SyncWorker(
        box,
        hub_url=proxy.url,
        token=hub.token,
        patient_id=hub.patient_id,
        config=SyncConfig(backoff_base_s=0.2, backoff_cap_s=1.0),
    )
    worker.start()
    yield box, worker
    worker.stop()
    box.close()


def make_flow(hub, box, worker, questionnaire=None, **kw) -> CheckinFlow:
    def save(records):
        box.add_many(records, now=time.time())
        worker.kick()

    flow = CheckinFlow(
        questionnaire or default_checkin(),
        patient_id=hub.patient_id,
        new_id=new_record_id,
        save=save,
        wait_sent=worker.wait_acked,
        send_wait_s=3.0,
        **kw,
    )
    EventLoop.ensure_window()
    Window.size = (800, 480)
    for child in list(Window.children):
        Window.remove_widget(child)
    Window.add_widget(flow)
    flow.size = (800, 480)
    pump()
    return flow


def test_whole_checkin_by_touch_is_sent_to_the_nurse(hub, kiosk):
    box, worker = kiosk
    flow = make_flow(hub, box, worker, reading_source=SimulatedOximeter(settle_s=0, seed=2))
    assert flow.question == "How is your breathing today?" and not flow.back_shown
    shot(flow, "1-choice")
    tap(flow, "Worse than usual")
    assert flow.question == "Do you have any new pain?"
    shot(flow, "2-yes-no")
    tap(flow, "Yes")
    tap(flow, "+1", times=5)  # pain 3 → 8: unusual
    assert flow.value_text == "8"
    shot(flow, "3-stepper")
    tap(flow, "Next")
    assert "Please check that again" in flow.note
    shot(flow, "4-check-again")
    tap(flow, "Change it")  # back to the stepper, value kept
    assert flow.value_text == "8"
    tap(flow, "−1", times=2)
    tap(flow, "Next")  # 6: usual, no prompt
    assert flow.question == "Have you taken your medicines today?"
    tap(flow, "Back")  # Back works and shows the answer given
    assert flow.value_text == "6"
    tap(flow, "Next")
    tap(flow, "No")
    tap(flow, "Well")
    assert flow.question == "Oxygen level"
    tap(flow, "−1", times=8)  # 97 → 89
    shot(flow, "5-vital")
    tap(flow, "Next")
    assert "unusually low" in flow.note
    tap(flow, "It is right")
    assert flow.question.startswith("Pulse")
    tap(flow, "Next")
    assert flow.question.startswith("Temperature")
    tap(flow, "Skip")
    assert wait_outcome(flow) == SENT
    shot(flow, "6-sent")
    # What reached the outbox, and from there the hub: two records, flags as confirmed.
    rows = dict(box._db.execute("SELECT kind, content FROM records").fetchall())
    assert set(rows) == {"answers", "vitals"}
    assert '"pain_score":6' in rows["answers"] and '"medicines":false' in rows["answers"]
    assert '"spo2":89' in rows["vitals"] and '"flags":["spo2"]' in rows["vitals"]
    today = hub.person().get(f"{hub.url}/api/patients/{hub.patient_id}/today", timeout=10).json()
    assert any(v["flags"] == ["spo2"] for v in today["vitals"])


def test_offline_checkin_is_saved_to_send_later(hub, proxy, kiosk):
    box, worker = kiosk
    proxy.cut("refuse")
    flow = make_flow(hub, box, worker)
    tap(flow, "The same as usual")
    tap(flow, "No")
    tap(flow, "Yes")
    tap(flow, "Okay")
    for _ in range(3):  # no oximeter or thermometer at home: skip the vitals
        tap(flow, "Skip")
    assert wait_outcome(flow) == SAVED
    shot(flow, "7-saved-offline")
    assert flow.question == "Saved — it will send when the connection is back"
    (rid,) = [r[0] for r in box._db.execute("SELECT id FROM records")]
    proxy.restore()
    assert worker.wait_acked([rid], timeout=5)


def test_impossible_blood_pressure_is_refused_on_screen(hub, kiosk):
    box, worker = kiosk
    with_bp = dataclasses.replace(default_checkin(), vitals=("systolic", "diastolic"))
    flow = make_flow(hub, box, worker, questionnaire=with_bp)
    for text in ("Better than usual", "No", "Yes", "Well"):
        tap(flow, text)
    assert flow.question == "Blood pressure, top number"
    tap(flow, "−10", times=4)  # systolic 120 → 80
    tap(flow, "Next")
    tap(flow, "It is right")  # 80 is unusually low: confirmed
    assert not [b for b in flow.walk() if isinstance(b, CheckinButton) and b.text == "Skip"]
    tap(flow, "+10")  # diastolic 80 → 90: above the top number
    tap(flow, "Next")
    assert "must be lower" in flow.note
    assert flow.question.startswith("Blood pressure, bottom number")
    shot(flow, "8-refused")


def test_every_vital_value_fits_on_one_line(hub, kiosk):
    box, worker = kiosk
    every = dataclasses.replace(
        default_checkin(),
        vitals=("spo2", "pulse", "systolic", "diastolic", "temperature", "weight", "resp_rate"),
    )
    flow = make_flow(hub, box, worker, questionnaire=every)
    for text in ("Better than usual", "No", "Yes", "Well"):
        tap(flow, text)
    while flow.outcome is None and flow.value_text:
        value = next(w for w in flow.walk() if w.__class__.__name__ == "CheckinValue")
        label = value.children[0]
        pump(2)
        # The width the number needs on one line, rendered the way the label renders it.
        alone = CoreLabel(text=label.text, font_size=label.font_size, bold=label.bold)
        alone.refresh()
        assert alone.texture.size[0] <= value.width, (flow.question, flow.value_text)
        if flow.question.startswith("Temperature"):
            shot(flow, "9-decimal")
        tap(flow, "Next")
        if any(isinstance(b, CheckinButton) and b.text == "It is right" for b in flow.walk()):
            tap(flow, "It is right")
        if flow.walker.finished:
            break


def test_the_waiting_screen_offers_the_checkin_and_returns_after_it(hub, proxy, tmp_path):
    """KioskApp with the real state machine in the waiting room and a real outbox + worker:
    the offer appears, the check-in runs on its own screen, and the waiting screen comes
    back; being admitted or leaving takes the offer away."""
    from kiosk.ui_support import core_at  # tests/kiosk/ui_support.py: the real machine

    from porchlight.kiosk import state as sm
    from porchlight.kiosk.app import KioskApp
    from porchlight.kiosk.sync import open_records

    records = open_records(tmp_path, proxy.url, hub.token, hub.patient_id)
    core = core_at("waiting")
    core.records = records
    app = KioskApp(core)
    EventLoop.ensure_window()
    for child in list(Window.children):
        Window.remove_widget(child)
    root = app.build()
    Window.add_widget(root)
    try:
        pump()
        assert root.current == "message"
        assert app.checkin.button.parent == root.message  # a weak proxy: compare, not `is`
        shot(root, "0-offer-while-waiting")
        tap(root, "Answer today's questions")
        assert root.current == "checkin" and app.checkin.flow is not None
        flow = app.checkin.flow
        for text in ("Better than usual", "No", "Yes", "Well"):
            tap(flow, text)
        for _ in range(3):
            tap(flow, "Skip")
        assert wait_outcome(flow) == SENT
        tap(flow, "Done")
        assert root.current == "message" and app.checkin.flow is None
        assert app.checkin.button.parent is None  # done for this wait
        # A new wait offers it again; being admitted takes the offer away.
        core.feed(sm.ButtonPressed(), sm.ButtonReleased(5.0))  # hold: leave the room
        pump()
        core.feed(sm.ButtonPressed(), sm.ButtonReleased(), sm.WaitingConfirmed())
        pump()
        assert app.checkin.button.parent == root.message
        core.feed(sm.Admitted("call-2"))
        pump()
        assert app.checkin.button.parent is None and root.current != "checkin"
    finally:
        app.close()
        Window.remove_widget(root)
        records.close()

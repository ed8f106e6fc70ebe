"""The check-in on the kiosk: one question per screen, big touch targets, no typing.

Self-contained Kivy flow. It walks the questionnaire (`questionnaire.Walk`): choices and yes/no
as big buttons, numbers (and vital signs) with big − / + steppers, Back on every screen, a
"please check that again" screen for unusual values, and at the end one of two messages:
"Sent to your nurse" once the hub has acknowledged the records, or "Saved — it will send when
the connection is back" if it has not within a few seconds.

It decides nothing about storage or the network: it is handed `save(records)` (the outbox,
one transaction) and `wait_sent(ids, timeout) -> bool` (the sync worker), and runs the
blocking ones on a thread so the event loop never waits. Layout and looks: checkin.kv.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kivy.clock import Clock
from kivy.lang import Builder
from kivy.properties import BooleanProperty, ObjectProperty, StringProperty
from kivy.uix.boxlayout import BoxLayout

from porchlight.errors import DeviceFault
from porchlight.kiosk import ui_theme as theme
from porchlight.kiosk.i18n import N_, Words, english, words_for
from porchlight.kiosk.outbox import new_record_id
from porchlight.kiosk.questionnaire import Finding, Item, ItemType, Level, Questionnaire, Walk
from porchlight.kiosk.records import VITALS, Record, answers_record, check_vitals, vitals_record
from porchlight.kiosk.widgets import Backdrop, BigButton

LAYOUTS = (Path(__file__).with_name("kiosk.kv"), Path(__file__).with_name("checkin.kv"))

SENT = N_("Sent to your nurse")
SAVED = N_("Saved — it will send when the connection is back")
NOT_SAVED = N_("Sorry, this could not be saved")
# The default check-in's answers and the vital signs' units (kiosk/questionnaire.py,
# kiosk/records.py), so the catalogues have them; a care team's own questionnaire is shown as
# written. The "please check that again" notes are not translated yet.
CATALOGUE_ONLY = (
    N_("Better than usual"),
    N_("The same as usual"),
    N_("Worse than usual"),
    N_("Well"),
    N_("Okay"),
    N_("Unwell"),
    N_("beats a minute"),
    N_("breaths a minute"),
)
# How long the end screen waits for the hub before saying "saved, will send later".
SEND_WAIT_S = 4.0


def load_layouts() -> None:
    """Load kiosk.kv (for BigButton's looks) and checkin.kv, once per process."""
    for layout in LAYOUTS:
        if str(layout) not in Builder.files:
            Builder.load_file(str(layout))


class CheckinButton(BigButton):
    """A BigButton that reports a finished tap (`on_tap`), with a value attached."""

    value = ObjectProperty(None, allownone=True)
    __events__ = ("on_tap",)

    def on_press_up(self, source: Any) -> None:
        self.dispatch("on_tap")

    def on_tap(self) -> None:
        pass


class CheckinFlow(Backdrop, BoxLayout):
    """The whole check-in. Build it, add it to a screen, and it runs itself."""

    progress = StringProperty("")
    question = StringProperty("")
    note = StringProperty("")  # the "please check" or "not possible" words, when there are any
    value_text = StringProperty("")
    back_shown = BooleanProperty(False)
    stepping = BooleanProperty(False)  # a number screen: a note then takes the question's place
    area = ObjectProperty(None)  # the answer area, filled per step

    def __init__(
        self,
        questionnaire: Questionnaire,
        *,
        patient_id: str,
        new_id: Callable[[], str],
        save: Callable[[list[Record]], None],
        wait_sent: Callable[[list[str], float], bool],
        on_done: Callable[[], None] | None = None,
        reading_source: Any = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        send_wait_s: float = SEND_WAIT_S,
        words: Words | None = None,
        **kwargs: Any,
    ) -> None:
        load_layouts()
        super().__init__(**kwargs)
        # The patient's language: this flow's own words, and the default check-in's.
        self._w = words or english()
        self.ids.back.text = self._w(N_("Back"))
        self.q = questionnaire
        self._vital_ids = [k for k in questionnaire.vitals if k in VITALS]
        steps: Sequence[Item] = [*questionnaire.items, *(VITALS[k].item for k in self._vital_ids)]
        self.walker = Walk(steps)
        self._patient_id, self._new_id = patient_id, new_id
        self._save, self._wait_sent, self._on_done = save, wait_sent, on_done
        self._source, self._clock, self._send_wait_s = reading_source, clock, send_wait_s
        self._number: float = 0
        self._pending_check: Any = None
        self.outcome: str | None = None  # SENT / SAVED / NOT_SAVED once finished
        self.show_step()

    # --- drawing a step -------------------------------------------------------------------

    def _button(self, text: str, intent: Any, on_tap: Callable[[], None], **kw: Any) -> Any:
        button = CheckinButton(text=text, intent=intent, **kw)
        button.bind(on_tap=lambda *_: on_tap())
        return button

    def show_step(self, keep: Any = None) -> None:
        """Draw the current step; `keep` is the value to show again (after "Change it")."""
        item = self.walker.current
        self.note = ""
        self._pending_check = None
        if item is None:
            self._finish()
            return
        number, total = self.walker.progress
        self.progress = self._w(N_("{number} of {total}"), number=number, total=total)
        # vitals: "Pulse"; the unit is by the number
        self.question = self._w(item.label or item.text)
        self.back_shown = self.walker.can_go_back
        self.stepping = item.type in (ItemType.INTEGER, ItemType.DECIMAL)
        self.area.clear_widgets()
        if item.type is ItemType.CHOICE:
            self._draw_choices(item)
        elif item.type is ItemType.BOOLEAN:
            self._draw_yes_no()
        else:
            self._draw_stepper(item, keep)

    def _draw_choices(self, item: Item) -> None:
        box = BoxLayout(orientation="vertical", spacing=theme.GAP / 2)
        for option in item.options:
            box.add_widget(
                self._button(
                    self._w(option.display), theme.NEUTRAL, lambda c=option.code: self.answer(c)
                )
            )
        self.area.add_widget(box)

    def _draw_yes_no(self) -> None:
        box = BoxLayout(spacing=theme.GAP)
        w = self._w
        box.add_widget(self._button(w(N_("Yes")), theme.NEUTRAL, lambda: self.answer(True)))
        box.add_widget(self._button(w(N_("No")), theme.NEUTRAL, lambda: self.answer(False)))
        self.area.add_widget(box)

    def _draw_stepper(self, item: Item, keep: Any = None) -> None:
        before = keep if keep is not None else self.walker.previous_answer()
        start = item.start if item.start is not None else (item.minimum or 0)
        self._number = before if before is not None else start
        self._show_number(item)
        steps = [item.step]
        low, high = item.minimum, item.maximum
        if low is None or high is None or (high - low) / item.step > 30:
            steps.append(item.step * 10)  # long ranges get a second, bigger step
        # The number on a line of its own, the steppers under it: − on the left, + on the right.
        row = BoxLayout(spacing=theme.GAP / 2)
        for step in reversed(steps):
            row.add_widget(self._stepper_button(item, -step))
        for step in steps:
            row.add_widget(self._stepper_button(item, step))
        actions = BoxLayout(spacing=theme.GAP)
        if self._can_skip(item):
            actions.add_widget(
                self._button(self._w(N_("Skip")), theme.INACTIVE, self.skip, enabled=False)
            )
        if self._source is not None and item.link_id in getattr(self._source, "provides", ()):
            actions.add_widget(self._button(self._w(N_("Measure")), theme.NEUTRAL, self.measure))
        actions.add_widget(
            self._button(self._w(N_("Next")), theme.CALL, lambda: self.answer(self._number))
        )
        box = BoxLayout(orientation="vertical", spacing=theme.GAP / 2)
        box.add_widget(CheckinValue(text_ref=self, size_hint_y=0.7))
        box.add_widget(row)
        box.add_widget(actions)
        self.area.add_widget(box)

    def _stepper_button(self, item: Item, delta: float) -> Any:
        sign = "−" if delta < 0 else "+"
        return self._button(
            f"{sign}{_step_text(item, abs(delta))}", theme.NEUTRAL, lambda: self.nudge(delta)
        )

    def _can_skip(self, item: Item) -> bool:
        if item.required:
            return False
        # Blood pressure is both numbers or neither: once the top one is in, no skipping.
        return not (item.link_id == "diastolic" and "systolic" in self.walker.answers())

    def _show_number(self, item: Item) -> None:
        shown = f"{self._number:.{item.decimals}f}" if item.decimals else f"{self._number:g}"
        unit = self._w(item.unit_display) if item.unit_display else ""
        self.value_text = f"{shown} {unit}" if unit else shown

    # --- what the patient does --------------------------------------------------------------

    def nudge(self, delta: float) -> None:
        item = self.walker.current
        if item is None:
            return
        low = item.minimum if item.minimum is not None else -1e9
        high = item.maximum if item.maximum is not None else 1e9
        # Steppers stop at the possible range: an impossible number cannot even be shown.
        self._number = round(min(high, max(low, self._number + delta)), item.decimals)
        self.note = ""
        self._show_number(item)

    def measure(self) -> None:
        """Take a reading from the device (off the event loop) into the stepper."""
        self.note = self._w(N_("Measuring… keep your finger still."))
        source, key = self._source, self.walker.current.link_id  # type: ignore[union-attr]

        def work() -> None:
            try:
                reading = source.read(timeout=15.0)
            except DeviceFault as exc:
                message = str(exc)
                Clock.schedule_once(lambda *_: setattr(self, "note", message))
                return
            Clock.schedule_once(lambda *_: self._measured(key, reading))

        threading.Thread(target=work, name="checkin-measure", daemon=True).start()

    def _measured(self, key: str, reading: Any) -> None:
        item = self.walker.current
        if item is None or item.link_id != key:
            return
        if reading is None:
            self.note = self._w(
                N_("No reading. Put your finger in the clip and press Measure again.")
            )
            return
        self._number = reading.values[key]
        self.note = ""
        self._show_number(item)

    def answer(self, value: Any, *, confirmed: bool = False) -> None:
        item = self.walker.current
        if item is None:
            return
        cross = self._cross_check(item, value)
        if cross is not None:
            self.note = cross.message
            return
        finding = self.walker.submit(value, confirmed=confirmed)
        if finding.level is Level.REFUSED:
            self.note = finding.message
            return
        if finding.level is Level.CHECK and not confirmed:
            self._ask_to_check(finding, value)
            return
        self.show_step()

    def _cross_check(self, item: Item, value: Any) -> Finding | None:
        """Checks that need two answers (blood pressure), before the second is taken."""
        if item.link_id not in VITALS:
            return None
        vitals = {**self.walker.answers(self._vital_ids), item.link_id: value}
        if not {"systolic", "diastolic"} <= vitals.keys():
            return None  # the bottom number is still to come
        refused = [f for f in check_vitals(vitals) if f.level is Level.REFUSED]
        return refused[0] if refused else None

    def _ask_to_check(self, finding: Finding, value: Any) -> None:
        self._pending_check = value
        self.stepping = False
        self.note = finding.message
        self.area.clear_widgets()
        box = BoxLayout(spacing=theme.GAP)
        w = self._w
        box.add_widget(
            self._button(w(N_("Change it")), theme.NEUTRAL, lambda: self.show_step(value))
        )
        box.add_widget(
            self._button(
                w(N_("It is right")), theme.CALL, lambda: self.answer(value, confirmed=True)
            )
        )
        self.area.add_widget(box)

    def skip(self) -> None:
        item = self.walker.current
        self.walker.skip()
        if item is not None and item.link_id == "systolic":
            self.walker.skip()  # no top number: no bottom number either
        self.show_step()

    def back(self) -> None:
        if self._pending_check is not None:
            self.show_step(self._pending_check)
            return
        if self.walker.back():
            self.show_step()

    # --- the end --------------------------------------------------------------------------

    def _records(self) -> list[Record]:
        now = self._clock()
        made = []
        question_ids = [i.link_id for i in self.q.items]
        answers = self.walker.answers(question_ids)
        if answers:
            made.append(
                answers_record(
                    self.q,
                    answers,
                    record_id=self._new_id(),
                    patient_id=self._patient_id,
                    now=now,
                    confirmed=True,  # every unusual answer was confirmed on its own screen
                )
            )
        vitals = self.walker.answers(self._vital_ids)
        if vitals:
            made.append(
                vitals_record(
                    vitals,
                    record_id=self._new_id(),
                    patient_id=self._patient_id,
                    now=now,
                    confirmed=True,
                )
            )
        return made

    def _finish(self) -> None:
        self.progress = ""
        self.stepping = False
        self.back_shown = False
        self.question = self._w(N_("Saving…"))
        self.area.clear_widgets()
        records = self._records()

        def work() -> None:
            try:
                self._save(records)
            except DeviceFault:
                Clock.schedule_once(lambda *_: self._show_end(NOT_SAVED))
                return
            sent = self._wait_sent([r.id for r in records], self._send_wait_s)
            Clock.schedule_once(lambda *_: self._show_end(SENT if sent else SAVED))

        threading.Thread(target=work, name="checkin-save", daemon=True).start()

    def _show_end(self, outcome: str) -> None:
        w = self._w
        self.outcome = outcome
        self.question = w(outcome)
        self.note = w(
            N_("Thank you. Your nurse can see your answers.")
            if outcome == SENT
            else N_("Thank you. You do not need to do anything else.")
            if outcome == SAVED
            else N_("Please tell your nurse when you speak to them.")
        )
        self.area.clear_widgets()
        self.area.add_widget(self._button(w(N_("Done")), theme.CALL, self._done))

    def _done(self) -> None:
        if self._on_done is not None:
            self._on_done()


class CheckinValue(Backdrop):
    """The number between the steppers, large."""

    text_ref = ObjectProperty(None)


ANSWER_QUESTIONS = N_("Answer today's questions")


def _step_text(item: Item, step: float) -> str:
    return f"{round(step, item.decimals):g}"


class CheckinOffer:
    """Offers the check-in while the patient waits, and runs it on a screen of its own.

    The patient joins the waiting room first (at once, with the one button); then, on the
    waiting screen, "Answer today's questions" starts the check-in. The clinician sees the
    answers in the waiting room as soon as they arrive. Being admitted ends the check-in
    (the call matters more); a finished check-in is not offered again in the same wait.

    Wiring (kiosk/app.py): build `CheckinOffer(root, core)` once; in every redraw call
    `offer.update(view)` and show `offer.screen(view)` unless the view shows video.
    `core.records` (porchlight.kiosk.sync.KioskRecords) is None when there is no outbox:
    then nothing is offered.
    """

    SCREEN = "checkin"

    def __init__(self, root: Any, core: Any) -> None:
        from kivy.uix.screenmanager import Screen

        load_layouts()
        self._root, self._core = root, core
        self._screen = Screen(name=self.SCREEN)
        root.add_widget(self._screen)
        self.button = CheckinButton(
            text=ANSWER_QUESTIONS,
            intent=theme.NEUTRAL,
            size_hint_y=None,
            height=110,
        )
        self.button.bind(on_tap=lambda *_: self.start())
        self.flow: CheckinFlow | None = None
        self._words: Words = english()
        self._done_this_wait = False
        self._waiting = False

    def _records(self) -> Any:
        return getattr(self._core, "records", None)

    def update(self, view: Any) -> None:
        from porchlight.kiosk.view import KioskState

        language = getattr(view, "language", "en")
        if language != self._words.code:
            self._words = words_for(language)
            self.button.text = self._words(ANSWER_QUESTIONS)
        waiting = view.state == KioskState.WAITING and not view.show_video
        if not waiting:
            self._done_this_wait = False
            self._drop_flow()
        self._waiting = waiting
        offer = waiting and self.flow is None and not self._done_this_wait
        offer = offer and self._records() is not None
        panel = self._root.message
        if offer and self.button.parent is None:
            panel.add_widget(self.button, index=1)  # between the words and the big button
        elif not offer and self.button.parent is not None:
            self.button.parent.remove_widget(self.button)

    def screen(self, view: Any) -> str:
        """The screen to show for this view when it shows no video."""
        return self.SCREEN if self.flow is not None and self._waiting else "message"

    def start(self) -> None:
        records = self._records()
        if records is None or self.flow is not None:
            return
        self.flow = CheckinFlow(
            records.questionnaire(),
            patient_id=records.patient_id,
            new_id=new_record_id,
            save=records.save,
            wait_sent=records.wait_sent,
            on_done=self.finish,
            words=self._words,
        )
        self._screen.add_widget(self.flow)
        if self.button.parent is not None:
            self.button.parent.remove_widget(self.button)
        self._root.current = self.SCREEN

    def finish(self) -> None:
        self._done_this_wait = True
        self._drop_flow()
        self._root.current = "message"

    def _drop_flow(self) -> None:
        if self.flow is not None:
            self._screen.remove_widget(self.flow)
            self.flow = None

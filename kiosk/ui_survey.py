"""After a call: "How was your call?" (five faces), then "Would you use video again?".

The UI only draws and reports taps; the state machine (kiosk/state.py) decides what is asked
and queues the answers through the outbox. The machine shows the survey on the home screen
(`view.step` "faces" or "again"); `SurveyScreen` puts it on a screen of its own, one question
per screen, big targets (each face is a whole column of the screen), words under the faces,
taps only. The physical button still does what it does at home (calls the nurse).

Wiring (kiosk/app.py): `SurveyScreen(root, core)` once; in every redraw `survey.update(view)`
and show `survey.screen(view)` when it is not None. The core needs `survey_face(score)` and
`survey_again(again)`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kivy.graphics import Color, Ellipse, Line
from kivy.lang import Builder
from kivy.properties import BooleanProperty, ColorProperty, NumericProperty, StringProperty
from kivy.uix.boxlayout import BoxLayout
from kivy.uix.widget import Widget

from porchlight.kiosk import ui_theme as theme
from porchlight.kiosk.i18n import N_, Words, words_for
from porchlight.kiosk.view import KioskState
from porchlight.kiosk.widgets import Backdrop, BigButton

LAYOUTS = (Path(__file__).with_name("kiosk.kv"), Path(__file__).with_name("survey.kv"))

# Score → the word under its face; shown left to right from very good to very bad (the NHS
# Friends and Family Test order).
FACES = (
    (5, N_("Very good")),
    (4, N_("Good")),
    (3, N_("All right")),
    (2, N_("Bad")),
    (1, N_("Very bad")),
)
YES = N_("Yes, I would")
NO = N_("No, I would not")


def load_layouts() -> None:
    for layout in LAYOUTS:
        if str(layout) not in Builder.files:
            Builder.load_file(str(layout))


class Face(Widget):
    """A face drawn with lines: `mood` 1 (frown) … 5 (broad smile)."""

    mood = NumericProperty(3)
    fg_color = ColorProperty(theme.rgba(theme.ON_COLOUR))

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.bind(mood=self._draw, pos=self._draw, size=self._draw, fg_color=self._draw)
        self._draw()

    def _draw(self, *_args: Any) -> None:
        self.canvas.clear()
        d = min(self.width, self.height)
        if d <= 0:
            return
        cx, cy = self.x + self.width / 2, self.y + self.height / 2
        r = d / 2 - 4
        w = max(3.0, d / 18)
        bend = (self.mood - 3) / 2  # -1 frown … +1 smile
        with self.canvas:
            Color(*self.fg_color)
            Line(circle=(cx, cy, r), width=w)
            eye = d * 0.1
            for ex in (cx - r * 0.38, cx + r * 0.38):
                Ellipse(pos=(ex - eye / 2, cy + r * 0.22 - eye / 2), size=(eye, eye))
            # The mouth: a curve through three points; its middle dips for a smile.
            left, right = cx - r * 0.45, cx + r * 0.45
            y = cy - r * 0.35
            mid = y - bend * r * 0.3
            points = []
            for i in range(13):
                t = i / 12
                x = left + (right - left) * t
                # Quadratic Bézier from (left, y) through control (cx, 2*mid - y) to (right, y).
                ctrl = 2 * mid - y
                yy = (1 - t) ** 2 * y + 2 * (1 - t) * t * ctrl + t**2 * y
                points += [x, yy]
            Line(points=points, width=w, cap="round", joint="round")


class FaceButton(BigButton):
    """One face with its word under it: a whole column of the screen to tap."""

    score = NumericProperty(3)
    word = StringProperty("")
    word_area = NumericProperty(84)  # the height kept for the word under the face
    __events__ = ("on_tap",)

    def on_press_up(self, source: Any) -> None:
        self.dispatch("on_tap")

    def on_tap(self) -> None:
        pass


class AnswerButton(BigButton):
    __events__ = ("on_tap",)

    def on_press_up(self, source: Any) -> None:
        self.dispatch("on_tap")

    def on_tap(self) -> None:
        pass


class SurveyPanel(Backdrop, BoxLayout):
    """The survey's screen: the question on top, the answers filling the rest."""

    question = StringProperty("")
    step = StringProperty("faces")
    asking_faces = BooleanProperty(True)


class SurveyScreen:
    """Shows the survey on a screen of its own whenever the view asks for it."""

    SCREEN = "survey"

    def __init__(self, root: Any, core: Any) -> None:
        from kivy.uix.screenmanager import Screen

        load_layouts()
        self._core = core
        self._words: Words = words_for("en")
        self.panel = SurveyPanel()
        screen = Screen(name=self.SCREEN)
        screen.add_widget(self.panel)
        root.add_widget(screen)
        self.faces: list[FaceButton] = []
        for score, _word in FACES:
            button = FaceButton(score=score, intent=theme.NEUTRAL)
            button.bind(on_tap=lambda b: self._face(int(b.score)))
            self.faces.append(button)
            self.panel.ids.faces.add_widget(button)
        self.yes = AnswerButton(intent=theme.CALL)
        self.no = AnswerButton(intent=theme.NEUTRAL)
        self.yes.bind(on_tap=lambda *_: self._again(True))
        self.no.bind(on_tap=lambda *_: self._again(False))
        self.panel.ids.answers.add_widget(self.yes)
        self.panel.ids.answers.add_widget(self.no)
        self._apply_words()

    def _face(self, score: int) -> None:
        self._core.survey_face(score)

    def _again(self, again: bool) -> None:
        self._core.survey_again(again)

    def _apply_words(self) -> None:
        w = self._words
        for button, (_score, word) in zip(self.faces, FACES, strict=True):
            button.word = w(word)
        self.yes.text, self.no.text = w(YES), w(NO)

    def update(self, view: Any) -> None:
        if view.language != self._words.code:
            self._words = words_for(view.language)
            self._apply_words()
        if self.screen(view) is None:
            return
        self.panel.question = view.headline
        self.panel.step = view.step
        faces = view.step == "faces"
        self.panel.asking_faces = faces
        for button in self.faces:
            button.shown = faces  # a hidden answer takes no touches
        self.yes.shown = self.no.shown = not faces

    def screen(self, view: Any) -> str | None:
        """This screen's name when the view asks about the last call, else None."""
        if view.state == KioskState.IDLE and view.step in ("faces", "again"):
            return self.SCREEN
        return None

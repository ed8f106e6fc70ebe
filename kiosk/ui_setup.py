"""The kiosk's setup screen (Kivy): drawn from the SetupSession's view, touches become actions.

The UI decides nothing: each key calls `session.act(...)`, and the next `SetupView` says what
to show. Layout and looks are in setup.kv; sizes and colours come from kiosk/ui_theme.py
(body text at least 32 px, key labels at least 48 px, every pair at least 7:1).

    app = SetupApp(session)
    await app.async_run(async_lib="asyncio")   # stops by itself when the nurse presses Finish
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from kivy.app import App
from kivy.clock import Clock
from kivy.lang import Builder
from kivy.properties import BooleanProperty, ColorProperty, ObjectProperty, StringProperty
from kivy.uix.behaviors import ButtonBehavior
from kivy.uix.boxlayout import BoxLayout
from kivy.uix.gridlayout import GridLayout
from kivy.uix.label import Label
from kivy.uix.widget import Widget

from porchlight.hub.enrolment import ALPHABET
from porchlight.kiosk import ui_theme as theme
from porchlight.kiosk.setup_flow import SetupView, Step

LAYOUT = Path(__file__).with_name("setup.kv")

# The setup screen's own colours (checked for 7:1 in the tests, like the theme's).
ERROR_INK = "#8A1C1C"  # errors: dark red on the screen colour
OK_INK = "#17561C"
KEY_FILL = theme.NEUTRAL.fill
KEY_PRESSED = theme.NEUTRAL.pressed_fill
GO_FILL = theme.CALL.fill
GO_PRESSED = theme.CALL.pressed_fill

KEY_PX = 48  # every key label
BODY_PX = 34
HEADLINE_PX = 44

LOWER = ("1234567890", "qwertyuiop", "asdfghjkl")
UPPER = ("1234567890", "QWERTYUIOP", "ASDFGHJKL")
SYMBOLS = ("1234567890", "!@#$%^&*()", "-_=+[]{};")
LAST_ROW = {"lower": "zxcvbnm", "upper": "ZXCVBNM", "symbols": "'\",.?/\\"}


def colour_pairs() -> list[tuple[str, str, str]]:
    """Every (what, foreground, background) pair this screen draws."""
    return [
        ("words", theme.INK, theme.SCREEN),
        ("errors", ERROR_INK, theme.SCREEN),
        ("working results", OK_INK, theme.SCREEN),
        ("key labels", theme.ON_COLOUR, KEY_FILL),
        ("key labels, pressed", theme.ON_COLOUR, KEY_PRESSED),
        ("go key labels", theme.ON_COLOUR, GO_FILL),
        ("go key labels, pressed", theme.ON_COLOUR, GO_PRESSED),
    ]


class SessionForUi(Protocol):
    view: SetupView

    def subscribe(self, fn: Callable[[SetupView], None]) -> Callable[[], None]: ...
    def act(self, action: str, *args: Any) -> None: ...


class SetupKey(ButtonBehavior, Label):
    """A big key. `action` and `arg` say what pressing it asks of the session."""

    action = StringProperty("")
    arg = StringProperty("")
    go = BooleanProperty(False)  # the green key that moves things on (OK, Connect, Finish)
    bg_color = ColorProperty(theme.rgba(KEY_FILL))


class SetupText(Label):
    """Body text, wrapped to its width."""


class SetupRoot(BoxLayout):
    headline = ObjectProperty(None)
    detail = ObjectProperty(None)
    error = ObjectProperty(None)
    body = ObjectProperty(None)
    footer = ObjectProperty(None)


def load_layout() -> None:
    if str(LAYOUT) not in Builder.files:
        Builder.load_file(str(LAYOUT))


class SetupApp(App):
    title = "Porchlight setup"

    def __init__(self, session: SessionForUi, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.session = session
        self._view = session.view
        self._drawn: tuple[Any, ...] | None = None
        self._root: SetupRoot | None = None
        self._keyboard = "lower"
        self._unsubscribe: Callable[[], None] | None = None
        self._redraw = Clock.create_trigger(self._apply, 0)

    def load_kv(self, filename: str | None = None) -> bool:
        load_layout()
        return True

    def build(self) -> SetupRoot:
        from kivy.core.window import Window

        Window.clearcolor = theme.rgba(theme.SCREEN)
        load_layout()
        self._root = SetupRoot()
        self._unsubscribe = self.session.subscribe(self._on_view)
        self._apply()
        return self._root

    def on_stop(self) -> None:
        self.close()

    def close(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        self._redraw.cancel()

    @property
    def screen(self) -> SetupRoot:
        if self._root is None:
            raise RuntimeError("SetupApp.build() has not run yet")
        return self._root

    def all_keys(self) -> list[SetupKey]:
        return [w for w in self.screen.walk() if isinstance(w, SetupKey)]

    def key(self, action: str, arg: str = "") -> SetupKey:
        return next(k for k in self.all_keys() if k.action == action and k.arg == arg)

    # ---------------------------------------------------------------- drawing

    def _on_view(self, view: SetupView) -> None:
        self._view = view
        self._redraw()

    def _apply(self, *_args: Any) -> None:
        if self._root is None:
            return
        v, root = self._view, self._root
        root.headline.text = v.headline
        root.detail.text = v.detail
        root.error.text = v.error
        root.footer.text = v.wifi_status
        # Rebuild the body only when what it holds changes (a key press must not flicker).
        shape = (v.step, v.networks, v.results, self._keyboard, v.code_complete)
        if shape != self._drawn:
            self._drawn = shape
            root.body.clear_widgets()
            root.body.add_widget(self._body(v))
        for widget in root.body.walk():
            if getattr(widget, "setup_role", "") == "code":
                widget.text = v.code or " "
            elif getattr(widget, "setup_role", "") == "password":
                widget.text = v.password_mask or " "

    def _key(
        self, text: str, action: str, arg: str = "", *, go: bool = False, **kw: Any
    ) -> SetupKey:
        key = SetupKey(text=text, action=action, arg=arg, go=go, **kw)
        key.bind(on_release=self._pressed)
        return key

    def _pressed(self, key: SetupKey) -> None:
        if key.action == "keyboard":
            self._keyboard = key.arg
            self._redraw()
            return
        args = (key.arg,) if key.arg or key.action in ("key", "password_key") else ()
        self.session.act(key.action, *args)

    def _body(self, v: SetupView) -> Any:
        match v.step:
            case Step.WELCOME:
                row = BoxLayout(spacing=theme.GAP)
                row.add_widget(self._key("Type the code", "open_keypad", go=True))
                row.add_widget(self._key("Wi-Fi", "open_wifi"))
                return row
            case Step.KEYPAD:
                return self._keypad(v)
            case Step.WIFI:
                box = BoxLayout(orientation="vertical", spacing=theme.GAP / 2)
                for network in v.networks[:3]:
                    box.add_widget(self._key(network.ssid, "choose_network", network.ssid))
                box.add_widget(self._key("Back", "back"))
                return box
            case Step.PASSWORD:
                return self._keyboard_body()
            case Step.DONE:
                return self._results(v)
            case _:
                return SetupText(text="")

    def _keypad(self, v: SetupView) -> Any:
        box = BoxLayout(orientation="vertical", spacing=theme.GAP / 2)
        top = BoxLayout(size_hint_y=None, height=88, spacing=theme.GAP / 2)
        top.add_widget(self._key("Back", "back", size_hint_x=0.25))
        code = SetupText(text=v.code or " ", font_size=56, bold=True, halign="center")
        code.setup_role = "code"
        top.add_widget(code)
        top.add_widget(self._key("OK", "submit_code", go=True, size_hint_x=0.25))
        box.add_widget(top)
        grid = GridLayout(cols=6, spacing=6)
        for char in ALPHABET:
            grid.add_widget(self._key(char, "key", char))
        grid.add_widget(self._key("Del", "backspace"))
        box.add_widget(grid)
        return box

    def _keyboard_body(self) -> Any:
        box = BoxLayout(orientation="vertical", spacing=4)
        top = BoxLayout(size_hint_y=None, height=76, spacing=6)
        top.add_widget(self._key("Back", "back", size_hint_x=None, width=150))
        shown = SetupText(text=" ", font_size=BODY_PX, halign="center")
        shown.setup_role = "password"
        top.add_widget(shown)
        top.add_widget(self._key("Show", "toggle_password", size_hint_x=None, width=150))
        top.add_widget(
            self._key("Connect", "submit_password", go=True, size_hint_x=None, width=220)
        )
        box.add_widget(top)
        rows = {"lower": LOWER, "upper": UPPER, "symbols": SYMBOLS}[self._keyboard]
        for i, chars in enumerate(rows):
            row = BoxLayout(spacing=4)
            for char in chars:
                row.add_widget(self._key(char, "password_key", char))
            if i == 2:
                row.add_widget(self._key("Del", "password_backspace", size_hint_x=1.4))
            box.add_widget(row)
        last = BoxLayout(spacing=4)
        other = "upper" if self._keyboard == "lower" else "lower"
        switch = "Aa" if self._keyboard != "symbols" else "abc"
        last.add_widget(self._key(switch, "keyboard", other, size_hint_x=1.5))
        for char in LAST_ROW[self._keyboard]:
            last.add_widget(self._key(char, "password_key", char))
        last.add_widget(self._key("Space", "password_key", " ", size_hint_x=2.6))
        last.add_widget(self._key("#+=", "keyboard", "symbols", size_hint_x=1.6))
        box.add_widget(last)
        return box

    def _results(self, v: SetupView) -> Any:
        box = BoxLayout(orientation="vertical", spacing=theme.GAP / 2)
        problems = [r for r in v.results if r.status == "problem"]
        fine = sum(r.status == "ok" for r in v.results)
        for line in problems[:3]:
            box.add_widget(SetupText(text=line.words, color=theme.rgba(ERROR_INK)))
        if fine:
            box.add_widget(
                SetupText(text=f"{fine} checks passed.", color=theme.rgba(OK_INK), bold=True)
            )
        box.add_widget(Widget())  # the room left over goes below the words, above the keys
        row = BoxLayout(size_hint_y=None, height=100, spacing=theme.GAP)
        row.add_widget(self._key("Check again", "run_self_test_again"))
        row.add_widget(self._key("Finish", "finish", go=True))
        box.add_widget(row)
        return box

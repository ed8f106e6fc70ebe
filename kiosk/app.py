"""The kiosk's Kivy app: draws the core's `KioskView`, and turns touches and the space bar into
the same button presses the GPIO button makes.

The UI only subscribes. It never decides what a press means or what state comes next: the
core does, and says so in a new view, which the UI redraws through one coalescing Clock
trigger. Run it on the core's asyncio loop::

    app = KioskApp(core, UiConfig())
    await app.async_run(async_lib="asyncio")

What it needs from the core (porchlight.kiosk.core.KioskCore): `view`, `subscribe(fn)` (returns
an unsubscribe callable; `fn(view)` is called on the loop thread), `button_down()`,
`button_up()`, `remote_frames` and `local_frames` (FrameSource), `on_ui_ready()`, and
optionally `simulated` (bool: show the on-screen status light and link bars).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Protocol

from kivy.app import App
from kivy.clock import Clock
from kivy.config import Config
from kivy.lang import Builder

from porchlight.device.light_patterns import PATTERNS
from porchlight.kiosk import ui_theme as theme
from porchlight.kiosk.state import Timings
from porchlight.kiosk.ui_checkin import CheckinOffer
from porchlight.kiosk.ui_config import UiConfig
from porchlight.kiosk.ui_press import HOLD_TO_LEAVE_STATES, HoldMeter, PressGate
from porchlight.kiosk.ui_survey import SurveyScreen
from porchlight.kiosk.view import LINK_LEVELS, FrameSource, KioskState, KioskView
from porchlight.kiosk.widgets import BigButton, KioskRoot

LAYOUT = Path(__file__).with_name("kiosk.kv")
SPACE = 32  # Kivy key code of the space bar: the simulated physical button


class LightPattern(Protocol):
    def level_at(self, t: float) -> float: ...


class CoreForUi(Protocol):
    """The part of the kiosk core the UI uses."""

    view: KioskView
    remote_frames: FrameSource
    local_frames: FrameSource

    def subscribe(self, fn: Callable[[KioskView], None]) -> Callable[[], None]: ...
    def button_down(self) -> None: ...
    def button_up(self) -> None: ...
    def on_ui_ready(self) -> None: ...


def configure_kivy(config: UiConfig) -> None:
    """Window settings that Kivy reads only when it creates the window: call before that
    (the app calls it too; then it only matters if the window does not exist yet)."""
    Config.set("graphics", "width", str(config.width))
    Config.set("graphics", "height", str(config.height))
    Config.set("graphics", "fullscreen", "auto" if config.fullscreen else "0")
    Config.set("graphics", "resizable", "0" if config.fullscreen else "1")
    # A right click must not leave a red multitouch dot on the patient's screen.
    Config.set("input", "mouse", "mouse,disable_multitouch")
    # A stray Escape must not close the kiosk on a device.
    Config.set("kivy", "exit_on_escape", "0" if config.fullscreen else "1")


def load_layout() -> None:
    """Load kiosk.kv once per process (Kivy keeps the rules globally)."""
    if str(LAYOUT) not in Builder.files:
        Builder.load_file(str(LAYOUT))


class KioskApp(App):
    """The patient's screen. `core` is the kiosk core; see the module docstring.

    `simulated` (default: `core.simulated`, else False) shows the on-screen status light and
    link bars; `patterns` maps light pattern names to objects with `level_at(t)` (default:
    porchlight.device.light_patterns.PATTERNS); `hold_to_leave_s` is how long a hold leaves
    (default: the state machine's); `now` is the clock for animations.
    """

    title = "Porchlight"

    def __init__(
        self,
        core: CoreForUi,
        config: UiConfig | None = None,
        *,
        simulated: bool | None = None,
        patterns: Mapping[str, LightPattern] | None = None,
        hold_to_leave_s: float | None = None,
        now: Callable[[], float] = time.monotonic,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.core = core
        self.ui_config = config or UiConfig()
        self.simulated = bool(getattr(core, "simulated", False)) if simulated is None else simulated
        self._patterns = PATTERNS if patterns is None else patterns
        hold_s = Timings().hold_to_leave_s if hold_to_leave_s is None else hold_to_leave_s
        self._now = now
        self._gate = PressGate()
        self._hold = HoldMeter(hold_s)
        self._view: KioskView = core.view
        self._ignore_view_press = False  # our own press just ended; the core's flash lingers
        self._light = ""
        self._light_since = 0.0
        self._root: KioskRoot | None = None
        self._window: Any = None
        self._unsubscribe: Callable[[], None] | None = None
        self._redraw = Clock.create_trigger(self._apply_view, 0)
        self._video_ev: Any = None
        self._light_ev: Any = None
        self._hold_ev: Any = None
        self.ui_ready = False
        configure_kivy(self.ui_config)

    # ------------------------------------------------------------ lifecycle

    def load_kv(self, filename: str | None = None) -> bool:
        # App would find kiosk.kv by its own name too; load it exactly once, from one place.
        load_layout()
        return True

    def build(self) -> KioskRoot:
        from kivy.core.window import Window  # creating the window is the caller's moment

        self._window = Window
        self._apply_window_config(Window)
        load_layout()
        root = KioskRoot()
        self._root = root
        # The check-in, offered on the waiting screen when the kiosk keeps an outbox.
        self.checkin = CheckinOffer(root, self.core)
        # "How was your call?" after a call, on a screen of its own (kiosk/ui_survey.py).
        self.survey = SurveyScreen(root, self.core)
        for button in self.buttons:
            button.bind(on_press_down=self._on_press_down, on_press_up=self._on_press_up)
        Window.bind(
            on_key_down=self._on_key_down,
            on_key_up=self._on_key_up,
            on_flip=self._on_first_flip,
            focus=self._on_focus,
        )
        self._unsubscribe = self.core.subscribe(self._on_view)
        self._view = self.core.view
        self._apply_view()  # the first frame drawn already shows the right screen
        if self.simulated:
            self._light_ev = Clock.schedule_interval(self._tick_light, 1 / self.ui_config.light_fps)
        return root

    def on_stop(self) -> None:
        self.close()

    def close(self) -> None:
        """Let go of the core, the window and the clocks (idempotent)."""
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        if self._gate.release_all():
            self.core.button_up()
        for name in ("_video_ev", "_light_ev", "_hold_ev"):
            ev = getattr(self, name)
            if ev is not None:
                ev.cancel()
                setattr(self, name, None)
        self._redraw.cancel()
        if self._window is not None:
            self._window.unbind(
                on_key_down=self._on_key_down,
                on_key_up=self._on_key_up,
                on_flip=self._on_first_flip,
                focus=self._on_focus,
            )

    def _apply_window_config(self, window: Any) -> None:
        cfg = self.ui_config
        if cfg.fullscreen:
            window.fullscreen = "auto"
            window.show_cursor = False
        else:
            window.size = (cfg.width, cfg.height)
        window.clearcolor = theme.rgba(theme.SCREEN)

    def _on_first_flip(self, *_args: Any) -> None:
        # Called after the first frame reached the screen: the kiosk is visibly up.
        self._window.unbind(on_flip=self._on_first_flip)
        self.ui_ready = True
        self.core.on_ui_ready()

    # ------------------------------------------------------------ what is on screen

    @property
    def screen(self) -> KioskRoot:
        if self._root is None:
            raise RuntimeError("KioskApp.build() has not run yet; start the app first")
        return self._root

    @property
    def buttons(self) -> tuple[BigButton, BigButton]:
        return self.screen.message.button, self.screen.call.button

    @property
    def button(self) -> BigButton:
        """The big button on the screen showing now."""
        root = self.screen
        return root.call.button if root.current == "call" else root.message.button

    @property
    def view(self) -> KioskView:
        return self._view

    def _on_view(self, view: KioskView) -> None:
        # Called by the core, perhaps many times a frame: keep the newest, draw once.
        before, self._view = self._view, view
        if not view.pressed:
            self._ignore_view_press = False
        elif not before.pressed and not self._gate.held:
            # A press of the physical button: note the state it began in (a press that joins
            # from home must not then count as a hold to leave).
            self._hold.update(True, before.state, self._now())
        self._redraw()

    def _apply_view(self, *_args: Any) -> None:
        if self._root is None:
            return
        v, root = self._view, self._root
        self.checkin.update(v)
        self.survey.update(v)
        if v.show_video:
            root.current = "call"
        else:
            root.current = self.survey.screen(v) or self.checkin.screen(v)
        notes = root.call.notes
        notes.prompt.text = v.prompt
        notes.look.text = v.close_look
        panel = root.message
        panel.headline.text = v.headline
        panel.detail.text = v.detail
        panel.icon.state = v.state.value
        panel.button.biggest = (
            theme.HOME_BUTTON_PX
            if v.state in (KioskState.IDLE, KioskState.RINGING)
            else theme.BUTTON_PX
        )
        intent = theme.INTENT_FOR_STATE[v.state]
        for button in self.buttons:
            button.text = v.button_label
            button.shown = bool(v.button_label)
            button.enabled = v.button_enabled
            button.intent = intent
            button.holdable = v.state in HOLD_TO_LEAVE_STATES
        link = v.link if v.link in LINK_LEVELS else "none"
        for sim in (root.message.sim, root.call.sim):
            sim.shown = self.simulated
            sim.bars.link = link
        if v.light != self._light:
            self._light, self._light_since = v.light, self._now()
        self._tick_light()
        self._show_video(v.show_video)
        self._refresh_press()

    # ------------------------------------------------------------ presses

    def _on_press_down(self, _button: BigButton, source: Any) -> None:
        self._press_down(source)

    def _on_press_up(self, _button: BigButton, source: Any) -> None:
        self._press_up(source)

    def _on_key_down(self, _window: Any, key: int, *_args: Any) -> bool:
        if key != SPACE:
            return False
        self._press_down("space")  # key repeat lands here too; the gate ignores it
        return True

    def _on_key_up(self, _window: Any, key: int, *_args: Any) -> bool:
        if key != SPACE:
            return False
        self._press_up("space")
        return True

    def _on_focus(self, _window: Any, focused: bool) -> None:
        # A key held while the window lost focus never sends its key-up; without this the
        # core would see an endless hold (and leave the waiting room).
        if not focused and self._gate.release_all():
            self._ignore_view_press = True
            self.core.button_up()
            self._refresh_press()

    def _press_down(self, source: Any) -> None:
        if self._gate.down(source):
            # Look pressed before the core has even heard of it (the 200 ms promise), and
            # note the state the press began in before the core moves on.
            self._refresh_press()
            self.core.button_down()
        self._refresh_press()

    def _press_up(self, source: Any) -> None:
        if self._gate.up(source):
            self._ignore_view_press = True
            self.core.button_up()
        self._refresh_press()

    def _refresh_press(self, *_args: Any) -> None:
        v = self._view
        view_press = v.pressed and not self._ignore_view_press
        for button in self.buttons:
            button.pressed = self._gate.held or v.pressed
        fraction = self._hold.update(self._gate.held or view_press, v.state, self._now())
        for button in self.buttons:
            button.hold_fraction = -1.0 if fraction is None else fraction
        holding = fraction is not None and fraction < 1.0
        if holding and self._hold_ev is None:
            self._hold_ev = Clock.schedule_interval(self._refresh_press, 1 / 30)
        elif not holding and self._hold_ev is not None:
            self._hold_ev.cancel()
            self._hold_ev = None

    # ------------------------------------------------------------ video and light

    def _show_video(self, on: bool) -> None:
        call = self.screen.call
        if on and self._video_ev is None:
            call.remote.source = self.core.remote_frames
            call.local.source = self.core.local_frames
            self._poll_video()
            self._video_ev = Clock.schedule_interval(self._poll_video, 1 / self.ui_config.video_fps)
        elif not on and self._video_ev is not None:
            self._video_ev.cancel()
            self._video_ev = None
            call.remote.reset()
            call.local.reset()

    def _poll_video(self, *_args: Any) -> None:
        call = self.screen.call
        call.remote.refresh()
        call.local.refresh()

    def _light_level(self) -> float:
        pattern = self._patterns.get(self._light)
        if pattern is None:
            return 0.0
        return float(pattern.level_at(self._now() - self._light_since))

    def _tick_light(self, *_args: Any) -> None:
        if not self.simulated or self._root is None:
            return
        level = self._light_level()
        for sim in (self._root.message.sim, self._root.call.sim):
            sim.lamp.level = level

"""The kiosk's own Kivy widgets. They draw what they are told and report touches; they decide
nothing (kiosk/app.py wires them to the core; kiosk/kiosk.kv lays them out).

Every widget that paints a background says so in `bg_color`, so the tests can check each
piece of text against what is really behind it.
"""

from __future__ import annotations

import numpy
from kivy.core.text import Label as CoreLabel
from kivy.graphics import Color, Ellipse, Line, Rectangle
from kivy.graphics.texture import Texture
from kivy.properties import (
    AliasProperty,
    BooleanProperty,
    ColorProperty,
    NumericProperty,
    ObjectProperty,
    OptionProperty,
    StringProperty,
)
from kivy.uix.boxlayout import BoxLayout
from kivy.uix.floatlayout import FloatLayout
from kivy.uix.label import Label
from kivy.uix.screenmanager import ScreenManager
from kivy.uix.widget import Widget

from porchlight.kiosk import ui_theme as theme


def _centre(widget: Widget) -> tuple[float, float]:
    # Not widget.center: that alias can still hold the old value inside a size/pos callback.
    return widget.x + widget.width / 2, widget.y + widget.height / 2


class Backdrop(Widget):
    """A widget that fills itself with `bg_color` (drawn in kiosk.kv)."""

    bg_color = ColorProperty(theme.rgba(theme.SCREEN))


class BigButton(Label):
    """The on-screen twin of the physical button.

    Reports `on_press_down(source)` / `on_press_up(source)` per finger, so holding works; it
    never decides what a press means. It looks pressed the moment a finger lands (and while
    `pressed` is set from outside), and shows a bar filling while a hold-to-leave is under way.
    """

    intent = ObjectProperty(theme.CALL)
    enabled = BooleanProperty(True)  # False: outlined instead of filled; presses still count
    shown = BooleanProperty(True)  # False: takes no space, ignores touches
    pressed = BooleanProperty(False)  # set by the app: local finger/space bar or view.pressed
    holdable = BooleanProperty(False)  # holding it leaves: keep room for the hold bar
    hold_fraction = NumericProperty(-1.0)  # 0..1 while a hold-to-leave is under way, else < 0
    inset = NumericProperty(0)  # how far the fill has sunk in (pressed)
    bg_color = ColorProperty(theme.rgba(theme.CALL.fill))
    fill_color = ColorProperty(theme.rgba(theme.CALL.fill))
    ring_color = ColorProperty(theme.rgba(theme.INK))
    # > 0: the words are this big if they fit the button, else as big as fits, never under
    # BUTTON_MIN_PX (a long headline above, e.g. a long name, leaves the button less room).
    biggest = NumericProperty(0)

    __events__ = ("on_press_down", "on_press_up")

    def __init__(self, **kwargs) -> None:
        self._touches: set[int] = set()
        super().__init__(**kwargs)
        self.bind(intent=self._restyle, enabled=self._restyle, pressed=self._restyle)
        self.bind(biggest=self._fit, text=self._fit, size=self._fit, padding=self._fit)
        self._restyle()

    def _fit(self, *_args) -> None:
        if self.biggest <= 0:
            return
        room_w = self.width - 2 * theme.MARGIN
        room_h = self.height - self.padding[1] - self.padding[3]
        size = self.biggest
        if room_w > 0 and room_h > 0 and self.text:
            while size > theme.BUTTON_MIN_PX:
                measure = CoreLabel(
                    text=self.text,
                    font_size=size,
                    font_name=self.font_name,
                    bold=self.bold,
                    text_size=(room_w, None),
                    halign=self.halign,
                )
                measure.refresh()
                if measure.texture.height <= room_h:
                    break
                size = max(theme.BUTTON_MIN_PX, size - 4)
        self.font_size = size

    def _restyle(self, *_args) -> None:
        intent = self.intent if self.enabled else theme.INACTIVE
        fill = intent.pressed_fill if self.pressed else intent.fill
        self.fill_color = theme.rgba(fill)
        self.inset = theme.PRESSED_INSET if self.pressed else 0
        self.color = theme.rgba(intent.text)
        # What is directly behind the words: the fill (outlined buttons are filled with the
        # screen colour, or its pressed shade).
        self.bg_color = theme.rgba(fill)

    def _hold_bar_rect(self) -> tuple[float, float, float, float]:
        pad = self.inset + theme.GAP + theme.MARGIN / 2
        return (
            self.x + pad,
            self.y + self.inset + theme.GAP / 2 + 4,
            self.width - 2 * pad,
            theme.HOLD_BAR_PX,
        )

    hold_bar_rect = AliasProperty(_hold_bar_rect, bind=("pos", "size", "inset"), cache=True)

    def on_touch_down(self, touch) -> bool:
        if not self.shown or not self.collide_point(*touch.pos):
            return False
        touch.grab(self)
        self._touches.add(touch.uid)
        self.dispatch("on_press_down", ("touch", touch.uid))
        return True

    def on_touch_move(self, touch) -> bool:
        # A finger that slides about is still pressing: no swipes, no cancel-by-moving.
        return touch.grab_current is self

    def on_touch_up(self, touch) -> bool:
        if touch.grab_current is not self:
            return False
        touch.ungrab(self)
        self._touches.discard(touch.uid)
        self.dispatch("on_press_up", ("touch", touch.uid))
        return True

    def on_press_down(self, source) -> None:
        pass

    def on_press_up(self, source) -> None:
        pass


class StateIcon(Widget):
    """A plain shape per state, so the state never rests on colour or reading alone:
    a house (home), a crossed circle (not connected), three dots (calling), a clock
    (waiting), a tick (call ended)."""

    state = StringProperty("idle")
    fg_color = ColorProperty(theme.rgba(theme.INK))

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.bind(state=self._draw, pos=self._draw, size=self._draw, fg_color=self._draw)
        self._draw()

    def _draw(self, *_args) -> None:
        self.canvas.clear()
        s = min(self.width, self.height)
        if s <= 0:
            return
        cx, cy = _centre(self)
        x0 = cx - s / 2
        y0 = cy - s / 2
        w = max(4.0, s / 14)

        def p(fx: float, fy: float) -> tuple[float, float]:
            return x0 + fx * s, y0 + fy * s

        with self.canvas:
            Color(*self.fg_color)
            if self.state == "idle":
                pts = [*p(0.12, 0.5), *p(0.5, 0.9), *p(0.88, 0.5)]
                Line(points=pts, width=w, joint="round", cap="round")
                body = [*p(0.22, 0.55), *p(0.22, 0.1), *p(0.78, 0.1), *p(0.78, 0.55)]
                Line(points=body, width=w, joint="round", cap="round")
                Line(rectangle=(*p(0.42, 0.1), 0.16 * s, 0.28 * s), width=w * 0.7)
            elif self.state == "offline":
                Line(circle=(cx, cy, s * 0.42), width=w)
                Line(points=[*p(0.2, 0.2), *p(0.8, 0.8)], width=w, cap="round")
            elif self.state in ("joining", "in_call"):
                r = s * 0.1
                for fx in (0.2, 0.5, 0.8):
                    dx, dy = p(fx, 0.5)
                    Ellipse(pos=(dx - r, dy - r), size=(2 * r, 2 * r))
            elif self.state == "waiting":
                Line(circle=(cx, cy, s * 0.42), width=w)
                Line(points=[*p(0.5, 0.78), *p(0.5, 0.5), *p(0.72, 0.5)], width=w, cap="round")
            elif self.state == "ending":
                Line(circle=(cx, cy, s * 0.42), width=w)
                tick = [*p(0.3, 0.5), *p(0.45, 0.33), *p(0.72, 0.66)]
                Line(points=tick, width=w, joint="round", cap="round")
            elif self.state == "ringing":
                # A bell: someone is calling.
                bell = [
                    *p(0.14, 0.28),
                    *p(0.26, 0.36),
                    *p(0.28, 0.62),
                    *p(0.38, 0.8),
                    *p(0.5, 0.84),
                    *p(0.62, 0.8),
                    *p(0.72, 0.62),
                    *p(0.74, 0.36),
                    *p(0.86, 0.28),
                    *p(0.14, 0.28),
                ]
                Line(points=bell, width=w, joint="round", cap="round")
                r = s * 0.08
                dx, dy = p(0.5, 0.17)
                Ellipse(pos=(dx - r, dy - r), size=(2 * r, 2 * r))


_BARS_FOR_LINK = {"good": 3, "fair": 2, "poor": 1, "none": 0}


class LinkBars(Widget):
    """Link quality as three bars, no numbers: good 3, fair 2, poor 1, none 0 (outlines)."""

    link = OptionProperty("none", options=["good", "fair", "poor", "none"])
    fg_color = ColorProperty(theme.rgba(theme.INK))

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.bind(link=self._draw, pos=self._draw, size=self._draw, fg_color=self._draw)
        self._draw()

    @property
    def filled(self) -> int:
        return _BARS_FOR_LINK[self.link]

    def _draw(self, *_args) -> None:
        self.canvas.clear()
        gap = self.width * 0.1
        bar_w = (self.width - 2 * gap) / 3
        with self.canvas:
            Color(*self.fg_color)
            for i in range(3):
                h = self.height * (i + 1) / 3
                x = self.x + i * (bar_w + gap)
                if i < self.filled:
                    Rectangle(pos=(x, self.y), size=(bar_w, h))
                else:
                    Line(rectangle=(x + 1.5, self.y + 1.5, bar_w - 3, h - 3), width=1.5)


class LightLamp(Widget):
    """The simulated status light: a ring that is always visible, filled as brightly as the
    real light would be lit (`level` 0..1 from the device's light patterns)."""

    level = NumericProperty(0.0)
    fg_color = ColorProperty(theme.rgba(theme.INK))

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.bind(level=self._draw, pos=self._draw, size=self._draw, fg_color=self._draw)
        self._draw()

    def _draw(self, *_args) -> None:
        self.canvas.clear()
        d = min(self.width, self.height)
        cx, cy = _centre(self)
        x, y = cx - d / 2, cy - d / 2
        off, on = theme.rgba(theme.LAMP_OFF), theme.rgba(theme.LAMP_ON)
        lvl = min(1.0, max(0.0, float(self.level)))
        with self.canvas:
            Color(*(a + (b - a) * lvl for a, b in zip(off, on, strict=True)))
            Ellipse(pos=(x + 4, y + 4), size=(d - 8, d - 8))
            Color(*self.fg_color)
            Line(circle=(cx, cy, d / 2 - 2), width=2)


class VideoView(Widget):
    """Shows the newest frame of a `FrameSource`, letterboxed to keep its shape.

    `refresh()` is called by the app on a clock while a call is on screen; it asks the source
    for its newest frame and uploads it only when the sequence number has moved, so an idle
    or frozen stream costs one cheap call per tick.
    """

    source = ObjectProperty(None, allownone=True)
    texture = ObjectProperty(None, allownone=True)
    bg_color = ColorProperty(theme.rgba(theme.CALL_SCREEN))
    border_color = ColorProperty((0, 0, 0, 0))
    border_px = NumericProperty(0)
    blits = NumericProperty(0)  # how many frames were uploaded (for tests and diagnostics)

    def __init__(self, **kwargs) -> None:
        self._seq: int | None = None
        super().__init__(**kwargs)
        with self.canvas:
            self._bg_color = Color(*self.bg_color)
            self._bg = Rectangle()
            self._pic_color = Color(1, 1, 1, 0)
            self._pic = Rectangle()
            self._border_color = Color(*self.border_color)
            self._border = Line(width=1)
        self.bind(
            pos=self._layout,
            size=self._layout,
            texture=self._layout,
            bg_color=self._layout,
            border_color=self._layout,
            border_px=self._layout,
        )
        self._layout()

    def reset(self) -> None:
        """Forget the picture shown (a new call starts black, not with the last one's face)."""
        self._seq = None
        self.texture = None

    def refresh(self) -> bool:
        """Upload the source's newest frame if it is new; True when the picture changed."""
        if self.source is None:
            return False
        seq, frame = self.source.latest()
        if seq == self._seq:
            return False
        self._seq = seq
        if frame is None:
            changed = self.texture is not None
            self.texture = None
            return changed
        self._upload(frame)
        return True

    def _upload(self, frame: numpy.ndarray) -> None:
        h, w = frame.shape[:2]
        tex = self.texture
        if tex is None or tuple(tex.size) != (w, h):
            tex = Texture.create(size=(w, h), colorfmt="rgb", bufferfmt="ubyte")
            # Frames come top row first; GL textures start at the bottom.
            tex.flip_vertical()
        data = numpy.ascontiguousarray(frame, dtype=numpy.uint8).reshape(-1)
        tex.blit_buffer(data, colorfmt="rgb", bufferfmt="ubyte")
        self.blits += 1
        if tex is not self.texture:
            self.texture = tex
        else:
            # Same texture object, new pixels: ask the canvas to draw again.
            self.canvas.ask_update()

    def picture_rect(self) -> tuple[float, float, float, float]:
        """Where the picture is drawn (x, y, w, h): as large as fits, shape kept."""
        if self.texture is None or self.width <= 0 or self.height <= 0:
            return (self.x, self.y, 0.0, 0.0)
        tw, th = self.texture.size
        scale = min(self.width / tw, self.height / th)
        w, h = tw * scale, th * scale
        cx, cy = _centre(self)
        return (cx - w / 2, cy - h / 2, w, h)

    def _layout(self, *_args) -> None:
        self._bg_color.rgba = self.bg_color
        self._bg.pos, self._bg.size = self.pos, self.size
        x, y, w, h = self.picture_rect()
        self._pic.texture = self.texture
        self._pic.pos, self._pic.size = (x, y), (w, h)
        self._pic_color.a = 1.0 if self.texture is not None else 0.0
        self._border_color.rgba = self.border_color
        b = float(self.border_px)
        self._border.width = max(1.0, b / 2)
        self._border.rectangle = (self.x + b / 2, self.y + b / 2, self.width - b, self.height - b)
        if b <= 0:
            self._border_color.a = 0


class SimIndicators(Backdrop, BoxLayout):
    """Simulation aids: the status light's on-screen twin and the link bars."""

    shown = BooleanProperty(False)
    fg_color = ColorProperty(theme.rgba(theme.INK))
    lamp = ObjectProperty(None)
    bars = ObjectProperty(None)


class MessagePanel(Backdrop, BoxLayout):
    """Every screen but the call picture: shape + headline + detail over one big button."""

    headline = ObjectProperty(None)
    detail = ObjectProperty(None)
    icon = ObjectProperty(None)
    button = ObjectProperty(None)
    sim = ObjectProperty(None)


class CallPanel(Backdrop, FloatLayout):
    """In a call: the nurse's picture fills the screen, self-view top right, End call below."""

    remote = ObjectProperty(None)
    local = ObjectProperty(None)
    button = ObjectProperty(None)
    sim = ObjectProperty(None)
    notes = ObjectProperty(None)  # CallNotes: the nurse's prompt and the close look


class CallNotes(Backdrop, BoxLayout):
    """Words over the nurse's picture (issue 10): what the nurse asks the patient to show
    (`prompt`, large) and that the nurse is looking closely (`look`); hidden when both are
    empty. An opaque panel, so the words keep their contrast whatever the picture shows."""

    prompt = ObjectProperty(None)
    look = ObjectProperty(None)


class KioskRoot(ScreenManager):
    """Two screens, switched without animation: "message" and "call"."""

    message = ObjectProperty(None)
    call = ObjectProperty(None)

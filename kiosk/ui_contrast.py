"""WCAG 2.x contrast between two colours, so every colour pair on the kiosk can be checked.

Pure: colours in, numbers out. The kiosk promises at least 7:1 (WCAG AAA for body text) for
every text and symbol it draws, because its patients are often old and have poor eyesight.
"""

from __future__ import annotations

from collections.abc import Sequence

from porchlight.errors import BadInput

AAA = 7.0  # WCAG 2.x level AAA for normal text; the kiosk's floor everywhere

Colour = str | Sequence[float]


def parse(colour: Colour) -> tuple[float, float, float]:
    """'#rrggbb' (or 'rrggbb') or an (r, g, b[, a]) tuple of 0..1 floats → (r, g, b) 0..1."""
    if isinstance(colour, str):
        text = colour.removeprefix("#")
        if len(text) != 6:
            raise BadInput(f"colour {colour!r} is not #rrggbb; write it as six hex digits")
        try:
            r, g, b = (int(text[i : i + 2], 16) / 255 for i in (0, 2, 4))
        except ValueError:
            raise BadInput(f"colour {colour!r} is not #rrggbb; use hex digits 0-9 a-f") from None
        return r, g, b
    values = tuple(float(v) for v in colour)
    if len(values) not in (3, 4) or not all(0.0 <= v <= 1.0 for v in values):
        raise BadInput(f"colour {colour!r} must be 3 or 4 numbers between 0 and 1")
    if len(values) == 4 and values[3] < 1.0:
        # Contrast is only defined for what ends up on screen; blend first, then ask.
        raise BadInput(f"colour {colour!r} is see-through; blend it onto its background first")
    return values[0], values[1], values[2]


def _linear(channel: float) -> float:
    # sRGB transfer function as WCAG defines it (0.03928 threshold, as in WCAG 2.x).
    if channel <= 0.03928:
        return channel / 12.92
    return ((channel + 0.055) / 1.055) ** 2.4


def relative_luminance(colour: Colour) -> float:
    """WCAG relative luminance, 0 (black) to 1 (white)."""
    r, g, b = parse(colour)
    return 0.2126 * _linear(r) + 0.7152 * _linear(g) + 0.0722 * _linear(b)


def contrast_ratio(first: Colour, second: Colour) -> float:
    """WCAG contrast ratio, 1 (same) to 21 (black on white); the order does not matter."""
    a, b = relative_luminance(first), relative_luminance(second)
    lighter, darker = max(a, b), min(a, b)
    return (lighter + 0.05) / (darker + 0.05)


def blend(top: Colour, alpha: float, bottom: Colour) -> tuple[float, float, float]:
    """`top` drawn at `alpha` over an opaque `bottom`, as the screen shows it."""
    if not 0.0 <= alpha <= 1.0:
        raise BadInput(f"alpha {alpha!r} must be between 0 and 1")
    t, u = parse(top), parse(bottom)
    return tuple(alpha * x + (1.0 - alpha) * y for x, y in zip(t, u, strict=True))  # type: ignore[return-value]

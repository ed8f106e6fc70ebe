"""The clinician's close look: which camera pixels to send for a region they chose.

Pure: numbers in, numbers out (no av, aiortc or Kivy). The clinician names a region of the
camera's whole frame in fractions (docs/protocol.md, `view`); `crop_for()` turns it into the
rectangle of camera pixels that the sending track cuts out before scaling it to the rung:

- widened (never narrowed) to the rung's aspect ratio around the region's centre, so the
  scaled picture fills the rung exactly and nothing the clinician asked for is cut off;
- never smaller than the rung itself: a crop smaller than the rung would be scaled *up*,
  which sends more pixels but no more detail — so the closest look at a rung is one camera
  pixel per sent pixel, and at a rung as large as the camera there is nothing to zoom;
- moved (not shrunk) to stay inside the frame; only when the frame cannot hold the widened
  rectangle does a side stop at the frame's edge (the aspect then gives way, the region not);
- every edge on an even pixel, so YUV 4:2:0 chroma planes crop cleanly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from porchlight.errors import BadInput

MIN_SIDE = 0.05  # the smallest region side the protocol allows (a twentieth of the frame)


@dataclass(frozen=True)
class Region:
    """A part of the camera's whole frame, in fractions 0–1 (x, y: the top left corner)."""

    x: float
    y: float
    w: float
    h: float

    def __post_init__(self) -> None:
        for name in ("x", "y", "w", "h"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise BadInput(f"region {name} must be a number from 0 to 1")
            if not math.isfinite(value) or not 0.0 <= value <= 1.0:
                raise BadInput(f"region {name} must be a number from 0 to 1")
        if self.w < MIN_SIDE or self.h < MIN_SIDE:
            raise BadInput(f"region w and h must be at least {MIN_SIDE}")
        # A hair of slack: the page computes these in floating point.
        if self.x + self.w > 1.0 + 1e-9 or self.y + self.h > 1.0 + 1e-9:
            raise BadInput("region must lie inside the frame: x + w and y + h at most 1")

    @classmethod
    def from_message(cls, value: Any) -> Region | None:
        """The `region` of a `view` message: None (the whole picture) or a Region.

        BadInput when it is neither (the hub checks shapes; the kiosk does not trust that)."""
        if value is None:
            return None
        if not isinstance(value, dict) or set(value) != {"x", "y", "w", "h"}:
            raise BadInput("region must be null or an object with exactly x, y, w and h")
        return cls(value["x"], value["y"], value["w"], value["h"])


@dataclass(frozen=True)
class Crop:
    """A rectangle of camera pixels: left, top, width, height (all even)."""

    x: int
    y: int
    width: int
    height: int


def _unit(box_w: int, box_h: int) -> tuple[int, int]:
    """The smallest even width × height with exactly the box's aspect ratio."""
    g = math.gcd(box_w, box_h)
    p, q = box_w // g, box_h // g
    if p % 2 or q % 2:
        p, q = 2 * p, 2 * q
    return p, q


def _place(start: float, length: int, limit: int) -> int:
    """An even offset for `length` pixels near `start`, inside 0..limit."""
    offset = round(start / 2) * 2
    return max(0, min(offset, limit - length))


def crop_for(
    region: Region | None, frame_w: int, frame_h: int, box_w: int, box_h: int
) -> Crop | None:
    """The camera pixels to send for `region` at a rung of box_w × box_h (None: the whole
    frame, fitted to the rung as it is). Frame sides must be even and positive."""
    if frame_w <= 0 or frame_h <= 0 or frame_w % 2 or frame_h % 2:
        raise ValueError("frame sides must be even and positive")
    if box_w <= 0 or box_h <= 0:
        raise ValueError("rung sides must be positive")
    if region is None:
        return None
    # The region in camera pixels, out to even edges.
    left = math.floor(region.x * frame_w / 2) * 2
    top = math.floor(region.y * frame_h / 2) * 2
    right = min(frame_w, math.ceil((region.x + region.w) * frame_w / 2) * 2)
    bottom = min(frame_h, math.ceil((region.y + region.h) * frame_h / 2) * 2)
    need_w, need_h = max(2, right - left), max(2, bottom - top)
    # Whole units of the rung's aspect: enough to hold the region, and the rung itself.
    unit_w, unit_h = _unit(box_w, box_h)
    k = max(
        math.ceil(need_w / unit_w),
        math.ceil(need_h / unit_h),
        math.ceil(box_w / unit_w),
        math.ceil(box_h / unit_h),
        1,
    )
    # The frame caps each side; the region always fits (it lies inside the frame).
    width, height = min(k * unit_w, frame_w), min(k * unit_h, frame_h)
    x = _place((left + right - width) / 2, width, frame_w)
    y = _place((top + bottom - height) / 2, height, frame_h)
    return Crop(x, y, width, height)


def fit_size(src_w: int, src_h: int, box_w: int, box_h: int) -> tuple[int, int]:
    """The largest even size with src's aspect that fits the box, never enlarged.

    Whole-number arithmetic, so a crop with exactly the rung's aspect comes out at exactly
    the rung's size (floating point can land one pixel short, and evening then costs two)."""
    if src_w <= 0 or src_h <= 0 or box_w <= 0 or box_h <= 0:
        raise ValueError("sizes must be positive")
    if src_w * box_h <= box_w * src_h:  # the height decides
        h = min(box_h, src_h)
        w = src_w * h // src_h
    else:
        w = min(box_w, src_w)
        h = src_h * w // src_w
    return max(2, w // 2 * 2), max(2, h // 2 * 2)

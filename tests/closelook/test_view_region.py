"""The close look's mapping from the clinician's region to camera pixels (kiosk/view_region.py),
property-tested at every rung of the default ladder and for cameras of many sizes."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from porchlight.errors import BadInput
from porchlight.kiosk.ladder import DEFAULT_RUNGS
from porchlight.kiosk.view_region import MIN_SIDE, Crop, Region, crop_for, fit_size

VIDEO_RUNGS = [r for r in DEFAULT_RUNGS if not r.audio_only]


@st.composite
def regions(draw: st.DrawFn) -> Region:
    w = draw(st.floats(MIN_SIDE, 1.0))
    h = draw(st.floats(MIN_SIDE, 1.0))
    x = draw(st.floats(0.0, 1.0 - w))
    y = draw(st.floats(0.0, 1.0 - h))
    return Region(x, y, w, h)


even = st.integers(80, 1960).map(lambda n: n // 2 * 2)


def at_every_rung(test):
    """Run `test(rung, region, fw, fh)` for every video rung, many regions and frame sizes."""
    test = given(region=regions(), fw=even, fh=even)(test)
    test = settings(max_examples=60, deadline=None)(test)
    return pytest.mark.parametrize("rung", VIDEO_RUNGS, ids=lambda r: r.name)(test)


def region_pixels(region: Region, fw: int, fh: int) -> tuple[float, float, float, float]:
    return region.x * fw, region.y * fh, (region.x + region.w) * fw, (region.y + region.h) * fh


@at_every_rung
def test_the_crop_holds_the_region_inside_the_frame_on_even_pixels(rung, region, fw, fh):
    crop = crop_for(region, fw, fh, rung.width, rung.height)
    assert crop is not None
    assert all(v % 2 == 0 for v in (crop.x, crop.y, crop.width, crop.height)), crop
    assert crop.x >= 0 and crop.x + crop.width <= fw
    assert crop.y >= 0 and crop.y + crop.height <= fh
    assert crop.width >= 2 and crop.height >= 2
    # Everything the clinician asked to see is in it.
    left, top, right, bottom = region_pixels(region, fw, fh)
    assert crop.x <= left + 1e-6 and right - 1e-6 <= crop.x + crop.width
    assert crop.y <= top + 1e-6 and bottom - 1e-6 <= crop.y + crop.height


@at_every_rung
def test_the_crop_has_the_rung_shape_and_is_never_smaller_than_the_rung(rung, region, fw, fh):
    crop = crop_for(region, fw, fh, rung.width, rung.height)
    assert crop is not None
    capped_w, capped_h = crop.width == fw, crop.height == fh
    if not capped_w and not capped_h:
        # Exactly the rung's aspect: the scaled picture fills the rung.
        assert crop.width * rung.height == crop.height * rung.width
    # Never below the rung: a smaller crop would only be scaled up (no more detail).
    assert crop.width >= rung.width or capped_w
    assert crop.height >= rung.height or capped_h
    if fw >= rung.width and fh >= rung.height and not (capped_w or capped_h):
        assert fit_size(crop.width, crop.height, rung.width, rung.height) == (
            rung.width,
            rung.height,
        )


@at_every_rung
def test_the_crop_is_no_larger_than_it_must_be(rung, region, fw, fh):
    """Widened only as far as the rung's shape (or the rung's own size) needs."""
    crop = crop_for(region, fw, fh, rung.width, rung.height)
    assert crop is not None
    left, top, right, bottom = region_pixels(region, fw, fh)
    need_w = max(right - left, (bottom - top) * rung.width / rung.height, rung.width)
    need_h = max(bottom - top, (right - left) * rung.height / rung.width, rung.height)
    # Slack: even edges (2 px each side) and whole aspect units (32x18 for 16:9).
    g = math.gcd(rung.width, rung.height)
    unit_w, unit_h = 2 * rung.width // g, 2 * rung.height // g
    assert crop.width <= need_w + 4 + unit_w
    assert crop.height <= need_h + 4 + unit_h


@pytest.mark.parametrize("rung", VIDEO_RUNGS, ids=lambda r: r.name)
def test_closer_regions_crop_closer_on_a_big_camera(rung):
    """On a 1920x1080 camera, halving the region halves the crop until the rung stops it."""
    whole = crop_for(Region(0, 0, 1, 1), 1920, 1080, rung.width, rung.height)
    assert whole == Crop(0, 0, 1920, 1080)
    half = crop_for(Region(0.25, 0.25, 0.5, 0.5), 1920, 1080, rung.width, rung.height)
    w, h = max(960, rung.width), max(540, rung.height)
    assert half == Crop(960 - w // 2, 540 - h // 2, w, h)
    tiny = crop_for(Region(0.5, 0.5, 0.05, 0.05), 1920, 1080, rung.width, rung.height)
    assert (tiny.width, tiny.height) == (rung.width, rung.height)  # one camera pixel each


def test_whole_picture_is_no_crop():
    assert crop_for(None, 1280, 720, 640, 360) is None


def test_a_tall_region_is_widened_around_its_centre():
    # 0.1 wide, 0.8 tall in a 1280x720 frame at 360p: 128x576 px becomes 1024x576.
    crop = crop_for(Region(0.45, 0.1, 0.1, 0.8), 1280, 720, 640, 360)
    assert crop == Crop(128, 72, 1024, 576)


def test_a_region_at_the_edge_is_moved_inside_not_shrunk():
    crop = crop_for(Region(0.95, 0.95, 0.05, 0.05), 1280, 720, 640, 360)
    assert crop == Crop(640, 360, 640, 360)


def test_a_4_by_3_camera_gives_way_on_height_not_on_the_region():
    # The whole height of a 640x480 frame at a 16:9 rung: the frame caps the width.
    crop = crop_for(Region(0.0, 0.0, 0.2, 1.0), 640, 480, 640, 360)
    assert crop == Crop(0, 0, 640, 480)


@pytest.mark.parametrize(
    "bad",
    [
        {"x": 0, "y": 0, "w": 0.01, "h": 0.5},
        {"x": 0.9, "y": 0, "w": 0.5, "h": 0.5},
        {"x": -0.1, "y": 0, "w": 0.5, "h": 0.5},
        {"x": 0, "y": 0, "w": float("nan"), "h": 0.5},
        {"x": True, "y": 0, "w": 0.5, "h": 0.5},
        {"x": "0", "y": 0, "w": 0.5, "h": 0.5},
        {"x": 0, "y": 0, "w": 0.5},
        [0, 0, 1, 1],
    ],
)
def test_bad_regions_are_refused(bad):
    with pytest.raises(BadInput):
        Region.from_message(bad)


def test_message_regions():
    assert Region.from_message(None) is None
    assert Region.from_message({"x": 0, "y": 0.5, "w": 1, "h": 0.5}) == Region(0, 0.5, 1, 0.5)


@settings(max_examples=60, deadline=None)
@given(sw=even, sh=even, bw=even, bh=even)
def test_fit_size_keeps_the_shape_inside_the_box(sw, sh, bw, bh):
    w, h = fit_size(sw, sh, bw, bh)
    assert w % 2 == 0 and h % 2 == 0
    assert w <= max(2, min(bw, sw)) and h <= max(2, min(bh, sh))
    # The source's aspect, give or take evening each side (2 px).
    assert abs(w * sh - h * sw) <= 2 * (sw + sh)

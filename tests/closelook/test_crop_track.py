"""The close look in the sending track (kiosk/rtc.py ScaledTrack): the crop is cut from the
camera's full frame before scaling, the encoder gets the rung's size, and the picture is the
region the clinician chose; the self-view conversion shows the same region."""

from __future__ import annotations

import fractions

import av
import numpy
import pytest
from aiortc import MediaStreamTrack

from porchlight.kiosk import rtc
from porchlight.kiosk.ladder import DEFAULT_RUNGS
from porchlight.kiosk.view_region import Crop, Region

# Four quadrants of plain colour, far apart in YUV: which one a frame shows is unmistakable.
QUADRANTS = {
    "top_left": (220, 30, 30),
    "top_right": (30, 200, 40),
    "bottom_left": (40, 60, 220),
    "bottom_right": (230, 220, 40),
}


def quadrant_picture(width: int, height: int) -> numpy.ndarray:
    rgb = numpy.zeros((height, width, 3), numpy.uint8)
    h2, w2 = height // 2, width // 2
    rgb[:h2, :w2] = QUADRANTS["top_left"]
    rgb[:h2, w2:] = QUADRANTS["top_right"]
    rgb[h2:, :w2] = QUADRANTS["bottom_left"]
    rgb[h2:, w2:] = QUADRANTS["bottom_right"]
    return rgb


class PictureCamera(MediaStreamTrack):
    """A camera that shows one fixed picture (yuv420p, as the test camera gives)."""

    kind = "video"

    def __init__(self, rgb: numpy.ndarray, fps: int = 30) -> None:
        super().__init__()
        self._frame = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format="yuv420p")
        self._n = 0
        self._fps = fps

    async def recv(self) -> av.VideoFrame:
        frame = self._frame.reformat(format="yuv420p")  # a fresh frame object each time
        frame.pts, frame.time_base = self._n, fractions.Fraction(1, self._fps)
        self._n += 1
        return frame


def mean_colour(frame: av.VideoFrame) -> numpy.ndarray:
    return frame.to_ndarray(format="rgb24").reshape(-1, 3).mean(axis=0)


def nearest_quadrant(colour: numpy.ndarray) -> str:
    return min(QUADRANTS, key=lambda q: numpy.abs(numpy.array(QUADRANTS[q]) - colour).sum())


VIDEO_RUNGS = [r for r in DEFAULT_RUNGS if not r.audio_only]


@pytest.mark.parametrize("rung", VIDEO_RUNGS, ids=lambda r: r.name)
async def test_a_close_look_is_sent_at_the_rungs_size_showing_the_region(rung):
    picture = quadrant_picture(1920, 1080)
    camera = PictureCamera(picture)
    track = rtc.ScaledTrack(camera, width=rung.width, height=rung.height, fps=1000)
    whole = await track.recv()
    assert (whole.width, whole.height) == (rung.width, rung.height)
    # A region well inside the bottom-right quadrant.
    track.set_region(Region(0.6, 0.6, 0.2, 0.2))
    frame = await track.recv()
    assert (frame.width, frame.height) == (rung.width, rung.height)
    assert track.crop is not None and track.crop.width >= rung.width
    assert nearest_quadrant(mean_colour(frame)) == "bottom_right"
    # The colours of exactly the crop's camera pixels (and so of none outside it).
    c = track.crop
    expected = picture[c.y : c.y + c.height, c.x : c.x + c.width].reshape(-1, 3).mean(axis=0)
    colour = mean_colour(frame)
    assert numpy.abs(colour - expected).max() < 6, (colour, expected)
    if c.x >= 960 and c.y >= 540:  # inside the quadrant: nothing else is in it
        assert numpy.abs(colour - QUADRANTS["bottom_right"]).max() < 6, colour
    # Back to the whole picture.
    track.set_region(None)
    frame = await track.recv()
    assert track.crop is None
    rgb = frame.to_ndarray(format="rgb24")
    h2, w2 = rgb.shape[0] // 2, rgb.shape[1] // 2
    assert nearest_quadrant(rgb[: h2 - 4, : w2 - 4].reshape(-1, 3).mean(axis=0)) == "top_left"


async def test_the_crop_matches_a_crop_of_the_source():
    """Pixel for pixel: a 640x360 look at 360p is exactly those camera pixels."""
    rng = numpy.random.default_rng(7)
    rgb = rng.integers(0, 256, (720, 1280, 3), dtype=numpy.uint8)
    camera = PictureCamera(rgb)
    track = rtc.ScaledTrack(camera, width=640, height=360, fps=1000)
    track.set_region(Region(0.25, 0.25, 0.5, 0.5))
    frame = await track.recv()
    assert track.crop == Crop(320, 180, 640, 360)
    source = (await PictureCamera(rgb).recv()).to_ndarray(format="yuv420p")
    sent = frame.to_ndarray(format="yuv420p")
    y_source = source[:720, :]
    numpy.testing.assert_array_equal(sent[:360, :], y_source[180:540, 320:960])


async def test_audio_only_keeps_the_look_for_the_self_view():
    camera = PictureCamera(quadrant_picture(1280, 720))
    track = rtc.ScaledTrack(camera, width=640, height=360, fps=1000)
    track.set_region(Region(0.0, 0.0, 0.1, 0.1))
    await track.recv()
    look = track.crop
    assert look == Crop(0, 0, 640, 360)
    track.set_rung(2, 2, 0)  # audio only: no frames go out, the camera is still read
    assert track._crop_for(1280, 720) == look
    # A new look while audio-only is shaped for the last video rung, not for "2x2".
    track.set_region(Region(0.5, 0.5, 0.1, 0.1))
    assert track._crop_for(1280, 720) == Crop(384, 216, 640, 360)


def test_self_view_shows_the_region_small():
    rgb = quadrant_picture(1280, 720)
    frame = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format="yuv420p")
    crop = Crop(640, 360, 640, 360)  # the bottom-right quadrant
    shown = rtc.frame_to_rgb(frame, 320, crop)
    assert shown.shape == (180, 320, 3)
    assert shown.flags["C_CONTIGUOUS"]
    colour = shown.reshape(-1, 3).mean(axis=0)
    assert numpy.abs(colour - QUADRANTS["bottom_right"]).max() < 12, colour

"""The call screen draws the newest decoded frames, the right way up, only when they change."""

from __future__ import annotations

from contextlib import contextmanager

import numpy

from porchlight.kiosk import state as sm
from porchlight.kiosk.app import KioskApp

from .ui_support import (
    CALL_ID,
    core_at,
    halves_frame,
    mounted,
    nurse_frame,
    patient_frame,
    pixels,
    pump,
    pump_until,
)


@contextmanager
def in_call():
    core = core_at("in_call")
    app = KioskApp(core, now=core.clock)
    with mounted(app) as root:
        assert root.current == "call"
        yield app, core, root.call


def test_a_new_frame_is_uploaded_once():
    with in_call() as (_app, core, call):
        remote = call.remote
        assert remote.texture is None  # nothing decoded yet: black, not a stale picture
        core.remote_frames.put(nurse_frame(640, 480))
        pump_until(lambda: remote.blits == 1)
        assert tuple(remote.texture.size) == (640, 480)
        pump(5)  # frames pass, no new picture arrives
        assert remote.blits == 1
        core.remote_frames.put(nurse_frame(640, 480))
        pump_until(lambda: remote.blits == 2)


def test_self_view_shows_the_local_camera():
    with in_call() as (_app, core, call):
        core.local_frames.put(patient_frame(320, 240))
        pump_until(lambda: call.local.texture is not None)
        assert tuple(call.local.texture.size) == (320, 240)
        assert call.remote.texture is None


def test_the_picture_is_the_right_way_up_and_keeps_its_shape():
    with in_call() as (_app, core, call):
        remote = call.remote
        # An odd width: RGB rows that are not a multiple of 4 bytes must still line up.
        core.remote_frames.put(halves_frame(321, 241))
        pump_until(lambda: remote.texture is not None)
        pump(1)
        x, y, w, h = remote.picture_rect()
        assert abs(w / h - 321 / 241) < 0.01
        assert h == remote.height  # as large as the screen allows
        picture = pixels(remote)  # top row first
        cx = int(x + w / 2 - remote.x)
        top = picture[int(remote.height - (y - remote.y) - h * 0.9)][cx][:3]
        bottom = picture[int(remote.height - (y - remote.y) - h * 0.1)][cx][:3]
        assert list(top) == [255, 0, 0]  # red was the top half of the frame
        assert list(bottom) == [0, 0, 255]
        # Beside the picture: black bars, not stretched video.
        assert list(picture[int(remote.height / 2)][2][:3]) == [0, 0, 0]


def test_a_new_size_makes_a_new_texture():
    with in_call() as (_app, core, call):
        core.remote_frames.put(nurse_frame(640, 480))
        pump_until(lambda: call.remote.texture is not None)
        core.remote_frames.put(nurse_frame(320, 240))  # the sender stepped down a rung
        pump_until(lambda: tuple(call.remote.texture.size) == (320, 240))


def test_a_cleared_source_goes_black():
    with in_call() as (_app, core, call):
        core.remote_frames.put(nurse_frame())
        pump_until(lambda: call.remote.texture is not None)
        core.remote_frames.clear()
        pump_until(lambda: call.remote.texture is None)


def test_leaving_the_call_stops_drawing_and_forgets_the_picture():
    with in_call() as (_app, core, call):
        core.remote_frames.put(nurse_frame())
        pump_until(lambda: call.remote.blits == 1)
        core.feed(sm.CallEnded(CALL_ID))
        pump(2)
        assert call.remote.texture is None
        core.remote_frames.put(nurse_frame())
        pump(5)
        assert call.remote.blits == 1  # no uploads while the call screen is not up


def test_frame_data_is_not_kept_by_reference():
    # The UI copies pixels into the texture; changing the array afterwards changes nothing.
    with in_call() as (_app, core, call):
        frame = halves_frame(64, 48)
        core.remote_frames.put(frame)
        pump_until(lambda: call.remote.texture is not None)
        pump(1)
        frame[:] = 0
        pump(2)
        picture = pixels(call.remote)
        assert numpy.any(picture[..., 0] == 255)

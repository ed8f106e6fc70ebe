"""Fixtures for the stills-through-the-outbox tests: real JPEGs (encoded with PyAV, as the
kiosk encodes), an outbox file, a KioskRecords whose worker is not started, and a real call
across the network lab at the rural rate (`rural_call`, needs root)."""

from __future__ import annotations

from fractions import Fraction

import av
import numpy as np
import pytest
from outbox import conftest as outbox_fixtures
from video.lab import load_bench

from porchlight.kiosk.sync import KioskRecords, SyncConfig, SyncWorker

PATIENT = "patient-1"

# The outbox file fixtures are tests/outbox's own.
outbox_config = outbox_fixtures.outbox_config
outbox = outbox_fixtures.outbox


def jpeg(width: int = 640, height: int = 480, seed: int = 1) -> bytes:
    """A real JPEG of noise (noise does not compress: ~0.5 byte a pixel)."""
    rng = np.random.default_rng(seed)
    frame = av.VideoFrame.from_ndarray(
        rng.integers(0, 255, (height, width, 3), dtype=np.uint8), format="rgb24"
    )
    codec = av.CodecContext.create("mjpeg", "w")
    codec.width, codec.height, codec.pix_fmt = width, height, "yuvj420p"
    codec.time_base = Fraction(1, 25)
    packets = codec.encode(frame.reformat(format="yuvj420p")) + codec.encode(None)
    return b"".join(bytes(p) for p in packets)


@pytest.fixture
def kiosk_records(outbox):
    """add_still / set_upload_budget without a hub: the worker is made but never started."""
    worker = SyncWorker(
        outbox, hub_url="http://127.0.0.1:9", token="t", patient_id=PATIENT, config=SyncConfig()
    )
    return KioskRecords(outbox, worker, PATIENT)


# A 1280x720 test-pattern camera gives stills of ~80 kB: several seconds of upload at the
# rural rate, so a test can cut the link part way through.
LAB_KIOSK_CAMERA = "1280x720@15"


@pytest.fixture
def rural_call(tmp_path):
    """A call joined across the network lab on the rural line (300 kbit/s, 2 % loss, 100 ms
    each way): the real hub and the clinician twin in one namespace, the real KioskCore in
    the other (bench/video_lab.py CallLab). Yields the CallLab; its NetLab is `call.lab`."""
    video_lab = load_bench("video_lab")
    netlab = load_bench("netlab")
    lab = netlab.PROFILES["rural"].lab()
    with video_lab.CallLab(
        tmp_path / "lab", lab, kiosk_camera=LAB_KIOSK_CAMERA, clinic_camera="320x180@15"
    ) as call:
        call.join(timeout=120)
        yield call

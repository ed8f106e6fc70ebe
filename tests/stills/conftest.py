"""Fixtures for the stills-through-the-outbox tests: real JPEGs (encoded with PyAV, as the
kiosk encodes), an outbox file, and a KioskRecords whose worker is not started."""

from __future__ import annotations

from fractions import Fraction

import av
import numpy as np
import pytest
from outbox import conftest as outbox_fixtures

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

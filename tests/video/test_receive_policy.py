"""PlayoutBuffer and NackPolicy: short waits for holes, keyframe recovery, polite NACKs."""

from __future__ import annotations

import itertools
import random

from hypothesis import given, settings
from hypothesis import strategies as st

from porchlight.kiosk.receive_policy import NackPolicy, PacketView, PlayoutBuffer, vp8_keyframe

KEY = b"\x00\x00\x00\x9d\x01\x2a" + b"k" * 20  # a VP8 keyframe header
DELTA = b"\x01" + b"d" * 20


def video_stream(frames: int, per_frame: int = 3, key_every: int = 0, first_seq: int = 65530):
    """Packets of `frames` frames (first a keyframe), sequence numbers wrapping past 65535."""
    packets = []
    seq = first_seq
    for f in range(frames):
        key = f == 0 or (key_every and f % key_every == 0)
        for i in range(per_frame):
            data = (KEY if key else DELTA) if i == 0 else b"x" * 10
            packets.append(PacketView(seq % 65536, 3000 * f, i == per_frame - 1, data))
            seq += 1
    return packets


def play(buf: PlayoutBuffer, packets, times=None):
    out, asks = [], 0
    for i, p in enumerate(packets):
        ask, frames = buf.add(p, times[i] if times else i * 0.01)
        out += frames
        asks += ask
    return out, asks


def test_vp8_keyframe_detection() -> None:
    assert vp8_keyframe(KEY) and not vp8_keyframe(DELTA) and not vp8_keyframe(b"\x00")


def test_in_order_packets_give_whole_frames_across_sequence_wrap() -> None:
    buf = PlayoutBuffer(video=True, max_wait_s=0.2)
    frames, asks = play(buf, video_stream(10))
    assert [f.timestamp for f in frames] == [3000 * i for i in range(10)]
    assert frames[0].keyframe and not frames[1].keyframe and asks == 0
    assert frames[0].data == KEY + b"x" * 20


def test_reordered_packet_within_the_wait_loses_nothing() -> None:
    packets = video_stream(6)
    packets[4], packets[6] = packets[6], packets[4]
    frames, asks = play(PlayoutBuffer(video=True, max_wait_s=0.2), packets)
    assert len(frames) == 6 and asks == 0


def test_retransmission_fills_a_hole_and_every_waiting_frame_comes_out() -> None:
    packets = video_stream(8)
    lost = packets.pop(4)  # in frame 1
    buf = PlayoutBuffer(video=True, max_wait_s=0.5)
    frames, _ = play(buf, packets)
    assert len(frames) == 1  # frame 0; the rest wait behind the hole
    ask, later = buf.add(lost, 0.3)
    assert not ask and [f.timestamp for f in later] == [3000 * i for i in range(1, 8)]


def test_hole_that_stays_makes_video_wait_for_a_keyframe_and_ask_for_one() -> None:
    packets = video_stream(30)
    del packets[10]  # frame 3 is broken for good
    buf = PlayoutBuffer(video=True, max_wait_s=0.1, pli_interval_s=0.2)
    frames, asks = play(buf, packets)
    # Frames 0-2 decode; then nothing (no broken picture) and keyframe requests.
    assert [f.timestamp for f in frames] == [0, 3000, 6000]
    assert asks >= 1 and buf.skipped_holes >= 1
    # The sender answers with a keyframe: playback resumes from it.
    recovery = video_stream(3, first_seq=(65530 + 90) % 65536)
    recovery = [PacketView(p.seq, p.timestamp + 300_000, p.marker, p.data) for p in recovery]
    more, _ = play(buf, recovery, times=[1.0 + i * 0.01 for i in range(len(recovery))])
    assert more and more[0].keyframe and len(more) == 3


def test_hole_skips_to_a_keyframe_already_buffered_without_asking() -> None:
    packets = video_stream(12, key_every=5)
    del packets[4]  # frame 1
    buf = PlayoutBuffer(video=True, max_wait_s=0.2)  # the keyframe arrives within the wait
    frames, asks = play(buf, packets, times=[i * 0.01 for i in range(len(packets))])
    stamps = [f.timestamp for f in frames]
    assert stamps[0] == 0 and 15000 in stamps and 3000 not in stamps
    assert asks == 0


def test_audio_skips_a_hole_after_a_few_packets() -> None:
    buf = PlayoutBuffer(video=False, max_wait_s=0.06)
    packets = [PacketView(i, 960 * i, True, b"a") for i in range(50)]
    del packets[10]
    frames, asks = play(buf, packets, times=[0.02 * i for i in range(49)])
    assert len(frames) == 49 and asks == 0
    # Nothing was held back for long: the frame after the hole came out ~60-80 ms late.
    assert buf.skipped_holes == 1


def test_far_jump_after_an_outage_restarts_at_a_keyframe() -> None:
    buf = PlayoutBuffer(video=True, max_wait_s=0.2, capacity=64)
    play(buf, video_stream(5))
    after = video_stream(4, first_seq=(65530 + 500) % 65536)
    after = [PacketView(p.seq, p.timestamp + 900_000, p.marker, p.data) for p in after]
    frames, _asks = play(buf, after, times=[10 + 0.01 * i for i in range(len(after))])
    assert frames and frames[0].keyframe


@settings(max_examples=80, deadline=None)
@given(st.integers(0, 2**32 - 1), st.floats(0, 0.2))
def test_property_frames_come_out_in_order_complete_and_never_after_a_broken_reference(
    seed: int, loss: float
) -> None:
    rng = random.Random(seed)
    packets = [p for p in video_stream(120, per_frame=3, key_every=30) if rng.random() >= loss]
    buf = PlayoutBuffer(video=True, max_wait_s=0.05)
    frames, _ = play(buf, packets, times=[0.02 * i for i in range(len(packets))])
    stamps = [f.timestamp for f in frames]
    assert stamps == sorted(stamps) and len(set(stamps)) == len(stamps)
    received = {}
    for p in packets:
        received.setdefault(p.timestamp, []).append(p)
    for f in frames:
        assert len(received[f.timestamp]) == 3  # only whole frames
    # A delta frame comes out only if the frame before it did (its reference is intact).
    for prev, cur in itertools.pairwise(frames):
        if not cur.keyframe:
            assert cur.timestamp - prev.timestamp == 3000


def test_nack_policy_asks_twice_at_most_and_not_after_an_outage() -> None:
    nack = NackPolicy(retry_s=0.1)
    assert nack.add(100, 0.0) == []
    assert nack.add(103, 0.01) == [101, 102]
    assert nack.add(104, 0.05) == []  # too soon to ask again
    assert nack.add(105, 0.2) == [101, 102]
    assert nack.add(106, 0.4) == []  # asked twice: given up
    assert nack.add(102, 0.41) == []
    # An outage-sized gap is left to a keyframe.
    assert nack.add(106 + 500, 1.0) == []
    assert nack.requested == 4


def test_nack_policy_wraps_and_forgets_old_holes() -> None:
    nack = NackPolicy(retry_s=0.1, max_age_s=0.5)
    nack.add(65534, 0.0)
    assert nack.add(1, 0.01) == [65535, 0]
    nack.add(2, 1.0)
    assert nack.add(3, 1.2) == []  # older than max_age_s: not worth asking

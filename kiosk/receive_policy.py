"""How the kiosk receives media on a lossy link: playout without long stalls, polite NACKs.

Pure: packets in (as `PacketView`s), frames and requests out, time passed in. kiosk/rtc.py
puts these in place of aiortc's jitter buffer and NACK generator, whose behaviour on a lossy
link is measured in ../shared/PLATFORM.md: a 512-packet buffer that waits for a lost packet
until it overflows (an 8.5 s freeze, then stale frames played fast), and NACKs that ask again
for every missing packet on every new gap (2,532 NACKs asking for 215,960 packets in a run).

`PlayoutBuffer` hands on frames in order and waits for a hole only `max_wait_s` (video: long
enough for one retransmission round trip; audio: a few packets). Then video skips to the next
keyframe already buffered, or drops what cannot be decoded and asks for a keyframe (and asks
again every `pli_interval_s` until one comes): a short freeze instead of a long one, and
never a picture decoded from a broken reference. Audio just skips the hole.

`NackPolicy` asks for each missing packet at most `max_tries` times, a round trip apart,
only while it could still be played, and not at all after a gap so big (an outage) that a
keyframe is the better cure.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

SEQ_MOD = 1 << 16


def vp8_keyframe(data: bytes) -> bool:
    """True when `data` begins a VP8 key frame (RFC 6386 §9.1: P bit 0, then 9d 01 2a)."""
    return len(data) >= 6 and not data[0] & 1 and data[3:6] == b"\x9d\x01\x2a"


@dataclass(frozen=True)
class PacketView:
    seq: int  # RTP sequence number (16 bits)
    timestamp: int  # RTP timestamp
    marker: bool  # last packet of a video frame
    data: bytes  # the codec payload, without the RTP payload descriptor


@dataclass(frozen=True)
class ReadyFrame:
    data: bytes
    timestamp: int
    keyframe: bool


class _Unwrapper:
    """16-bit sequence numbers to an ever-growing count (handles wrap-around)."""

    def __init__(self) -> None:
        self._last: int | None = None

    def __call__(self, seq: int) -> int:
        if self._last is None:
            self._last = seq
            return seq
        delta = (seq - self._last) % SEQ_MOD
        if delta >= SEQ_MOD // 2:
            delta -= SEQ_MOD
        ext = self._last + delta
        if delta > 0:
            self._last = ext
        return ext


@dataclass
class PlayoutBuffer:
    video: bool
    max_wait_s: float
    capacity: int = 1024  # packets; a guard only, time decides first
    pli_interval_s: float = 0.3
    is_keyframe: Callable[[bytes], bool] = vp8_keyframe
    _packets: dict[int, PacketView] = field(default_factory=dict)
    _unwrap: _Unwrapper = field(default_factory=_Unwrapper)
    _next: int | None = None
    _highest: int | None = None
    _blocked_since: float | None = None
    _waiting_keyframe: bool = False
    _last_pli: float = float("-inf")
    # counters for tests and diagnostics
    skipped_holes: int = 0
    frames_dropped: int = 0
    keyframe_requests: int = 0

    def add(self, packet: PacketView, now: float) -> tuple[bool, list[ReadyFrame]]:
        """Take one packet; return (ask the sender for a keyframe?, frames ready to decode)."""
        ext = self._unwrap(packet.seq)
        ask = False
        frames: list[ReadyFrame] = []
        if self._next is None:
            self._next = ext
            # Joining mid-stream (or a lost first packet): decode from a keyframe only.
            self._waiting_keyframe = self.video and not self.is_keyframe(packet.data)
        if ext >= self._next and ext not in self._packets:  # else late, duplicate, given up
            if ext - self._next >= self.capacity:
                self._drop_before(ext)
                self._next = ext
                self._waiting_keyframe = self.video
                ask = self.video
            self._packets[ext] = packet
            if self._highest is None or ext > self._highest:
                self._highest = ext
            if self._waiting_keyframe and ext > self._next and self.is_keyframe(packet.data):
                self._drop_before(ext)  # what came before cannot be decoded anyway
                self._next = ext
            frames = self._drain()
            if not self._has_hole():
                self._blocked_since = None
            elif self._blocked_since is None:
                self._blocked_since = now
            elif now - self._blocked_since >= self.max_wait_s:
                ask |= self._give_up_on_hole()
                frames += self._drain()
                self._blocked_since = now if self._has_hole() else None
        if ask or (self._waiting_keyframe and now - self._last_pli >= self.pli_interval_s):
            ask = True
            self._last_pli = now
            self.keyframe_requests += 1
        return ask, frames

    # ------------------------------------------------------------ internals

    def _has_hole(self) -> bool:
        """A packet is missing between the next one to play and the newest one received."""
        if not self._packets or self._next is None or self._highest is None:
            return False
        return self._highest - self._next + 1 > len(self._packets)

    def _drop_before(self, ext: int) -> None:
        for seq in [s for s in self._packets if s < ext]:
            del self._packets[seq]

    def _drain(self) -> list[ReadyFrame]:
        frames = []
        while True:
            found = self._frame_at_head()
            if found is None:
                return frames
            frame, last = found
            for seq in range(self._next, last + 1):  # type: ignore[arg-type]
                self._packets.pop(seq, None)
            self._next = last + 1
            self._blocked_since = None
            if self._waiting_keyframe and not frame.keyframe:
                self.frames_dropped += 1
                continue
            self._waiting_keyframe = False
            frames.append(frame)

    def _frame_at_head(self) -> tuple[ReadyFrame, int] | None:
        head = self._packets.get(self._next)  # type: ignore[arg-type]
        if head is None:
            return None
        if not self.video:
            return ReadyFrame(head.data, head.timestamp, False), self._next  # type: ignore[return-value]
        parts = [head.data]
        seq = self._next
        packet = head
        while not packet.marker:
            following = self._packets.get(seq + 1)  # type: ignore[operator]
            if following is None:
                return None
            if following.timestamp != head.timestamp:
                break  # a new frame began without a marker: what we have is the whole frame
            parts.append(following.data)
            seq += 1  # type: ignore[operator]
            packet = following
        frame = ReadyFrame(b"".join(parts), head.timestamp, self.is_keyframe(head.data))
        return frame, seq  # type: ignore[return-value]

    def _give_up_on_hole(self) -> bool:
        """The head has waited long enough. Returns True when a keyframe must be asked for."""
        self.skipped_holes += 1
        assert self._next is not None and self._highest is not None
        if not self.video:
            self._next = min(self._packets)
            return False
        self.frames_dropped += 1
        later_keyframes = sorted(
            s for s, p in self._packets.items() if s > self._next and self.is_keyframe(p.data)
        )
        if later_keyframes:
            self._drop_before(later_keyframes[0])
            self._next = later_keyframes[0]
            return False
        # Nothing decodable until the next keyframe: drop it all and ask for one.
        self._drop_before(self._highest + 1)
        self._next = self._highest + 1
        self._waiting_keyframe = True
        return True


@dataclass
class _Missing:
    first_seen: float
    tries: int = 0
    last_asked: float = float("-inf")


@dataclass
class NackPolicy:
    max_tries: int = 2
    max_age_s: float = 1.0  # older than this it would not be played anyway
    retry_s: float = 0.15  # at least this long between two requests for one packet
    max_gap: int = 64  # a bigger hole is an outage: a keyframe is the cure, not NACKs
    max_per_report: int = 40
    _unwrap: _Unwrapper = field(default_factory=_Unwrapper)
    _highest: int | None = None
    _missing: dict[int, _Missing] = field(default_factory=dict)
    requested: int = 0  # packets asked for, in total

    def set_rtt(self, rtt_s: float) -> None:
        """Wait about one round trip before asking for the same packet again."""
        self.retry_s = max(0.05, 1.2 * rtt_s)

    def add(self, seq: int, now: float) -> list[int]:
        """A packet arrived (original or retransmitted); returns the sequence numbers to NACK."""
        ext = self._unwrap(seq)
        if self._highest is None:
            self._highest = ext
        elif ext > self._highest:
            gap = ext - self._highest - 1
            if 0 < gap <= self.max_gap:
                for missing in range(self._highest + 1, ext):
                    self._missing[missing] = _Missing(now)
            self._highest = ext
        else:
            self._missing.pop(ext, None)
        due = []
        for missing, state in list(self._missing.items()):
            if now - state.first_seen > self.max_age_s or state.tries >= self.max_tries:
                del self._missing[missing]
            elif now - state.last_asked >= self.retry_s and len(due) < self.max_per_report:
                state.tries += 1
                state.last_asked = now
                due.append(missing % SEQ_MOD)
        self.requested += len(due)
        return due

"""What one call was like, measured on the kiosk: for the clinic's evidence page.

Pure: times (monotonic seconds) are passed in. The core tells the meter when the call started
(admitted or answered), when picture and sound first flowed, at what picture height it is
sending (None while audio-only), and each time a frame of the clinician's picture was decoded;
`summary(now)` gives the figures the `call_quality` record carries:

- `connect_s`: from admitted (or answering a ring) to media flowing;
- `video_s`: seconds sent at each picture height, and `audio_only_s`;
- `freeze_s`: the clinician's picture frozen on the kiosk: the sum of gaps over 0.5 s between
  decoded frames, from media flowing to the end (the same rule the network lab uses).
"""

from __future__ import annotations

from dataclasses import dataclass, field

FREEZE_GAP_S = 0.5


@dataclass
class QualityMeter:
    started_at: float
    connected_at: float | None = None
    height: int | None = None  # picture height being sent; None: audio only
    _since: float | None = None  # when the current height started counting
    video_s: dict[int, float] = field(default_factory=dict)
    audio_only_s: float = 0.0
    freeze_s: float = 0.0
    _last_frame: float | None = None
    _told: bool = False  # the ladder has said what it sends (before or after connecting)

    def connected(self, now: float, height: int | None) -> None:
        """Picture and sound flow; we send at `height` (None: audio only) unless the ladder
        already said what it starts with."""
        if self.connected_at is not None:
            return
        self.connected_at = now
        self._last_frame = now
        if not self._told:
            self.height = height
        self._since = now

    def sending(self, height: int | None, now: float) -> None:
        """The picture height sent changed (the bandwidth ladder moved)."""
        first, self._told = not self._told, True
        if self.connected_at is None:
            self.height = height  # the rung the call starts on; counted from connecting
            return
        if height == self.height and not first:
            return
        self._count(now)
        self.height = height

    def frame_received(self, now: float) -> None:
        if self.connected_at is None:
            return
        if self._last_frame is not None and now - self._last_frame > FREEZE_GAP_S:
            self.freeze_s += now - self._last_frame
        self._last_frame = max(now, self._last_frame or now)

    def _count(self, now: float) -> None:
        if self._since is None:
            return
        seconds = max(0.0, now - self._since)
        if self.height is None:
            self.audio_only_s += seconds
        else:
            self.video_s[self.height] = self.video_s.get(self.height, 0.0) + seconds
        self._since = now

    def summary(self, now: float) -> dict[str, object]:
        """The figures as of `now` (the call's end)."""
        self._count(now)
        freeze = self.freeze_s
        if self._last_frame is not None and now - self._last_frame > FREEZE_GAP_S:
            freeze += now - self._last_frame  # frozen at the end too
        connected = self.connected_at
        return {
            "duration_s": 0.0 if connected is None else max(0.0, now - connected),
            "connect_s": None if connected is None else max(0.0, connected - self.started_at),
            "video_s": dict(self.video_s),
            "audio_only_s": self.audio_only_s,
            "freeze_s": freeze,
        }

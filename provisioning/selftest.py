"""The kiosk's self-test: camera, microphone, speaker, button, light, hub link, clock.

Run by the nurse at setup and by the kiosk once a day. Each check is measured (I/O, bounded
by a timeout) and then judged by a pure function that turns numbers into plain words, so
the judging is tested without hardware and the words are the same on the kiosk and on the
nurse page (the report is sent to `POST /api/device/self-test`).

    report = await run_self_test(device, HubProbe(hub_url, token), trigger="setup",
                                 wait_for_press=press_waiter(device.button, 20.0))
    await asyncio.to_thread(probe.send_report, report)
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import logging
import math
import statistics
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

import numpy
import requests

from porchlight.errors import HubRefused, TransportFailed

log = logging.getLogger(__name__)

DAILY = timedelta(hours=24)
CHECK_TIMEOUT_S = 10.0
MIC_LISTEN_S = 0.6
SPEED_TEST_BYTES = 256 * 1024
# What a video call needs, roughly: the bandwidth ladder's lowest video rung plus audio.
VIDEO_KBPS = 300.0
GOOD_KBPS = 1000.0
MAX_SKEW_S = 5.0


class Status(StrEnum):
    OK = "ok"
    PROBLEM = "problem"
    NOT_CHECKED = "not_checked"


@dataclass(frozen=True)
class CheckResult:
    check: str
    status: Status
    words: str
    value: float | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "check": self.check,
            "status": self.status.value,
            "words": self.words,
        }
        if self.value is not None and math.isfinite(self.value):
            out["value"] = round(self.value, 3)
        return out


@dataclass(frozen=True)
class SelfTestReport:
    ran_at: datetime
    trigger: str  # setup | daily | manual
    results: tuple[CheckResult, ...]

    @property
    def problems(self) -> tuple[CheckResult, ...]:
        return tuple(r for r in self.results if r.status is Status.PROBLEM)

    def to_json(self) -> dict[str, Any]:
        return {
            "ran_at": self.ran_at.isoformat().replace("+00:00", "Z"),
            "trigger": self.trigger,
            "results": [r.to_json() for r in self.results],
        }


# -- judging: numbers in, plain words out -------------------------------------------------


def judge_camera(mean: float | None, spread: float | None, error: str = "") -> CheckResult:
    """A working camera shows a picture with some detail: not black, not white, not flat."""
    if error or mean is None or spread is None:
        return CheckResult(
            "camera",
            Status.PROBLEM,
            f"The camera gave no picture{_because(error)}. Check its cable.",
        )
    if mean < 12:
        words = "The camera picture is black. Check nothing covers the camera and the room is lit."
        return CheckResult("camera", Status.PROBLEM, words, spread)
    if mean > 245 or spread < 4:
        words = "The camera picture is blank. Check nothing covers the camera."
        return CheckResult("camera", Status.PROBLEM, words, spread)
    return CheckResult("camera", Status.OK, "The camera shows a picture.", spread)


def judge_microphone(peak_dbfs: float | None, error: str = "") -> CheckResult:
    if error or peak_dbfs is None:
        return CheckResult(
            "microphone", Status.PROBLEM, f"The microphone gave no sound{_because(error)}."
        )
    if peak_dbfs < -60:
        words = "The microphone hears nothing. Check it is plugged in and not muted."
        return CheckResult("microphone", Status.PROBLEM, words, peak_dbfs)
    return CheckResult(
        "microphone", Status.OK, f"The microphone hears sound ({peak_dbfs:.0f} dB).", peak_dbfs
    )


def judge_speaker(error: str = "") -> CheckResult:
    if error:
        return CheckResult(
            "speaker", Status.PROBLEM, f"The speaker could not play a tone{_because(error)}."
        )
    return CheckResult("speaker", Status.OK, "The speaker played a tone. Check that you heard it.")


def judge_button(pressed: bool | None) -> CheckResult:
    if pressed is None:
        return CheckResult(
            "button", Status.NOT_CHECKED, "The button is checked when a nurse runs the test."
        )
    if not pressed:
        return CheckResult(
            "button", Status.PROBLEM, "No button press was felt. Check the button's cable."
        )
    return CheckResult("button", Status.OK, "The button works.")


def judge_light(went_on: bool, went_off: bool, error: str = "") -> CheckResult:
    if error or not (went_on and went_off):
        return CheckResult(
            "light", Status.PROBLEM, f"The light could not be switched{_because(error)}."
        )
    return CheckResult("light", Status.OK, "The light went on and off. Check that you saw it.")


def judge_link(
    latency_ms: float | None,
    down_kbps: float | None,
    up_kbps: float | None,
    error: str = "",
) -> CheckResult:
    if error or latency_ms is None:
        return CheckResult(
            "link",
            Status.PROBLEM,
            f"The kiosk cannot reach the clinic's hub{_because(error)}. Check the Wi-Fi.",
        )
    numbers = f"delay {latency_ms:.0f} ms"
    if down_kbps is not None and up_kbps is not None:
        numbers += f", down {_rate(down_kbps)}, up {_rate(up_kbps)}"
        slowest = min(down_kbps, up_kbps)
        if slowest < VIDEO_KBPS:
            return CheckResult(
                "link",
                Status.PROBLEM,
                f"The link to the hub is too slow for video ({numbers}); calls may be "
                "sound only. Move the kiosk nearer the router if you can.",
                slowest,
            )
        quality = "good" if slowest >= GOOD_KBPS and latency_ms < 150 else "usable"
        return CheckResult(
            "link", Status.OK, f"The link to the hub is {quality} ({numbers}).", slowest
        )
    return CheckResult("link", Status.OK, f"The hub answers ({numbers}).", None)


def judge_clock(skew_s: float | None) -> CheckResult:
    if skew_s is None:
        return CheckResult(
            "clock", Status.NOT_CHECKED, "The clock could not be compared with the hub."
        )
    if abs(skew_s) > MAX_SKEW_S:
        direction = "ahead of" if skew_s > 0 else "behind"
        return CheckResult(
            "clock",
            Status.PROBLEM,
            f"The kiosk's clock is {abs(skew_s):.0f} seconds {direction} the hub's. "
            "Check the time settings (network time).",
            skew_s,
        )
    return CheckResult("clock", Status.OK, "The kiosk's clock is right.", skew_s)


def daily_due(last_ran_at: datetime | None, now: datetime) -> bool:
    return last_ran_at is None or now - last_ran_at >= DAILY


def _because(error: str) -> str:
    return f" ({error})" if error else ""


def _rate(kbps: float) -> str:
    return f"{kbps / 1000:.1f} Mbit/s" if kbps >= 1000 else f"{kbps:.0f} kbit/s"


# -- measuring ----------------------------------------------------------------------------


def picture_stats(grey: numpy.ndarray) -> tuple[float, float]:
    """(mean brightness, spread) of a greyscale picture, 0-255."""
    return float(grey.mean()), float(grey.std())


def peak_dbfs(chunks: list[numpy.ndarray]) -> float:
    """The loudest 20 ms chunk's RMS level, in dB below full scale (int16 samples)."""
    loudest = 0.0
    for samples in chunks:
        if samples.size:
            rms = float(numpy.sqrt(numpy.mean(numpy.square(samples.astype(numpy.float64)))))
            loudest = max(loudest, rms)
    return -120.0 if loudest <= 0 else 20 * math.log10(loudest / 32768.0)


async def measure_camera(open_camera: Callable[[], Any]) -> CheckResult:
    track = None
    try:
        track = open_camera()
        frame = await asyncio.wait_for(track.recv(), CHECK_TIMEOUT_S)
        grey = await asyncio.to_thread(frame.to_ndarray, format="gray")
        return judge_camera(*picture_stats(grey))
    except Exception as exc:
        return judge_camera(None, None, _short(exc))
    finally:
        if track is not None:
            track.stop()


async def measure_microphone(open_microphone: Callable[[], Any]) -> CheckResult:
    track = None
    chunks: list[numpy.ndarray] = []
    try:
        track = open_microphone()
        loop = asyncio.get_running_loop()
        until = loop.time() + MIC_LISTEN_S
        while loop.time() < until:
            frame = await asyncio.wait_for(track.recv(), CHECK_TIMEOUT_S)
            chunks.append(frame.to_ndarray())
        return judge_microphone(peak_dbfs(chunks))
    except Exception as exc:
        return judge_microphone(None, _short(exc))
    finally:
        if track is not None:
            track.stop()


async def measure_speaker(speaker: Any) -> CheckResult:
    try:
        await asyncio.wait_for(speaker.beep(), CHECK_TIMEOUT_S)
        return judge_speaker()
    except Exception as exc:
        return judge_speaker(_short(exc))


async def measure_light(light: Any) -> CheckResult:
    before = light.pattern
    try:
        light.show("steady")
        went_on = light.value > 0.5
        light.show("off")
        went_off = light.value < 0.5
        return judge_light(went_on, went_off)
    except Exception as exc:
        return judge_light(False, False, _short(exc))
    finally:
        with contextlib.suppress(Exception):
            light.show(before)


def press_waiter(button: Any, timeout_s: float) -> Callable[[], Awaitable[bool]]:
    """Wait (up to `timeout_s`) for the physical button; its own callback is put back after."""

    async def wait() -> bool:
        pressed = asyncio.Event()
        previous = button.on_pressed
        button.on_pressed = pressed.set
        try:
            await asyncio.wait_for(pressed.wait(), timeout_s)
            return True
        except TimeoutError:
            return False
        finally:
            button.on_pressed = previous

    return wait


class HubProbe:
    """The hub link as the self-test sees it (blocking requests: call off the event loop)."""

    def __init__(self, hub_url: str, token: str, *, timeout_s: float = CHECK_TIMEOUT_S) -> None:
        self.hub_url = hub_url.rstrip("/")
        self.timeout_s = timeout_s
        self._session = requests.Session()
        self._session.headers["Authorization"] = f"Bearer {token}"

    def close(self) -> None:
        self._session.close()

    def _get(self, path: str, **kwargs: Any) -> requests.Response:
        try:
            response = self._session.get(self.hub_url + path, timeout=self.timeout_s, **kwargs)
        except requests.RequestException as exc:
            raise TransportFailed(f"no answer from the hub ({type(exc).__name__})") from None
        if response.status_code != 200:
            raise HubRefused(f"the hub answered {response.status_code}", response.status_code)
        return response

    def measure(self) -> tuple[CheckResult, CheckResult]:
        """(link, clock) results."""
        try:
            latencies, skews = [], []
            for _ in range(3):
                sent = time.monotonic()
                sent_wall = datetime.now(UTC)
                response = self._get("/healthz")
                rtt = time.monotonic() - sent
                latencies.append(rtt * 1000)
                hub_time = response.headers.get("date")
                if hub_time:
                    when = email.utils.parsedate_to_datetime(hub_time)
                    # HTTP dates have whole seconds: +0.5 s is the expected rounding.
                    middle = sent_wall + timedelta(seconds=rtt / 2)
                    skews.append((middle - when).total_seconds() - 0.5)
            latency = statistics.median(latencies)
            sent = time.monotonic()
            got = self._get("/api/device/speed-test", params={"size": SPEED_TEST_BYTES}).content
            down = len(got) * 8 / 1000 / max(time.monotonic() - sent - latency / 1000, 1e-3)
            sent = time.monotonic()
            try:
                self._session.post(
                    self.hub_url + "/api/device/speed-test",
                    data=bytes(SPEED_TEST_BYTES),
                    timeout=self.timeout_s,
                ).raise_for_status()
            except requests.RequestException as exc:
                raise TransportFailed(f"upload failed ({type(exc).__name__})") from None
            up = SPEED_TEST_BYTES * 8 / 1000 / max(time.monotonic() - sent - latency / 1000, 1e-3)
        except (TransportFailed, HubRefused) as exc:
            return judge_link(None, None, None, str(exc)), judge_clock(None)
        skew = statistics.median(skews) if skews else None
        return judge_link(latency, down, up), judge_clock(skew)

    def send_report(self, report: SelfTestReport) -> None:
        try:
            response = self._session.post(
                self.hub_url + "/api/device/self-test",
                json=report.to_json(),
                timeout=self.timeout_s,
            )
        except requests.RequestException as exc:
            raise TransportFailed(
                f"the self-test could not be sent ({type(exc).__name__})"
            ) from None
        if response.status_code != 200:
            raise HubRefused("the hub did not take the self-test report", response.status_code)


async def run_self_test(
    device: Any,
    probe: HubProbe | None,
    *,
    trigger: str,
    wait_for_press: Callable[[], Awaitable[bool]] | None = None,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> SelfTestReport:
    """Every check, one after another (they share the camera, speaker and microphone).

    `device` is a porchlight.device.hardware.Device (or anything with open_camera,
    open_microphone, speaker, light); `probe` None skips the hub checks (no credential yet).
    `wait_for_press` None leaves the button unchecked (the daily run has no one to press).
    """
    ran_at = now()
    results = [
        await measure_camera(device.open_camera),
        await measure_speaker(device.speaker),
        await measure_microphone(device.open_microphone),
        await measure_light(device.light),
        judge_button(None if wait_for_press is None else await wait_for_press()),
    ]
    if probe is None:
        results.append(judge_link(None, None, None, "the kiosk is not enrolled yet"))
        results.append(judge_clock(None))
    else:
        results.extend(await asyncio.to_thread(probe.measure))
    report = SelfTestReport(ran_at, trigger, tuple(results))
    log.info(
        "self-test done: %d ok, %d problem(s)",
        sum(r.status is Status.OK for r in results),
        len(report.problems),
    )
    return report


def _short(exc: BaseException) -> str:
    """A safe, short reason: the exception class, never its text (it may hold a path or id)."""
    return "timed out" if isinstance(exc, TimeoutError) else type(exc).__name__


# -- the daily run ------------------------------------------------------------------------

LAST_RUN_FILE = "selftest.json"
CHECK_EVERY_S = 60.0


class DailySelfTest:
    """Runs the self-test once a day while the kiosk is idle and sends it to the hub.

    `is_idle()` says the kiosk is on its home screen (never during a call: the test needs
    the camera and speaker); the last run's time is kept in `<data_dir>/selftest.json`.
    """

    def __init__(
        self,
        device: Any,
        probe: Callable[[], HubProbe],
        *,
        data_dir: Any,
        is_idle: Callable[[], bool],
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        check_every_s: float = CHECK_EVERY_S,
    ) -> None:
        from pathlib import Path

        self.device = device
        self.probe = probe
        self.path = Path(data_dir) / LAST_RUN_FILE
        self.is_idle = is_idle
        self.now = now
        self.check_every_s = check_every_s
        self.reports: list[SelfTestReport] = []

    def last_ran_at(self) -> datetime | None:
        import json

        try:
            return datetime.fromisoformat(json.loads(self.path.read_text())["ran_at"])
        except (OSError, ValueError, KeyError, TypeError):
            return None

    async def run_if_due(self) -> SelfTestReport | None:
        if not self.is_idle() or not daily_due(self.last_ran_at(), self.now()):
            return None
        probe = self.probe()
        try:
            report = await run_self_test(self.device, probe, trigger="daily", now=self.now)
            try:
                await asyncio.to_thread(probe.send_report, report)
            except (TransportFailed, HubRefused) as exc:
                log.warning("the daily self-test was not sent: %s", exc)
        finally:
            probe.close()
        await asyncio.to_thread(record_run, self.path.parent, report.ran_at)
        self.reports.append(report)
        return report

    async def run_forever(self) -> None:
        while True:
            # Wait first: a kiosk that just started (or was just set up) has better things to do.
            await asyncio.sleep(self.check_every_s)
            try:
                await self.run_if_due()
            except Exception:  # a failing check must never take the kiosk down
                log.exception("the daily self-test failed")


def record_run(data_dir: Any, ran_at: datetime) -> None:
    """Note when the self-test last ran (the setup run counts: the daily one waits a day)."""
    from pathlib import Path

    from porchlight import atomic

    atomic.write_json(Path(data_dir) / LAST_RUN_FILE, {"ran_at": ran_at.isoformat()})

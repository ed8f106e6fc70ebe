"""End to end, as people use it: the README's `./demo`, a real Chromium as the clinician.

The kiosk runs in the demo's own process (offscreen Kivy, simulated button, test-pattern
camera); the test presses its button through the simulated device's control socket, exactly
as a GPIO edge would, and reads the kiosk's counters the same way.
"""

from __future__ import annotations

import json
import os
import queue
import re
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest
from playwright.sync_api import expect, sync_playwright

from porchlight import chromium
from porchlight.device.sim_control import sim_request

REPO = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.browser, pytest.mark.slow]


class Demo:
    """`./demo` in a subprocess, its output read line by line on a thread."""

    def __init__(self, data_dir: Path, port: int) -> None:
        self.data_dir = data_dir
        self.lines: queue.Queue[str] = queue.Queue()
        self.output: list[str] = []
        self.proc = subprocess.Popen(
            [str(REPO / "demo"), "--port", str(port), "--data-dir", str(data_dir), "--offscreen"],
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=os.environ.copy(),
        )
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.output.append(line)
            self.lines.put(line)

    def expect_line(self, pattern: str, timeout: float) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                line = self.lines.get(timeout=left)
            except queue.Empty:
                break
            if match := re.search(pattern, line):
                return match
        raise AssertionError(f"demo never printed {pattern!r}; output:\n{''.join(self.output)}")

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                return self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise
        return self.proc.returncode


def wait_until(predicate, timeout: float, what: str):
    """Poll a condition until it holds; fail with `what` if it never does."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}; last value: {last!r}")


def kiosk_status(sock: Path) -> dict:
    try:
        return sim_request(sock, "status")
    except OSError:
        return {}


def test_patient_presses_clinician_admits_video_both_ways_then_end(tmp_path, port):
    demo = Demo(tmp_path / "demo", port)
    try:
        url = demo.expect_line(r"(http://127\.0\.0\.1:\d+/clinic)", timeout=120).group(1)
        login = demo.expect_line(r"[Ll]ogin:\s*(\S+)\s*/\s*(\S+)", timeout=10)
        username, password = login.group(1), login.group(2)
        sock = tmp_path / "demo" / "kiosk" / "sim.sock"
        wait_until(lambda: kiosk_status(sock).get("state") == "idle", 60, "the kiosk to be ready")

        with sync_playwright() as pw:
            # Playwright gives every launch a fresh, temporary profile.
            browser = chromium.launch(pw)
            page = browser.new_page()
            page.goto(url)
            page.get_by_test_id("login-username").fill(username)
            page.get_by_test_id("login-password").fill(password)
            page.get_by_test_id("login-submit").click()
            expect(page.get_by_test_id("connection-state")).to_have_text("Live")

            # The patient presses the big button: press and release, as a GPIO edge would.
            sim_request(sock, "press")
            sim_request(sock, "release")
            admit = page.locator("[data-testid^='admit-']")
            expect(admit).to_have_count(1, timeout=5_000)
            expect(page.get_by_test_id("waiting-list")).to_contain_text("Margaret")
            assert kiosk_status(sock)["state"] == "waiting"

            admit.click()
            # Frames decoded on both sides: the browser's video element and the kiosk's counter.
            page.wait_for_function(
                "() => { const v = document.querySelector('[data-testid=remote-video]');"
                " return v && v.getVideoPlaybackQuality().totalVideoFrames > 30"
                " && v.videoWidth > 0; }",
                timeout=30_000,
            )
            status = wait_until(
                lambda: (s := kiosk_status(sock)).get("frames_received", 0) > 30 and s,
                30,
                "the kiosk to decode the clinician's video",
            )
            assert status["state"] == "in_call"
            assert status["frames_sent"] > 30

            page.get_by_test_id("end-call").click()
            wait_until(
                lambda: kiosk_status(sock).get("state") in ("ending", "idle"),
                10,
                "the kiosk to see the call end",
            )
            wait_until(
                lambda: kiosk_status(sock).get("state") == "idle", 30, "the kiosk home screen"
            )
            browser.close()
    finally:
        code = demo.stop()
    log = "".join(demo.output)
    assert code == 0, log
    # The banner shows the demo login on purpose; nothing else may carry a secret.
    assert password not in log.replace(f"{username} / {password}", ""), "password in the log"
    credential = json.loads((tmp_path / "demo" / "kiosk" / "credential.json").read_text())
    assert credential["token"] not in log, "device token in the log"

"""The clinic page's close look in a real Chromium (issue 10): zoom and pan send `view` and
the kiosk receives it; prompt buttons send `prompt`; "Take still" shows the still's progress
as its bytes arrive, then the still beside the call, full size on a click.

The kiosk is a twin speaking the protocol: a WebSocket client with an aiortc peer sending a
test picture (so the page shows live video), which answers `take_still` the way a kiosk does:
`still_taken`, the JPEG's bytes up through the API in chunks, then the `still` record.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import queue
import tempfile
import threading
import uuid
from datetime import UTC, datetime
from pathlib import Path

import av
import httpx
import numpy as np
import pytest
import requests
import websockets
from aiortc import VideoStreamTrack
from kiosk.conftest import seeded_hub
from playwright.sync_api import expect, sync_playwright

from porchlight import chromium
from porchlight.hub.seed import DEMO_PASSWORD
from porchlight.kiosk import rtc
from porchlight.kiosk.records import Record, RecordKind, iso_utc
from porchlight.protocol import DEVICE_STILLS_PATH, DEVICE_WS_PATH, PROMPTS

SHOTS = Path(os.environ.get("PORCHLIGHT_SCREENSHOT_DIR") or tempfile.mkdtemp(prefix="shots-"))
STILL_W, STILL_H = 1280, 960
WAIT_S = 20

pytestmark = [pytest.mark.browser]


def scene(width: int, height: int) -> np.ndarray:
    """A picture with something to look at: soft colour, a grid and a round 'wound'."""
    y, x = np.mgrid[0:height, 0:width]
    picture = np.empty((height, width, 3), dtype=np.uint8)
    picture[..., 0] = 170 + 60 * x // width
    picture[..., 1] = 120 + 50 * y // height
    picture[..., 2] = 100
    picture[(x % (width // 8)) < 3] = (60, 70, 90)
    picture[(y % (height // 6)) < 3] = (60, 70, 90)
    cx, cy, r = width * 0.62, height * 0.45, min(width, height) * 0.12
    spot = (x - cx) ** 2 + (y - cy) ** 2 < r**2
    picture[spot] = (150, 40, 50)
    return picture


def jpeg_of(picture: np.ndarray) -> bytes:
    return rtc.encode_jpeg(av.VideoFrame.from_ndarray(picture, format="rgb24"))


class PictureTrack(VideoStreamTrack):
    """The test scene at 640×480 and 15 frames a second, cropped to the clinician's `view`
    region as a kiosk crops its camera's full picture (so the page shows the close look)."""

    def __init__(self) -> None:
        super().__init__()
        self.full = scene(STILL_W, STILL_H)
        self.region: dict | None = None

    def picture(self) -> np.ndarray:
        r = self.region or {"x": 0, "y": 0, "w": 1, "h": 1}
        rows = ((r["y"] + r["h"] * (np.arange(480) + 0.5) / 480) * STILL_H).astype(int)
        cols = ((r["x"] + r["w"] * (np.arange(640) + 0.5) / 640) * STILL_W).astype(int)
        return self.full[rows.clip(0, STILL_H - 1)][:, cols.clip(0, STILL_W - 1)]

    async def recv(self) -> av.VideoFrame:
        pts, time_base = await self.next_timestamp()
        frame = av.VideoFrame.from_ndarray(self.picture(), format="rgb24")
        frame.pts, frame.time_base = pts, time_base
        return frame


class KioskTwin:
    """A kiosk on its own thread and event loop; what it hears goes to `heard`."""

    def __init__(self, url: str, token: str, patient_id: str) -> None:
        self.url, self.token, self.patient_id = url, token, patient_id
        self.heard: queue.Queue[dict] = queue.Queue()
        # The next still's upload stops half way (the test sees it paused) until this is set.
        self.hold_upload: threading.Event | None = None
        self.upload_paused = threading.Event()
        self.paused_at = 0  # bytes of that still on the hub while it pauses
        self.stills: list[tuple[str, bytes]] = []
        self.failure: BaseException | None = None
        self._loop = asyncio.new_event_loop()
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> KioskTwin:
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout=15)

    def expect(self, type_: str) -> dict:
        """The next message of `type_` the kiosk heard (others pass)."""
        while True:
            try:
                message = self.heard.get(timeout=WAIT_S)
            except queue.Empty:
                raise AssertionError(f"the kiosk never heard {type_}: {self.failure!r}") from None
            if message["type"] == type_:
                return message

    def _run(self) -> None:
        try:
            self._loop.run_until_complete(self._main())
        except BaseException as exc:  # reported by expect()
            self.failure = exc

    async def _main(self) -> None:
        self._stop = asyncio.Event()
        headers = {"Authorization": f"Bearer {self.token}"}
        ws_url = "ws" + self.url[len("http") :] + DEVICE_WS_PATH
        pc = None
        track = PictureTrack()
        async with (
            websockets.connect(ws_url, additional_headers=headers) as ws,
            httpx.AsyncClient(base_url=self.url, headers=headers, timeout=10) as http,
        ):
            await ws.send(json.dumps({"type": "hello", "state": "idle"}))
            await ws.send(json.dumps({"type": "join"}))
            tasks: set[asyncio.Task] = set()
            stop = asyncio.ensure_future(self._stop.wait())
            while not self._stop.is_set():
                receive = asyncio.ensure_future(ws.recv())
                done, _ = await asyncio.wait({receive, stop}, return_when=asyncio.FIRST_COMPLETED)
                if receive not in done:
                    receive.cancel()
                    break
                message = json.loads(receive.result())
                self.heard.put(message)
                if message["type"] == "admitted":
                    pc = rtc.new_peer_connection([])  # loopback only: no STUN, no TURN
                    pc.addTrack(track)
                    sdp = await rtc.complete_offer(pc, ["127.0.0.1"])
                    offer = {"type": "offer", "call_id": message["call_id"], "sdp": sdp}
                    await ws.send(json.dumps(offer))
                elif message["type"] == "answer" and pc is not None:
                    await rtc.apply_answer(pc, message["sdp"])
                elif message["type"] == "view":
                    track.region = message["region"]
                elif message["type"] == "take_still":
                    task = asyncio.create_task(self._take_still(ws, http, message))
                    tasks.add(task)
                    task.add_done_callback(tasks.discard)
            for task in tasks:
                await task
            if pc is not None:
                await pc.close()

    async def _take_still(self, ws, http: httpx.AsyncClient, message: dict) -> None:
        try:
            data = await asyncio.to_thread(jpeg_of, scene(STILL_W, STILL_H))
            still_id = str(uuid.uuid4())
            self.stills.append((still_id, data))
            taken = {"request_id": message["request_id"], "still_id": still_id, "size": len(data)}
            await ws.send(json.dumps({"type": "still_taken", **taken}))
            chunk = len(data) // 8 + 1
            hold, self.hold_upload = self.hold_upload, None
            for start in range(0, len(data), chunk):
                if hold is not None and start >= len(data) // 2 and not hold.is_set():
                    self.paused_at = start
                    self.upload_paused.set()  # half way: the test looks at the progress
                    await asyncio.to_thread(hold.wait, WAIT_S)
                part = data[start : start + chunk]
                end = start + len(part) - 1
                answer = await http.put(
                    f"{DEVICE_STILLS_PATH}/{still_id}",
                    content=part,
                    headers={"Content-Range": f"bytes {start}-{end}/{len(data)}"},
                )
                answer.raise_for_status()
            body = {
                "call_id": None,
                "width": STILL_W,
                "height": STILL_H,
                "content_type": "image/jpeg",
                "size": len(data),
                "sha256": hashlib.sha256(data).hexdigest(),
            }
            now = iso_utc(datetime.now(UTC))
            record = Record(still_id, self.patient_id, RecordKind.STILL, now, body)
            answer = await http.post("/api/records", json={"records": [record.to_wire()]})
            assert answer.json()["results"][0]["status"] == "stored", answer.text
        except BaseException as exc:
            self.failure = exc
            raise


@pytest.fixture
def hub(tmp_path):
    with seeded_hub(tmp_path) as h:
        yield h.url, h.seed


def test_zoom_prompts_and_stills_from_the_clinic_page(hub):
    url, demo = hub
    twin = KioskTwin(url, demo.device_token, demo.patient_id).start()
    try:
        with sync_playwright() as pw:
            browser = chromium.launch(pw)
            page = browser.new_page(viewport={"width": 1400, "height": 1100})
            page.goto(url + "/clinic")
            page.get_by_test_id("login-username").fill("clinician")
            page.get_by_test_id("login-password").fill(DEMO_PASSWORD)
            page.get_by_test_id("login-submit").click()
            page.get_by_test_id(f"admit-{demo.patient_id}").click()
            twin.expect("admitted")
            expect(page.get_by_test_id("call-state")).to_have_text("In call", timeout=30_000)
            page.wait_for_function(
                "() => document.querySelector('[data-testid=remote-video]').videoWidth > 0",
                timeout=30_000,
            )
            look_closely(page, twin)
            ask_the_patient(page, twin)
            take_stills(page, twin)
            SHOTS.mkdir(parents=True, exist_ok=True)
            page.get_by_test_id("zoom-in").click()
            twin.expect("view")
            page.get_by_test_id("call-view").screenshot(path=str(SHOTS / "clinic-close-look.png"))

            # A still opens full size, at the camera's full resolution.
            page.get_by_test_id("still-open").first.click()
            full = page.get_by_test_id("still-full")
            expect(page.get_by_test_id("still-viewer")).to_be_visible()
            page.wait_for_function(
                "() => document.querySelector('[data-testid=still-full]').naturalWidth > 0"
            )
            assert full.evaluate("img => [img.naturalWidth, img.naturalHeight]") == [
                STILL_W,
                STILL_H,
            ]
            page.screenshot(path=str(SHOTS / "clinic-still-full.png"))
            page.get_by_test_id("still-close").click()
            expect(page.get_by_test_id("still-viewer")).to_be_hidden()
            still_after_the_call(page, twin)
            browser.close()
    finally:
        if twin.hold_upload is not None:
            twin.hold_upload.set()
        twin.stop()
    assert twin.failure is None, twin.failure

    # Both stills are with the patient's record, byte for byte.
    nurse = requests.Session()
    nurse.post(url + "/api/login", json={"username": "nurse", "password": DEMO_PASSWORD})
    listed = nurse.get(f"{url}/api/patients/{demo.patient_id}/stills").json()["stills"]
    assert {s["still_id"] for s in listed} == {still_id for still_id, _ in twin.stills}
    for still_id, data in twin.stills:
        assert nurse.get(f"{url}/api/stills/{still_id}").content == data


def look_closely(page, twin: KioskTwin) -> None:
    expect(page.get_by_test_id("zoom-level")).to_have_text("Zoom 1×")
    expect(page.get_by_test_id("zoom-out")).to_be_disabled()
    page.get_by_test_id("zoom-in").click()
    region = twin.expect("view")["region"]
    assert region["w"] == region["h"] == 0.6667  # zoomed 1.5×, about the middle
    assert region["x"] == region["y"] == pytest.approx(0.1667, abs=0.0002)
    page.get_by_test_id("zoom-in").click()
    assert twin.expect("view")["region"] == {"x": 0.25, "y": 0.25, "w": 0.5, "h": 0.5}
    expect(page.get_by_test_id("zoom-level")).to_have_text("Zoom 2×")
    expect(page.get_by_test_id("look-map")).to_be_visible()

    # Drag the picture left by a fifth of the stage: the look moves right by a fifth of
    # what is shown (0.5 × 0.2 = 0.1).
    box = page.get_by_test_id("stage").bounding_box()
    cx, cy = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.move(cx, cy)
    page.mouse.down()
    page.mouse.move(cx - box["width"] * 0.2, cy, steps=5)
    page.mouse.up()
    region = last_view(twin)
    assert region["x"] == pytest.approx(0.35, abs=0.002) and region["y"] == 0.25

    # Keyboard: arrows pan, + and - zoom, as the buttons do.
    page.get_by_test_id("stage").focus()
    page.keyboard.press("ArrowUp")
    assert last_view(twin)["y"] == pytest.approx(0.125, abs=0.002)
    page.keyboard.press("-")
    region = twin.expect("view")["region"]
    assert region["w"] == 0.6667
    page.get_by_test_id("zoom-reset").click()
    assert twin.expect("view")["region"] is None
    expect(page.get_by_test_id("zoom-level")).to_have_text("Zoom 1×")
    expect(page.get_by_test_id("look-map")).to_be_hidden()


def last_view(twin: KioskTwin) -> dict:
    """The region of the last `view` of a burst (a drag sends a few, the last on release)."""
    region = twin.expect("view")["region"]
    while True:
        try:
            message = twin.heard.get(timeout=0.5)
        except queue.Empty:
            return region
        assert message["type"] == "view", message
        region = message["region"]


def ask_the_patient(page, twin: KioskTwin) -> None:
    buttons = page.locator("[data-prompt]")
    expect(buttons).to_have_count(len(PROMPTS))
    assert sorted(buttons.evaluate_all("bs => bs.map(b => b.dataset.prompt)")) == sorted(PROMPTS)
    page.get_by_test_id("prompt-show_ankles").click()
    assert twin.expect("prompt")["prompt"] == "show_ankles"
    expect(page.get_by_test_id("prompt-show_ankles")).to_have_attribute("aria-pressed", "true")
    page.get_by_test_id("prompt-clear").click()
    assert twin.expect("prompt")["prompt"] is None
    expect(page.get_by_test_id("prompt-show_ankles")).to_have_attribute("aria-pressed", "false")
    page.get_by_test_id("prompt-hand_to_camera").click()
    assert twin.expect("prompt")["prompt"] == "hand_to_camera"


def take_stills(page, twin: KioskTwin) -> None:
    expect(page.get_by_test_id("stills-empty")).to_be_visible()
    twin.hold_upload = hold = threading.Event()
    page.get_by_test_id("take-still").click()
    asked = twin.expect("take_still")
    assert 1 <= len(asked["request_id"]) <= 64
    # Half the bytes are on the hub: the page shows how far it has got.
    assert twin.upload_paused.wait(WAIT_S)
    progress = page.get_by_test_id("still-progress")
    # Throttled, but the page ends up showing all the hub has (not an older figure).
    page.wait_for_function(
        "held => { const p = document.querySelector('[data-testid=still-progress]');"
        " return p && p.value === held && p.value < p.max; }",
        arg=twin.paused_at,
        timeout=WAIT_S * 1000,
    )
    expect(progress.locator("xpath=..")).to_contain_text("Receiving…")
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.get_by_test_id("call-view").screenshot(path=str(SHOTS / "clinic-still-progress.png"))
    hold.set()
    first_id = twin.stills[0][0]
    expect(page.get_by_test_id(f"still-{first_id}")).to_have_attribute("data-state", "ready")
    page.get_by_test_id("take-still").click()
    twin.expect("take_still")
    thumbs = page.get_by_test_id("still-thumb")
    expect(thumbs).to_have_count(2, timeout=WAIT_S * 1000)
    page.wait_for_function(
        "() => [...document.querySelectorAll('[data-testid=still-thumb]')]"
        ".every(i => i.complete && i.naturalWidth > 0)"
    )
    expect(page.get_by_test_id("stills-empty")).to_be_hidden()


def still_after_the_call(page, twin: KioskTwin) -> None:
    """A still half up when the call ends still appears beside it once it is whole."""
    twin.upload_paused.clear()
    twin.hold_upload = hold = threading.Event()
    page.get_by_test_id("take-still").click()
    twin.expect("take_still")
    assert twin.upload_paused.wait(WAIT_S)
    page.get_by_test_id("end-call").click()
    expect(page.get_by_test_id("call-state")).to_have_text("Call ended")
    expect(page.get_by_test_id("take-still")).to_be_disabled()
    hold.set()
    late_id = twin.stills[-1][0]
    expect(page.get_by_test_id(f"still-{late_id}")).to_have_attribute(
        "data-state", "ready", timeout=WAIT_S * 1000
    )
    expect(page.get_by_test_id("still-thumb")).to_have_count(3)

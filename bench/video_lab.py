"""Calls across the network lab: the parts, each in its own namespace, and what they saw.

Roles (each runs as `ip netns exec <ns> python bench/video_lab.py <role> ...`, talks JSON
lines: commands on stdin, events on stdout, a final report in `--out`):

- `clinic` (the hub's namespace): the real hub on the lab address, seeded with the demo
  accounts, and the clinician twin (porchlight/clinician_peer.py), which admits the first
  patient who waits and logs every frame of the kiosk's picture and sound it decodes.
  `still` asks for a still and waits for it whole; `ask-still` only asks, `await-still
  <request_id> taken|progress|ready <timeout> [<bytes>]` waits for that stage (progress: at
  least that many bytes on the hub) and answers with the clinician's messages about it,
  `hub-stills` gives the hub's own rows of the patient's stills, `fetch-still <id>` the
  patient's list and the JPEG as the clinic page loads them.
- `kiosk` (the kiosk's namespace): the real KioskCore (simulated button, test-pattern camera,
  tone), ICE on the lab address, its data (credential, outbox) in `<data>/kiosk`, so a kiosk
  SIGKILLed and started again on the same `--data` keeps its outbox. `press` presses its
  button; `outbox` says what its outbox still holds. It samples itself every 100 ms
  (frames of the clinician's picture and sound decoded, rung, link word) and, at the end,
  reports every ladder input and decision of the call (the recorded traces of tests/video).
- `peer` (either namespace): one side of a bare call with signalling through the
  orchestrator's pipes, for the benchmarks' comparisons: `--kind stock` (aiortc as it comes,
  camera at 640x480), `--kind porchlight` (kiosk/adaptive_media.py), `--kind chromium`
  (headless Chromium, fake camera, its own congestion control).

`CallLab` (for tests and bench/video_adapt.py) opens a NetLab, starts the clinic and kiosk
roles, presses the button, and hands back their reports (it can also SIGKILL the kiosk
role and start it again on the same data); `PeerPair` does the same for two
`peer`s. Everything is torn down on exit, namespaces included.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import faulthandler
import hashlib
import json
import logging
import os
import queue
import signal
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import netlab  # noqa: E402

HUB_PORT = 8765


# =========================================================================== the roles


def emit(**event: Any) -> None:
    print(json.dumps(event), flush=True)


async def commands() -> asyncio.Queue[str]:
    """Lines from stdin, as a queue (EOF → 'stop')."""
    loop = asyncio.get_running_loop()
    lines: asyncio.Queue[str] = asyncio.Queue()

    def read() -> None:
        for line in sys.stdin:
            loop.call_soon_threadsafe(lines.put_nowait, line.strip())
        loop.call_soon_threadsafe(lines.put_nowait, "stop")

    threading.Thread(target=read, daemon=True).start()
    loop.add_signal_handler(signal.SIGTERM, lines.put_nowait, "stop")
    return lines


def camera_config(spec: str) -> dict[str, int]:
    size, fps = spec.split("@")
    width, height = size.split("x")
    return {"camera_width": int(width), "camera_height": int(height), "camera_fps": int(fps)}


async def clinic_role(args: argparse.Namespace) -> None:
    from porchlight.clinician_peer import ClinicianPeer
    from porchlight.device.config import DeviceConfig
    from porchlight.hub.config import HubConfig
    from porchlight.hub.seed import seed_demo
    from porchlight.hub.server import HubServer

    data = Path(args.data)
    server = HubServer(HubConfig(host=args.addr, data_dir=data / "hub"), port=args.port)
    await asyncio.to_thread(server.start)
    seed = seed_demo(server.store)
    (data / "seed.json").write_text(json.dumps(seed.device_credential(server.url)))
    clinician = ClinicianPeer(
        server.url,
        seed.username,
        seed.password,
        host_addresses=[args.addr],
        camera=DeviceConfig(simulate=True, **camera_config(args.camera)),
        adaptive=not args.stock,
        record_frames=True,
    )
    await clinician.connect()
    lines = await commands()
    emit(event="ready")
    try:
        waiting = asyncio.create_task(
            clinician.wait_for(lambda: seed.patient_id in clinician.waiting_seen_at, 3600)
        )
        stop = asyncio.create_task(lines.get())
        await asyncio.wait({waiting, stop}, return_when=asyncio.FIRST_COMPLETED)
        call = None
        if waiting.done():
            # A nurse takes a moment to admit; the kiosk's link probe runs meanwhile.
            await asyncio.sleep(args.admit_after)
            call = await clinician.admit(seed.patient_id)
            emit(event="admitted", at=time.monotonic())
            line = await stop
            while line != "stop":
                if line == "still":
                    emit(event="still", **await take_still(clinician, server.url, seed))
                elif line == "ask-still":
                    request_id = uuid.uuid4().hex
                    await clinician.request({"type": "take_still", "request_id": request_id})
                    emit(event="still_asked", request_id=request_id, at=time.monotonic())
                elif line.startswith("await-still "):
                    _, request_id, stage, timeout, *at_least = line.split()
                    got = await still_stage(
                        clinician, request_id, stage, float(timeout), int(*at_least or [1])
                    )
                    emit(event="still_stage", **got)
                elif line == "hub-stills":
                    rows = await asyncio.to_thread(hub_still_rows, server, seed.patient_id)
                    emit(event="hub_stills", rows=rows)
                elif line.startswith("fetch-still "):
                    still_id = line.split(maxsplit=1)[1]
                    got = await asyncio.to_thread(fetch_still, server.url, seed, still_id)
                    emit(event="fetched_still", **got)
                elif line == "status":
                    emit(
                        event="status",
                        video_frames=call.video_frames,
                        audio_frames=call.audio_frames,
                        frame_size=call.frame_size,
                        offers=call.offers,
                        ended=call.ended,
                        reports=len(call.link_reports),
                    )
                line = await lines.get()
        else:
            waiting.cancel()
    finally:
        report: dict[str, Any] = {"call": None}
        if call is not None:
            report["call"] = {
                "call_id": call.call_id,
                "admitted_at": call.admitted_at,
                "offers": call.offers,
                "ended": call.ended,
                "frames": call.frames,
                "audio_times": call.audio_times,
                "link_reports": call.link_reports,
            }
        media = clinician.media
        if media is not None:
            report["decisions"] = [(t, d.rung.name, d.reason) for t, d in media.decisions]
        Path(args.out).write_text(json.dumps(report))
        with contextlib.suppress(Exception):
            await clinician.close()
        await asyncio.to_thread(server.stop)
        emit(event="stopped")


async def kiosk_role(args: argparse.Namespace) -> None:
    from porchlight.device.config import DeviceConfig
    from porchlight.kiosk.config import KioskConfig
    from porchlight.kiosk.core import KioskCore
    from porchlight.kiosk.credential import DeviceCredential

    data = Path(args.data)
    seed = json.loads((data / "seed.json").read_text())
    credential = DeviceCredential(
        seed["hub_url"], seed["device_id"], seed["patient_id"], seed["token"]
    )
    config = KioskConfig(
        data_dir=data / "kiosk",
        ice_host_addresses=[args.addr],
        ending_s=1.0,
        device=DeviceConfig(
            simulate=True, speech=False, sim_audio_dir=None, **camera_config(args.camera)
        ),
    )
    config.data_dir.mkdir(parents=True, exist_ok=True)
    core = KioskCore(config, credential=credential)
    await core.start()
    lines = await commands()
    samples: list[dict[str, Any]] = []
    traces: dict[str, Any] = {"samples": [], "decisions": []}
    seen_sessions: set[int] = set()

    def keep_trace() -> None:
        session = core.call
        if session is None or id(session) in seen_sessions:
            return
        seen_sessions.add(id(session))
        media = session.media
        traces["samples"].append(media.samples)  # lists, filled as the call goes
        traces["decisions"].append(media.decisions)

    async def sample_forever() -> None:
        while True:
            status = core.status()
            _, picture = core.remote_frames.latest()
            samples.append(
                {
                    "t": time.monotonic(),
                    "state": status["state"],
                    "headline": status["headline"],
                    "link": status["link"],
                    "rung": status["rung"],
                    "sent": [status["sent_width"], status["sent_height"]],
                    "frames_received": status["frames_received"],
                    "audio_frames_received": status["audio_frames_received"],
                    "remote": None if picture is None else list(picture.shape[:2]),
                }
            )
            keep_trace()
            await asyncio.sleep(0.1)

    sampler = asyncio.create_task(sample_forever())
    emit(event="ready")
    try:
        while (line := await lines.get()) != "stop":
            if line == "press":
                core.button_down()
                core.button_up()
            elif line == "status":
                emit(event="status", **_jsonable(core.status()))
            elif line == "outbox":
                emit(event="outbox", **await outbox_status(core))
            elif line == "debug":  # where everything is: threads and tasks, to the log
                faulthandler.dump_traceback(all_threads=True)
                for task in asyncio.all_tasks():
                    task.print_stack(limit=6)
    finally:
        sampler.cancel()
        report = {
            "samples": samples,
            "ladder": [
                {
                    "samples": [s.__dict__ for s in run],
                    "decisions": [(t, d.rung.name, d.reason, d.estimate_bps) for t, d in dec],
                }
                for run, dec in zip(traces["samples"], traces["decisions"], strict=True)
            ],
            "link_estimate_bps": core.link_estimate_bps,
        }
        Path(args.out).write_text(json.dumps(report))
        await core.stop()
        emit(event="stopped")


async def outbox_status(core: Any) -> dict[str, Any]:
    """Whether the kiosk has its outbox open, and the stills in it the hub has not taken."""
    records = core.records
    if records is None:
        return {"open": False}
    status = await asyncio.to_thread(records.outbox.status, time.time())
    return {
        "open": True,
        "stills_pending": status.stills_pending,
        "still_bytes_left": status.still_bytes_left,
    }


def _jsonable(status: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in status.items() if isinstance(v, str | int | float | bool | None)}


# --------------------------------------------------------------------------- bare peers


async def aiortc_peer_role(args: argparse.Namespace) -> None:
    """One side of a bare call (stock aiortc, or Porchlight's adaptive media)."""
    from aiortc.mediastreams import MediaStreamError

    from porchlight.device.audio import open_microphone
    from porchlight.device.camera import open_camera
    from porchlight.device.config import DeviceConfig
    from porchlight.kiosk import rtc
    from porchlight.kiosk.adaptive_media import AdaptiveMedia

    pc = rtc.new_peer_connection([])
    rtc.tolerate_outages(40)
    device = DeviceConfig(simulate=True, **camera_config(args.camera))
    media = AdaptiveMedia(pc) if args.kind == "porchlight" else None
    camera = open_camera(device)
    video = media.video_track(camera) if media is not None else camera
    frames: list[tuple[float, int, int]] = []
    audio: list[float] = []

    async def consume(track: Any) -> None:
        with contextlib.suppress(MediaStreamError):
            while True:
                frame = await track.recv()
                if track.kind == "video":
                    frames.append((time.monotonic(), frame.width, frame.height))
                else:
                    audio.append(time.monotonic())

    tasks: list[asyncio.Task[None]] = []
    pc.on("track", lambda track: tasks.append(asyncio.create_task(consume(track))))

    @pc.on("connectionstatechange")
    def on_state() -> None:
        emit(event="state", state=pc.connectionState)
        if media is not None and pc.connectionState == "connected":
            media.start()

    lines = await commands()
    if args.offer:
        for track in (video, open_microphone(device)):
            rtc.prefer_codecs(pc.addTransceiver(track, direction="sendrecv"))
        if media is not None:
            media.prepare()
        emit(event="sdp", sdp=await rtc.complete_offer(pc, [args.addr]))
        answer = json.loads(await lines.get())
        await rtc.apply_answer(pc, answer["sdp"])
    else:
        pc.addTrack(video)
        pc.addTrack(open_microphone(device))
        offer = json.loads(await lines.get())
        answer = await rtc.complete_answer(
            pc, offer["sdp"], [args.addr], prepare=media.prepare if media else lambda: None
        )
        emit(event="sdp", sdp=answer)
    emit(event="ready")
    while await lines.get() != "stop":
        pass
    report: dict[str, Any] = {"frames": frames, "audio_times": audio}
    if media is not None:
        report["decisions"] = [(t, d.rung.name, d.reason) for t, d in media.decisions]
        report["samples"] = [s.__dict__ for s in media.samples]
    Path(args.out).write_text(json.dumps(report))
    if media is not None:
        await media.stop()
    await pc.close()
    emit(event="stopped")


CHROMIUM_PEER_JS = """
async ([offer, sdp]) => {
  const stream = await navigator.mediaDevices.getUserMedia({video: {width: 640, height: 480,
    frameRate: 30}, audio: true});
  const pc = new RTCPeerConnection({iceServers: []});
  window.pc = pc;
  window.frames = []; window.audio = [];
  for (const t of stream.getTracks()) pc.addTrack(t, stream);
  pc.ontrack = (e) => {
    if (e.track.kind !== "video") return;
    const v = document.createElement("video");
    v.muted = true; v.autoplay = true; v.srcObject = new MediaStream([e.track]);
    document.body.append(v);
    const tick = (now, meta) => {
      window.frames.push([performance.timeOrigin + now, meta.width, meta.height]);
      v.requestVideoFrameCallback(tick);
    };
    v.requestVideoFrameCallback(tick);
  };
  const gathered = () => new Promise((ok) => {
    if (pc.iceGatheringState === "complete") return ok();
    pc.onicegatheringstatechange = () => pc.iceGatheringState === "complete" && ok();
  });
  if (offer) {
    await pc.setLocalDescription(await pc.createOffer());
  } else {
    await pc.setRemoteDescription({type: "offer", sdp});
    await pc.setLocalDescription(await pc.createAnswer());
  }
  await gathered();
  return pc.localDescription.sdp;
}
"""

CHROMIUM_AUDIO_JS = """
async () => {
  const stats = await window.pc.getStats();
  let received = 0;
  stats.forEach((s) => { if (s.type === "inbound-rtp" && s.kind === "audio")
    received = s.packetsReceived; });
  return [performance.timeOrigin + performance.now(), received];
}
"""


def chromium_peer_role(args: argparse.Namespace) -> None:
    """Headless Chromium as one side: its own encoder and congestion control (transport-cc
    with another Chromium, REMB with aiortc)."""
    from playwright.sync_api import sync_playwright

    from porchlight import chromium

    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(
        target=lambda: [lines.put(x.strip()) for x in sys.stdin] and lines.put("stop"),
        daemon=True,
    ).start()
    signal.signal(signal.SIGTERM, lambda *a: lines.put("stop"))
    extra = [f"--use-file-for-fake-video-capture={args.y4m}"] if args.y4m else []
    with sync_playwright() as pw:
        browser = chromium.launch(pw, *extra)
        page = browser.new_page()
        # getUserMedia needs a secure context; http://localhost is one. Playwright answers the
        # request itself: no server, no network.
        blank = "<html><body></body></html>"
        page.route(
            "http://localhost/", lambda route: route.fulfill(body=blank, content_type="text/html")
        )
        page.goto("http://localhost/")
        if args.offer:
            emit(event="sdp", sdp=page.evaluate(CHROMIUM_PEER_JS, [True, None]))
            answer = json.loads(lines.get())["sdp"]
            page.evaluate("(sdp) => window.pc.setRemoteDescription({type: 'answer', sdp})", answer)
        else:
            offer = json.loads(lines.get())["sdp"]
            emit(event="sdp", sdp=page.evaluate(CHROMIUM_PEER_JS, [False, offer]))
        emit(event="ready")
        # Chromium's clock (performance.timeOrigin) is wall time: map it to monotonic.
        offset = time.monotonic() - time.time()
        audio: list[tuple[float, int]] = []
        while True:
            try:
                line = lines.get(timeout=0.05)
            except queue.Empty:
                at, received = page.evaluate(CHROMIUM_AUDIO_JS)
                audio.append((at / 1000 + offset, received))
                continue
            if line == "stop":
                break
        frames = page.evaluate("() => window.frames")
        browser.close()
    # An audio "frame time" is each poll that saw new packets (50 ms resolution).
    audio_times = [t for (t, n), (_, m) in zip(audio[1:], audio, strict=False) if n > m]
    report = {
        "frames": [(t / 1000 + offset, w, h) for t, w, h in frames],
        "audio_times": audio_times,
        "audio_resolution_s": 0.05,
    }
    Path(args.out).write_text(json.dumps(report))
    emit(event="stopped")


# =========================================================================== orchestration


class Process:
    """A role in a namespace, with its stdout events on a queue."""

    def __init__(self, lab: netlab.NetLab, ns: str, argv: list[str], log: Path) -> None:
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self._log = log.open("w")
        self.proc = subprocess.Popen(
            lab.exec_args(ns, [sys.executable, str(HERE / "video_lab.py"), *argv]),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
            text=True,
            env=env,
        )
        self.events: queue.Queue[dict[str, Any]] = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            with contextlib.suppress(ValueError):
                self.events.put(json.loads(line))
        self.events.put({"event": "exited"})

    def expect(self, kind: str, timeout: float) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no {kind!r} from {self.proc.args[-6:]} in {timeout} s")
            event = self.events.get(timeout=left)
            if event.get("event") == kind:
                return event
            if event.get("event") == "exited":
                raise RuntimeError(f"the role exited before {kind!r}; see {self._log.name}")

    def send(self, line: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def stop(self, timeout: float = 30) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(BrokenPipeError, OSError):
                self.send("stop")
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()


def stop_roles(
    lab: netlab.NetLab,
    work: Path,
    roles: dict[str, Process | None],
    reports: dict[str, Any],
) -> None:
    """Stop each role, keep the report it wrote (`<work>/<name>.json`), and take the lab down."""
    for name, role in roles.items():
        if role is not None:
            role.stop()
            path = work / f"{name}.json"
            if path.exists():
                reports[name] = json.loads(path.read_text())
    lab.close()


async def take_still(clinician: Any, hub_url: str, seed: Any) -> dict[str, Any]:
    """Ask for a still as the clinic page does; times (monotonic) of asking, of the kiosk's
    still_taken, of each still_progress, of still_ready, and of the JPEG fetched whole (what
    the page shows), with its size and SHA-256 as served."""
    request_id = uuid.uuid4().hex
    seen = len(clinician.stills)
    asked = time.monotonic()
    await clinician.request({"type": "take_still", "request_id": request_id})
    out: dict[str, Any] = {"asked_at": asked, "progress": []}
    still_id = None
    while "ready_at" not in out:
        await clinician.wait_for(lambda n=seen: len(clinician.stills) > n, 300)
        now = time.monotonic()
        for message in clinician.stills[seen:]:
            kind = message.get("type")
            if kind == "still_taken" and message.get("request_id") == request_id:
                still_id, out["taken_at"], out["size"] = message["still_id"], now, message["size"]
            elif kind == "still_progress" and message.get("still_id") == still_id:
                out["progress"].append((now, message["received"]))
            elif kind == "still_ready" and message.get("still_id") == still_id:
                out["ready_at"], out["url"] = now, message["url"]
                out["width"], out["height"] = message["width"], message["height"]
        seen = len(clinician.stills)

    def fetch() -> bytes:
        (response,) = clinician_get(hub_url, seed, out["url"])
        response.raise_for_status()
        return response.content

    body = await asyncio.to_thread(fetch)
    out["shown_at"] = time.monotonic()
    out["served_bytes"] = len(body)
    out["sha256"] = hashlib.sha256(body).hexdigest()
    return out


STILL_STAGES = {"taken": "still_taken", "progress": "still_progress", "ready": "still_ready"}


async def still_stage(
    clinician: Any, request_id: str, stage: str, timeout: float, at_least: int = 1
) -> dict[str, Any]:
    """Wait (up to `timeout` s) until the clinician has been told the still asked for with
    `request_id` reached `stage` (progress: `at_least` bytes on the hub); whether it did,
    and every message about it, in order."""
    kind = STILL_STAGES[stage]

    def about_it() -> list[dict[str, Any]]:
        taken = [
            m
            for m in clinician.stills
            if m.get("type") == "still_taken" and m.get("request_id") == request_id
        ]
        if not taken:
            return []
        still_id = taken[0]["still_id"]
        return [m for m in clinician.stills if m.get("still_id") == still_id]

    def reached() -> bool:
        return any(
            m["type"] == kind and (kind != "still_progress" or m["received"] >= at_least)
            for m in about_it()
        )

    with contextlib.suppress(TimeoutError):
        await clinician.wait_for(reached, timeout)
    return {"reached": reached(), "messages": about_it()}


def clinician_get(hub_url: str, seed: Any, *paths: str) -> list[Any]:
    """GET each path as the seeded clinician (logged in once), as the clinic page does."""
    import requests

    with requests.Session() as http:
        login = {"username": seed.username, "password": seed.password}
        http.post(f"{hub_url}/api/login", json=login, timeout=30).raise_for_status()
        return [http.get(hub_url + path, timeout=120) for path in paths]


def fetch_still(hub_url: str, seed: Any, still_id: str) -> dict[str, Any]:
    """The patient's stills as the clinic page lists them, and this one's JPEG as served:
    status, size and SHA-256."""
    listing, jpeg = clinician_get(
        hub_url, seed, f"/api/patients/{seed.patient_id}/stills", f"/api/stills/{still_id}"
    )
    listing.raise_for_status()
    return {
        "listed": [s["still_id"] for s in listing.json()["stills"]],
        "status": jpeg.status_code,
        "content_type": jpeg.headers.get("content-type"),
        "size": len(jpeg.content),
        "sha256": hashlib.sha256(jpeg.content).hexdigest(),
    }


def hub_still_rows(server: Any, patient_id: str) -> list[dict[str, Any]]:
    """Every still the hub's table holds for the patient, final or part-uploaded."""
    from sqlalchemy import select

    from porchlight.hub.stills import stills

    columns = (stills.c.id, stills.c.state, stills.c.received, stills.c.size, stills.c.sha256)
    with server.store.engine.connect() as conn:
        rows = conn.execute(select(*columns).where(stills.c.patient_id == patient_id)).all()
    return [dict(row._mapping) for row in rows]


@dataclass
class CallLab:
    """KioskCore ⇄ hub + clinician twin across a NetLab. Use as a context manager."""

    work: Path
    lab: netlab.NetLab
    kiosk_camera: str = "640x360@30"
    clinic_camera: str = "640x360@30"
    clinic_stock: bool = False
    kiosk: Process | None = None
    clinic: Process | None = None
    reports: dict[str, Any] = field(default_factory=dict)
    _restarts: int = 0

    def __enter__(self) -> CallLab:
        self.work.mkdir(parents=True, exist_ok=True)
        self.lab.open()
        try:
            lab = self.lab
            self.clinic = Process(
                lab, lab.hub_ns,
                ["clinic", "--addr", lab.hub_addr, "--port", str(HUB_PORT), "--data",
                 str(self.work), "--camera", self.clinic_camera, "--out",
                 str(self.work / "clinic.json"), *(["--stock"] if self.clinic_stock else [])],
                self.work / "clinic.log",
            )  # fmt: skip
            self.clinic.expect("ready", 60)
            self.kiosk = self._start_kiosk(self.work / "kiosk.log")
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def _start_kiosk(self, log: Path) -> Process:
        lab = self.lab
        kiosk = Process(
            lab, lab.kiosk_ns,
            ["kiosk", "--addr", lab.kiosk_addr, "--data", str(self.work), "--camera",
             self.kiosk_camera, "--out", str(self.work / "kiosk.json")],
            log,
        )  # fmt: skip
        kiosk.expect("ready", 60)
        return kiosk

    @property
    def kiosk_data(self) -> Path:
        """The kiosk role's data dir (credential, outbox): it outlives a killed kiosk."""
        return self.work / "kiosk"

    def outbox_still(self, still_id: str) -> dict[str, Any] | None:
        """A still as the kiosk keeps it in its outbox file (read-only, so a kiosk killed or
        running is not disturbed): the bytes, the SHA-256 it recorded, how far the hub got."""
        import sqlite3

        from porchlight.kiosk.outbox import OUTBOX_FILE

        uri = f"file:{self.kiosk_data / OUTBOX_FILE}?mode=ro"
        with contextlib.closing(sqlite3.connect(uri, uri=True)) as db:
            row = db.execute(
                "SELECT data, size, sha256, uploaded FROM stills WHERE record_id=?", [still_id]
            ).fetchone()
        if row is None:
            return None
        data, size, sha256, uploaded = row
        return {"data": data, "size": size, "sha256": sha256, "uploaded": uploaded}

    def kill_kiosk(self) -> None:
        """SIGKILL the kiosk role, as a power cut or a crash would end it: no clean-up, no
        goodbye to the hub. (`ip netns exec` execs, so the pid is the kiosk's Python.)"""
        assert self.kiosk is not None
        self.kiosk.proc.send_signal(signal.SIGKILL)
        self.kiosk.proc.wait(timeout=30)
        self.kiosk.stop()  # only closes its log now
        self.kiosk = None

    def restart_kiosk(self) -> None:
        """Start the kiosk role again on the same data dir; returns once it is running."""
        assert self.kiosk is None, "kill_kiosk() first"
        self._restarts += 1
        self.kiosk = self._start_kiosk(self.work / f"kiosk-{self._restarts}.log")

    def ask(self, role: str, line: str, kind: str, timeout: float = 30) -> dict[str, Any]:
        """Send a command to the `clinic` or `kiosk` role and return its answer event."""
        process = self.clinic if role == "clinic" else self.kiosk
        assert process is not None
        process.send(line)
        return process.expect(kind, timeout)

    def status(self) -> dict[str, Any]:
        assert self.kiosk is not None
        self.kiosk.send("status")
        return self.kiosk.expect("status", 10)

    def clinic_status(self) -> dict[str, Any]:
        assert self.clinic is not None
        self.clinic.send("status")
        return self.clinic.expect("status", 10)

    def wait_status(
        self, predicate: Any, timeout: float, what: str, clinic: bool = False
    ) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            status = self.clinic_status() if clinic else self.status()
            if predicate(status):
                return status
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout} s waiting for {what}: {status}")
            time.sleep(0.2)  # a poll interval; the deadline bounds the wait

    def join(self, timeout: float = 60) -> dict[str, Any]:
        """Press the kiosk's button; return once media flows both ways."""
        assert self.kiosk is not None and self.clinic is not None
        self.wait_status(lambda s: s["state"] == "idle", 60, "the kiosk to be idle")
        self.kiosk.send("press")
        self.clinic.expect("admitted", timeout)
        return self.wait_status(
            lambda s: s["state"] == "in_call" and s["frames_received"] > 10 and s["rung"],
            timeout, "media both ways",
        )  # fmt: skip

    def __exit__(self, *exc: object) -> None:
        stop_roles(self.lab, self.work, {"kiosk": self.kiosk, "clinic": self.clinic}, self.reports)


@dataclass
class PeerPair:
    """Two bare peers (stock, porchlight or chromium) across a NetLab; the kiosk side offers
    and sends the picture measured at the hub side. Use as a context manager."""

    work: Path
    lab: netlab.NetLab
    kind: str
    camera: str = "640x480@30"
    chromium_y4m: Path | None = None  # Chromium's fake camera plays this (else its own)
    sender: Process | None = None
    receiver: Process | None = None
    reports: dict[str, Any] = field(default_factory=dict)

    def _role(self, ns: str, addr: str, name: str, offer: bool) -> Process:
        if self.kind == "chromium":
            argv = ["chromium-peer"]
            if self.chromium_y4m is not None:
                argv += ["--y4m", str(self.chromium_y4m)]
        else:
            argv = ["peer", "--kind", self.kind, "--camera", self.camera]
        argv += ["--addr", addr, "--out", str(self.work / f"{name}.json")]
        if offer:
            argv.append("--offer")
        return Process(self.lab, ns, argv, self.work / f"{name}.log")

    def __enter__(self) -> PeerPair:
        self.work.mkdir(parents=True, exist_ok=True)
        self.lab.open()
        try:
            lab = self.lab
            self.sender = self._role(lab.kiosk_ns, lab.kiosk_addr, "sender", True)
            self.receiver = self._role(lab.hub_ns, lab.hub_addr, "receiver", False)
            offer = self.sender.expect("sdp", 60)
            self.receiver.send(json.dumps({"sdp": offer["sdp"]}))
            answer = self.receiver.expect("sdp", 60)
            self.sender.send(json.dumps({"sdp": answer["sdp"]}))
            self.sender.expect("ready", 30)
            self.receiver.expect("ready", 30)
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        stop_roles(
            self.lab, self.work, {"sender": self.sender, "receiver": self.receiver}, self.reports
        )


# =========================================================================== entry


def main() -> None:
    faulthandler.enable()  # a crash in a codec says where, in the role's log
    logging.basicConfig(
        level=logging.WARNING, format="%(asctime)s %(name)s %(levelname)s %(message)s"
    )
    logging.getLogger("porchlight").setLevel(logging.INFO)
    parser = argparse.ArgumentParser(description="a role of a network-lab call (see module doc)")
    parser.add_argument("role", choices=["clinic", "kiosk", "peer", "chromium-peer"])
    parser.add_argument("--addr", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--port", type=int, default=HUB_PORT)
    parser.add_argument("--data")
    parser.add_argument("--camera", default="640x360@30")
    parser.add_argument("--stock", action="store_true")
    parser.add_argument("--kind", choices=["stock", "porchlight"], default="porchlight")
    parser.add_argument("--offer", action="store_true")
    parser.add_argument("--admit-after", type=float, default=3.0)
    parser.add_argument("--y4m", help="chromium-peer: the fake camera plays this file")
    args = parser.parse_args()
    if args.role == "chromium-peer":
        chromium_peer_role(args)
        return
    role = {"clinic": clinic_role, "kiosk": kiosk_role, "peer": aiortc_peer_role}[args.role]
    asyncio.run(role(args))


if __name__ == "__main__":
    main()

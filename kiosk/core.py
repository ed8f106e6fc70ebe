"""KioskCore: wires the pure state machine to the hub link, the call and the device.

Everything that happens (a button edge, a hub message, media connecting, the clock) becomes
an event for `KioskMachine`; the effects it returns are carried out here. Feedback effects
(beep, light, the new view) are started before anything touches the network, so a press is
seen and heard at once. Subscribers (the UI) are told about a new view once per loop turn.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import requests

from porchlight.device.hardware import Device, open_device
from porchlight.device.sim_control import SimControl
from porchlight.errors import BadInput, DeviceFault, NotAuthorised, TransportFailed
from porchlight.ice_servers import IceSettings, fetch_ice_settings
from porchlight.kiosk import rtc
from porchlight.kiosk import state as sm
from porchlight.kiosk.call import CallCounters, CallSession
from porchlight.kiosk.call_quality import QualityMeter
from porchlight.kiosk.config import KioskConfig
from porchlight.kiosk.credential import DeviceCredential, load_credential
from porchlight.kiosk.hub_link import HubLink, LinkDown, LinkEvent, LinkRefused, LinkTimings, LinkUp
from porchlight.kiosk.ladder import LadderConfig, Rung
from porchlight.kiosk.link_probe import LinkProbe
from porchlight.kiosk.patient_care import HELP_NOT_SENT, PLAN_CHANGED, RING_ACCEPT, PatientCare
from porchlight.kiosk.still_pacing import StillPace, StillPacer, call_load
from porchlight.kiosk.sync import KioskRecords, open_records
from porchlight.kiosk.view import KioskView, LatestFrame
from porchlight.kiosk.view_region import Region
from porchlight.protocol import DeviceSays, HubToDevice

log = logging.getLogger(__name__)

TICK_S = 0.1  # how often time moves on for the state machine (holds, timeouts, flashes)
CARE_EVERY_TICKS = 10  # the plan's clock (appointment line, reminders): once a second
PLAN_EVERY_S = 300.0  # fetch the patient's plan this often (and on reconnect, and when told)
MEDIA_QUIET_S = 2.0  # no frame of the clinician's picture or voice this long: media is quiet
ICE_FETCH_TIMEOUT_S = 5.0  # asking the hub for fresh TURN credentials before reconnecting
PING_SEQ_BASE = 100_000_000  # probe seqs for "are you there?" (the link probe counts from 0)
# Stills go up during a call in the link's headroom (kiosk/still_pacing.py), so they never
# starve the call; before the ladder's first decision, as if the link carried this much.
STILL_START_BPS = 200_000


class KioskCore:
    """The kiosk without its screen. The UI reads `view` and the frame sources, and calls
    `button_down()` / `button_up()`; everything else comes from the device and the hub."""

    def __init__(
        self,
        config: KioskConfig,
        *,
        device: Device | None = None,
        credential: DeviceCredential | None = None,
        link_timings: LinkTimings | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config
        self.device = device
        self.remote_frames = LatestFrame()
        self.local_frames = LatestFrame()
        self._owns_device = device is None
        self._credential = credential
        self._link_timings = link_timings
        self._clock = clock
        self.device_config = device.config if device is not None else config.device_config()
        self._machine = sm.KioskMachine(
            timings=sm.Timings(
                hold_to_leave_s=self.device_config.long_press_s,
                join_timeout_s=config.join_timeout_s,
                ending_s=config.ending_s,
            ),
            now=clock(),
        )
        self.view: KioskView = self._machine.view
        self._subscribers: list[Callable[[KioskView], None]] = []
        self._notify_scheduled = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._link: HubLink | None = None
        self._call: CallSession | None = None
        self._still_pacer = StillPacer()
        self.still_pace: StillPace | None = None  # the still's budget now (None: unpaced)
        self._call_ready: asyncio.Task[None] | None = None
        self._counters = CallCounters()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._ticker: asyncio.Task[None] | None = None
        self._speech_next: str | None = None
        self._speech_task: asyncio.Task[None] | None = None
        self._press_at: float | None = None
        self._sim: SimControl | None = None
        self.last_error = ""
        self.ui_ready = asyncio.Event()
        # The outbox + sync worker (check-in answers, vitals); None if not enrolled.
        self.records: KioskRecords | None = None
        # The patient's plan, reminders, help and ratings (kiosk/patient_care.py).
        self.care: PatientCare | None = None
        self._plan_task: asyncio.Task[None] | None = None
        self._plan_wanted = asyncio.Event()
        self._quality: QualityMeter | None = None
        self._frames_seen = 0
        self._ticks = 0
        # The HTTP status / close code with which the hub last refused our credential.
        self.refused_status: int | None = None
        # The join-time link probe and what it (or the last call) found the uplink carries.
        self._probe: LinkProbe | None = None
        self._probe_task: asyncio.Task[None] | None = None
        self.link_estimate_bps: float | None = None
        self._call_ice: tuple[dict[str, Any], ...] = ()
        self._ice_policy = "all"  # the hub's ice_transport_policy ("relay": TURN only)
        # TURN credentials are short-lived: the newest ICE settings the hub sent (welcome),
        # and a way to ask it for fresh ones when the call's media reconnects.
        self._latest_ice: IceSettings | None = None
        self._ice_session: requests.Session | None = None
        self._hub_url = ""
        self._turn_tls = rtc.turn_tls_context(config.turn_ca_file)  # for turns: servers
        self._media_quiet = False
        self._pings = 0
        self._look: Region | None = None  # the clinician's close look in this call

    # ------------------------------------------------------------ public API

    def subscribe(self, fn: Callable[[KioskView], None]) -> Callable[[], None]:
        """Call `fn(view)` (on the loop thread) whenever the view changes; returns unsubscribe."""
        self._subscribers.append(fn)

        def unsubscribe() -> None:
            with contextlib.suppress(ValueError):
                self._subscribers.remove(fn)

        return unsubscribe

    def button_down(self) -> None:
        """The on-screen button or space bar went down: same path as the GPIO button."""
        self._on_pressed()

    def button_up(self) -> None:
        held = 0.0 if self._press_at is None else self._clock() - self._press_at
        self._on_released(held)

    def survey_face(self, score: int) -> None:
        """The patient touched a face (1 very bad … 5 very good) after a call."""
        self._handle(sm.SurveyFace(score))

    def survey_again(self, again: bool) -> None:
        """The patient's answer to "Would you use video again?"."""
        self._handle(sm.SurveyAgain(again))

    @property
    def simulated(self) -> bool:
        """True when the hardware is simulated (the UI then draws the light on screen)."""
        return bool(self.device is not None and self.device.simulate)

    @property
    def call(self) -> CallSession | None:
        """The current call's session, for diagnostics and benchmarks (None between calls)."""
        return self._call

    @property
    def hold_to_leave_s(self) -> float:
        return self._machine.timings.hold_to_leave_s

    def on_ui_ready(self) -> None:
        """The UI calls this once its first screen is drawn (the runner then tells systemd)."""
        self.ui_ready.set()

    def status(self) -> dict[str, Any]:
        """A snapshot for the sim control `status` command and tests. No patient data."""
        counters = self._call.counters if self._call is not None else self._counters
        return {
            "state": self.view.state.value,
            "headline": self.view.headline,
            "light": self.view.light,
            "pressed": self.view.pressed,
            "show_video": self.view.show_video,
            "hub_connected": bool(self._link and self._link.connected),
            "needs_setup": self._machine.needs_setup,
            "call_id": self._machine.call_id,
            "last_error": self.last_error,
            "link": self.view.link,
            "link_estimate_bps": self.link_estimate_bps,
            **counters.as_dict(),
        }

    async def start(self) -> None:
        try:
            await self._start()
        except BaseException:
            await self.stop()  # leave nothing half-started (device, link, socket)
            raise

    async def _start(self) -> None:
        self._loop = asyncio.get_running_loop()
        if self.device is None:
            self.device = open_device(self.device_config, loop=self._loop)
        button = self.device.button
        button.on_pressed = self._on_pressed
        button.on_held = self._on_held
        button.on_released = self._on_released
        self._show_light(self.view.light)
        try:
            credential = self._credential or load_credential(self.config.data_dir)
        except (NotAuthorised, BadInput) as exc:
            self.last_error = str(exc)
            log.error("%s", exc)
            self._handle(sm.NeedsSetup())
        else:
            await self._open_records(credential)
            await self._open_care(credential)
            self._hub_url = self.config.hub_url or credential.hub_url
            self._ice_session = requests.Session()
            self._ice_session.headers["Authorization"] = f"Bearer {credential.token}"
            self._link = HubLink(
                self.config.hub_url or credential.hub_url,
                credential.token,
                hello=self._machine.hello,
                on_event=self._on_link_event,
                timings=self._link_timings,
            )
            await self._link.start()
        self._ticker = asyncio.create_task(self._tick_forever(), name="kiosk-tick")
        sim_path = self.config.sim_socket(self.device.simulate)
        if sim_path is not None:
            # The socket's folder must exist and be private (see device/sim_control.py).
            sim_path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            self._sim = SimControl(sim_path, self.sim_handlers())
            await self._sim.start()

    async def _open_records(self, credential: DeviceCredential) -> None:
        """Open the outbox and start syncing, off the loop. A failure only turns check-ins
        off: the call must work whatever happened to local storage."""
        hub_url = self.config.hub_url or credential.hub_url
        try:
            self.records = await asyncio.to_thread(
                open_records,
                self.config.data_dir,
                hub_url,
                credential.token,
                credential.patient_id,
            )
        except Exception as exc:
            log.error("the outbox could not be opened (%s); check-ins are off", type(exc).__name__)

    async def _open_care(self, credential: DeviceCredential) -> None:
        """The patient's plan as last kept on the device, then kept fresh from the hub."""
        care = PatientCare(
            self.config.data_dir,
            hub_url=self.config.hub_url or credential.hub_url,
            token=credential.token,
            patient_id=credential.patient_id,
        )
        await asyncio.to_thread(care.load)
        self.care = care
        self._apply_settings()
        self._care_tick()
        self._plan_task = asyncio.create_task(self._keep_plan(), name="kiosk-plan")

    async def _keep_plan(self) -> None:
        assert self.care is not None
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._plan_wanted.wait(), PLAN_EVERY_S)
            self._plan_wanted.clear()
            if await asyncio.to_thread(self.care.refresh):
                self._apply_settings()
                self._care_tick()

    def _apply_settings(self) -> None:
        if self.care is None:
            return
        speaker = self.device.speaker if self.device is not None else None
        if speaker is not None and hasattr(speaker, "voice"):
            speaker.voice = self.care.voice  # espeak-ng speaks the patient's language
        self._handle(self.care.settings())

    def _care_tick(self) -> None:
        if self.care is None:
            return
        for event in self.care.tick():
            self._handle(event)

    def sim_handlers(self) -> dict[str, Callable[..., Awaitable[Any]]]:
        """Commands of the simulated device's control socket (porchlight.device.sim_control)."""
        button = self.device.button

        async def press() -> dict[str, Any]:
            if button.simulated:
                button.press()  # a mock GPIO edge: exactly the path a real press takes
            else:
                self.button_down()
            return self.status()

        async def release() -> dict[str, Any]:
            if button.simulated:
                button.release()
            else:
                self.button_up()
            return self.status()

        async def hold(seconds: float = 2.5) -> dict[str, Any]:
            if button.simulated:
                await button.hold(float(seconds))
            else:
                self.button_down()
                await asyncio.sleep(float(seconds))
                self.button_up()
            return self.status()

        async def status() -> dict[str, Any]:
            return self.status()

        return {"press": press, "release": release, "hold": hold, "status": status}

    async def stop(self) -> None:
        if self._sim is not None:
            await self._sim.stop()
            self._sim = None
        if self._ticker is not None:
            self._ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ticker
            self._ticker = None
        if self._plan_task is not None:
            self._plan_task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._plan_task
            self._plan_task = None
        if self._link is not None:
            if self._call is not None and self._link.connected:
                self._link.send({"type": DeviceSays.HANGUP, "call_id": self._call.call_id})
            await self._link.stop()
        if self.records is not None:
            await asyncio.to_thread(self.records.close)
            self.records = None
        if self.care is not None:
            self.care.close()
            self.care = None
        if self._ice_session is not None:
            self._ice_session.close()
            self._ice_session = None
        self._stop_probe()
        await self._detach_call()
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self._speech_task is not None:
            self._speech_task.cancel()
        if self.device is not None:
            button = self.device.button
            button.on_pressed = button.on_held = button.on_released = None
            if self._owns_device:
                await self.device.close()

    # ------------------------------------------------------------ inputs

    def _on_pressed(self) -> None:
        self._press_at = self._clock()
        self._handle(sm.ButtonPressed())

    def _on_held(self, seconds: float) -> None:
        self._handle(sm.ButtonHeld(seconds))

    def _on_released(self, held_s: float) -> None:
        self._press_at = None
        self._handle(sm.ButtonReleased(held_s))

    def _on_link_event(self, event: LinkEvent) -> None:
        match event:
            case LinkUp(welcome=welcome):
                self.last_error = ""
                # The welcome (the link's first message, not passed on as one) carries TURN
                # credentials minted now: the fallback when fresh ones cannot be fetched.
                self._latest_ice = IceSettings.from_message(welcome)
                if self.records is not None:
                    self.records.kick()  # the hub is back: send what waited, now
                self._plan_wanted.set()  # and see whether the plan changed meanwhile
                self._handle(sm.HubConnected())
            case LinkDown():
                self._handle(sm.HubLost())
            case LinkRefused(status=status, message=message):
                self.refused_status = status
                self.last_error = f"the hub refused this kiosk ({status}): {message}"
                self._handle(sm.NeedsSetup())
            case _:
                self._on_hub_message(event.message)
                if self._media_quiet:  # the hub answers: signalling gets through now
                    self._handle(sm.HubHeard())

    def _on_hub_message(self, msg: dict[str, Any]) -> None:
        kind = msg.get("type")
        call_id = msg.get("call_id")
        if kind == PLAN_CHANGED:
            self._plan_wanted.set()
            return
        if kind == HubToDevice.PROBE_ACK:
            if self._probe is not None and isinstance(msg.get("seq"), int):
                self._probe.on_ack(msg["seq"])
            return
        ringing = PatientCare.event_for(msg)
        if ringing is not None:
            self._handle(ringing)
            return
        if kind == HubToDevice.WAITING:
            self._handle(sm.WaitingConfirmed(_text(msg.get("since"))))
        elif kind == HubToDevice.LEFT:
            self._handle(sm.LeftRoom())
        elif kind == HubToDevice.ADMITTED and isinstance(call_id, str):
            ice = self._latest_ice = IceSettings.from_message(msg)
            self._ice_policy = ice.policy
            self._handle(sm.Admitted(call_id, ice.servers))
        elif kind == HubToDevice.ANSWER and isinstance(call_id, str):
            self._handle(sm.AnswerReceived(call_id, _text(msg.get("sdp")) or ""))
        elif kind == HubToDevice.ENDED and isinstance(call_id, str):
            self._handle(sm.CallEnded(call_id, _text(msg.get("reason")) or ""))
        elif kind == HubToDevice.ERROR:
            code = _text(msg.get("code")) or ""
            log.warning("the hub refused our last message: %s", code)
            self._handle(sm.HubError(code))
        elif kind in (HubToDevice.VIEW, HubToDevice.PROMPT, HubToDevice.TAKE_STILL):
            self._on_clinician_request(kind, msg)
        else:
            log.info("ignoring hub message of unknown type")

    def _on_clinician_request(self, kind: str, msg: dict[str, Any]) -> None:
        """The call's clinician zooms in, prompts, or asks for a still (issue 10)."""
        session = self._call
        if self._machine.call_id is None:
            log.info("%s outside a call ignored", kind)
            return
        if kind == HubToDevice.PROMPT:
            key = _text(msg.get("prompt"))
            if msg.get("again") is True:  # sent again as our socket came back in the call
                if key == self._machine.prompt:
                    return  # already shown: not said twice
                if msg.get("late") is True:
                    key = None  # too late to appear now; what we show was replaced by it
            self._handle(sm.ShowPrompt(key))
        elif kind == HubToDevice.VIEW:
            try:
                region = Region.from_message(msg.get("region"))
            except BadInput as exc:
                log.warning("a close look was not used: %s", exc)
                return
            self._look = region  # kept for media connected afresh (RestartMedia)
            if session is not None:
                session.set_region(region)
            self._handle(sm.CloseLook(region is not None))
        elif session is None:
            log.warning("a still was asked for while the call's media was reconnecting")
        else:
            request_id = msg.get("request_id")
            if isinstance(request_id, str) and 1 <= len(request_id) <= 64:
                self._spawn(self._take_still(session, request_id))

    async def _take_still(self, session: CallSession, request_id: str) -> None:
        """One full-resolution frame → JPEG → the outbox (record and bytes together) → tell
        the hub. The sync worker sends it, paced, and keeps it through any outage."""
        records = self.records
        if records is None:
            log.warning("a still was asked for, but there is no outbox to keep it")
            return
        try:
            jpeg, width, height = await session.take_still()
            still_id = await asyncio.to_thread(
                records.add_still,
                jpeg,
                call_id=session.call_id,
                width=width,
                height=height,
                now=datetime.now(UTC),
            )
        except (DeviceFault, BadInput) as exc:
            log.error("a still could not be taken: %s", exc)
            return
        except Exception as exc:
            log.error("a still could not be taken (%s)", type(exc).__name__)
            return
        self._send(
            {
                "type": DeviceSays.STILL_TAKEN,
                "request_id": request_id,
                "still_id": still_id,
                "size": len(jpeg),
            }
        )

    def _still_budget(self, call_id: str, estimate_bps: float) -> None:
        if self._call is not None and self._call.call_id == call_id:
            self._pace_still(self._call, estimate_bps)

    def _pace_still(self, session: CallSession, estimate_bps: float) -> None:
        """At each ladder decision: the still gets what the call leaves of the link."""
        if self.records is None:
            return
        media, ladder = session.media, session.media.ladder
        decision = media.decisions[-1][1] if media.decisions else None
        if decision is None and ladder is not None:
            decision = ladder.decision()
        report = media.report
        load = call_load(
            estimate_bps,
            decision,
            media.samples[-1] if media.samples else None,
            ladder.config if ladder is not None else LadderConfig(),
            None if report is None else (report.video_kbps + report.audio_kbps) * 1000,
        )
        pace = self._still_pacer.update(load, self._clock(), self.records.still_backlog_bytes)
        if self.still_pace is None or pace.reason != self.still_pace.reason:
            log.debug("still upload budget %.0f kbit/s (%s)", pace.budget_bps / 1000, pace.reason)
        if pace.make_room != (self.still_pace is not None and self.still_pace.make_room):
            log.info("video %s for a still", "makes room" if pace.make_room else "gives room back")
        if ladder is not None:
            ladder.make_room(pace.make_room)
        self.still_pace = pace
        self.records.set_upload_budget(pace.budget_bps, pace.chunk_bytes)

    async def _tick_forever(self) -> None:
        while True:
            await asyncio.sleep(TICK_S)
            self._ticks += 1
            if self._ticks % CARE_EVERY_TICKS == 0:
                self._care_tick()
            self._watch_quality()
            self._watch_media()
            self._handle(sm.Tick())

    # ------------------------------------------------------------ the machine

    def _handle(self, event: sm.Event) -> None:
        try:
            effects = self._machine.handle(event, self._clock())
        except Exception:  # never let one bad event take the kiosk down
            log.exception("state machine failed on %s", type(event).__name__)
            return
        if self._machine.view != self.view:
            self.view = self._machine.view
            self._schedule_notify()
        for effect in effects:
            try:
                self._execute(effect)
            except Exception:
                log.exception("could not carry out %s", type(effect).__name__)

    def _schedule_notify(self) -> None:
        if self._notify_scheduled or self._loop is None:
            return
        self._notify_scheduled = True
        self._loop.call_soon(self._notify)

    def _notify(self) -> None:
        self._notify_scheduled = False
        for fn in list(self._subscribers):
            try:
                fn(self.view)
            except Exception:
                log.exception("a view subscriber failed")

    def _execute(self, effect: sm.Effect) -> None:
        match effect:
            case sm.Beep():
                self._spawn(self.device.speaker.beep())
            case sm.Say(text=text):
                self._say(text)
            case sm.SetLight(pattern=pattern):
                self._show_light(pattern)
            case sm.SendJoin():
                self._send({"type": DeviceSays.JOIN})
            case sm.SendLeave():
                self._send({"type": DeviceSays.LEAVE})
            case sm.SendOffer(call_id=call_id, sdp=sdp):
                self._send({"type": DeviceSays.OFFER, "call_id": call_id, "sdp": sdp})
            case sm.SendHangup(call_id=call_id, reason=reason):
                hangup = {"type": DeviceSays.HANGUP, "call_id": call_id}
                self._send(hangup if reason is None else {**hangup, "reason": reason})
            case sm.StartCall(call_id=call_id, ice_servers=ice_servers):
                self._start_call(call_id, ice_servers)
            case sm.ApplyAnswer(call_id=call_id, sdp=sdp):
                self._spawn(self._apply_answer(call_id, sdp))
            case sm.EndCall(call_id=call_id):
                self._record_quality(call_id)
                self._media_quiet = False
                self._look = None
                if self.records is not None:
                    self.records.set_upload_budget(None)  # stills go up at full speed again
                    self.still_pace = None
                self._spawn(self._detach_call())
            case sm.RestartMedia(call_id=call_id):
                self._spawn(self._restart_call(call_id))
            case sm.ProbeLink():
                self._start_probe()
            case sm.PingHub():
                # Any seq the link probe does not know is simply acknowledged and ignored.
                self._pings += 1
                self._send({"type": DeviceSays.PROBE, "seq": PING_SEQ_BASE + self._pings})
            case sm.ReconnectNow():
                if self._link is not None:
                    self._link.reconnect_now()
            case sm.SendRingAccept(ring_id=ring_id):
                self._send({"type": RING_ACCEPT, "ring_id": ring_id})
            case sm.QueueHelp():
                self._spawn(self._queue_help())
            case sm.QueueSurvey():
                if self.care is not None:
                    self._spawn(self._queue(self.care.survey(effect)))

    async def _queue(self, record: Any) -> bool:
        """Put one record in the outbox (off the loop); the sync worker sends it."""
        if self.records is None:
            log.warning("no outbox: a %s record was not kept", record.kind.value)
            return False
        try:
            await asyncio.to_thread(self.records.save, [record])
        except Exception as exc:
            log.error("a %s record could not be kept (%s)", record.kind.value, type(exc).__name__)
            return False
        return True

    async def _queue_help(self) -> None:
        if self.care is None or not await self._queue(self.care.help_request()):
            # Said only when it failed: the machine already said it was asked for.
            words = self.care.words if self.care is not None else None
            self._say(words(HELP_NOT_SENT) if words is not None else HELP_NOT_SENT)

    def _send(self, message: dict[str, Any]) -> None:
        if self._link is None or not self._link.send(message):
            log.info("not connected; %s not sent", message["type"])

    def _show_light(self, pattern: str) -> None:
        if self.device is not None:
            self.device.light.show(pattern)

    def _say(self, text: str) -> None:
        """Speak prompts one at a time; a newer prompt replaces one not yet started."""
        self._speech_next = text
        if self._speech_task is None or self._speech_task.done():
            self._speech_task = asyncio.create_task(self._speak())

    async def _speak(self) -> None:
        while self._speech_next is not None:
            text, self._speech_next = self._speech_next, None
            try:
                await self.device.speaker.say(text)
            except Exception as exc:
                log.warning("could not speak a prompt: %s", exc)

    def _spawn(self, coro: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("kiosk task failed", exc_info=task.exception())

    # ------------------------------------------------------------ the call

    def _start_call(
        self, call_id: str, ice_servers: tuple[dict[str, Any], ...], *, again: bool = False
    ) -> None:
        self._stop_probe()
        self._call_ice = ice_servers
        self.remote_frames.clear()
        self.local_frames.clear()
        hardware = self.device
        session = CallSession(
            call_id,
            ice_servers,
            camera=_open(hardware.open_camera, "camera"),
            microphone=_open(hardware.open_microphone, "microphone"),
            audio_sink=hardware.speaker,
            remote_frames=self.remote_frames,
            local_frames=self.local_frames,
            host_addresses=self.config.ice_host_addresses,
            ice_transport_policy=self._ice_policy,
            turn_tls=self._turn_tls,
            on_connected=self._media_connected,
            on_failed=lambda cid, reason: self._handle(sm.MediaFailed(cid, reason)),
            on_report=self._send_report,
            on_quality=lambda cid, quality: self._handle(sm.LinkQuality(cid, quality)),
            on_rung=self._rung_changed,
            on_estimate=self._still_budget,
            ladder_config=LadderConfig(max_height=self.device_config.camera_height),
            start_bps=self.link_estimate_bps,
        )
        if not again:
            self._look = None
        session.set_region(self._look)  # media connected afresh keeps the close look
        self._still_pacer = StillPacer()  # a new connection: no calm carried over
        ladder = session.media.ladder
        start = ladder.estimate_bps if ladder is not None else self.link_estimate_bps
        self._pace_still(session, start or STILL_START_BPS)
        self._call = session
        self._call_ready = asyncio.create_task(self._offer(session))
        if not again:
            self._quality = QualityMeter(started_at=self._clock())
            self._frames_seen = 0

    async def _restart_call(self, call_id: str) -> None:
        """Connect the call's media afresh: close the old connection (its camera too, so a
        real camera is free to open again), then offer a new one for the same call."""
        session = self._call
        if session is None or session.call_id != call_id:
            return
        ladder = session.media.ladder
        if ladder is not None:
            self.link_estimate_bps = ladder.estimate_bps  # start where the call had got to
        await self._detach_call()
        ice = await self._fresh_ice()
        if self._machine.call_id == call_id and self._call is None:
            log.info("reconnecting the call's media")
            self._ice_policy = ice.policy
            self._start_call(call_id, ice.servers, again=True)

    async def _fresh_ice(self) -> IceSettings:
        """ICE settings with TURN credentials minted now: the admission's may have expired
        in a long call (docs/turn.md). Without the hub's answer, the newest it sent."""
        if self._ice_session is not None:
            try:
                return await asyncio.to_thread(
                    fetch_ice_settings, self._ice_session, self._hub_url, ICE_FETCH_TIMEOUT_S
                )
            except (TransportFailed, NotAuthorised) as exc:
                log.warning("reconnecting with the last ICE servers the hub sent: %s", exc)
        return self._latest_ice or IceSettings(self._call_ice, self._ice_policy)

    def _send_report(self, call_id: str, report: dict[str, Any]) -> None:
        if self._call is not None and self._call.call_id == call_id:
            self._send({"type": DeviceSays.STATS, "call_id": call_id, **report})

    def _rung_changed(self, call_id: str, rung: Rung) -> None:
        if self._quality is not None:
            self._quality.sending(None if rung.audio_only else rung.height, self._clock())

    def _watch_media(self) -> None:
        """Tell the machine when the clinician's picture and voice stop, and come back."""
        session = self._call
        if session is None or session.last_media_at is None:
            return
        quiet = asyncio.get_running_loop().time() - session.last_media_at >= MEDIA_QUIET_S
        if quiet != self._media_quiet:
            self._media_quiet = quiet
            event = sm.MediaStalled if quiet else sm.MediaResumed
            self._handle(event(session.call_id))

    # ------------------------------------------------------------ the link probe

    def _start_probe(self) -> None:
        if self._link is None or (self._probe_task is not None and not self._probe_task.done()):
            return
        self._probe = LinkProbe(self._link.send)
        self._probe_task = asyncio.create_task(self._run_probe(self._probe), name="link-probe")

    async def _run_probe(self, probe: LinkProbe) -> None:
        result = await probe.run()
        if result is not None:
            self.link_estimate_bps = result
            log.info("link probe: about %d kbit/s up", result // 1000)

    def _stop_probe(self) -> None:
        """Admitted: the call starts now, from whatever the probe has found so far."""
        probe, task = self._probe, self._probe_task
        self._probe = self._probe_task = None
        if task is not None and not task.done():
            task.cancel()
            if probe is not None and probe.result_bps is not None:
                self.link_estimate_bps = probe.result_bps

    # ------------------------------------------------------------ call quality

    def _media_connected(self, call_id: str) -> None:
        if self._quality is not None and self._call is not None and self._call.call_id == call_id:
            # What the camera sends; a bandwidth ladder reports its rungs through sending().
            self._quality.connected(self._clock(), self.device_config.camera_height)
        self._handle(sm.MediaConnected(call_id))

    def _watch_quality(self) -> None:
        """Note each newly decoded frame of the clinician's picture (freezes are gaps)."""
        if self._quality is None or self._call is None:
            return
        received = self._call.counters.frames_received
        if received != self._frames_seen:
            self._frames_seen = received
            self._quality.frame_received(self._clock())

    def _record_quality(self, call_id: str) -> None:
        meter, self._quality = self._quality, None
        if meter is None or meter.connected_at is None or self.care is None:
            return  # no picture and sound ever flowed: nothing to measure
        try:
            record = self.care.call_quality(call_id, meter.summary(self._clock()))
        except BadInput as exc:
            log.warning("call quality not recorded: %s", exc)
            return
        self._spawn(self._queue(record))

    async def _offer(self, session: CallSession) -> None:
        try:
            sdp = await session.start()
        except Exception as exc:
            log.exception("could not start the call")
            self.last_error = f"could not start the call: {type(exc).__name__}"
            self._handle(sm.MediaFailed(session.call_id, "start_failed"))
            return
        self._handle(sm.OfferReady(session.call_id, sdp))

    async def _apply_answer(self, call_id: str, sdp: str) -> None:
        session, ready = self._call, self._call_ready
        if session is None or session.call_id != call_id or ready is None:
            return
        await ready
        try:
            await session.apply_answer(sdp)
        except Exception as exc:
            log.warning("the clinician's answer could not be used: %s", type(exc).__name__)
            self.last_error = "the clinician's answer could not be used"
            self._handle(sm.MediaFailed(call_id, "bad_answer"))

    def _detach_call(self) -> Awaitable[None]:
        """Forget the current call at once (a new one may follow); return its closing."""
        session, self._call = self._call, None
        ready, self._call_ready = self._call_ready, None
        if session is not None:
            self._counters = session.counters
        return self._close_session(session, ready)

    async def _close_session(
        self, session: CallSession | None, ready: asyncio.Task[None] | None
    ) -> None:
        if session is None:
            return
        if ready is not None and not ready.done():
            ready.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await ready
        await session.close()
        if self._call is None:  # no newer call has started drawing
            self.remote_frames.clear()
            self.local_frames.clear()


def _open(factory: Callable[[], Any], what: str) -> Any:
    """A media track, or None (the call goes on receive-only) if the hardware fails."""
    try:
        return factory()
    except Exception as exc:
        log.warning("no %s for this call: %s", what, exc)
        return None


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None

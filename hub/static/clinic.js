// Porchlight clinic page: log in, watch the waiting room, admit, answer the kiosk's offer.
// Plain browser JavaScript (no build step). Protocol: docs/protocol.md.

import { api } from "./http.js";

const CLOSE_NOT_AUTHORISED = 4401;
const CLOSE_FORBIDDEN = 4403;
const ICE_GATHER_TIMEOUT_MS = 5000;
const RECONNECT_MAX_MS = 10000;

const $ = (testid) => document.querySelector(`[data-testid="${testid}"]`);

const state = {
  me: null,
  ws: null,
  reconnectAttempts: 0,
  reconnectTimer: null,
  patients: [],
  iceServers: [],
  call: null, // {callId, patientId, name, pc, localStream, ended}
  admitting: null, // patient id we asked to admit, until the hub answers
  today: {}, // patient id -> {summary, fetchedAt}: today's check-in answers and vitals
};

const TODAY_REFRESH_MS = 20000;

// ---------------------------------------------------------------- notices

function showNotice(text) {
  $("notice-text").textContent = text;
  $("notice").hidden = false;
}

function hideNotice() {
  $("notice").hidden = true;
}

// ---------------------------------------------------------------- login

function showLogin(message) {
  document.dispatchEvent(new CustomEvent("porchlight:logged-out"));
  closeSocket();
  teardownCall();
  state.me = null;
  state.patients = [];
  $("clinic-view").hidden = true;
  $("session-bar").hidden = true;
  $("login-view").hidden = false;
  const error = $("login-error");
  error.textContent = message || "";
  error.hidden = !message;
  $("login-password").value = "";
  $("login-username").focus();
}

async function onLoginSubmit(event) {
  event.preventDefault();
  const username = $("login-username").value.trim();
  const password = $("login-password").value;
  const error = $("login-error");
  if (!username || !password) {
    error.textContent = "Enter your username and password.";
    error.hidden = false;
    return;
  }
  const button = $("login-submit");
  button.disabled = true;
  button.textContent = "Logging in…";
  try {
    const result = await api("/api/login", { method: "POST", body: { username, password } });
    if (result.ok) {
      await enterClinic(result.body);
    } else {
      error.textContent = result.body?.message || "Logging in failed. Try again.";
      error.hidden = false;
    }
  } catch {
    error.textContent = "The hub cannot be reached. Check the network and try again.";
    error.hidden = false;
  } finally {
    button.disabled = false;
    button.textContent = "Log in";
  }
}

async function onLogout() {
  try {
    await api("/api/logout", { method: "POST" });
  } catch {
    // Leaving the page state is what matters; the session expires on its own.
  }
  showLogin("You have logged out.");
}

async function enterClinic(me) {
  if (me.role !== "clinician") {
    showLogin(`You are logged in as ${me.role}; the waiting room is for clinicians.`);
    return;
  }
  state.me = me;
  $("login-view").hidden = true;
  $("clinic-view").hidden = false;
  $("session-bar").hidden = false;
  $("user-name").textContent = me.display_name;
  hideNotice();
  renderWaitingRoom();
  const ice = await api("/api/ice-servers");
  if (ice.ok) state.iceServers = ice.body.ice_servers;
  connect();
  document.dispatchEvent(new CustomEvent("porchlight:clinic-ready", { detail: me }));
}

// ---------------------------------------------------------------- WebSocket

function setLinkState(kind, text) {
  const el = $("connection-state");
  el.dataset.state = kind;
  el.textContent = text;
}

function connect() {
  clearTimeout(state.reconnectTimer);
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const ws = new WebSocket(`${scheme}://${location.host}/ws/clinic`);
  state.ws = ws;
  setLinkState("connecting", "Connecting…");
  ws.addEventListener("open", () => {
    state.reconnectAttempts = 0;
    setLinkState("live", "Live");
    const hello = { type: "hello" };
    if (state.call && !state.call.ended) hello.call_id = state.call.callId;
    send(hello);
  });
  ws.addEventListener("message", (event) => {
    let message;
    try {
      message = JSON.parse(event.data);
    } catch {
      return;
    }
    handle(message);
  });
  ws.addEventListener("close", (event) => {
    if (state.ws !== ws) return; // replaced or closed on purpose
    state.ws = null;
    if (event.code === CLOSE_NOT_AUTHORISED) {
      showLogin(event.reason || "Your session has ended. Log in again.");
      return;
    }
    if (event.code === CLOSE_FORBIDDEN) {
      setLinkState("reconnecting", "Not allowed");
      showNotice(event.reason || "This account cannot use the waiting room.");
      return;
    }
    scheduleReconnect();
  });
}

function scheduleReconnect() {
  const attempt = state.reconnectAttempts++;
  const delay = Math.min(RECONNECT_MAX_MS, 500 * 2 ** attempt) * (0.75 + Math.random() * 0.5);
  setLinkState("reconnecting", "Reconnecting…");
  state.reconnectTimer = setTimeout(connect, delay);
}

function closeSocket() {
  clearTimeout(state.reconnectTimer);
  const ws = state.ws;
  state.ws = null;
  if (ws) ws.close(1000);
}

// care.js (appointments, ringing, outcomes) sends through this socket too.
export function send(message) {
  if (state.ws && state.ws.readyState === WebSocket.OPEN) {
    state.ws.send(JSON.stringify(message));
    return true;
  }
  return false;
}

function handle(message) {
  // Other scripts on the page (care.js) hear every message as well.
  document.dispatchEvent(new CustomEvent("porchlight:message", { detail: message }));
  switch (message.type) {
    case "waiting_room":
      state.patients = message.patients || [];
      if (state.admitting && !state.patients.some((p) => p.patient_id === state.admitting && p.state === "waiting")) {
        state.admitting = null;
      }
      renderWaitingRoom();
      break;
    case "call_started":
      onCallStarted(message);
      break;
    case "offer":
      onOffer(message).catch((error) => {
        console.error("answering the offer failed", error);
        setCallState("problem", "Could not connect the call. End it and admit the patient again.");
      });
      break;
    case "ended":
      onEnded(message);
      break;
    case "stats":
      onStats(message);
      break;
    case "still_taken":
    case "still_progress":
    case "still_ready":
      onStillMessage(message);
      break;
    case "error":
      state.admitting = null;
      renderWaitingRoom();
      showNotice(message.message || "The hub refused that.");
      break;
    default:
      break; // newer hub, newer message: ignore
  }
}

// ---------------------------------------------------------------- waiting room

function minutesSince(iso) {
  const ms = Date.now() - new Date(iso).getTime();
  return Math.max(0, Math.floor(ms / 60000));
}

function waitedText(iso) {
  const minutes = minutesSince(iso);
  const clock = new Date(iso).toLocaleTimeString("en-GB", { hour: "2-digit", minute: "2-digit" });
  const waited = minutes < 1 ? "just now" : minutes === 1 ? "1 min" : `${minutes} min`;
  return minutes < 1 ? `Joined just now (${clock})` : `Waiting ${waited} · since ${clock}`;
}

function renderWaitingRoom() {
  const list = $("waiting-list");
  const waitingCount = state.patients.filter((p) => p.state === "waiting").length;
  $("waiting-count").textContent = `${waitingCount} waiting`;
  $("waiting-empty").hidden = state.patients.length > 0;
  const inCall = state.call && !state.call.ended;
  list.replaceChildren(
    ...state.patients.map((patient) => {
      const row = document.createElement("li");
      row.className = "patient";
      row.dataset.testid = `patient-${patient.patient_id}`;
      row.dataset.state = patient.state;
      row.dataset.online = String(patient.device_online);

      const info = document.createElement("div");
      const name = document.createElement("div");
      name.className = "patient-name";
      name.dataset.testid = "patient-name";
      name.textContent = patient.display_name;
      const meta = document.createElement("div");
      meta.className = "patient-meta";
      meta.dataset.testid = "patient-since";
      meta.dataset.since = patient.since;
      meta.textContent = waitedText(patient.since);
      const badge = document.createElement("span");
      badge.className = "badge";
      badge.dataset.testid = "patient-state";
      if (patient.state === "in_call") {
        badge.dataset.kind = "in_call";
        badge.textContent = "In call";
      } else if (!patient.device_online) {
        badge.dataset.kind = "offline";
        badge.textContent = "Connection lost · keeping their place";
      } else {
        badge.dataset.kind = "waiting";
        badge.textContent = "Waiting";
      }
      info.append(name, meta, badge, renderCheckin(patient.patient_id));
      row.append(info);

      if (patient.state === "waiting") {
        const admit = document.createElement("button");
        admit.type = "button";
        admit.className = "button button-primary";
        admit.dataset.testid = `admit-${patient.patient_id}`;
        const admitting = state.admitting === patient.patient_id;
        admit.textContent = admitting ? "Admitting…" : "Admit";
        admit.disabled = Boolean(inCall || admitting || !patient.device_online);
        admit.title = inCall ? "End your current call first" : "";
        admit.addEventListener("click", () => onAdmit(patient.patient_id));
        row.append(admit);
      }
      return row;
    }),
  );
}

// ---------------------------------------------------------------- today's check-in (rooming)

function fetchToday(patientId, force = false) {
  const known = state.today[patientId];
  if (!force && known && (known.loading || Date.now() - known.fetchedAt < TODAY_REFRESH_MS)) return;
  state.today[patientId] = { ...(known || {}), loading: true, fetchedAt: Date.now() };
  api(`/api/patients/${encodeURIComponent(patientId)}/today`)
    .then((reply) => {
      state.today[patientId] = { summary: reply.ok ? reply.body : null, fetchedAt: Date.now() };
      renderWaitingRoom();
    })
    .catch(() => {
      state.today[patientId] = { summary: null, fetchedAt: Date.now() };
    });
}

function refreshToday() {
  for (const patient of state.patients) fetchToday(patient.patient_id, true);
}

function flagged(element, isFlagged, mark = " ⚑ check") {
  // A flag is a word and a mark, not only a colour.
  element.dataset.flag = String(isFlagged);
  if (isFlagged) {
    element.textContent += mark;
    element.style.fontWeight = "700";
    element.style.color = "var(--warn)";
  }
  return element;
}

function renderCheckin(patientId) {
  fetchToday(patientId);
  const box = document.createElement("div");
  box.className = "patient-meta";
  box.dataset.testid = `checkin-${patientId}`;
  const summary = state.today[patientId] && state.today[patientId].summary;
  if (!summary) {
    box.textContent = "Checking for today's check-in…";
    return box;
  }
  if (!summary.vitals.length && !summary.answers.length) {
    box.dataset.empty = "true";
    box.textContent = "No check-in today";
    return box;
  }
  const head = document.createElement("div");
  head.dataset.testid = "checkin-flag-count";
  head.dataset.count = String(summary.flag_count);
  head.textContent =
    summary.flag_count === 0
      ? "Today's check-in: nothing flagged"
      : `Today's check-in: ⚑ ${summary.flag_count} to check`;
  flagged(head, summary.flag_count > 0, "");
  box.append(head);
  const latestVitals = summary.vitals[summary.vitals.length - 1];
  if (latestVitals) {
    const line = document.createElement("div");
    line.dataset.testid = "checkin-vitals";
    for (const reading of latestVitals.readings) {
      const item = document.createElement("span");
      item.dataset.testid = `vital-${reading.key}`;
      item.textContent = `${reading.label} ${reading.value}${reading.unit === "%" ? "" : " "}${reading.unit}`;
      flagged(item, reading.flag);
      item.style.marginRight = "1rem";
      item.style.display = "inline-block"; // one reading never breaks across lines
      line.append(item);
    }
    box.append(line);
  }
  const latestAnswers = summary.answers[summary.answers.length - 1];
  if (latestAnswers) {
    const list = document.createElement("ul");
    list.dataset.testid = "checkin-answers";
    list.style.margin = "0.25rem 0 0";
    list.style.paddingLeft = "1.2rem";
    for (const answer of latestAnswers.items) {
      const item = document.createElement("li");
      item.dataset.testid = `answer-${answer.link_id}`;
      item.textContent = `${answer.text} ${answer.shown}`;
      list.append(flagged(item, answer.flag));
    }
    box.append(list);
  }
  if (summary.conflicts) {
    const warn = document.createElement("div");
    warn.dataset.testid = "checkin-conflicts";
    warn.textContent = `${summary.conflicts} record(s) arrived twice with different content: ask support`;
    box.append(flagged(warn, true));
  }
  return box;
}

function refreshWaitedTimes() {
  for (const meta of document.querySelectorAll('[data-testid="patient-since"]')) {
    meta.textContent = waitedText(meta.dataset.since);
  }
}

function onAdmit(patientId) {
  hideNotice();
  if (!send({ type: "admit", patient_id: patientId })) {
    showNotice("Not connected to the hub yet; try again in a moment.");
    return;
  }
  state.admitting = patientId;
  renderWaitingRoom();
}

// ---------------------------------------------------------------- call

const CALL_TEXT = {
  connecting: "Connecting…",
  connected: "In call",
  problem: "The patient's connection dropped — waiting for it to come back…",
  ended: "Call ended",
};

// ---------------------------------------------------------------- the patient's link

const QUALITY_WORDS = { good: "Good connection", fair: "Fair connection", poor: "Poor connection" };
const LINK_STALE_MS = 6000; // the kiosk reports every 2 s

function onStats(message) {
  const call = state.call;
  if (!call || call.ended || call.callId !== message.call_id) return;
  call.link = { ...message, at: Date.now() };
  renderLink();
}

function renderLink() {
  const box = $("link-quality");
  const call = state.call;
  box.hidden = !call || call.ended;
  const link = call && call.link;
  const fields = ["link-resolution", "link-fps", "link-bitrate", "link-loss", "link-rtt"];
  if (!link) {
    box.dataset.quality = "unknown";
    $("link-word").textContent = "Waiting for the patient's link report…";
    for (const id of fields) $(id).textContent = "";
    return;
  }
  const stale = Date.now() - link.at > LINK_STALE_MS;
  box.dataset.quality = stale ? "unknown" : link.quality;
  $("link-word").textContent = stale
    ? "No recent report from the patient's kiosk"
    : QUALITY_WORDS[link.quality] || link.quality;
  $("link-resolution").textContent = link.audio_only
    ? "Audio only: their link cannot carry video now"
    : `${link.width}×${link.height}`;
  $("link-fps").textContent = link.audio_only ? "" : `${Math.round(link.fps)} fps`;
  $("link-bitrate").textContent = `${Math.round(link.video_kbps + link.audio_kbps)} kbit/s`;
  $("link-loss").textContent = `${(link.loss * 100).toFixed(1)} % lost`;
  $("link-rtt").textContent = link.rtt_ms == null ? "" : `${Math.round(link.rtt_ms)} ms round trip`;
}

function setCallState(kind, text) {
  const el = $("call-state");
  el.dataset.state = kind;
  el.textContent = text || CALL_TEXT[kind];
  // Over the video area while there is no picture to show.
  const stage = $("stage-message");
  const name = state.call ? state.call.name : "the patient";
  const message = { connecting: `Connecting to ${name}…`, ended: "The call has ended." }[kind];
  stage.textContent = message || "";
  stage.hidden = !message;
}

function showCallView(show) {
  $("call-view").hidden = !show;
  $("call-idle").hidden = show;
}

function onCallStarted(message) {
  teardownCall();
  state.admitting = null;
  state.call = {
    callId: message.call_id,
    patientId: message.patient_id,
    name: message.display_name,
    pc: null,
    localStream: null,
    media: null,
    ended: false,
    link: null, // the kiosk's latest link report
  };
  $("call-patient").textContent = message.display_name;
  startLook(state.call);
  $("end-call").hidden = false;
  $("close-call").hidden = true;
  setCallState("connecting");
  renderLink();
  showCallView(true);
  // Start the camera now, so the answer is not held up by it when the offer arrives.
  state.call.media = startLocalMedia(state.call);
  renderWaitingRoom();
}

async function startLocalMedia(call) {
  try {
    call.localStream = await navigator.mediaDevices.getUserMedia({ video: true, audio: true });
  } catch {
    try {
      call.localStream = await navigator.mediaDevices.getUserMedia({ audio: true });
      showNotice("Your camera could not be started; the patient will hear you but not see you.");
    } catch {
      call.localStream = null;
      showNotice("Your camera and microphone could not be started; check the browser's permissions.");
    }
  }
  if (call.ended) {
    stopStream(call.localStream);
    return null;
  }
  $("self-video").srcObject = call.localStream;
  return call.localStream;
}

function waitForIceGathering(pc) {
  // aiortc does not take trickled candidates: the answer must carry them all.
  if (pc.iceGatheringState === "complete") return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(done, ICE_GATHER_TIMEOUT_MS);
    function done() {
      clearTimeout(timer);
      pc.removeEventListener("icegatheringstatechange", check);
      resolve();
    }
    function check() {
      if (pc.iceGatheringState === "complete") done();
    }
    pc.addEventListener("icegatheringstatechange", check);
  });
}

async function onOffer(message) {
  const call = state.call;
  if (!call || call.ended || call.callId !== message.call_id) return;
  if (call.pc) call.pc.close(); // a fresh offer (the kiosk reconnected): start over
  const offers = (call.offers = (call.offers || 0) + 1);
  // TURN credentials are short-lived (docs/turn.md): fresh ones for each connection.
  const ice = await api("/api/ice-servers");
  if (call.ended || call.offers !== offers) return; // ended, or a newer offer took over
  if (!ice.ok) {
    setCallState("problem", "Reconnecting… the patient's kiosk will call back by itself.");
    return;
  }
  const pc = new RTCPeerConnection({
    iceServers: ice.body.ice_servers,
    iceTransportPolicy: ice.body.ice_transport_policy,
  });
  call.pc = pc;
  pc.addEventListener("track", (event) => {
    const video = $("remote-video");
    const stream = event.streams[0] || new MediaStream([event.track]);
    if (video.srcObject !== stream) {
      video.srcObject = stream;
      video.play().catch(() => {});
    }
  });
  pc.addEventListener("connectionstatechange", () => {
    if (call.ended || call.pc !== pc) return;
    switch (pc.connectionState) {
      case "connected":
        setCallState("connected");
        break;
      case "disconnected":
        setCallState("problem");
        break;
      case "failed":
        // The kiosk gets a dropped call back by itself with a fresh offer (up to 40 s).
        setCallState("problem", "Reconnecting… the patient's kiosk will call back by itself.");
        break;
      default:
        break;
    }
  });
  const stream = await call.media;
  if (call.ended || call.pc !== pc) return;
  if (stream) {
    for (const track of stream.getTracks()) pc.addTrack(track, stream);
  }
  await pc.setRemoteDescription({ type: "offer", sdp: message.sdp });
  await pc.setLocalDescription(await pc.createAnswer());
  await waitForIceGathering(pc);
  if (call.ended || call.pc !== pc) return;
  send({ type: "answer", call_id: call.callId, sdp: pc.localDescription.sdp });
}

function stopStream(stream) {
  if (!stream) return;
  for (const track of stream.getTracks()) track.stop();
}

function teardownCall() {
  const call = state.call;
  if (!call) return;
  call.ended = true;
  if (call.pc) call.pc.close();
  call.pc = null;
  stopStream(call.localStream);
  $("remote-video").srcObject = null;
  $("self-video").srcObject = null;
}

function finishCall(text) {
  const finished = state.call;
  if (finished && !finished.ended) {
    // care.js asks the clinician how it went (completed, home visit, technical failure).
    const detail = { callId: finished.callId, patientId: finished.patientId, name: finished.name };
    document.dispatchEvent(new CustomEvent("porchlight:call-finished", { detail }));
  }
  teardownCall();
  setCallState("ended", text);
  renderLink();
  renderLook();
  if (finished) waitForStills(finished);
  $("end-call").hidden = true;
  $("close-call").hidden = false;
  renderWaitingRoom();
}

function onEndCall() {
  const call = state.call;
  if (!call || call.ended) return;
  send({ type: "hangup", call_id: call.callId });
  finishCall("Call ended");
}

const ENDED_TEXT = {
  patient_ended: "Call ended · the patient hung up",
  patient_lost: "Call ended · the patient's connection was lost",
};

function onEnded(message) {
  const call = state.call;
  if (!call || call.callId !== message.call_id || call.ended) return;
  finishCall(ENDED_TEXT[message.reason] || "Call ended");
}

function onCloseCall() {
  teardownCall();
  state.call = null;
  showCallView(false);
  renderWaitingRoom();
}

// ---------------------------------------------------------------- the close look (issue 10)
// Zoom and pan: the page sends `view {region}` and the kiosk crops its camera's full picture
// to that region before sending it, so the video shown here IS the zoomed picture (nothing is
// scaled in the browser). Stills: `take_still`, then still_taken / still_progress /
// still_ready from the hub. Prompts: what the kiosk shows and says large.

// What the patient can be asked to show: the keys of porchlight.protocol.PROMPTS (the kiosk
// has the words in every language; these are the clinician's, in English).
const PROMPTS = [
  ["show_ankles", "Show me your ankles"],
  ["hand_to_camera", "Hold your hand up to the camera"],
  ["show_where_it_hurts", "Show me where it hurts"],
  ["closer_to_light", "Move closer to the light"],
  ["face_to_camera", "Look straight at the camera"],
  ["hold_still", "Hold still"],
];
const ZOOMS = [1, 1.5, 2, 3, 4, 6]; // 6×: a sixth of the frame, well above the 5 % minimum
const VIEW_SEND_MS = 150; // while dragging: at most this often (the last one always goes)
const KEY_PAN = 0.25; // arrow keys move a quarter of what is shown
const STILL_TAKEN_MS = 20000; // a kiosk that has not said it took the still by then did not
const STILL_POLL_MS = 5000; // after the call: look for stills still arriving, this often…
const STILL_POLLS = 60; // …for five minutes (later ones are listed with the patient's record)

function newLook() {
  return { level: 0, cx: 0.5, cy: 0.5, sentAt: 0, timer: null, drag: null, prompt: null };
}

function lookRegion(look) {
  const zoom = ZOOMS[look.level];
  if (zoom === 1) return null;
  const side = Math.round((1 / zoom) * 10000) / 10000;
  const clamp = (centre) => {
    const start = Math.round((centre - side / 2) * 10000) / 10000;
    return Math.min(Math.max(start, 0), Math.round((1 - side) * 10000) / 10000);
  };
  return { x: clamp(look.cx), y: clamp(look.cy), w: side, h: side };
}

function keepInside(look) {
  // The centre may go only where the whole region stays inside the frame.
  const half = 1 / ZOOMS[look.level] / 2;
  look.cx = Math.min(Math.max(look.cx, half), 1 - half);
  look.cy = Math.min(Math.max(look.cy, half), 1 - half);
}

function lookLive() {
  return Boolean(state.call && !state.call.ended);
}

function sendView(now = false) {
  const call = state.call;
  if (!lookLive()) return;
  const look = call.look;
  clearTimeout(look.timer);
  const wait = VIEW_SEND_MS - (Date.now() - look.sentAt);
  if (!now && wait > 0) {
    look.timer = setTimeout(() => sendView(true), wait);
    return;
  }
  look.sentAt = Date.now();
  send({ type: "view", region: lookRegion(look) });
}

function setZoom(level) {
  if (!lookLive()) return;
  const look = state.call.look;
  look.level = Math.min(Math.max(level, 0), ZOOMS.length - 1);
  if (look.level === 0) {
    look.cx = 0.5;
    look.cy = 0.5;
  }
  keepInside(look);
  renderLook();
  sendView(true);
}

function pan(dx, dy) {
  // dx, dy: fractions of what is shown now; moving the picture, not the window over it.
  if (!lookLive() || state.call.look.level === 0) return;
  const look = state.call.look;
  const shown = 1 / ZOOMS[look.level];
  look.cx += dx * shown;
  look.cy += dy * shown;
  keepInside(look);
  renderLook();
  sendView();
}

function renderLook() {
  const live = lookLive();
  const look = state.call ? state.call.look : newLook();
  const zoom = ZOOMS[look.level];
  const stage = $("stage");
  stage.dataset.zoom = String(zoom);
  const region = lookRegion(look);
  $("zoom-level").textContent = zoom === 1 ? "Zoom 1×" : `Zoom ${zoom}×`;
  $("zoom-in").disabled = !live || look.level === ZOOMS.length - 1;
  $("zoom-out").disabled = !live || look.level === 0;
  $("zoom-reset").disabled = !live || look.level === 0;
  $("take-still").disabled = !live;
  // A small map of the whole frame with the part being looked at.
  $("look-map").hidden = !region || !live;
  if (region) {
    const box = $("look-box");
    box.style.left = `${region.x * 100}%`;
    box.style.top = `${region.y * 100}%`;
    box.style.width = `${region.w * 100}%`;
    box.style.height = `${region.h * 100}%`;
  }
  for (const button of document.querySelectorAll("[data-prompt]")) {
    button.disabled = !live;
    button.setAttribute("aria-pressed", String(look.prompt === button.dataset.prompt));
  }
  $("prompt-clear").disabled = !live || !look.prompt;
}

function onStagePointerDown(event) {
  if (!lookLive() || state.call.look.level === 0 || event.button !== 0) return;
  const stage = $("stage");
  stage.setPointerCapture(event.pointerId);
  state.call.look.drag = { x: event.clientX, y: event.clientY, id: event.pointerId };
  stage.dataset.dragging = "true";
}

function onStagePointerMove(event) {
  const look = lookLive() ? state.call.look : null;
  if (!look || !look.drag || look.drag.id !== event.pointerId) return;
  const rect = $("stage").getBoundingClientRect();
  const dx = (event.clientX - look.drag.x) / rect.width;
  const dy = (event.clientY - look.drag.y) / rect.height;
  look.drag.x = event.clientX;
  look.drag.y = event.clientY;
  pan(-dx, -dy); // drag the picture: it follows the pointer
}

function onStagePointerUp(event) {
  const look = state.call ? state.call.look : null;
  if (!look || !look.drag || look.drag.id !== event.pointerId) return;
  look.drag = null;
  delete $("stage").dataset.dragging;
  sendView(true);
}

function onStageKey(event) {
  const moves = { ArrowLeft: [-KEY_PAN, 0], ArrowRight: [KEY_PAN, 0], ArrowUp: [0, -KEY_PAN], ArrowDown: [0, KEY_PAN] };
  if (moves[event.key]) {
    if (!state.call || !state.call.look.level) return; // the whole picture: let the page scroll
    pan(...moves[event.key]);
  } else if (event.key === "+" || event.key === "=") {
    setZoom(state.call ? state.call.look.level + 1 : 0);
  } else if (event.key === "-" || event.key === "_") {
    setZoom(state.call ? state.call.look.level - 1 : 0);
  } else if (event.key === "0") {
    setZoom(0);
  } else {
    return;
  }
  event.preventDefault();
}

function onPrompt(key) {
  if (!lookLive()) return;
  state.call.look.prompt = key;
  send({ type: "prompt", prompt: key });
  renderLook();
}

// ---- stills

function stillsOf(call) {
  return call ? call.stills : [];
}

function takeStill() {
  if (!lookLive()) return;
  const requestId = crypto.randomUUID();
  if (!send({ type: "take_still", request_id: requestId })) {
    showNotice("Not connected to the hub; try again in a moment.");
    return;
  }
  const still = { requestId, stillId: null, received: 0, size: null, url: null, takenAt: null };
  state.call.stills.push(still);
  renderStills();
  setTimeout(() => {
    if (still.stillId) return;
    still.failed = true; // the kiosk could not take it (or was not there to)
    renderStills();
  }, STILL_TAKEN_MS);
}

function onStillMessage(message) {
  const call = state.call;
  if (!call) return;
  let still = call.stills.find((s) => s.stillId === message.still_id);
  if (message.type === "still_taken") {
    if (message.patient_id !== call.patientId) return;
    still = call.stills.find((s) => s.requestId === message.request_id) || still;
    if (!still) {
      still = { requestId: message.request_id, received: 0, url: null, takenAt: null };
      call.stills.push(still);
    }
    still.stillId = message.still_id;
    still.size = message.size;
    still.failed = false;
  } else if (!still) {
    if (message.type !== "still_ready") return; // progress of a still this page did not ask for
    still = { requestId: null, stillId: message.still_id, received: 0, size: null };
    call.stills.push(still);
  }
  if (message.type === "still_progress") {
    still.received = Math.max(still.received || 0, message.received);
    still.size = message.size;
  } else if (message.type === "still_ready") {
    still.url = message.url;
    still.takenAt = message.taken_at;
    still.width = message.width;
    still.height = message.height;
  }
  renderStills();
}

async function loadStills(call) {
  // The patient's earlier stills: they stay with the patient's record.
  const reply = await api(`/api/patients/${encodeURIComponent(call.patientId)}/stills`).catch(() => null);
  if (!reply || !reply.ok || state.call !== call) return;
  for (const item of reply.body.stills) {
    const known = call.stills.find((s) => s.stillId === item.still_id);
    if (known) {
      // One still_ready did not reach this page (the call had ended): it is here now.
      Object.assign(known, { url: item.url, takenAt: item.taken_at, width: item.width, height: item.height });
      known.received = item.size;
      continue;
    }
    call.stills.unshift({
      requestId: null,
      stillId: item.still_id,
      url: item.url,
      takenAt: item.taken_at,
      width: item.width,
      height: item.height,
      size: item.size,
      received: item.size,
      earlier: item.call_id !== call.callId,
    });
  }
  renderStills();
}

function waitForStills(call, polls = STILL_POLLS) {
  // After the call the hub has no call to tell of a still arriving: ask for the list.
  const arriving = call.stills.some((s) => s.stillId && !s.url);
  if (!arriving || polls <= 0) return;
  setTimeout(async () => {
    if (state.call !== call) return;
    await loadStills(call);
    waitForStills(call, polls - 1);
  }, STILL_POLL_MS);
}

function stillTime(iso) {
  return new Date(iso).toLocaleString("en-GB", { day: "numeric", month: "short", hour: "2-digit", minute: "2-digit" });
}

function stillNode(still) {
  // Built once per state: re-rendering must not fetch a thumbnail again on every progress.
  const item = document.createElement("li");
  item.className = "still";
  item.dataset.state = still.url ? "ready" : still.stillId ? "receiving" : still.failed ? "failed" : "asked";
  if (still.stillId) item.dataset.testid = `still-${still.stillId}`;
  const caption = document.createElement("span");
  caption.className = "still-caption";
  if (still.url) {
    const open = document.createElement("button");
    open.type = "button";
    open.className = "still-thumb";
    open.dataset.testid = "still-open";
    open.setAttribute("aria-label", `Open the still from ${stillTime(still.takenAt)} full size`);
    const img = document.createElement("img");
    img.src = still.url;
    img.alt = "";
    img.dataset.testid = "still-thumb";
    open.append(img);
    open.addEventListener("click", () => openStill(still));
    caption.textContent = `${still.earlier ? "Earlier · " : ""}${stillTime(still.takenAt)}`;
    item.append(open, caption);
  } else {
    const bar = document.createElement("progress");
    bar.dataset.testid = "still-progress";
    item.append(bar, caption);
  }
  still.node = item;
  return item;
}

function renderStills() {
  const stills = stillsOf(state.call);
  $("stills-empty").hidden = stills.length > 0;
  const nodes = stills
    .slice()
    .reverse() // newest first
    .map((still) => {
      const wanted = still.url ? "ready" : still.stillId ? "receiving" : still.failed ? "failed" : "asked";
      const node = still.node && still.node.dataset.state === wanted ? still.node : stillNode(still);
      if (wanted !== "ready") {
        const bar = node.querySelector("progress");
        const caption = node.querySelector(".still-caption");
        if (wanted === "failed") {
          bar.hidden = true;
          caption.textContent = "The kiosk did not take this still. Try again.";
        } else if (wanted === "asked") {
          bar.removeAttribute("value"); // indeterminate until the kiosk has taken it
          caption.textContent = "Taking the still…";
        } else {
          bar.max = still.size || 1;
          bar.value = still.received || 0;
          const percent = still.size ? Math.floor((100 * (still.received || 0)) / still.size) : 0;
          caption.textContent = percent >= 100 ? "Checking…" : `Receiving… ${percent} %`;
        }
      }
      return node;
    });
  $("stills-list").replaceChildren(...nodes);
}

function openStill(still) {
  const dialog = $("still-viewer");
  $("still-full").src = still.url;
  $("still-full").alt = `Still of the patient, ${stillTime(still.takenAt)}`;
  $("still-caption").textContent = `${stillTime(still.takenAt)} · ${still.width}×${still.height}`;
  dialog.showModal();
}

function startLook(call) {
  call.look = newLook();
  call.stills = [];
  renderLook();
  renderStills();
  loadStills(call);
}

function bindLook() {
  const stage = $("stage");
  stage.addEventListener("pointerdown", onStagePointerDown);
  stage.addEventListener("pointermove", onStagePointerMove);
  stage.addEventListener("pointerup", onStagePointerUp);
  stage.addEventListener("pointercancel", onStagePointerUp);
  stage.addEventListener("keydown", onStageKey);
  $("zoom-in").addEventListener("click", () => setZoom(state.call.look.level + 1));
  $("zoom-out").addEventListener("click", () => setZoom(state.call.look.level - 1));
  $("zoom-reset").addEventListener("click", () => setZoom(0));
  $("take-still").addEventListener("click", takeStill);
  $("still-close").addEventListener("click", () => $("still-viewer").close());
  const buttons = PROMPTS.map(([key, words]) => {
    const button = document.createElement("button");
    button.type = "button";
    button.className = "button button-quiet prompt";
    button.dataset.prompt = key;
    button.dataset.testid = `prompt-${key}`;
    button.textContent = words;
    button.addEventListener("click", () => onPrompt(key));
    return button;
  });
  const clear = document.createElement("button");
  clear.type = "button";
  clear.className = "button button-quiet prompt-clear";
  clear.dataset.testid = "prompt-clear";
  clear.textContent = "Clear";
  clear.addEventListener("click", () => onPrompt(null));
  $("prompt-buttons").replaceChildren(...buttons, clear);
  renderLook();
}

// ---------------------------------------------------------------- start

async function boot() {
  $("login-form").addEventListener("submit", onLoginSubmit);
  $("logout").addEventListener("click", onLogout);
  $("end-call").addEventListener("click", onEndCall);
  $("close-call").addEventListener("click", onCloseCall);
  $("notice-close").addEventListener("click", hideNotice);
  bindLook();
  setInterval(refreshWaitedTimes, 15000);
  setInterval(renderLink, 2000); // a report that stops coming is said to be stale
  setInterval(refreshToday, TODAY_REFRESH_MS);
  try {
    const me = await api("/api/me");
    if (me.ok) {
      await enterClinic(me.body);
      return;
    }
  } catch {
    // fall through to the login form
  }
  showLogin();
}

boot();

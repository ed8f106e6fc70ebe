// Porchlight clinic page, the care side: today's appointments (call a patient at home: their
// kiosk rings), help requests from patients, and the outcome of each call. Loaded beside
// clinic.js, which owns the socket: this sends through clinic.js's send() and hears every
// message as a "porchlight:message" event on the document. Protocol: docs/protocol.md.

import { send } from "./clinic.js";
import { api, el } from "./http.js";

const $ = (testid) => document.querySelector(`[data-testid="${testid}"]`);
const REFRESH_MS = 15000;
const ENDED = new Set(["called", "completed", "home_visit", "technical_failure", "cancelled"]);
const STATUS_TEXT = {
  booked: "Booked",
  due: "Due now",
  joined: "In the waiting room",
  called: "Called",
  cancelled: "Cancelled",
  completed: "Completed by video",
  home_visit: "Switched to a home visit",
  technical_failure: "Technical failure",
  did_not_attend: "Did not attend",
};

const care = {
  live: false,
  appointments: [],
  help: [],
  ringing: null, // {ringId, patientId, name, auto, timer} once the hub says "ringing"
  asked: null, // patient id we asked to ring, until the hub answers
  lastCall: null, // {callId, name}: the call whose outcome is asked for
  timer: null,
};

function clock(iso) {
  return new Date(iso).toLocaleTimeString("en-GB", { hour: "2-digit", minute: "2-digit" });
}

function say(text) {
  const box = $("care-message");
  box.textContent = text || "";
  box.hidden = !text;
}

// ---------------------------------------------------------------- appointments and ringing

function nameOf(patientId) {
  const found = care.appointments.find((a) => a.patient_id === patientId);
  return found ? found.patient_name : "the patient";
}

function callControls(appt) {
  const ringing = care.ringing && care.ringing.patientId === appt.patient_id;
  if (ringing) {
    const words = care.ringing.auto ? "Ringing · answers by itself in 10 s" : "Ringing…";
    const cancel = el("button", { type: "button", class: "button button-quiet", testid: "ring-cancel" }, "Stop");
    cancel.addEventListener("click", () => stopRinging("cancelled"));
    return [el("span", { class: "ringing", testid: `ringing-${appt.patient_id}`, role: "status" }, words), cancel];
  }
  if (ENDED.has(appt.status) || appt.status === "joined") return [];
  const button = el(
    "button",
    { type: "button", class: "button button-primary", testid: `ring-${appt.patient_id}` },
    "Call now",
  );
  button.disabled = Boolean(care.ringing || care.asked);
  button.addEventListener("click", () => ring(appt.patient_id));
  return [button];
}

function renderAppointments() {
  const list = $("appointments-list");
  list.replaceChildren(
    ...care.appointments.map((appt) =>
      el(
        "li",
        { class: "appointment", testid: `appointment-${appt.appointment_id}`, "data-status": appt.status },
        el("span", { class: "appointment-time" }, appt.kind === "unscheduled" ? "—" : clock(appt.starts_at)),
        el("span", { class: "appointment-name" }, appt.patient_name),
        el("span", { class: "appointment-status", testid: "appointment-status" }, STATUS_TEXT[appt.status] || appt.status),
        el("span", { class: "appointment-actions" }, ...callControls(appt)),
      ),
    ),
  );
  $("appointments-empty").hidden = care.appointments.length > 0;
}

function ring(patientId) {
  say("");
  if (!send({ type: "ring", patient_id: patientId })) {
    say("Not connected to the hub yet; try again in a moment.");
    return;
  }
  care.asked = patientId;
  renderAppointments();
}

function stopRinging(reason) {
  const ringing = care.ringing;
  if (!ringing) return;
  clearTimeout(ringing.timer);
  send({ type: "ring_cancel", ring_id: ringing.ringId, reason });
}

function onRinging(message) {
  care.asked = null;
  const timer = setTimeout(() => stopRinging("no_answer"), (message.timeout_s || 60) * 1000);
  care.ringing = {
    ringId: message.ring_id,
    patientId: message.patient_id,
    auto: message.auto_answer,
    timer,
  };
  renderAppointments();
}

function onRingEnded(message) {
  const ringing = care.ringing;
  if (!ringing || ringing.ringId !== message.ring_id) return;
  clearTimeout(ringing.timer);
  care.ringing = null;
  const name = nameOf(ringing.patientId);
  const words = {
    no_answer: `${name} did not answer. The kiosk shows a missed call; they can call back.`,
    cancelled: "You stopped ringing.",
    could_not_connect: `The call to ${name} could not be connected; try again.`,
  };
  say(words[message.reason] || "The ringing stopped.");
  renderAppointments();
}

// ---------------------------------------------------------------- help requests

function renderHelp() {
  const list = $("help-list");
  list.replaceChildren(
    ...care.help.map((help) => {
      const done = el("button", { type: "button", class: "button button-quiet", testid: `help-done-${help.record_id}` }, "Called them");
      done.addEventListener("click", async () => {
        const result = await api(`/api/help-requests/${help.record_id}/done`, { method: "POST" });
        if (result.ok) await refresh();
      });
      return el(
        "li",
        { class: "help", testid: `help-${help.record_id}` },
        el("strong", {}, help.patient_name),
        ` asked for help at ${clock(help.asked_at)}`,
        done,
      );
    }),
  );
  $("help-section").hidden = care.help.length === 0;
}

// ---------------------------------------------------------------- outcomes

function showOutcome(callId, name) {
  care.lastCall = { callId, name };
  $("outcome-patient").textContent = name;
  $("outcome-reason").value = "";
  $("outcome-saved").hidden = true;
  $("outcome-error").hidden = true;
  for (const button of document.querySelectorAll("[data-outcome]")) button.disabled = false;
  $("outcome-form").hidden = false;
}

async function saveOutcome(outcome) {
  const call = care.lastCall;
  if (!call) return;
  const reason = $("outcome-reason").value.trim();
  const error = $("outcome-error");
  if (outcome === "technical_failure" && !reason) {
    error.textContent = "Say briefly what went wrong, then choose Technical failure again.";
    error.hidden = false;
    $("outcome-reason").focus();
    return;
  }
  const result = await api(`/api/calls/${encodeURIComponent(call.callId)}/outcome`, {
    method: "POST",
    body: { outcome, reason: reason || null },
  });
  if (!result.ok) {
    error.textContent = (result.body && result.body.message) || "The outcome could not be saved.";
    error.hidden = false;
    return;
  }
  error.hidden = true;
  for (const button of document.querySelectorAll("[data-outcome]")) button.disabled = true;
  const saved = $("outcome-saved");
  saved.textContent =
    outcome === "home_visit"
      ? "Saved: a home visit is on the team's follow-up list."
      : `Saved: ${STATUS_TEXT[outcome].toLowerCase()}.`;
  saved.hidden = false;
  await refresh();
}

// ---------------------------------------------------------------- data and wiring

async function refresh() {
  if (!care.live) return;
  const [appts, help] = await Promise.all([api("/api/appointments"), api("/api/help-requests")]);
  if (appts.ok) care.appointments = appts.body;
  if (help.ok) care.help = help.body;
  renderAppointments();
  renderHelp();
}

function onMessage(event) {
  const message = event.detail;
  switch (message.type) {
    case "ringing":
      onRinging(message);
      break;
    case "ring_ended":
      onRingEnded(message);
      break;
    case "call_started":
      if (care.ringing && care.ringing.patientId === message.patient_id) {
        clearTimeout(care.ringing.timer);
        care.ringing = null;
      }
      care.asked = null;
      $("outcome-form").hidden = true;
      refresh();
      break;
    case "error":
      if (care.asked) {
        care.asked = null;
        renderAppointments();
      }
      break;
    default:
      break;
  }
}

function start() {
  care.live = true;
  $("care-panel").hidden = false;
  refresh();
  clearInterval(care.timer);
  care.timer = setInterval(refresh, REFRESH_MS);
}

function stop() {
  care.live = false;
  clearInterval(care.timer);
  if (care.ringing) clearTimeout(care.ringing.timer);
  care.ringing = null;
  care.asked = null;
  $("care-panel").hidden = true;
  $("outcome-form").hidden = true;
}

document.addEventListener("porchlight:message", onMessage);
document.addEventListener("porchlight:clinic-ready", start);
document.addEventListener("porchlight:logged-out", stop);
document.addEventListener("porchlight:call-finished", (event) => {
  showOutcome(event.detail.callId, event.detail.name);
});
for (const button of document.querySelectorAll("[data-outcome]")) {
  button.addEventListener("click", () => saveOutcome(button.dataset.outcome));
}
$("outcome-close").addEventListener("click", () => {
  $("outcome-form").hidden = true;
});

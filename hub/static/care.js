// Porchlight clinic page, the care side: today's appointments (call a patient at home: their
// kiosk rings), booking a video appointment, help requests from patients (pushed by the hub
// the moment one arrives; a slow poll catches any missed), and the outcome of each call. Loaded beside
// clinic.js, which owns the socket: this sends through clinic.js's send() and hears every
// message as a "porchlight:message" event on the document. Protocol: docs/protocol.md.

import { send } from "./clinic.js";
import {
  PICK_BOTH,
  PICK_CALLER,
  book,
  clinicians,
  fillCallers,
  myUsername,
  startsAt,
  todayValue,
  when,
  whoCalls,
} from "./booking.js";
import { api, el, messageOf } from "./http.js";

const $ = (testid) => document.querySelector(`[data-testid="${testid}"]`);
const REFRESH_MS = 15000; // today's appointments
const HELP_POLL_MS = 60000; // help requests are pushed; this only catches one a page missed
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
  helpTimer: null,
  fresh: new Map(), // record id → push number: pushed since the page looked, highlighted
  pushes: 0, // help requests pushed so far
  looks: 0, // fetches of the help list started so far
  patients: null, // the care teams' patients, for booking (loaded when the form opens)
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
        el(
          "span",
          { class: "appointment-name" },
          appt.patient_name,
          el("span", { class: "appointment-caller", testid: "appointment-caller" }, whoCalls(appt)),
        ),
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
        if (result.ok) await refreshHelp();
      });
      const fresh = care.fresh.has(help.record_id);
      return el(
        "li",
        { class: fresh ? "help help-fresh" : "help", testid: `help-${help.record_id}` },
        fresh ? el("span", { class: "help-new" }, "New") : "",
        el("strong", {}, help.patient_name),
        ` asked for help at ${clock(help.asked_at)}`,
        done,
      );
    }),
  );
  const section = $("help-section");
  section.hidden = care.help.length === 0;
  section.classList.toggle("help-alert", care.fresh.size > 0);
  document.title = care.help.length ? `(${care.help.length}) Help asked · Porchlight clinic` : "Porchlight clinic";
}

function onHelpRequest(message) {
  // Pushed by the hub the moment the kiosk's request was stored: show it at once.
  if (!care.live) return;
  const { record_id, patient_id, patient_name, asked_at, received_at } = message;
  if (!care.help.some((h) => h.record_id === record_id)) {
    care.help = [{ record_id, patient_id, patient_name, asked_at, received_at }, ...care.help];
  }
  care.pushes += 1;
  care.fresh.set(record_id, care.pushes);
  renderHelp();
}

async function refreshHelp() {
  if (!care.live) return;
  const look = ++care.looks;
  const pushesBefore = care.pushes;
  const help = await api("/api/help-requests");
  if (!help.ok || look !== care.looks) return; // a newer look is on its way: it decides
  const open = new Set(help.body.map((h) => h.record_id));
  // One pushed while this look was under way may be newer than the hub's answer: keep it.
  const newer = (id) => (care.fresh.get(id) || 0) > pushesBefore;
  const kept = care.help.filter((h) => !open.has(h.record_id) && newer(h.record_id));
  care.help = [...kept, ...help.body];
  for (const id of [...care.fresh.keys()]) if (!open.has(id) && !newer(id)) care.fresh.delete(id);
  renderHelp();
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
  const appts = await api("/api/appointments");
  if (appts.ok) care.appointments = appts.body;
  renderAppointments();
}

// ---------------------------------------------------------------- booking

function bookingForm() {
  // Built here (not in clinic.html) so the care side stays in this script.
  const select = el("select", { id: "care-book-patient", testid: "care-book-patient", required: "" });
  const date = el("input", { id: "care-book-date", type: "date", required: "", testid: "care-book-date" });
  const time = el("input", { id: "care-book-time", type: "time", step: "300", required: "", testid: "care-book-time" });
  const caller = el("select", { id: "care-book-caller", testid: "care-book-caller", required: "" });
  caller.append(el("option", { value: "" }, "Choose the patient first"));
  const error = el("p", { class: "form-error", role: "alert", testid: "care-book-error" });
  const saved = el("p", { class: "care-book-saved", role: "status", testid: "care-book-saved" });
  error.hidden = true;
  saved.hidden = true;
  const close = el("button", { type: "button", class: "button button-quiet", testid: "care-book-close" }, "Close");
  const form = el(
    "form",
    { class: "care-book", testid: "care-book-form", novalidate: "", "aria-labelledby": "care-book-title" },
    el("h3", { id: "care-book-title" }, "Book a video appointment"),
    el(
      "div",
      { class: "care-book-fields" },
      el("div", { class: "care-book-field" }, el("label", { for: "care-book-patient" }, "Patient"), select),
      el("div", { class: "care-book-field" }, el("label", { for: "care-book-date" }, "Date"), date),
      el("div", { class: "care-book-field" }, el("label", { for: "care-book-time" }, "Time"), time),
      el("div", { class: "care-book-field" }, el("label", { for: "care-book-caller" }, "Who will call"), caller),
      el("button", { type: "submit", class: "button button-primary", testid: "care-book-submit" }, "Book appointment"),
      close,
    ),
    error,
    saved,
  );
  form.hidden = true;
  select.addEventListener("change", async () => {
    // Who may call is the chosen patient's care team's clinicians; me first if I am one.
    const patientId = select.value;
    if (!patientId) return;
    const [list, me] = await Promise.all([clinicians(patientId), myUsername()]);
    if (select.value !== patientId) return; // another patient chosen meanwhile
    if (list === null) return show(error, "The care team's clinicians could not be loaded. Try again.");
    fillCallers(caller, list, me);
  });
  const show = (box, text) => {
    box.textContent = text || "";
    box.hidden = !text;
  };
  close.addEventListener("click", () => {
    form.hidden = true;
    $("care-book-open").focus();
  });
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    show(saved, "");
    if (!select.value) return show(error, "Choose the patient.");
    if (!startsAt(date.value, time.value)) return show(error, PICK_BOTH);
    if (!caller.value && caller.options.length > 1) return show(error, PICK_CALLER);
    const result = await book(select.value, date.value, time.value, caller.value);
    if (!result.ok) return show(error, messageOf(result, "The appointment could not be booked."));
    show(error, "");
    const who = whoCalls(result.body);
    show(saved, `Booked: ${result.body.patient_name}, ${when(result.body.starts_at)}${who ? `; ${who}` : ""}. Their kiosk shows it now.`);
    time.value = "";
    await refresh();
  });
  return form;
}

async function openBooking() {
  const form = $("care-book-form");
  form.hidden = false;
  $("care-book-date").value ||= todayValue();
  $("care-book-date").min = todayValue();
  const select = $("care-book-patient");
  const error = $("care-book-error");
  const patients = await api("/api/care/patients");
  if (!patients.ok) {
    error.textContent = messageOf(patients, "Your patients could not be loaded. Try again.");
    error.hidden = false;
    return;
  }
  const chosen = select.value;
  select.replaceChildren(
    el("option", { value: "" }, "Choose a patient…"),
    ...patients.body.map((p) =>
      el("option", { value: p.patient_id }, p.team_name ? `${p.display_name} (${p.team_name})` : p.display_name),
    ),
  );
  select.value = chosen;
  if (select.value) select.dispatchEvent(new Event("change")); // its callers again
  select.focus();
}

function installBooking() {
  const head = $("care-panel").querySelector(".section-head");
  const open = el("button", { type: "button", class: "button button-primary", testid: "care-book-open" }, "Book a video appointment");
  open.addEventListener("click", openBooking);
  head.append(open);
  head.after(bookingForm());
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
    case "help_request":
      onHelpRequest(message);
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
  refreshHelp();
  clearInterval(care.timer);
  clearInterval(care.helpTimer);
  care.timer = setInterval(refresh, REFRESH_MS);
  care.helpTimer = setInterval(refreshHelp, HELP_POLL_MS);
}

function stop() {
  care.live = false;
  clearInterval(care.timer);
  clearInterval(care.helpTimer);
  care.fresh.clear();
  $("care-book-form").hidden = true;
  if (care.ringing) clearTimeout(care.ringing.timer);
  care.ringing = null;
  care.asked = null;
  $("care-panel").hidden = true;
  $("outcome-form").hidden = true;
}

installBooking();
// A push missed while the socket was down or the tab hidden: look again at once on coming
// back, rather than waiting for the slow poll.
new MutationObserver(() => {
  if ($("connection-state").dataset.state === "live") refreshHelp();
}).observe($("connection-state"), { attributes: true, attributeFilter: ["data-state"] });
document.addEventListener("visibilitychange", () => {
  if (!document.hidden) refreshHelp();
});
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

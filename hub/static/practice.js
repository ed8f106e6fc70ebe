// Porchlight clinic page, practice: each care team's practice patient, a simulated kiosk a
// clinician may call at any time to rehearse (admit, look closely, take stills, record an
// outcome) without a real patient. Practice calls never count in the evidence. The hub starts
// the practice kiosk on demand (POST /api/practice/{id}/start); the call itself is an ordinary
// ring through clinic.js's socket (hub/practice.py, docs/patient.md "Practice").

import { send } from "./clinic.js";
import { api, el } from "./http.js";

const $ = (testid) => document.querySelector(`[data-testid="${testid}"]`);

const practice = {
  patients: [], // [{patient_id, display_name, team_id, team_name, running}]
  busy: null, // patient id being started, rung or called
  calling: null, // patient id of the practice call on screen
};

function isPractice(patientId) {
  return practice.patients.some((p) => p.patient_id === patientId);
}

function say(text) {
  const box = $("practice-status");
  if (!box) return;
  box.textContent = text || "";
  box.hidden = !text;
}

function setButtons() {
  for (const button of document.querySelectorAll("[data-practice-action]")) {
    button.disabled = Boolean(practice.busy);
  }
}

function panel() {
  let section = $("practice-panel");
  if (section) return section;
  section = el(
    "section",
    { class: "card practice", testid: "practice-panel", "aria-labelledby": "practice-title" },
    el("h2", { id: "practice-title" }, "Practice"),
    el(
      "p",
      { class: "empty" },
      "Rehearse a video call with a pretend patient: a simulated kiosk with a test picture " +
        "and a tone, and a check-in already sent. Practice calls never count in the evidence.",
    ),
    el("ul", { class: "appointments-list", testid: "practice-list" }),
    el("p", { class: "care-message", testid: "practice-status", role: "status", hidden: "" }),
  );
  $("clinic-view").append(section);
  return section;
}

function render() {
  const section = panel();
  section.hidden = practice.patients.length === 0;
  const list = $("practice-list");
  list.replaceChildren(
    ...practice.patients.map((p) => {
      const call = el(
        "button",
        {
          type: "button",
          class: "button button-primary",
          testid: `practice-call-${p.patient_id}`,
          "data-practice-action": "call",
        },
        "Practice call",
      );
      call.addEventListener("click", () => ring(p.patient_id));
      const wait = el(
        "button",
        {
          type: "button",
          class: "button button-quiet",
          testid: `practice-waiting-${p.patient_id}`,
          "data-practice-action": "waiting",
        },
        "Put in waiting room",
      );
      wait.addEventListener("click", () => intoWaitingRoom(p.patient_id));
      const team = practice.patients.length > 1 ? ` · ${p.team_name}` : "";
      const row = el(
        "li",
        { class: "appointment", testid: `practice-${p.patient_id}` },
        el("span", { class: "appointment-name" }, `${p.display_name}${team}`),
        el("span", { class: "appointment-actions" }, call, wait),
      );
      // The name on its own line, the buttons under it (not care.css's timetable columns).
      Object.assign(row.style, { display: "flex", flexDirection: "column", alignItems: "flex-start" });
      return row;
    }),
  );
  setButtons();
}

async function startKiosk(patientId, path) {
  practice.busy = patientId;
  setButtons();
  say("Starting the practice kiosk…");
  const reply = await api(`/api/practice/${encodeURIComponent(patientId)}/${path}`, {
    method: "POST",
  });
  if (!reply.ok) {
    practice.busy = null;
    setButtons();
    say((reply.body && reply.body.message) || "The practice kiosk did not start; try again.");
    return false;
  }
  return true;
}

async function ring(patientId) {
  if (!(await startKiosk(patientId, "start"))) return;
  if (!send({ type: "ring", patient_id: patientId })) {
    practice.busy = null;
    setButtons();
    say("Not connected to the hub yet; try again in a moment.");
    return;
  }
  say("Ringing the practice patient…");
}

async function intoWaitingRoom(patientId) {
  if (!(await startKiosk(patientId, "waiting-room"))) return;
  practice.busy = null;
  setButtons();
  say("The practice patient pressed their button: admit them from the waiting room.");
}

function showBanner(show) {
  let banner = $("practice-banner");
  if (!show) {
    if (banner) banner.remove();
    return;
  }
  if (banner) return;
  // Big, high-contrast and in words: nobody must mistake a rehearsal for a patient.
  banner = el(
    "p",
    { testid: "practice-banner", role: "status" },
    "PRACTICE — a pretend patient, not a real one. Nothing here counts in the evidence.",
  );
  Object.assign(banner.style, {
    margin: "0 0 0.75rem",
    padding: "0.6rem 0.9rem",
    borderRadius: "8px",
    background: "#fff1d6",
    color: "#5c3200",
    border: "2px solid #8a4b00",
    fontWeight: "700",
    fontSize: "1.1rem",
  });
  $("call-view").prepend(banner);
}

function onMessage(event) {
  const message = event.detail;
  switch (message.type) {
    case "ringing":
      if (isPractice(message.patient_id)) say("Ringing… the practice patient answers in a moment.");
      break;
    case "ring_ended":
      if (practice.busy) {
        practice.busy = null;
        setButtons();
        say("The practice call did not connect; try again.");
      }
      break;
    case "call_started":
      if (isPractice(message.patient_id)) {
        practice.busy = message.patient_id;
        practice.calling = message.patient_id;
        setButtons();
        showBanner(true);
        say("In a practice call.");
      } else {
        showBanner(false);
      }
      break;
    case "error":
      if (practice.busy && !practice.calling) {
        practice.busy = null;
        setButtons();
        say(message.message || "The practice call could not start.");
      }
      break;
    default:
      break;
  }
}

function onCallFinished(event) {
  if (!isPractice(event.detail.patientId)) return;
  practice.busy = null;
  practice.calling = null;
  setButtons();
  say("Practice call ended. Record an outcome to rehearse it: it is not counted.");
}

async function start() {
  const reply = await api("/api/practice");
  practice.patients = reply.ok ? reply.body : []; // nurses and others: no practice calls
  render();
}

function stop() {
  practice.patients = [];
  practice.busy = null;
  practice.calling = null;
  showBanner(false);
  const section = $("practice-panel");
  if (section) section.remove();
}

document.addEventListener("porchlight:message", onMessage);
document.addEventListener("porchlight:clinic-ready", start);
document.addEventListener("porchlight:logged-out", stop);
document.addEventListener("porchlight:call-finished", onCallFinished);
// The banner stays with the finished call until the clinician goes back to the waiting room.
document.addEventListener("click", (event) => {
  if (event.target.closest && event.target.closest('[data-testid="close-call"]')) showBanner(false);
});

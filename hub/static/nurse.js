// Porchlight nurse page: add patients, make one-time set-up codes (with QR), watch kiosks,
// book video appointments and choose each patient's kiosk settings.
// Everything shown comes from the hub's API; no patient data is kept in the browser.

import { api, el, messageOf as message } from "./http.js";
import {
  PICK_BOTH,
  PICK_CALLER,
  book,
  cancel,
  clinicians,
  fillCallers,
  move,
  myUsername,
  startsAt,
  todayValue,
  when,
  whoCalls,
} from "./booking.js";

const $ = (id) => document.querySelector(`[data-testid="${id}"]`);

const state = { me: null, teams: [], patients: [], devices: [], usbUrl: null, panel: null };
const REFRESH_MS = 15000;
let refreshTimer = null;

function showNotice(text) {
  $("notice-text").textContent = text;
  $("notice").hidden = false;
}

function time24(iso) {
  if (!iso) return "never";
  const d = new Date(iso);
  return d.toLocaleString("en-GB", { hour12: false, day: "numeric", month: "short", hour: "2-digit", minute: "2-digit" });
}

// ---------------------------------------------------------------- login

function showLogin(text) {
  state.me = null;
  clearInterval(refreshTimer);
  $("nurse-view").hidden = true;
  $("session-bar").hidden = true;
  $("login-view").hidden = false;
  const error = $("login-error");
  error.textContent = text || "";
  error.hidden = !text;
}

async function login(event) {
  event.preventDefault();
  const username = $("login-username").value.trim();
  const password = $("login-password").value;
  if (!username || !password) {
    showLogin("Type your username and password.");
    return;
  }
  const result = await api("/api/login", { method: "POST", body: { username, password } });
  if (!result.ok) {
    showLogin(message(result, "Could not log in. Try again."));
    return;
  }
  $("login-password").value = "";
  await start(result.body);
}

async function logout() {
  await api("/api/logout", { method: "POST" });
  showLogin("You have logged out.");
}

async function start(me) {
  if (me.role !== "nurse") {
    showLogin("This page is for nurses who set up kiosks. Log in with a nurse account.");
    return;
  }
  state.me = me;
  $("user-name").textContent = me.display_name;
  $("login-view").hidden = true;
  $("session-bar").hidden = false;
  $("nurse-view").hidden = false;
  const teams = await api("/api/teams");
  state.teams = teams.ok ? teams.body : [];
  const select = $("patient-team");
  select.replaceChildren(...state.teams.map((t) => el("option", { value: t.team_id }, t.name)));
  await refresh();
  clearInterval(refreshTimer);
  refreshTimer = setInterval(refresh, REFRESH_MS);
}

// ---------------------------------------------------------------- lists

async function refresh() {
  const [patients, devices] = await Promise.all([api("/api/nurse/patients"), api("/api/nurse/devices")]);
  if (patients.status === 401 || devices.status === 401) {
    showLogin("Your session has ended. Log in again.");
    return;
  }
  state.patients = patients.ok ? patients.body : [];
  state.devices = devices.ok ? devices.body : [];
  drawPatients();
  drawDevices();
}

function codeSummary(enrolments) {
  const waiting = enrolments.filter((e) => e.status === "waiting").length;
  const used = enrolments.filter((e) => e.status === "used").length;
  const parts = [];
  if (waiting) parts.push(`${waiting} waiting`);
  if (used) parts.push(`${used} used`);
  return parts.join(", ") || "none";
}

function drawPatients() {
  const body = $("patient-list").querySelector("tbody");
  body.replaceChildren(
    ...state.patients.map((p) =>
      el(
        "tr",
        { testid: "patient-row", "data-patient-id": p.patient_id },
        el("td", { testid: "patient-row-name" }, p.display_name),
        el("td", { testid: "patient-row-nhs" }, p.nhs_number || "—"),
        el("td", {}, p.team_name || "—"),
        el("td", { testid: "patient-row-codes" }, codeSummary(p.enrolments)),
        el(
          "td",
          { class: "row-actions" },
          el("button", { type: "button", class: "button button-primary", testid: "enrol-button" }, "Set up a kiosk"),
          el("button", { type: "button", class: "button button-quiet", testid: "plan-button" }, "Appointments and settings"),
        ),
      ),
    ),
  );
  for (const row of body.querySelectorAll("tr")) {
    const id = row.dataset.patientId;
    row.querySelector('[data-testid="enrol-button"]').addEventListener("click", () => createEnrolment(id));
    row.querySelector('[data-testid="plan-button"]').addEventListener("click", () => openPanel(id));
  }
  $("patients-empty").hidden = state.patients.length > 0;
}

function selfTestCell(test) {
  if (!test) return el("td", { testid: "device-selftest" }, el("span", { class: "pill pill-muted" }, "not run yet"));
  const problems = test.results.filter((r) => r.status === "problem");
  const pill = problems.length
    ? el("span", { class: "pill pill-problem", testid: "device-selftest-summary" }, `${problems.length} problem${problems.length > 1 ? "s" : ""}`)
    : el("span", { class: "pill pill-ok", testid: "device-selftest-summary" }, "all fine");
  const list = el(
    "ul",
    { class: "checks" },
    ...test.results.map((r) => el("li", { class: `check-${r.status}`, testid: `selftest-${r.check}` }, r.words)),
  );
  return el("td", { testid: "device-selftest" }, pill, ` ${time24(test.ran_at)} (${test.trigger})`, list);
}

function drawDevices() {
  const body = $("device-list").querySelector("tbody");
  body.replaceChildren(
    ...state.devices.map((d) => {
      const revoked = Boolean(d.revoked_at);
      const action = revoked
        ? el("span", { class: "pill pill-muted", testid: "device-revoked" }, `withdrawn ${time24(d.revoked_at)}`)
        : el("button", { type: "button", class: "button button-quiet", testid: "revoke-button" }, "Withdraw");
      return el(
        "tr",
        { testid: "device-row", "data-device-id": d.device_id },
        el("td", { testid: "device-patient" }, d.patient_name || "—"),
        el("td", { testid: "device-id" }, d.device_id.slice(0, 8)),
        el("td", { testid: "device-last-seen" }, time24(d.last_seen)),
        selfTestCell(d.self_test),
        el("td", {}, action),
      );
    }),
  );
  for (const row of body.querySelectorAll("tr")) {
    const button = row.querySelector('[data-testid="revoke-button"]');
    if (button) button.addEventListener("click", () => revoke(row.dataset.deviceId, button));
  }
  $("devices-empty").hidden = state.devices.length > 0;
}

// ---------------------------------------------------------------- actions

async function addPatient(event) {
  event.preventDefault();
  const error = $("patient-error");
  const display_name = $("patient-name").value.trim();
  const nhs = $("patient-nhs").value.trim();
  if (!display_name) {
    error.textContent = "Type the name to show for the patient.";
    error.hidden = false;
    return;
  }
  const body = { display_name, team_id: $("patient-team").value };
  if (nhs) body.nhs_number = nhs;
  const result = await api("/api/nurse/patients", { method: "POST", body });
  if (!result.ok) {
    error.textContent = message(result, "The patient could not be added.");
    error.hidden = false;
    return;
  }
  error.hidden = true;
  $("patient-name").value = "";
  $("patient-nhs").value = "";
  await refresh();
}

async function createEnrolment(patientId) {
  const result = await api(`/api/nurse/patients/${encodeURIComponent(patientId)}/enrolments`, { method: "POST" });
  if (!result.ok) {
    showNotice(message(result, "The set-up code could not be made."));
    return;
  }
  const e = result.body;
  $("sheet-patient").textContent = e.patient_name;
  $("sheet-code").textContent = e.code_display;
  $("sheet-qr").src = e.qr_svg;
  $("sheet-expires").textContent = time24(e.expires);
  if (state.usbUrl) URL.revokeObjectURL(state.usbUrl);
  state.usbUrl = URL.createObjectURL(new Blob([`${e.enrol_uri}\n`], { type: "text/plain" }));
  $("sheet-usb").href = state.usbUrl;
  $("enrol-sheet").hidden = false;
  $("enrol-sheet").scrollIntoView({ block: "start" });
  await refresh();
}

function closeSheet() {
  // The code is shown once; take it off the screen (and out of the page) when done.
  $("enrol-sheet").hidden = true;
  $("sheet-code").textContent = "";
  $("sheet-qr").removeAttribute("src");
  if (state.usbUrl) URL.revokeObjectURL(state.usbUrl);
  state.usbUrl = null;
}

async function revoke(deviceId, button) {
  if (button.dataset.confirm !== "yes") {
    button.dataset.confirm = "yes";
    button.textContent = "Confirm: withdraw this kiosk";
    button.className = "button button-danger";
    button.dataset.testid = "revoke-confirm";
    return;
  }
  const result = await api(`/api/devices/${encodeURIComponent(deviceId)}/revoke`, { method: "POST" });
  if (!result.ok) showNotice(message(result, "The kiosk could not be withdrawn."));
  await refresh();
}

// ---------------------------------------------------------------- appointments and settings

function showIn(testid, text) {
  const box = $(testid);
  box.textContent = text || "";
  box.hidden = !text;
}

async function openPanel(patientId) {
  const patient = state.patients.find((p) => p.patient_id === patientId);
  if (!patient) return;
  state.panel = { patientId, name: patient.display_name };
  $("panel-patient").textContent = patient.display_name;
  for (const id of ["book-error", "book-saved", "settings-error", "settings-saved"]) showIn(id, "");
  $("book-date").value = todayValue();
  $("book-date").min = todayValue();
  $("book-time").value = "";
  $("patient-panel").hidden = false;
  $("patient-panel").scrollIntoView({ block: "start" });
  $("book-date").focus();
  await Promise.all([loadCallers(), loadUpcoming(), loadSettings()]);
}

async function loadCallers() {
  const panel = state.panel;
  const [list, me] = await Promise.all([clinicians(panel.patientId), myUsername()]);
  if (state.panel !== panel) return;
  if (list === null) {
    showIn("book-error", "The care team's clinicians could not be loaded. Try again.");
    return;
  }
  panel.callers = list;
  panel.me = me;
  fillCallers($("book-caller"), list, me);
}

function closePanel() {
  state.panel = null;
  $("patient-panel").hidden = true;
}

async function loadUpcoming() {
  const panel = state.panel;
  if (!panel) return;
  const result = await api(`/api/patients/${encodeURIComponent(panel.patientId)}/appointments`);
  if (state.panel !== panel) return; // another patient opened meanwhile
  if (!result.ok) {
    showIn("book-error", message(result, "The appointments could not be loaded. Try again."));
    return;
  }
  drawUpcoming(result.body);
}

function drawUpcoming(appointments) {
  $("upcoming-list").replaceChildren(...appointments.map(upcomingItem));
  $("upcoming-empty").hidden = appointments.length > 0;
}

function upcomingItem(appt) {
  const item = el("li", { class: "upcoming-item", testid: "upcoming-item", "data-appointment-id": appt.appointment_id });
  const text = el(
    "span",
    { class: "upcoming-when", testid: "upcoming-when" },
    when(appt.starts_at),
    el("span", { class: "upcoming-caller", testid: "upcoming-caller" }, whoCalls(appt)),
  );
  const status = appt.status === "due" ? el("span", { class: "pill pill-ok" }, "due now") : "";
  const moveButton = el("button", { type: "button", class: "button button-quiet", testid: "move-button" }, "Change");
  const cancelButton = el("button", { type: "button", class: "button button-quiet", testid: "cancel-button" }, "Cancel");
  const error = el("p", { class: "form-error", role: "alert", testid: "upcoming-error" });
  error.hidden = true;
  const actions = el("span", { class: "upcoming-actions" }, moveButton, cancelButton);
  item.append(text, status, actions, error);

  moveButton.addEventListener("click", () => {
    const d = new Date(appt.starts_at);
    const date = el("input", { type: "date", "aria-label": "New date", testid: "move-date", min: todayValue() });
    const time = el("input", { type: "time", step: "300", "aria-label": "New time", testid: "move-time" });
    date.value = todayValue(d);
    time.value = d.toTimeString().slice(0, 5);
    const caller = el("select", { "aria-label": "Who will call", testid: "move-caller" });
    const panel = state.panel;
    fillCallers(caller, (panel && panel.callers) || [], panel && panel.me, appt.clinician || "");
    const save = el("button", { type: "submit", class: "button button-primary", testid: "move-save" }, "Save changes");
    const keep = el("button", { type: "button", class: "button button-quiet", testid: "move-keep" }, "Keep");
    const form = el("form", { class: "move-form", novalidate: "" }, date, time, caller, save, keep);
    keep.addEventListener("click", () => loadUpcoming());
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      if (!startsAt(date.value, time.value)) return showError(error, PICK_BOTH);
      const result = await move(appt.appointment_id, date.value, time.value, caller.value);
      if (!result.ok) return showError(error, message(result, "The appointment could not be moved."));
      await loadUpcoming();
    });
    actions.replaceWith(form);
    date.focus();
  });

  cancelButton.addEventListener("click", async () => {
    if (cancelButton.dataset.confirm !== "yes") {
      cancelButton.dataset.confirm = "yes";
      cancelButton.textContent = "Confirm: cancel it";
      cancelButton.className = "button button-danger";
      cancelButton.dataset.testid = "cancel-confirm";
      return;
    }
    const result = await cancel(appt.appointment_id);
    if (!result.ok) return showError(error, message(result, "The appointment could not be cancelled."));
    await loadUpcoming();
  });
  return item;
}

function showError(box, text) {
  box.textContent = text;
  box.hidden = false;
}

async function bookAppointment(event) {
  event.preventDefault();
  const panel = state.panel;
  if (!panel) return;
  showIn("book-saved", "");
  const date = $("book-date").value;
  const time = $("book-time").value;
  if (!startsAt(date, time)) {
    showIn("book-error", PICK_BOTH);
    return;
  }
  const caller = $("book-caller").value;
  if (!caller && (panel.callers || []).length > 0) {
    showIn("book-error", PICK_CALLER);
    return;
  }
  const result = await book(panel.patientId, date, time, caller);
  if (!result.ok) {
    showIn("book-error", message(result, "The appointment could not be booked."));
    return;
  }
  showIn("book-error", "");
  const who = whoCalls(result.body);
  showIn("book-saved", `Booked: ${when(result.body.starts_at)}${who ? `; ${who}` : ""}. The kiosk shows it now.`);
  $("book-time").value = "";
  await loadUpcoming();
}

async function loadSettings() {
  const panel = state.panel;
  const result = await api(`/api/patients/${encodeURIComponent(panel.patientId)}/kiosk-settings`);
  if (state.panel !== panel) return;
  if (!result.ok) {
    showIn("settings-error", message(result, "The kiosk settings could not be loaded. Try again."));
    return;
  }
  drawSettings(result.body);
}

function drawSettings(settings) {
  $("settings-languages").replaceChildren(
    ...settings.languages.map((lang) => {
      const input = el("input", { type: "radio", name: "language", value: lang.code, testid: `language-${lang.code}` });
      input.checked = lang.code === settings.language;
      const words = lang.name === lang.english_name ? lang.name : `${lang.name} (${lang.english_name})`;
      return el("label", { class: "choice" }, input, " ", el("span", { lang: lang.code }, words));
    }),
  );
  $(settings.spoken_prompts ? "spoken-on" : "spoken-off").checked = true;
  $(settings.auto_answer ? "auto-on" : "auto-off").checked = true;
}

async function saveSettings(event) {
  event.preventDefault();
  const panel = state.panel;
  if (!panel) return;
  showIn("settings-saved", "");
  const form = $("settings-form");
  const language = form.querySelector('input[name="language"]:checked');
  const body = {
    language: language ? language.value : "",
    spoken_prompts: $("spoken-on").checked,
    auto_answer: $("auto-on").checked,
  };
  const result = await api(`/api/patients/${encodeURIComponent(panel.patientId)}/kiosk-settings`, {
    method: "PUT",
    body,
  });
  if (!result.ok) {
    showIn("settings-error", message(result, "The kiosk settings could not be saved."));
    return;
  }
  showIn("settings-error", "");
  drawSettings(result.body);
  showIn("settings-saved", "Saved. The kiosk takes the new settings up now.");
}

// ---------------------------------------------------------------- start

$("login-form").addEventListener("submit", login);
$("logout").addEventListener("click", logout);
$("patient-form").addEventListener("submit", addPatient);
$("sheet-print").addEventListener("click", () => window.print());
$("sheet-close").addEventListener("click", closeSheet);
$("book-form").addEventListener("submit", bookAppointment);
$("settings-form").addEventListener("submit", saveSettings);
$("panel-close").addEventListener("click", closePanel);
$("notice-close").addEventListener("click", () => {
  $("notice").hidden = true;
});

(async () => {
  const me = await api("/api/me");
  if (me.ok) await start(me.body);
  else showLogin("");
})();

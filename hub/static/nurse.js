// Porchlight nurse page: add patients, make one-time set-up codes (with QR), watch kiosks.
// Everything shown comes from the hub's API; no patient data is kept in the browser.

const $ = (id) => document.querySelector(`[data-testid="${id}"]`);

const state = { me: null, teams: [], patients: [], devices: [], usbUrl: null };
const REFRESH_MS = 15000;
let refreshTimer = null;

async function api(path, options = {}) {
  const init = { credentials: "same-origin", headers: {}, ...options };
  if (init.body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(init.body);
  }
  const response = await fetch(path, init);
  let body = null;
  try {
    body = await response.json();
  } catch {
    body = null;
  }
  return { ok: response.ok, status: response.status, body };
}

function message(result, fallback) {
  return (result.body && result.body.message) || fallback;
}

function showNotice(text) {
  $("notice-text").textContent = text;
  $("notice").hidden = false;
}

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key === "testid") node.dataset.testid = value;
    else if (key === "class") node.className = value;
    else node.setAttribute(key, value);
  }
  for (const child of children) {
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
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
          {},
          el("button", { type: "button", class: "button button-primary", testid: "enrol-button" }, "Set up a kiosk"),
        ),
      ),
    ),
  );
  for (const row of body.querySelectorAll("tr")) {
    row.querySelector("button").addEventListener("click", () => createEnrolment(row.dataset.patientId));
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

// ---------------------------------------------------------------- start

$("login-form").addEventListener("submit", login);
$("logout").addEventListener("click", logout);
$("patient-form").addEventListener("submit", addPatient);
$("sheet-print").addEventListener("click", () => window.print());
$("sheet-close").addEventListener("click", closeSheet);
$("notice-close").addEventListener("click", () => {
  $("notice").hidden = true;
});

(async () => {
  const me = await api("/api/me");
  if (me.ok) await start(me.body);
  else showLogin("");
})();

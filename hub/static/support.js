// Porchlight support page: the fleet (filters: stale, failing, old version), the rollout and
// its progress, "check for updates now" and "request diagnostics". Everything shown is
// technical: no patient data.

import { api } from "./http.js";

const $ = (id) => document.querySelector(`[data-testid="${id}"]`);
const REFRESH_MS = 10000;
// While a device has a check to answer, look more often: it answers within a heartbeat.
const WAITING_REFRESH_MS = 2000;
const state = { filter: "", rollout: null, timer: null, selected: new Set(), waiting: false };

function notice(text) {
  $("notice").textContent = text || "";
  $("notice").hidden = !text;
}

function el(tag, text, attrs = {}) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = String(text);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, value);
  return node;
}

function ago(iso) {
  if (!iso) return "never";
  return secondsAgo(Math.max(0, (Date.now() - Date.parse(iso)) / 1000));
}

// A span the hub measured by its own clock (so a browser's clock cannot skew it).
function secondsAgo(seconds) {
  if (seconds < 90) return `${Math.round(seconds)} s ago`;
  if (seconds < 5400) return `${Math.round(seconds / 60)} min ago`;
  if (seconds < 172800) return `${Math.round(seconds / 3600)} h ago`;
  return `${Math.round(seconds / 86400)} days ago`;
}

function bytes(n) {
  if (n === null || n === undefined) return "—";
  return n >= 1e9 ? `${(n / 1e9).toFixed(1)} GB` : `${Math.round(n / 1e6)} MB`;
}

// ---------------------------------------------------------------- login

function showLogin(message) {
  clearTimeout(state.timer);
  $("fleet-view").hidden = true;
  $("session-bar").hidden = true;
  $("login-view").hidden = false;
  $("login-error").textContent = message || "";
  $("login-error").hidden = !message;
}

async function start() {
  const me = await api("/api/me");
  if (!me.ok) return showLogin();
  $("user-name").textContent = me.body.display_name || me.body.username || "";
  $("login-view").hidden = true;
  $("session-bar").hidden = false;
  $("fleet-view").hidden = false;
  await refresh();
}

function schedule() {
  // setTimeout, not setInterval: the pace follows whether a check is being waited for.
  clearTimeout(state.timer);
  state.timer = setTimeout(refresh, state.waiting ? WAITING_REFRESH_MS : REFRESH_MS);
}

$("login-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const username = $("login-username").value.trim();
  const password = $("login-password").value;
  const result = await api("/api/login", { method: "POST", body: { username, password } });
  if (!result.ok) return showLogin(result.body?.message || "Could not log in.");
  $("login-password").value = "";
  await start();
});

$("logout").addEventListener("click", async () => {
  await api("/api/logout", { method: "POST" });
  showLogin();
});

// ---------------------------------------------------------------- data

async function refresh() {
  const query = state.filter ? `?filter=${encodeURIComponent(state.filter)}` : "";
  const [devices, rollouts] = await Promise.all([
    api(`/api/fleet/devices${query}`),
    api("/api/fleet/rollouts"),
  ]);
  if (devices.status === 401 || rollouts.status === 401) return showLogin("Please log in again.");
  if (devices.status === 403) return showLogin(devices.body?.message || "Support or admin only.");
  if (!devices.ok || !rollouts.ok) {
    notice("The hub did not answer; retrying.");
    return schedule();
  }
  notice("");
  renderDevices(devices.body);
  renderRollout(rollouts.body.rollouts[0] || null);
  schedule();
}

// An open "check now": the truth about when it will be answered (hub/check_requests.py).
function describeRequest(r) {
  const asked = `Check asked ${r.asked_s < 5 ? "just now" : secondsAgo(r.asked_s)}`;
  const heard = `last heard ${secondsAgo(r.last_heard_s)}`;
  if (r.state === "offline") return `${asked} — device offline, ${heard}; it will check when it is back.`;
  if (r.state === "expired") {
    return `${asked} — expired unanswered (device offline, ${heard}). It checks by itself when it is back; ask again if you need it sooner.`;
  }
  return `${asked}: the device answers within a minute.`;
}

function describeCheck(d) {
  if (d.check_request) return describeRequest(d.check_request);
  const last = d.last_check;
  if (!last) return "";
  const when = last.at ? ago(new Date(last.at * 1000).toISOString()) : "";
  const what = last.outcome === "up_to_date" ? "up to date" : `${last.outcome.replace("_", " ")}${last.version ? " " + last.version : ""}`;
  const why = last.reason && last.reason !== "up to date" ? ` (${last.reason})` : "";
  return `Checked ${when}: ${what}${why}${last.request_id ? ", as asked" : ""}`;
}

function renderDevices(data) {
  const rows = $("device-rows");
  rows.replaceChildren();
  $("device-count").textContent = `(${data.count})`;
  $("no-devices").hidden = data.count > 0;
  const shown = new Set(data.devices.map((d) => d.device_id));
  for (const id of [...state.selected]) if (!shown.has(id)) state.selected.delete(id);
  // Look every 2 s while a device that is heard from has a request open.
  state.waiting = data.devices.some((d) => d.check_request && d.check_request.state === "waiting");
  for (const d of data.devices) {
    const tr = el("tr", null, {
      "data-testid": "device-row",
      "data-device-id": d.device_id,
      "data-failing": String(d.failing),
      "data-stale": String(d.stale),
    });
    const pick = el("input", null, {
      type: "checkbox",
      "data-testid": "select-device",
      "aria-label": `Select ${d.device_id}`,
    });
    pick.checked = state.selected.has(d.device_id);
    pick.addEventListener("change", () => {
      if (pick.checked) state.selected.add(d.device_id);
      else state.selected.delete(d.device_id);
      updateSelection();
    });
    tr.append(el("td", null, { class: "pick" }));
    tr.lastChild.append(pick);
    const name = el("td", d.device_id);
    if (d.stale) name.append(el("span", "not heard from", { class: "flag warn", "data-testid": "flag-stale" }));
    if (d.failing) name.append(el("span", "failing", { class: "flag bad", "data-testid": "flag-failing" }));
    tr.append(name);
    const version = el("td", d.version || "—");
    if (d.old_version) version.append(el("span", "old", { class: "flag warn", "data-testid": "flag-old" }));
    tr.append(version);
    tr.append(el("td", ago(d.last_seen)));
    const last = d.last_result;
    const updateCell = el("td");
    updateCell.append(
      el("div", last ? `${last.outcome} ${last.version || ""}${last.reason ? ": " + last.reason : ""}` : d.phase || "—", {
        "data-testid": "device-update",
      }),
      el("div", describeCheck(d), {
        class: "check-line",
        "data-testid": "device-last-check",
        "data-check-state": d.check_request ? d.check_request.state : "none",
      }),
    );
    const open = d.check_request && d.check_request.state !== "expired";
    const check = el("button", open ? "Check asked" : "Check now", {
      type: "button",
      class: "button",
      "data-testid": "check-now",
    });
    check.disabled = Boolean(open);
    check.addEventListener("click", () => requestChecks({ device_ids: [d.device_id] }));
    updateCell.append(check);
    tr.append(updateCell);
    tr.append(el("td", d.kiosk_problems.length ? d.kiosk_problems.join(", ") : "healthy", { "data-testid": "device-kiosk" }));
    tr.append(el("td", d.outbox_depth ?? "—"));
    tr.append(el("td", bytes(d.disk_free_bytes)));
    tr.append(el("td", d.cpu_temp_c === null || d.cpu_temp_c === undefined ? "—" : `${d.cpu_temp_c.toFixed(0)} °C`));
    const test = d.last_self_test;
    tr.append(el("td", test ? (test.problems.length ? `problems: ${test.problems.join(", ")}` : "passed") + `, ${ago(test.ran_at)}` : "—"));
    const diag = el("td");
    const ask = el("button", d.diagnostics_requested ? "Requested" : "Request", {
      type: "button",
      class: "button",
      "data-testid": "request-diagnostics",
    });
    ask.disabled = d.diagnostics_requested;
    ask.addEventListener("click", () => requestDiagnostics(d.device_id));
    diag.append(ask);
    if (d.has_diagnostics) {
      const view = el("button", "View", { type: "button", class: "button quiet", "data-testid": "view-diagnostics" });
      view.addEventListener("click", () => showDiagnostics(d.device_id));
      diag.append(view);
    }
    tr.append(diag);
    rows.append(tr);
  }
  updateSelection();
}

function updateSelection() {
  const count = state.selected.size;
  $("check-selected").disabled = count === 0;
  $("check-selected").textContent = count ? `Check ${count} selected now` : "Check selected now";
}

function renderRollout(rollout) {
  state.rollout = rollout;
  $("rollout").hidden = !rollout;
  $("no-rollout").hidden = Boolean(rollout);
  if (!rollout) return;
  $("rollout-version").textContent = rollout.version;
  $("rollout-from").textContent = rollout.from_version || "—";
  $("rollout-status").textContent = rollout.status.replace("_", " ");
  $("rollout-status").dataset.status = rollout.status;
  $("rollout-stage").textContent = rollout.stage_name;
  $("rollout-reason").textContent = rollout.reason;
  const list = $("rollout-progress");
  list.replaceChildren();
  for (const stage of rollout.stages) {
    const item = el("li", null, {
      class: "stage",
      "data-testid": "rollout-stage-row",
      "data-current": String(stage.stage === rollout.stage),
    });
    item.append(el("span", `${stage.name}: ${stage.healthy} healthy, ${stage.failed} failed of ${stage.devices}`));
    const bar = el("div", null, { class: "stage-bar", role: "img", "aria-label": `${stage.healthy} healthy, ${stage.failed} failed of ${stage.devices}` });
    const total = Math.max(stage.devices, 1);
    // CSSOM, not a style attribute: the page's CSP allows no inline styles.
    const healthy = el("span", null, { class: "healthy" });
    healthy.style.width = `${(100 * stage.healthy) / total}%`;
    const failed = el("span", null, { class: "failed" });
    failed.style.width = `${(100 * stage.failed) / total}%`;
    bar.append(healthy, failed);
    item.append(bar);
    list.append(item);
  }
  const failures = $("rollout-failures");
  failures.replaceChildren(...rollout.failures.map((f) => el("li", `${f.device_id}: ${f.reason}`)));
  $("rollout-pause").disabled = rollout.status !== "running";
  $("rollout-resume").disabled = rollout.status !== "paused";
  $("rollout-rollback").disabled = ["rolled_back", "superseded"].includes(rollout.status) || !rollout.from_version;
}

// ---------------------------------------------------------------- actions

async function rolloutAction(action) {
  if (!state.rollout) return;
  if (action === "rollback" && !window.confirm(`Roll every device on ${state.rollout.version} back to ${state.rollout.from_version}?`)) return;
  const result = await api(`/api/fleet/rollouts/${state.rollout.id}/${action}`, { method: "POST" });
  if (!result.ok) notice(result.body?.message || "That did not work.");
  await refresh();
}

$("rollout-pause").addEventListener("click", () => rolloutAction("pause"));
$("rollout-resume").addEventListener("click", () => rolloutAction("resume"));
$("rollout-rollback").addEventListener("click", () => rolloutAction("rollback"));

$("rollout-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const list = (text) => text.split(",").map((s) => s.trim()).filter(Boolean);
  const body = {
    version: $("rollout-form-version").value.trim(),
    canaries: list($("rollout-form-canaries").value),
    stages: list($("rollout-form-stages").value).map(Number),
    max_failure_rate: Number($("rollout-form-rate").value) / 100,
    // The rollout this page shows is the one replaced: if someone started another meanwhile,
    // the hub refuses (409) rather than replace one nobody here has seen.
    replaces: state.rollout && state.rollout.status !== "superseded" ? state.rollout.id : null,
  };
  const result = await api("/api/fleet/rollouts", { method: "POST", body });
  if (!result.ok) {
    if (result.status === 409) await refresh(); // show the rollout started meanwhile
    return notice(result.body?.message || "Could not start the rollout.");
  }
  $("rollout-form-version").value = "";
  await refresh();
});

async function requestChecks(body) {
  const result = await api("/api/fleet/check-requests", { method: "POST", body });
  if (!result.ok) return notice(result.body?.message || "Could not ask for a check.");
  notice("");
  await refresh();
}

$("check-selected").addEventListener("click", () => requestChecks({ device_ids: [...state.selected] }));
$("check-all").addEventListener("click", () => requestChecks({ all: true }));

async function requestDiagnostics(deviceId) {
  const result = await api(`/api/fleet/devices/${encodeURIComponent(deviceId)}/diagnostics-request`, { method: "POST" });
  if (!result.ok) notice(result.body?.message || "Could not ask for diagnostics.");
  await refresh();
}

async function showDiagnostics(deviceId) {
  const result = await api(`/api/fleet/devices/${encodeURIComponent(deviceId)}/diagnostics`);
  if (!result.ok) return notice(result.body?.message || "No diagnostics yet.");
  $("diagnostics-device").textContent = deviceId;
  $("diagnostics-bundle").textContent = JSON.stringify(result.body.bundle, null, 2);
  $("diagnostics-view").hidden = false;
}

$("diagnostics-close").addEventListener("click", () => {
  $("diagnostics-view").hidden = true;
});

for (const button of document.querySelectorAll("[data-filter]")) {
  button.addEventListener("click", async () => {
    state.filter = button.dataset.filter;
    for (const other of document.querySelectorAll("[data-filter]")) {
      other.setAttribute("aria-pressed", String(other === button));
    }
    await refresh();
  });
}

start();

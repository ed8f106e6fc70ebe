// Porchlight evidence page: a care team's month in numbers, with charts drawn as inline SVG
// (no libraries, nothing from a CDN). Data: GET /api/evidence; CSV: /api/evidence.csv.

import { api } from "./http.js";

const $ = (id) => document.querySelector(`[data-testid="${id}"]`);
const SVG = "http://www.w3.org/2000/svg";

const state = { me: null, teams: [] };

function showNotice(text) {
  $("notice-text").textContent = text;
  $("notice").hidden = false;
}

// ---------------------------------------------------------------- formatting

function percent(share) {
  return share === null || share === undefined ? "–" : `${Math.round(share * 100)}%`;
}

function seconds(value) {
  return value === null || value === undefined ? "–" : `${value.toFixed(1)} s`;
}

function plain(value) {
  if (value === null || value === undefined) return "–";
  return Number.isInteger(value) ? String(value) : value.toFixed(2);
}

const FORMAT = {
  attended_rate: percent,
  dna_rate: percent,
  video_share: percent,
  home_visit_share: percent,
  technical_failure_share: percent,
  share_360p_or_better: percent,
  audio_only_share: percent,
  would_use_again: percent,
  median_join_s: seconds,
  freeze_s_per_call: seconds,
};

const LABELS = [
  ["appointments", "Appointments booked"],
  ["attended", "Attended"],
  ["did_not_attend", "Did not attend"],
  ["pending", "Still to come"],
  ["attended_rate", "Attended rate"],
  ["dna_rate", "Did-not-attend rate"],
  ["unscheduled_calls", "Calls without a booking"],
  ["video_share", "Completed by video (share of outcomes)"],
  ["home_visit_share", "Switched to a home visit (share of outcomes)"],
  ["technical_failure_share", "Technical failure (share of outcomes)"],
  ["median_join_s", "Median join time (admitted → picture)"],
  ["calls_measured", "Calls measured"],
  ["share_360p_or_better", "Share of call minutes at 360p or better"],
  ["freeze_s_per_call", "Freeze seconds per call"],
  ["audio_only_share", "Share of call minutes audio-only"],
  ["ratings", "Ratings given"],
  ["mean_satisfaction", "Mean rating (1–5)"],
  ["would_use_again", "Would use video again"],
];

// ---------------------------------------------------------------- SVG charts

function svg(tag, attrs = {}, text) {
  const node = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, value);
  if (text !== undefined) node.textContent = text;
  return node;
}

// Bars side by side: items [{key, label, value, colour}], value axis 0..max.
function barChart(items, { max, format = String, height = 220 } = {}) {
  const width = 420;
  const top = 24;
  const bottom = 46;
  const plotH = height - top - bottom;
  const slot = width / Math.max(1, items.length);
  const peak = max ?? Math.max(1, ...items.map((i) => i.value));
  const root = svg("svg", {
    viewBox: `0 0 ${width} ${height}`,
    role: "img",
    "aria-label": items.map((i) => `${i.label}: ${format(i.value)}`).join("; "),
  });
  root.append(svg("line", { x1: 0, x2: width, y1: top + plotH, y2: top + plotH, class: "axis" }));
  items.forEach((item, n) => {
    const h = peak > 0 ? (item.value / peak) * plotH : 0;
    const x = n * slot + slot * 0.18;
    const w = slot * 0.64;
    const bar = svg("rect", {
      x,
      y: top + plotH - h,
      width: w,
      height: Math.max(h, 0),
      rx: 4,
      class: `bar ${item.colour || ""}`,
      "data-testid": `bar-${item.key}`,
      "data-value": item.value,
    });
    bar.append(svg("title", {}, `${item.label}: ${format(item.value)}`));
    root.append(bar);
    root.append(svg("text", { x: x + w / 2, y: top + plotH - h - 6, class: "bar-value" }, format(item.value)));
    root.append(svg("text", { x: x + w / 2, y: height - 24, class: "bar-label" }, item.label));
  });
  return root;
}

// One horizontal bar split into parts: [{key, label, value, colour}].
function stackedBar(parts) {
  const width = 420;
  const total = parts.reduce((sum, p) => sum + p.value, 0);
  const root = svg("svg", {
    viewBox: `0 0 ${width} 120`,
    role: "img",
    "aria-label": parts.map((p) => `${p.label}: ${p.value}`).join("; "),
  });
  let x = 0;
  for (const part of parts) {
    const w = total > 0 ? (part.value / total) * width : 0;
    const rect = svg("rect", {
      x,
      y: 10,
      width: w,
      height: 44,
      class: `bar ${part.colour}`,
      "data-testid": `bar-${part.key}`,
      "data-value": part.value,
    });
    rect.append(svg("title", {}, `${part.label}: ${part.value}`));
    root.append(rect);
    x += w;
  }
  parts.forEach((part, n) => {
    const lx = n * (width / parts.length);
    root.append(svg("rect", { x: lx, y: 74, width: 16, height: 16, class: `bar ${part.colour}` }));
    root.append(svg("text", { x: lx + 22, y: 88, class: "legend" }, `${part.label} ${part.value}`));
  });
  if (total === 0) root.append(svg("text", { x: width / 2, y: 38, class: "bar-label" }, "No appointments"));
  return root;
}

function draw(testid, chart) {
  const holder = $(testid);
  holder.replaceChildren(chart);
}

// ---------------------------------------------------------------- the page

function render(data) {
  const f = data.figures;
  $("evidence-scope").textContent = `${data.team_name} · ${data.month}`;
  $("figure-appointments").textContent = plain(f.appointments);
  const extra = f.unscheduled_calls;
  $("note-appointments").textContent = `and ${extra} call${extra === 1 ? "" : "s"} without a booking`;
  $("figure-attended-rate").textContent = percent(f.attended_rate);
  $("note-attended").textContent = `${f.attended} of ${f.attended + f.did_not_attend} decided`;
  $("figure-dna-rate").textContent = percent(f.dna_rate);
  $("note-dna").textContent = `${f.did_not_attend} appointments · ${f.pending} still to come`;
  $("figure-video-share").textContent = percent(f.video_share);
  $("note-outcomes").textContent = `of ${f.with_outcome} with an outcome`;
  $("figure-home-visit-share").textContent = percent(f.home_visit_share);
  $("figure-median-join").textContent = seconds(f.median_join_s);
  $("figure-360p-share").textContent = percent(f.share_360p_or_better);
  $("note-quality").textContent = `${f.calls_measured} calls, ${f.call_minutes.toFixed(1)} minutes measured`;
  $("figure-freeze-per-call").textContent = seconds(f.freeze_s_per_call);
  $("figure-audio-only-share").textContent = percent(f.audio_only_share);
  $("figure-would-use-again").textContent = percent(f.would_use_again);
  $("note-again").textContent = `${f.again_answers} answers`;

  draw(
    "chart-attendance",
    stackedBar([
      { key: "attended", label: "Attended", value: f.attended, colour: "c-ok" },
      { key: "did_not_attend", label: "Did not attend", value: f.did_not_attend, colour: "c-bad" },
      { key: "pending", label: "To come", value: f.pending, colour: "c-quiet" },
    ]),
  );
  draw(
    "chart-outcomes",
    barChart([
      { key: "completed", label: "Video", value: f.outcomes.completed, colour: "c-ok" },
      { key: "home_visit", label: "Home visit", value: f.outcomes.home_visit, colour: "c-mid" },
      { key: "technical_failure", label: "Tech failure", value: f.outcomes.technical_failure, colour: "c-bad" },
    ]),
  );
  const faces = { 1: "Very bad", 2: "Bad", 3: "All right", 4: "Good", 5: "Very good" };
  draw(
    "chart-satisfaction",
    barChart(
      [5, 4, 3, 2, 1].map((n) => ({
        key: `rating-${n}`,
        label: faces[n],
        value: f.satisfaction[String(n)],
        colour: n >= 4 ? "c-ok" : n === 3 ? "c-mid" : "c-bad",
      })),
    ),
  );
  draw(
    "chart-quality",
    barChart(
      [
        { key: "good-picture", label: "360p or better", value: f.share_360p_or_better ?? 0, colour: "c-ok" },
        { key: "audio-only", label: "Audio only", value: f.audio_only_share ?? 0, colour: "c-bad" },
      ],
      { max: 1, format: percent },
    ),
  );

  const body = $("figures-table").querySelector("tbody");
  body.replaceChildren(
    ...LABELS.map(([key, label]) => {
      const row = document.createElement("tr");
      row.dataset.testid = `row-${key}`;
      const name = document.createElement("th");
      name.scope = "row";
      name.textContent = label;
      const value = document.createElement("td");
      value.textContent = (FORMAT[key] || plain)(f[key]);
      row.append(name, value);
      return row;
    }),
  );
}

function query() {
  const params = new URLSearchParams();
  const team = $("team-select").value;
  const month = $("month-input").value;
  if (team) params.set("team_id", team);
  if (month) params.set("month", month);
  return params.toString();
}

async function load() {
  const q = query();
  $("csv-link").href = `/api/evidence.csv?${q}`;
  const result = await api(`/api/evidence?${q}`);
  if (result.status === 401) {
    showLogin("Your session has ended. Log in again.");
    return;
  }
  if (!result.ok) {
    showNotice((result.body && result.body.message) || "The figures could not be loaded.");
    return;
  }
  render(result.body);
  $("evidence-view").dataset.loaded = q;
}

// ---------------------------------------------------------------- login

function showLogin(text) {
  state.me = null;
  $("evidence-view").hidden = true;
  $("session-bar").hidden = true;
  $("login-view").hidden = false;
  const error = $("login-error");
  error.textContent = text || "";
  error.hidden = !text;
}

async function enter(me) {
  if (!["clinician", "nurse"].includes(me.role)) {
    showLogin(`You are logged in as ${me.role}; the evidence page is for care teams.`);
    return;
  }
  state.me = me;
  $("login-view").hidden = true;
  $("session-bar").hidden = false;
  $("user-name").textContent = me.display_name;
  const teams = await api("/api/teams");
  state.teams = teams.ok ? teams.body : [];
  const select = $("team-select");
  select.replaceChildren(
    ...state.teams.map((team) => {
      const option = document.createElement("option");
      option.value = team.team_id;
      option.textContent = team.name;
      return option;
    }),
  );
  const now = new Date();
  $("month-input").value = `${now.getFullYear()}-${String(now.getMonth() + 1).padStart(2, "0")}`;
  $("evidence-view").hidden = false;
  await load();
}

async function onLogin(event) {
  event.preventDefault();
  const username = $("login-username").value.trim();
  const password = $("login-password").value;
  const result = await api("/api/login", { method: "POST", body: { username, password } });
  if (result.ok) {
    $("login-password").value = "";
    await enter(result.body);
  } else {
    showLogin((result.body && result.body.message) || "Logging in failed. Try again.");
  }
}

async function boot() {
  $("login-form").addEventListener("submit", onLogin);
  $("logout").addEventListener("click", async () => {
    await api("/api/logout", { method: "POST" });
    showLogin("You have logged out.");
  });
  $("notice-close").addEventListener("click", () => {
    $("notice").hidden = true;
  });
  $("team-select").addEventListener("change", load);
  $("month-input").addEventListener("change", load);
  const me = await api("/api/me");
  if (me.ok) await enter(me.body);
  else showLogin();
}

boot();

// Booking a video appointment, shared by the nurse page (nurse.js) and the clinic page's care
// side (care.js): the date and time a person picks (their own time zone) and how a booked
// time is said back to them, and who will call. The hub checks the time (not past, not too
// far ahead) and the caller (a clinician of the patient's care team).

import { api, el } from "./http.js";

// "2025-03-04" for today in this browser's time zone (a date input's value).
export function todayValue(now = new Date()) {
  const pad = (n) => String(n).padStart(2, "0");
  return `${now.getFullYear()}-${pad(now.getMonth() + 1)}-${pad(now.getDate())}`;
}

// A date and a time input's values as an ISO instant, or null when either is missing.
export function startsAt(dateValue, timeValue) {
  if (!dateValue || !timeValue) return null;
  const local = new Date(`${dateValue}T${timeValue}`);
  return Number.isNaN(local.getTime()) ? null : local.toISOString();
}

// "Thursday 6 March, 14:30" (the year too when it is not this one).
export function when(iso, now = new Date()) {
  const d = new Date(iso);
  const options = { weekday: "long", day: "numeric", month: "long", hour: "2-digit", minute: "2-digit", hour12: false };
  if (d.getFullYear() !== now.getFullYear()) options.year = "numeric";
  return d.toLocaleString("en-GB", options);
}

// `clinician`: the username of who will call ("" or undefined: the hub's default, which is
// the booker when they are a clinician, else the team's only clinician).
export function book(patientId, dateValue, timeValue, clinician) {
  const body = { patient_id: patientId, starts_at: startsAt(dateValue, timeValue) };
  if (clinician) body.clinician = clinician;
  return api("/api/appointments", { method: "POST", body });
}

export function move(appointmentId, dateValue, timeValue, clinician) {
  const body = { starts_at: startsAt(dateValue, timeValue) };
  if (clinician) body.clinician = clinician;
  return api(`/api/appointments/${encodeURIComponent(appointmentId)}/move`, { method: "POST", body });
}

// ---------------------------------------------------------------- who will call

// The patient's care team's clinicians ([{username, display_name}]), or null if not loaded.
export async function clinicians(patientId) {
  const result = await api(`/api/patients/${encodeURIComponent(patientId)}/clinicians`);
  return result.ok ? result.body : null;
}

// The logged-in person's username (asked once per page).
let meAsked = null;
export function myUsername() {
  meAsked ||= api("/api/me").then((r) => (r.ok ? r.body.username : ""));
  return meAsked;
}

// Fill a <select> with the clinicians. Chosen first: `keep` (an appointment's caller), then
// me if I am one of them, then the only one; with several and none of those, the person
// must choose (the hub refuses a booking that names nobody when there is a choice).
export function fillCallers(select, list, me, keep = "") {
  const options = list.map((c) => el("option", { value: c.username }, c.display_name));
  const names = new Set(list.map((c) => c.username));
  let chosen = "";
  if (keep && names.has(keep)) chosen = keep;
  else if (me && names.has(me)) chosen = me;
  else if (list.length === 1) chosen = list[0].username;
  const placeholder = list.length === 0 ? "No clinician in this team" : "Choose who will call…";
  select.replaceChildren(...(chosen ? [] : [el("option", { value: "" }, placeholder)]), ...options);
  select.value = chosen;
}

// "Nurse Patel will call" (how the patient's kiosk names them), or "" when nobody is named.
export function whoCalls(appt) {
  return appt.clinician_name ? `${appt.clinician_name} will call` : "";
}

export const PICK_CALLER = "Choose who will call (one of the care team's clinicians).";

export function cancel(appointmentId) {
  return api(`/api/appointments/${encodeURIComponent(appointmentId)}/cancel`, { method: "POST" });
}

export const PICK_BOTH = "Choose a date and a time for the appointment.";

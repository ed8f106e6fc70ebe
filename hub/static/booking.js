// Booking a video appointment, shared by the nurse page (nurse.js) and the clinic page's care
// side (care.js): the date and time a person picks (their own time zone) and how a booked
// time is said back to them. The hub checks the time (not past, not too far ahead).

import { api } from "./http.js";

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

export function book(patientId, dateValue, timeValue) {
  return api("/api/appointments", { method: "POST", body: { patient_id: patientId, starts_at: startsAt(dateValue, timeValue) } });
}

export function move(appointmentId, dateValue, timeValue) {
  return api(`/api/appointments/${encodeURIComponent(appointmentId)}/move`, {
    method: "POST",
    body: { starts_at: startsAt(dateValue, timeValue) },
  });
}

export function cancel(appointmentId) {
  return api(`/api/appointments/${encodeURIComponent(appointmentId)}/cancel`, { method: "POST" });
}

export const PICK_BOTH = "Choose a date and a time for the appointment.";

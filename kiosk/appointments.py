"""Appointments on the kiosk: the plain words for the next one, and when to remind.

Pure: no clock, no I/O. Times are aware datetimes passed in; `tz` is the kiosk's time zone
(the words say "2:30 today" on the patient's wall clock, whatever the hub's zone).

- `home_line(...)`: "Nurse Patel will call you at 2:30 today" (or tomorrow, or on Thursday, or
  "It is time for your video call with Nurse Patel" from the start until the appointment is
  over). The name is the one the hub's plan carries (the team's display name for who will
  call); an appointment without one (an older hub) says "Your nurse".
- `Reminders.due(...)`: a spoken reminder 15 and 2 minutes before, each said once. A kiosk that
  comes on late says only the latest one that is due, with the minutes really left.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, tzinfo

from porchlight.kiosk.i18n import N_, Words

REMINDER_MINUTES = (15, 2)
# After its start an appointment stays "now" this long (the hub's did-not-attend time).
JOIN_WINDOW = timedelta(minutes=15)
# Further ahead than this, the home screen does not mention an appointment.
HORIZON = timedelta(days=6)
# The reminder light stays on this long after the first reminder; after the last one it stays
# on until the appointment's window closes.
FIRST_REMINDER_LIGHT_S = 60.0

WEEKDAYS = (
    N_("on Monday"),
    N_("on Tuesday"),
    N_("on Wednesday"),
    N_("on Thursday"),
    N_("on Friday"),
    N_("on Saturday"),
    N_("on Sunday"),
)


@dataclass(frozen=True)
class Appointment:
    id: str
    starts_at: datetime  # aware
    caller: str | None = None  # who will call, as the team wants the patient to see it


@dataclass(frozen=True)
class Reminder:
    appointment_id: str
    minutes_left: int
    text: str  # said aloud and shown
    light_s: float  # how long the status light shows "reminder"


def _ordered(appointments: Iterable[Appointment]) -> list[Appointment]:
    return sorted(appointments, key=lambda a: (a.starts_at, a.id))


def next_appointment(appointments: Iterable[Appointment], now: datetime) -> Appointment | None:
    """The first appointment whose window has not closed yet."""
    for appt in _ordered(appointments):
        if now < appt.starts_at + JOIN_WINDOW:
            return appt
    return None


def home_line(
    appointments: Iterable[Appointment], now: datetime, words: Words, tz: tzinfo
) -> str | None:
    """The home screen's words about the next appointment, or None when there is none soon."""
    appt = next_appointment(appointments, now)
    if appt is None or appt.starts_at - now > HORIZON:
        return None
    name = appt.caller
    if now >= appt.starts_at:
        if name:
            return words(N_("It is time for your video call with {name}"), name=name)
        return words(N_("It is time for your video call with your nurse"))
    when = appt.starts_at.astimezone(tz)
    today = now.astimezone(tz).date()
    time = words.clock(when)
    days = (when.date() - today).days
    if days == 0:
        if name:
            return words(N_("{name} will call you at {time} today"), name=name, time=time)
        return words(N_("Your nurse will call at {time} today"), time=time)
    if days == 1:
        if name:
            return words(N_("{name} will call you tomorrow at {time}"), name=name, time=time)
        return words(N_("Your nurse will call tomorrow at {time}"), time=time)
    day = words(WEEKDAYS[when.weekday()])
    if name:
        return words(N_("{name} will call you {day} at {time}"), name=name, day=day, time=time)
    return words(N_("Your nurse will call {day} at {time}"), day=day, time=time)


@dataclass
class Reminders:
    """Which reminders are due; each (appointment, lead time) is given once."""

    minutes: tuple[int, ...] = REMINDER_MINUTES
    # (appointment id, its start, lead minutes): a moved appointment is reminded afresh.
    given: set[tuple[str, datetime, int]] = field(default_factory=set)

    def due(
        self, appointments: Iterable[Appointment], now: datetime, words: Words, tz: tzinfo
    ) -> list[Reminder]:
        out: list[Reminder] = []
        for appt in _ordered(appointments):
            left = appt.starts_at - now
            if left <= timedelta(0):
                continue
            due = [m for m in self.minutes if left <= timedelta(minutes=m)]
            fresh = [m for m in due if (appt.id, appt.starts_at, m) not in self.given]
            if not fresh:
                continue
            self.given.update((appt.id, appt.starts_at, m) for m in due)
            minutes_left = max(1, math.ceil(left.total_seconds() / 60))
            last = min(self.minutes)
            light_s = (
                (left + JOIN_WINDOW).total_seconds()
                if min(fresh) == last
                else FIRST_REMINDER_LIGHT_S
            )
            out.append(
                Reminder(appt.id, minutes_left, self.text(appt, minutes_left, words, tz), light_s)
            )
        return out

    @staticmethod
    def text(appt: Appointment, minutes_left: int, words: Words, tz: tzinfo) -> str:
        time = words.clock(appt.starts_at.astimezone(tz))
        if appt.caller:
            soon = words.n(
                "{name} will call you at {time}, in {n} minute.",
                "{name} will call you at {time}, in {n} minutes.",
                minutes_left,
                name=appt.caller,
                time=time,
            )
            # The button joins the waiting room: whoever is named admits the patient there.
            ready = words(N_("Press the button when you are ready."))
            return soon + " " + ready
        soon = words.n(
            "Your nurse will call at {time}, in {n} minute.",
            "Your nurse will call at {time}, in {n} minutes.",
            minutes_left,
            time=time,
        )
        return soon + " " + words(N_("The button will call your nurse when you are ready."))

    def forget_except(self, appointment_ids: Iterable[str]) -> None:
        """Drop what was given for appointments no longer in the plan (cancelled, moved)."""
        keep = set(appointment_ids)
        self.given = {g for g in self.given if g[0] in keep}

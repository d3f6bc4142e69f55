"""When two reminders would ask the senior for one dose twice, and which ones are asked about
until answered.

Both sides decide it, by this one rule: the device, when a reminder is set up beside one
it has (a voice reminder, or a caregiver's that replaces the senior's own), and
family-notify, when a caregiver adds one (refused as set up already). Had they different
rules, a reminder one lets through the other would keep, and the senior be asked twice.

Twins are for the same thing (the medication, or with none the words, in any case and
spacing), of the same kind, at the same times, and not of another dose (a dose said on
one only does not tell them apart). The times are compared as the device keeps them: a
date makes a one-off at its time whatever else is given, every N hours a repeat from the
first time, and all seven weekdays are every day.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

ALL_WEEKDAYS = frozenset({"mon", "tue", "wed", "thu", "fri", "sat", "sun"})


@dataclass(frozen=True)
class DoseKey:
    kind: str
    what: str  # the medication, else the words, folded
    when: tuple  # the times, as the device keeps them
    dose: str  # folded; empty: none said


def dose_key(
    kind: str,
    text: str | None,
    at: str,
    *,
    medication: str | None = None,
    dose: str | None = None,
    days: Collection[str] | None = None,
    every_hours: int | None = None,
    date: str | None = None,
) -> DoseKey:
    """A reminder's fields (a `command.reminder.add`'s, or the device's schedule's)."""
    if date:
        when: tuple = ("once", at, date)
    elif every_hours is not None:
        when = ("hours", at, every_hours)
    elif days is not None and set(days) != ALL_WEEKDAYS:
        when = ("days", at, tuple(sorted(set(days))))
    else:
        when = ("daily", at)
    return DoseKey(kind, _fold(medication or text), when, _fold(dose))


def dose_key_of_add(body: Mapping[str, Any]) -> DoseKey:
    """A `command.reminder.add`'s body as a dict (with any changes folded in)."""
    return dose_key(
        body.get("kind", ""),
        body.get("text"),
        body.get("at", ""),
        medication=body.get("medication"),
        dose=body.get("dose"),
        days=body.get("days"),
        every_hours=body.get("every_hours"),
        date=body.get("date"),
    )


def same_dose(one: DoseKey, other: DoseKey) -> bool:
    """Whether both would ask for the same dose at the same times."""
    same_thing = (one.kind, one.what, one.when) == (other.kind, other.what, other.when)
    return same_thing and (not one.dose or not other.dose or one.dose == other.dose)


def asked_until_answered(kind: str, medication: str | None) -> bool:
    """Whether the device asks about a reminder until it is answered, and reports a miss:
    a check-in, or a medicine it can name. Any other is said once (family-notify's console
    says so of a medication reminder without the medicine's name)."""
    return kind == "check_in" or (kind == "medication" and bool(medication))


def _fold(text: str | None) -> str:
    return " ".join((text or "").split()).casefold()

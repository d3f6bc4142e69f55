"""How often a reminder repeats, from the words around it: "every monday and thursday",
"every eight hours", "tomorrow", "daily".

The sentence templates catch the medicine's name with a wildcard, and a wildcard swallows
whatever follows it ("metformin every monday"); so these words are read from the whole
sentence and taken out of the medicine's name here, rather than multiplied into the
templates (which would also multiply the recognizer's grammar).

The value is a short string the dialog and the device's reminders share:
`daily`, `once:today`, `once:tomorrow`, `days:mon,thu` (weekdays in week order) or
`hours:8` (every 8 hours from the time said, within the day).
"""

from __future__ import annotations

import re

from intents.normalize import parse_number

DAILY = "daily"
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_DAY_NAMES = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_DAY = r"(?:" + "|".join(_DAY_NAMES) + r")s?"
_HOURS = re.compile(r"\b(?:every|each) ((?:\d+|[a-z]+)) hours?\b|\b(?:every|each) (hour)\b")
_DAYS = re.compile(
    rf"\b(?:(?:every|each|on|only on|on every)\s+)?{_DAY}(?:\s*(?:,|and|or|&)\s*(?:on\s+)?{_DAY})*"
)
_WEEKDAYS = re.compile(r"\b(?:on|every|each|during the|through the)? ?(?:weekdays?|working days)\b")
_WEEKENDS = re.compile(r"\b(?:on|at|every|each|over the)? ?weekends?\b")
_TOMORROW = re.compile(r"\btomorrow\b")
_TODAY = re.compile(r"\b(?:today|just (?:for )?today|for today|only today|just this once)\b")
_DAILY = re.compile(r"\b(?:every ?day|each day|daily|every (?:morning|evening|night))\b")
_ALL = (_HOURS, _DAYS, _WEEKDAYS, _WEEKENDS, _TOMORROW, _TODAY, _DAILY)


def parse_repeat(text: str) -> str:
    """The repeat a sentence asks for; `daily` when it names none (medicine is daily)."""
    text = text.lower()
    hours = _HOURS.search(text)
    if hours:
        if hours.group(2):
            return "hours:1"
        number = parse_number([hours.group(1)])
        if number is not None and number == int(number) and 1 <= number <= 12:
            return f"hours:{int(number)}"
    days = [
        WEEKDAYS[_DAY_NAMES.index(name)]
        for found in _DAYS.finditer(text)
        for name in re.findall("|".join(_DAY_NAMES), found.group(0))
    ]
    if _WEEKDAYS.search(text):
        days += WEEKDAYS[:5]
    if _WEEKENDS.search(text):
        days += WEEKDAYS[5:]
    if days:
        return "days:" + ",".join(day for day in WEEKDAYS if day in days)
    if _TOMORROW.search(text):
        return "once:tomorrow"
    if _TODAY.search(text):
        return "once:today"
    return DAILY


def without_repeat(text: str) -> str:
    """`text` with the repeat words taken out ("metformin every monday" → "metformin")."""
    for pattern in _ALL:
        text = pattern.sub(" ", text.lower())
    return " ".join(text.split())


def repeat_days(repeat: str) -> tuple[str, ...] | None:
    """The weekdays of a `days:` repeat, else None."""
    kind, _, rest = repeat.partition(":")
    return tuple(rest.split(",")) if kind == "days" else None

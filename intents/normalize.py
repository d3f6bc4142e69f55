"""Slot normalisers: what a senior says (or the recognizer heard) → one canonical value.

Times → "HH:MM", durations → minutes, readings → "130/85" or a number. Each returns None
when the words do not make a value; the dialog then asks again rather than guess.
"""

from __future__ import annotations

import re
from collections.abc import Callable

_UNITS = {
    "zero": 0, "oh": 0, "o": 0, "one": 1, "a": 1, "an": 1, "two": 2, "three": 3, "four": 4,
    "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9, "ten": 10, "eleven": 11,
    "twelve": 12, "thirteen": 13, "fourteen": 14, "fifteen": 15, "sixteen": 16,
    "seventeen": 17, "eighteen": 18, "nineteen": 19,
}  # fmt: skip
_TENS = {
    "twenty": 20, "thirty": 30, "forty": 40, "fourty": 40, "fifty": 50, "sixty": 60,
    "seventy": 70, "eighty": 80, "ninety": 90,
}  # fmt: skip
_WORD = re.compile(r"[a-z]+|\d+(?:\.\d+)?|[.:/]")


def tokens(text: str) -> list[str]:
    return _WORD.findall(text.lower().replace("-", " "))


def parse_number(words: list[str]) -> float | None:
    """'one hundred thirty' → 130, 'ninety eight point six' → 98.6, '7.5' → 7.5, 'a' → 1."""
    if not words:
        return None
    if len(words) == 1 and re.fullmatch(r"\d+(?:\.\d+)?", words[0]):
        return float(words[0])
    if "point" in words:
        at = words.index("point")
        whole = parse_number(words[:at])
        digits = [_UNITS.get(w) for w in words[at + 1 :]]
        if whole is None or not digits or any(d is None or d > 9 for d in digits):
            return None
        return float(f"{int(whole)}." + "".join(str(d) for d in digits))
    total = current = 0
    seen = False
    for word in words:
        if word == "and" and seen:
            continue
        if word in _UNITS:
            current += _UNITS[word]
        elif word in _TENS:
            current += _TENS[word]
        elif word == "hundred":
            current = max(current, 1) * 100
        elif word == "thousand":
            total += max(current, 1) * 1000
            current = 0
        elif re.fullmatch(r"\d+", word):
            current += int(word)
        else:
            return None
        seen = True
    return float(total + current) if seen else None


_PERIODS = {
    "am": "am", "a.m": "am", "morning": "am", "pm": "pm", "p.m": "pm", "afternoon": "pm",
    "evening": "pm", "night": "pm", "tonight": "pm",
}  # fmt: skip
_FILLER = {"at", "in", "the", "o", "sharp", "about", "around"}


def parse_clock_time(text: str) -> str | None:
    """'eight in the morning' → '08:00', '9 pm' → '21:00', 'half past seven in the
    evening' → '19:30', 'quarter to nine' → '08:45', '7:30' → '07:30', 'noon' → '12:00'.
    Without a part of the day, the hour is taken as said (1-12 as morning hours): the
    dialog reads the time back for confirmation."""
    text = text.lower().replace("o'clock", " ").replace("oclock", " ")
    words = tokens(text.replace("a.m.", " am ").replace("p.m.", " pm "))
    period = None
    kept: list[str] = []
    for word in words:
        if word in _PERIODS:
            period = _PERIODS[word]
        elif word == "noon" or word == "midday":
            kept, period = ["12"], "noon"
        elif word == "midnight":
            kept, period = ["12"], "midnight"
        elif word not in _FILLER or (word == "o" and kept):
            kept.append(word)
    hour, minute = _hour_minute(kept)
    if hour is None or minute is None:
        return None
    if period in ("noon", "midnight"):
        hour = 12 if period == "noon" else 0
    elif period == "pm" and hour < 12:
        hour += 12
    elif period == "am" and hour == 12:
        hour = 0
    if not (0 <= hour <= 23 and 0 <= minute <= 59):
        return None
    return f"{hour:02d}:{minute:02d}"


def _hour_minute(words: list[str]) -> tuple[int | None, int | None]:
    if not words:
        return None, None
    text = " ".join(words)
    match = re.fullmatch(r"(\d{1,2}) : (\d{2})", text)
    if match:
        return int(match[1]), int(match[2])
    for lead, offset in (("half past", 30), ("quarter past", 15), ("quarter to", -15)):
        if text.startswith(lead + " "):
            hour = parse_number(words[len(lead.split()) :])
            if hour is None or hour != int(hour):
                return None, None
            if offset < 0:
                return (int(hour) - 1) % 24, 60 + offset
            return int(hour), offset
    for joiner, sign in (("past", 1), ("after", 1), ("to", -1), ("before", -1)):
        if joiner in words:
            at = words.index(joiner)
            minutes = parse_number([w for w in words[:at] if w not in ("minutes", "minute")])
            hour = parse_number(words[at + 1 :])
            if minutes is None or hour is None or not 0 < minutes < 60:
                return None, None
            if sign > 0:
                return int(hour), int(minutes)
            return (int(hour) - 1) % 24, 60 - int(minutes)
    # "seven thirty", "seven oh five", "eight", "19"
    hour = parse_number(words[:1])
    if hour is None:
        return None, None
    if len(words) == 1:
        return int(hour), 0
    rest = [w for w in words[1:] if w != "o"] if words[1] in ("oh", "o") else words[1:]
    minute = parse_number(rest)
    return (int(hour), int(minute)) if minute is not None else (None, None)


def parse_duration_minutes(text: str) -> int | None:
    """'ten minutes' → 10, 'half an hour' → 30, 'an hour and a half' → 90, '2 hours' → 120,
    'a quarter of an hour' → 15; a bare number counts minutes ('ten' → 10)."""
    words = [w for w in tokens(text) if w not in ("for", "about", "another", "in", "of")]
    text = " ".join(words)
    special = {
        "half an hour": 30, "half hour": 30, "a half hour": 30, "quarter an hour": 15,
        "a quarter an hour": 15, "quarter hour": 15, "a quarter hour": 15,
        "an hour and a half": 90, "one and a half hours": 90, "a couple minutes": 2,
        "a couple of minutes": 2, "a few minutes": 5, "a minute": 1, "an hour": 60,
        "a moment": 5, "a little while": 15, "a while": 15,
    }  # fmt: skip
    if text in special:
        return special[text]
    total = 0.0
    pending: list[str] = []
    found = False
    for word in words:
        if word in ("minute", "minutes", "min", "mins"):
            value = parse_number(pending)
            if value is None:
                return None
            total += value
            pending, found = [], True
        elif word in ("hour", "hours", "hr", "hrs"):
            value = parse_number(pending)
            if value is None:
                return None
            total += 60 * value
            pending, found = [], True
        elif word == "and" and found:
            continue
        elif word == "half" and found and not pending:
            total += 30
        else:
            pending.append(word)
    if pending:
        value = parse_number(pending)
        if value is None or found:
            return None
        total += value
    minutes = round(total)
    return minutes if minutes > 0 else None


def parse_reading(measure: str, text: str) -> str | None:
    """'130 over 85' → '130/85' for blood pressure; a number for the others
    ('ninety eight point six' → '98.6', '7.5' → '7.5', 'seventy two' → '72')."""
    words = [w for w in tokens(text) if w not in ("is", "was", "about", "around", "my")]
    unit_words = {"mmhg", "millimeters", "mercury", "of", "beats", "per", "minute", "bpm",
                  "kilos", "kilograms", "kg", "pounds", "lbs", "degrees", "celsius",
                  "fahrenheit", "millimoles", "mmol", "milligrams", "mg", "dl", "l"}  # fmt: skip
    words = [w for w in words if w not in unit_words]
    if measure == "blood_pressure":
        for separator in ("over", "/", "by"):
            if separator in words:
                at = words.index(separator)
                high, low = parse_number(words[:at]), parse_number(words[at + 1 :])
                if high is None or low is None or not (40 <= low < high <= 300):
                    return None
                return f"{int(high)}/{int(low)}"
        return None
    value = parse_number(words)
    if value is None or value <= 0:
        return None
    return f"{value:g}"


def normalise_slots(slots: dict[str, str]) -> tuple[dict[str, str], list[str]]:
    """Raw slot text → canonical values. Returns (slots, names of slots that were said
    but could not be understood). Wildcard names map to their normalised slot names:
    `duration` → `minutes`, `reading` → `value`."""
    out: dict[str, str] = {}
    invalid: list[str] = []
    for name, raw in slots.items():
        normaliser: Callable[[str], str | int | None] | None = _NORMALISERS.get(name)
        if name == "reading":
            value = parse_reading(slots.get("measure", ""), raw)
            target = "value"
        elif normaliser is not None:
            value = normaliser(raw)
            target = _RENAMED.get(name, name)
        else:
            out[name] = raw.strip()
            continue
        if value is None:
            invalid.append(target)
        else:
            out[target] = str(value)
    if "medication" in out:
        out["medication"] = _clean_medication(out["medication"])
        if not out["medication"]:
            del out["medication"]
            invalid.append("medication")
    return out, invalid


def _clean_medication(text: str) -> str:
    words = [w for w in text.lower().split() if w not in ("my", "the", "some", "of")]
    return " ".join(words)


_NORMALISERS: dict[str, Callable[[str], str | int | None]] = {
    "time": parse_clock_time,
    "duration": parse_duration_minutes,
}
_RENAMED = {"duration": "minutes"}

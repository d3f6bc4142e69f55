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
_DIGIT_WORDS = frozenset(("one", "two", "three", "four", "five", "six", "seven", "eight", "nine"))
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
    spoken_hundreds = False  # "one forty" (140), "one oh five" (105): as readings are said
    for at, word in enumerate(words):
        if word == "and" and seen:
            continue
        follows_digit = at > 0 and words[at - 1] in _DIGIT_WORDS and 0 < current < 10
        if (
            follows_digit
            and not spoken_hundreds
            and (word in _TENS or 10 <= _UNITS.get(word, 0) <= 19 or word in ("oh", "o"))
        ):
            current = current * 100 + _TENS.get(word, _UNITS.get(word, 0))
            spoken_hundreds = True
        elif word in _UNITS:
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
_FILLER = {"at", "in", "the", "o", "sharp", "about", "around", "on", "by"}
# Said with a time but not part of it: "at ten every morning", "at eight pm please".
_ROUTINE = {
    "every", "each", "daily", "day", "please", "then", "if", "possible", "dear", "today",
    "tomorrow", "this",
}  # fmt: skip


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
        elif word in _ROUTINE:
            continue
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
    match = re.fullmatch(r"(\d{1,2}) : (\d{2})|(\d{1,2})\.(\d{2})", text)  # 7:30, 7.30
    if match:
        return int(match[1] or match[3]), int(match[2] or match[4])
    if any(re.fullmatch(r"\d+\.\d+", w) for w in words):
        return None, None  # "7.5": not a time
    for lead, offset in (("half past", 30), ("quarter past", 15), ("quarter to", -15)):
        if text.startswith(lead + " "):
            hour = parse_number(words[len(lead.split()) :])
            if hour is None or hour != int(hour):
                return None, None
            if offset < 0:
                return (int(hour) - 1) % 24, 60 + offset
            return int(hour), offset
    if words[0] == "half" and len(words) > 1:  # "half seven": half past seven
        hour = parse_number(words[1:])
        if hour is None or hour != int(hour):
            return None, None
        return int(hour), 30
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


# "give me five more minutes", "in about twenty minutes or so please"
_DURATION_FILLER = frozenset(
    ("for", "about", "another", "in", "of", "more", "extra", "around", "roughly", "just",
     "or", "so", "please", "then", "say")
)  # fmt: skip


def parse_duration_minutes(text: str) -> int | None:
    """'ten minutes' → 10, 'half an hour' → 30, 'an hour and a half' → 90, '2 hours' → 120,
    'a quarter of an hour' → 15; a bare number counts minutes ('ten' → 10)."""
    words = [w for w in tokens(text) if w not in _DURATION_FILLER]
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


_UNIT_WORDS = frozenset(
    ("mmhg", "millimeters", "millimetres", "mercury", "beats", "per", "minute", "bpm",
     "kilos", "kilo", "kilograms", "kg", "kgs", "pounds", "lbs", "lb", "degrees", "degree",
     "celsius", "centigrade", "fahrenheit", "millimoles", "mmol", "milligrams", "mg", "dl",
     "l", "litre", "liter")
)  # fmt: skip
# Plausible values, so that a number said in passing is not taken for a reading.
_READING_RANGES = {
    "heart_rate": (20, 250), "temperature": (25, 113), "weight": (3, 700),
    "blood_sugar": (0.5, 800),
}  # fmt: skip


def _is_number_word(word: str) -> bool:
    if re.fullmatch(r"\d+(?:\.\d+)?", word):
        return True
    return (
        word in _TENS
        or word in ("hundred", "thousand")
        or (word in _UNITS and word not in ("a", "an", "o", "oh"))
    )


def _number_runs(words: list[str]) -> list[tuple[int, int]]:
    """(start, end) of each stretch of words that says one number: "one forty", "ninety
    nine point one", "a hundred and ten", "64.5"."""
    runs: list[tuple[int, int]] = []
    start = None
    for i, word in enumerate(words):
        nxt = words[i + 1] if i + 1 < len(words) else ""
        inside = start is not None and _is_number_word(nxt)
        if (
            _is_number_word(word)
            or (inside and word in ("point", "oh", "o"))
            or (inside and word == "and" and words[i - 1] in ("hundred", "thousand"))
            or (word in ("a", "an") and nxt in ("hundred", "thousand"))
        ):
            start = i if start is None else start
            continue
        if start is not None:
            runs.append((start, i))
            start = None
    if start is not None:
        runs.append((start, len(words)))
    return runs


def parse_reading(measure: str, text: str) -> str | None:
    """'130 over 85' → '130/85' for blood pressure ('one forty over ninety' → '140/90');
    a number for the others ('ninety eight point six' → '98.6', '7.5' → '7.5', 'seventy
    two' → '72'). Unit words and words said around the number ('7.2 before breakfast',
    'down to 64.5 kilos') are set aside; two numbers where one is wanted, or a number
    no such reading can be, give None."""
    words = [w for w in tokens(text) if w not in _UNIT_WORDS and w != "."]
    runs = _number_runs(words)
    if measure == "blood_pressure":
        for separator in ("over", "/", "by"):
            if separator in words:
                at = words.index(separator)
                left = [r for r in runs if r[1] == at]
                right = [r for r in runs if r[0] == at + 1]
                if not left or not right:
                    return None
                high = parse_number(words[left[0][0] : left[0][1]])
                low = parse_number(words[right[0][0] : right[0][1]])
                if high is None or low is None or not (40 <= low < high <= 300):
                    return None
                return f"{int(high)}/{int(low)}"
        return None
    if len(runs) != 1:
        return None
    value = parse_number(words[runs[0][0] : runs[0][1]])
    if value is None or value <= 0:
        return None
    low, high = _READING_RANGES.get(measure, (0, float("inf")))
    if not low <= value <= high:
        return None
    return f"{value:g}"


def normalise_slots(slots: dict[str, str]) -> tuple[dict[str, str], list[str]]:
    """Raw slot text → canonical values. Returns (slots, names of slots that were said
    but could not be understood). Wildcard names map to their normalised slot names:
    `duration` → `minutes`, `reading` → `value`. A part of the day said apart from the time
    (`daypart`) goes into the time; slots in SET_ASIDE are dropped."""
    out: dict[str, str] = {}
    invalid: list[str] = []
    slots = dict(slots)
    daypart = slots.pop("daypart", None)  # "tomorrow afternoon at two": part of the time
    if daypart and slots.get("time"):
        slots["time"] = f"{slots['time']} in the {daypart}"
    for name, raw in slots.items():
        if name in SET_ASIDE:
            continue
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


# Said before or after a medicine's name, not part of it: "more of my statins", "my
# repeat prescription for statins", "vitamin d for me please", "antibiotics anymore".
_MEDICATION_LEAD = (
    "repeat prescription for",
    "repeat prescription of",
    "prescription for",
    "prescription of",
    "refill of",
    "refill for",
    "supply of",
    "new supply of",
)
_MEDICATION_TAIL = (
    "for me",
    "please",
    "thank you",
    "thanks",
    "dear",
    "love",
    "anymore",
    "any more",
    "again",
    "now",
    "right now",
    "today",
    "as well",
    "too",
    "then",
    "if you can",
    "if you could",
    "if possible",
    "for now",
    "reminder",
    "reminders",
    "left",
    "tonight",
    "this morning",
    "this evening",
    "every day",
    "daily",
    "starting",
    "starting from",
    "from",
)


def _clean_medication(text: str) -> str:
    words = text.lower().replace(",", " ").split()
    changed = True
    while changed and words:
        changed = False
        phrase = " ".join(words)
        for lead in _MEDICATION_LEAD:
            if phrase.startswith(lead + " "):
                words, changed = words[len(lead.split()) :], True
                break
        if len(words) > 1 and words[0] in ("more", "some", "a", "an", "of", "my", "the"):
            words, changed = words[1:], True
        for tail in _MEDICATION_TAIL:
            n = len(tail.split())
            if len(words) > n and words[-n:] == tail.split():
                words, changed = words[:-n], True
                break
    kept = [w for w in words if w not in ("my", "the", "some", "of")]
    return " ".join(kept).strip(" .!?")


# Slots that only help the templates match (a clause said aside, "where i am" as opposed to
# a message): never part of what is understood.
SET_ASIDE = frozenset(("aside", "location_word", "where_word"))

_NORMALISERS: dict[str, Callable[[str], str | int | None]] = {
    "time": parse_clock_time,
    "duration": parse_duration_minutes,
}
_RENAMED = {"duration": "minutes"}

"""Departments and triage: what the senior said is wrong → the department to see.

The department ids are the ones the device's intent engine produces (`intents/en`'s
`{department}` list). General practice is open around the clock and is where anything the
triage cannot place goes.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

GENERAL_PRACTICE = "general_practice"
SPECIALISTS = (
    "cardiology",
    "respiratory",
    "endocrinology",
    "dermatology",
    "psychology",
    "geriatrics",
)
DEPARTMENTS = (GENERAL_PRACTICE, *SPECIALISTS)

# Spoken names a device may send instead of the id.
_ALIASES = {
    "gp": GENERAL_PRACTICE,
    "general": GENERAL_PRACTICE,
    "general practice": GENERAL_PRACTICE,
    "family doctor": GENERAL_PRACTICE,
    "heart": "cardiology",
    "lungs": "respiratory",
    "skin": "dermatology",
    "diabetes": "endocrinology",
    "mental health": "psychology",
    "memory": "geriatrics",
}

# Words of a complaint → its department. Checked in this order; the first department with
# a hit wins, so the more specific departments come before the general ones.
_SYMPTOMS: dict[str, tuple[str, ...]] = {
    "cardiology": (
        "chest pain", "heart", "palpitation", "blood pressure", "heartbeat", "heart rate",
        "angina", "arrhythmia",
    ),
    "respiratory": (
        "breath", "breathing", "cough", "lung", "asthma", "wheez", "chest infection",
        "phlegm", "pneumonia",
    ),
    "endocrinology": ("blood sugar", "sugar", "diabet", "thyroid", "insulin", "glucose"),
    "dermatology": ("skin", "rash", "itch", "eczema", "mole", "blister", "spots"),
    "psychology": (
        "sad", "anxious", "anxiety", "depress", "lonely", "worr", "stress", "panic",
        "low mood", "can't sleep", "mood",
    ),
    "geriatrics": ("memory", "forget", "confus", "fall", "fell", "balance", "dizz"),
}  # fmt: skip


class UnknownDepartment(ValueError):
    """A department the practice does not have."""


def department_id(name: str) -> str:
    """The id of a department given by id or by a common spoken name."""
    key = " ".join(name.strip().lower().replace("_", " ").split())
    if key.replace(" ", "_") in DEPARTMENTS:
        return key.replace(" ", "_")
    if key in _ALIASES:
        return _ALIASES[key]
    raise UnknownDepartment(f"no department {name[:40]!r}")


def triage(complaints: Iterable[str]) -> str:
    """The department for what the senior said is wrong; general practice when unsure."""
    text = " ".join(c.lower() for c in complaints)
    words = re.sub(r"[^a-z' ]+", " ", text)
    for department, cues in _SYMPTOMS.items():
        if any(cue in words for cue in cues):
            return department
    return GENERAL_PRACTICE


def is_specialist(department: str) -> bool:
    return department != GENERAL_PRACTICE

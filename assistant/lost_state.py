"""What the device lost when a state file was found damaged, and telling of it.

A damaged store is moved aside at start so the device still starts and can call for help
(protocol/sqlite.open_or_set_aside); what it held is gone. That must not be silent: the
senior hears what was lost (a reminder that no longer comes is otherwise noticed only when
a dose is missed), and the family is sent a calm notice (`alert.wellness`, concern
`device`, confirmed and sent again like any other) so a caregiver can set the reminders up
again. The notice names the stores by key (`LOST_KEYS`); the family service words them in
each member's language.
"""

from __future__ import annotations

import logging
from pathlib import Path

from protocol import WellnessAlert

log = logging.getLogger(__name__)

# a store's key → what the senior hears was lost
SPOKEN = {
    "reminders": "your reminders",
    "outbox": "messages I had not sent yet",
    "unanswered_alerts": "calls for help still waiting for an answer",
    "unconfirmed_alerts": "messages to your family that were not yet confirmed",
    "emergency_check": "a question I had asked you about an emergency",
}
LOST_KEYS = tuple(SPOKEN)
# losses that may hide an emergency nobody was told of
_URGENT = frozenset({"outbox", "unanswered_alerts", "emergency_check"})


def lost_stores(stores: dict[str, Path | None]) -> list[str]:
    """The keys of the stores that were set aside (`stores`: key → where it went)."""
    unknown = set(stores) - set(SPOKEN)
    if unknown:
        raise ValueError(f"unknown stores: {sorted(unknown)}")
    return [key for key in LOST_KEYS if stores.get(key) is not None]


def spoken(lost: list[str], family_told: bool) -> str:
    """What the senior hears when the device starts."""
    things = [SPOKEN[key] for key in lost]
    listed = things[0] if len(things) == 1 else ", ".join(things[:-1]) + " and " + things[-1]
    words = f"Something went wrong with my memory, so I started afresh. I have lost {listed}."
    if "reminders" in lost:
        words += " Your reminders need to be set up again."
    if _URGENT & set(lost):
        words += " If you need help, please ask for it again."
    if family_told:
        words += " I am letting your family know."
    return words


def notice(lost: list[str]) -> WellnessAlert:
    """The family's notice: high when the loss may hide a call for help."""
    severity = "high" if _URGENT & set(lost) else "medium"
    return WellnessAlert(concern="device", severity=severity, detail=",".join(lost))

"""What the device lost when a state file was found damaged, and telling of it (and of a
disk that refuses writes, so that what it keeps from now on is lost at a restart).

A damaged store is moved aside so the device still starts and can call for help
(protocol/sqlite.open_or_set_aside); what it held is gone. That must not be silent: the
senior hears what was lost (a reminder that no longer comes is otherwise noticed only when
a dose is missed), and the family is sent a notice (`alert.wellness` with `lost`, confirmed
and sent again like any other), on which the family service sends the caregivers'
reminders again (services/family/reminders.py, `restore`). The family service words the
stores' keys (`protocol.LOST_STORES`) in each member's language.

The files moved aside are the record of what is still to be told: each is renamed with
`.told` once the notice is stored for sending. So a loss found by another command on the
same files (`senior-assistant reminders`), or by a run that stopped before telling, is told
at the next start.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path

from assistant.emergency_check import CHECK_FILE
from assistant.outbox import STATE_DB_NAME
from assistant.reminders import REMINDERS_FILE
from assistant.replies import listed
from assistant.unanswered_alerts import ALERTS_FILE, UNCONFIRMED_FILE
from protocol import LOST_STORES, LOST_URGENT, WellnessAlert
from protocol.sqlite import UNREADABLE, listen_for_refusals

log = logging.getLogger(__name__)

# a store's key → its file in the state directory, and what the senior hears was lost
STORE_FILES = {
    "reminders": REMINDERS_FILE,
    "outbox": STATE_DB_NAME,
    "unanswered_alerts": ALERTS_FILE,
    "unconfirmed_alerts": UNCONFIRMED_FILE,
    "emergency_check": CHECK_FILE,
}
SPOKEN = {
    "reminders": "your reminders",
    "outbox": "messages I had not sent yet",
    "unanswered_alerts": "calls for help still waiting for an answer",
    "unconfirmed_alerts": "messages to your family that were not yet confirmed",
    "emergency_check": "a question I had asked you about an emergency",
}
assert set(STORE_FILES) == set(SPOKEN) == set(LOST_STORES), "one key per store"
TOLD = ".told"


def untold(state_dir: Path) -> dict[str, list[Path]]:
    """The damaged stores moved aside in `state_dir` that have not been told of, by key."""
    found = {}
    for key in LOST_STORES:
        name = STORE_FILES[key]
        paths = [
            path
            for path in sorted(state_dir.glob(f"{name}{UNREADABLE}*"))
            if not path.name.endswith((TOLD, "-wal", "-shm"))
        ]
        if paths:
            found[key] = paths
    return found


def mark_told(paths: list[Path]) -> None:
    """Told: renamed with `.told` (kept for whoever looks into them). A rename that fails
    is logged; the loss is then told again at the next start."""
    for path in paths:
        try:
            path.rename(path.with_name(path.name + TOLD))
        except OSError as exc:
            log.error("%s could not be marked as told (%s): told again next time", path, exc)


def spoken(lost: list[str], family_told: bool) -> str:
    """What the senior hears when the device starts."""
    things = listed([SPOKEN[key] for key in lost])
    words = f"Something went wrong with my memory, so I started afresh. I have lost {things}."
    if "reminders" in lost:
        words += (
            " The reminders your family set up will be sent to me again; any you set up"
            " yourself need to be set up again."
            if family_told
            else " Your reminders need to be set up again."
        )
    if LOST_URGENT & set(lost):
        words += " If you need help, please ask for it again."
    if family_told:
        words += " I am letting your family know."
    return words


def storage_spoken(family_told: bool) -> str:
    """What the senior hears when the disk first refuses a write (the device goes on in
    memory: protocol/sqlite.report_refusal)."""
    words = (
        "I can no longer save to my memory. I still work, but some of what I keep may be "
        "missing, and what is set up from now on may be lost if I am restarted."
    )
    if family_told:
        return words + " I am letting your family know, so they can have me checked."
    return words + " Please ask your family to have me checked."


def storage_notice() -> WellnessAlert:
    """The family's notice of a disk that refuses writes: no emergency, so it waits for
    their quiet hours to end."""
    return WellnessAlert(concern="other", severity="medium", storage_failing=True)


def notice(lost: list[str]) -> WellnessAlert:
    """The family's notice: of high severity, so not held for their quiet hours, when the
    loss may hide a call for help."""
    severity = "high" if LOST_URGENT & set(lost) else "medium"
    return WellnessAlert(concern="other", severity=severity, lost=list(lost))


class StorageRefusals:
    """Calls `tell` once per run when the disk refuses a write to a store in `state_dir`,
    which then goes on in memory (protocol/sqlite.report_refusal): at `start()` for a
    refusal before it (the stores open, and the check-ins are written, before the device
    starts), on a thread of its own after it (a refusal is reported holding the store's
    lock, and telling stores a message). Nothing once closed."""

    def __init__(self, state_dir: Path, tell: Callable[[], None]) -> None:
        self._dir = state_dir.resolve()
        self._tell = tell
        self._lock = threading.Lock()
        self._refused = self._started = self._closed = False
        self._stop_listening = listen_for_refusals(self._heard)

    def start(self) -> None:
        with self._lock:
            self._started, refused = True, self._refused
        if refused:
            self._tell_unless_closed()

    def close(self) -> None:
        self._stop_listening()
        with self._lock:
            self._closed = True

    def _heard(self, path: Path) -> None:
        if path.parent.resolve() != self._dir:
            return  # another device's (tests run several in one process)
        with self._lock:
            if self._refused:
                return
            self._refused, started = True, self._started
        if started:
            threading.Thread(target=self._tell_unless_closed, name="storage-refused",
                             daemon=True).start()  # fmt: skip

    def _tell_unless_closed(self) -> None:
        with self._lock:
            if self._closed:
                return  # stopping: the next start tells, if the disk still refuses
        self._tell()

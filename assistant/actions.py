"""What the dialog's actions become when they leave the device: protocol messages.

The dialog decides *that* something happens ("emergency, kind fall"); this module decides
*which message* carries it. Actions that stay on the device (volume, reminders the senior
sets for themselves, "what time is it") have no message and are left to their own parts.

Choices where the contract has no dedicated message yet:
- a call request on a speaker without a phone line goes to the family as an urgent-less
  message asking them to call back; an order for medicine goes to the family/caregiver
  as a message too (they order it: the device has no pharmacy account);
- a sad, lonely or anxious feeling is a low-severity wellness alert, pain or feeling unwell
  a medium one: the family service words those calmly (issue 5).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from typing import Any

from assistant.dialog import Action
from assistant.reminders import ReminderStore, aware
from assistant.schedule import DAILY, Schedule, ScheduleError
from protocol import (
    AppointmentRequest,
    ConsultationRequest,
    EmergencyAlert,
    FamilyMessage,
    HealthReading,
    Message,
    ReminderRemoved,
    WellnessAlert,
)
from protocol.schema import utc_timestamp

log = logging.getLogger(__name__)

ALL_FAMILY = "all"
_WELLNESS_SEVERITY = {
    "lonely": "low",
    "sad": "low",
    "anxious": "low",
    "tired": None,  # not a concern on its own
    "good": None,
    "unwell": "medium",
    "pain": "medium",
}
_URGENCY = {"emergency": "urgent", "psychology": "soon"}


def _reading(slots: dict[str, str]) -> HealthReading | None:
    measure, value = slots.get("measure"), slots.get("value", "")
    systolic, _, diastolic = value.partition("/")
    try:
        first = float(systolic)
        second = float(diastolic) if diastolic else None
    except ValueError:
        return None
    if (measure == "blood_pressure") != (second is not None):
        return None
    return HealthReading(
        measure=measure,  # type: ignore[arg-type]
        value=first,
        taken_at=utc_timestamp(),
        diastolic=second,
    )


WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


def appointment_date(day: str, today: dt.date) -> dt.date | None:
    """The date a spoken day means: "today", "tomorrow", a weekday (the next one after
    today: on a Monday, "on Monday" means next week's), "next_week" (next Monday)."""
    if day == "today":
        return today
    if day == "tomorrow":
        return today + dt.timedelta(days=1)
    if day == "next_week":
        return today + dt.timedelta(days=7 - today.weekday())
    if day in WEEKDAYS:
        ahead = (WEEKDAYS.index(day) - today.weekday() - 1) % 7 + 1
        return today + dt.timedelta(days=ahead)
    return None


# The senior's words as sent: family-notify quotes them inside its own sentence to members,
# which must stay within the contract's longest text (2,000), or the alert could not go out.
MAX_SAID = 500


def message_body(
    action: Action, said: str | None = None, today: dt.date | None = None
) -> Any | None:
    """The protocol body that carries `action` off the device, or None when it stays here.

    `said`: the senior's words, kept with an emergency so the family hears what happened
    (nothing when nothing was made out: a groan after "do you need help?" still alerts)."""
    said = (said or "").strip()[:MAX_SAID] or None
    slots = action.slots
    kind = action.kind
    if kind == "emergency":  # the SOS key sets trigger "sos_button"; nothing was said
        trigger = slots.get("trigger", "voice")
        said = said if trigger == "voice" else None
        return EmergencyAlert(trigger=trigger, said=said, kind=slots.get("kind", "help"))  # type: ignore[arg-type]
    if kind == "request_consultation":
        return ConsultationRequest(
            mode=slots.get("mode", "video"),  # type: ignore[arg-type]
            department=slots.get("department"),
            urgency="soon",
            reason=said,
        )
    if kind == "book_appointment":
        date = appointment_date(slots.get("day", ""), today or dt.date.today())
        if date is None or "time" not in slots:
            return None
        return AppointmentRequest(
            department=slots.get("department", "general_practice"),
            date=date.isoformat(),
            at=slots["time"],
            reason=said,
        )
    if kind == "send_family_message":
        return FamilyMessage(to=slots.get("contact", ALL_FAMILY), text=slots.get("message", ""))
    if kind == "call_family":
        return FamilyMessage(to=slots.get("contact", ALL_FAMILY), text="Please call me back.")
    if kind == "share_location":  # a speaker stays at home; the phone adapter adds GPS
        return FamilyMessage(to=slots.get("contact", ALL_FAMILY), text="I am at home.")
    if kind == "order_medicine":
        medication = slots.get("medication", "my medicine")
        return FamilyMessage(to=ALL_FAMILY, text=f"Please order more {medication} for me.")
    if kind == "report_health_reading":
        return _reading(slots)
    if kind == "report_feeling":
        severity = _WELLNESS_SEVERITY.get(slots.get("feeling", ""))
        if severity is None:
            return None
        return WellnessAlert(concern="feeling", severity=severity, detail=slots.get("feeling"))
    return None


class ActionHandler:
    """Carries out the dialog's actions: reminders on the device, the rest through
    `publish` (the link: stored in the outbox before it returns, sent when it can be)."""

    def __init__(
        self,
        publish: Callable[[Any], Message] | None,
        reminders: ReminderStore | None = None,
        clock: Callable[[], dt.datetime] = dt.datetime.now,
    ) -> None:
        self.publish = publish
        self.reminders = reminders
        self.clock = clock
        self.sent: dict[str, str] = {}  # message id -> type, of what this run sent

    def __call__(self, action: Action, said: str | None = None) -> Message | None:
        for stopped in self._on_device(action):
            self.send(stopped)
        body = message_body(action, said, self.clock().date())
        if body is None:
            return None
        return self.send(body)

    def send(self, body: Any) -> Message | None:
        """Store a message for sending; None when this device has no link."""
        if self.publish is None:
            log.warning("%s not sent: this device has no link to the services", body.TYPE)
            return None
        try:
            message = self.publish(body)
        except Exception:  # a full disk, a body the contract refuses: say so, keep running
            log.exception("%s could not be stored for sending", body.TYPE)
            return None
        log.info("%s stored for sending (%s)", message.type, message.id)
        self.sent[message.id] = message.type
        return message

    def _on_device(self, action: Action) -> list[ReminderRemoved]:
        """Reminders set or stopped on the device; what the family service must hear of it:
        a caregiver's reminder the senior stopped (its copy must not send it again)."""
        if self.reminders is None:
            return []
        if action.kind == "set_medication_reminder":
            now = self.clock()
            today = aware(now).astimezone(self.reminders.tz).date()  # the household's day
            slots = action.slots
            schedule = Schedule.from_repeat(slots.get("repeat", DAILY), slots["time"], today)
            try:
                self.reminders.add_medication(slots["medication"], schedule, now)
            except ScheduleError as exc:  # the dialog asks first; this is the last guard
                log.error("reminder not stored: %s", exc)
        elif action.kind == "cancel_reminder":
            stopped = self.reminders.remove_medication(action.slots["medication"])
            return [ReminderRemoved(r.id) for r in stopped if r.source == "caregiver"]
        return []

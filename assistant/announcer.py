"""What the backends send to the device, turned into things the device does and says.

Messages arrive on the MQTT client's thread while the speech loop may be listening, so
this module never speaks itself: it applies the message (a reminder stored, a volume set)
and queues the sentence; the loop says queued sentences between turns (`take()`), urgent
ones first. A message is handled once it is queued or stored: the receiver's dedup and the
outbox on the other side make that at-least-once, and nothing is said twice.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Callable
from dataclasses import replace

from assistant import replies
from assistant.reminders import Reminder, ReminderStore
from assistant.schedule import ScheduleError, schedule_of
from protocol import (
    AlertAck,
    AlertReceived,
    AppointmentConfirmed,
    AppointmentReminder,
    Call,
    ConsultationAssigned,
    ConsultationCancelled,
    ConsultationEnded,
    ConsultationPosition,
    ConsultationQueued,
    ConsultationSession,
    Message,
    ReminderAdd,
    ReminderChange,
    ReminderRemove,
    Say,
    ServiceRefused,
    Volume,
)

log = logging.getLogger(__name__)

REFUSALS_KEPT = 1000  # refused message ids remembered as told (see Announcer._refused)
UNTRACKED_TWIN = (
    "the senior has a reminder for this dose that asks until it is answered; give the "
    "medicine's name to take it over"
)


def local_time(timestamp: str) -> dt.datetime:
    """A protocol timestamp (UTC) as this device's local wall-clock time."""
    return dt.datetime.fromisoformat(timestamp.replace("Z", "+00:00")).astimezone()


class CommandFailed(Exception):
    """A valid command this device cannot carry out; the reason goes back to the sender."""


class Announcer:
    def __init__(
        self,
        reminders: ReminderStore | None = None,
        on_done: Callable[[Message, bool, str | None], None] | None = None,
        sent_type: Callable[[str], str | None] | None = None,
        clock: Callable[[], dt.datetime] = dt.datetime.now,
        on_command: Callable[[Message], str] | None = None,
    ) -> None:
        """`on_done(command, ok, why)`: called once a command was carried out or could not
        be (to tell the sender);
        `sent_type(id)`: the type of a message this device sent, to say what was refused;
        `on_command(command)`: carries out a hardware command (volume, call) and returns
        what to say, or raises CommandFailed."""
        self.reminders = reminders
        self.on_command = on_command
        self.on_done = on_done
        self.sent_type = sent_type
        self.clock = clock
        self._lock = threading.Lock()
        self._urgent: list[str] = []
        self._normal: list[str] = []
        self._wakeup = threading.Event()
        # ids of refused messages the senior heard of, the latest REFUSALS_KEPT (a message
        # is sent again for a day at most: far fewer than that are refused meanwhile)
        self._refusals_told: dict[str, None] = {}

    # --- the loop's side --------------------------------------------------------------

    def take(self) -> list[str]:
        """Everything waiting to be said, urgent first; empties the queue."""
        with self._lock:
            sentences, self._urgent, self._normal = self._urgent + self._normal, [], []
            self._wakeup.clear()
        return sentences

    def wait(self, timeout: float) -> bool:
        """Block until something is queued (for a loop with nothing else to do)."""
        return self._wakeup.wait(timeout)

    def queue(self, sentence: str, urgent: bool = False) -> None:
        with self._lock:
            waiting = self._urgent if urgent else self._normal
            if sentence in waiting:  # e.g. one answer to two folded calls for help
                return
            waiting.append(sentence)
            self._wakeup.set()

    # --- the link's side --------------------------------------------------------------

    def handle(self, message: Message) -> None:
        """The link's `on_message`. A command that cannot be carried out is answered as
        failed; what raises (the link's outbox failing under `on_done`) leaves the message
        unacknowledged, and the link hands it over again (assistant/link.py)."""
        body = message.body
        sentence: str | None = None
        urgent = False
        if isinstance(body, AlertAck):
            sentence, urgent = replies.alert_acknowledged(body.by, body.action, body.eta_min), True
        elif isinstance(body, AlertReceived):
            pass  # the device stops sending it again (assistant/device.py); nobody saw it yet
        elif isinstance(body, ConsultationQueued | ConsultationPosition):
            sentence = replies.consultation_waiting(body.position, body.estimated_wait_s)
        elif isinstance(body, ConsultationAssigned):
            sentence = replies.consultation_assigned(body.doctor, body.estimated_start_s)
        elif isinstance(body, ConsultationSession):
            sentence = replies.consultation_session(body.mode)
        elif isinstance(body, ConsultationCancelled):
            sentence = replies.consultation_cancelled(body.by)
        elif isinstance(body, ConsultationEnded):
            sentence = replies.CONSULTATION_ENDED
        elif isinstance(body, AppointmentConfirmed):
            sentence = replies.appointment_confirmed(body.doctor, local_time(body.starts_at))
        elif isinstance(body, AppointmentReminder):
            sentence = replies.appointment_soon(body.doctor, body.minutes_before)
        elif isinstance(body, ServiceRefused):  # never let a refused request pass silently
            sentence, urgent = self._refused(body), True
        elif isinstance(body, Say):
            sentence, urgent = body.text, body.urgent
        elif isinstance(body, ReminderAdd | ReminderChange | ReminderRemove | Volume | Call):
            try:
                sentence = self._command(message)
            except CommandFailed as exc:  # the sender hears why; the message is handled
                log.warning("%s could not be carried out: %s", message.type, exc)
                if self.on_done is not None:
                    self.on_done(message, False, str(exc))
                return
            except Exception:  # a full disk, a broken driver: the caregiver must not wait
                log.exception("%s failed on this device", message.type)
                if self.on_done is not None:
                    self.on_done(message, False, "the device could not carry it out")
                return
        else:
            log.info("%s has nothing to say or do on this device", message.type)
        if sentence:
            self.queue(sentence, urgent)
        log.info("handled %s (%s)", message.type, message.id)
        if self.on_done is not None and message.kind == "command":
            self.on_done(message, True, None)

    def _command(self, message: Message) -> str:
        if isinstance(message.body, Volume | Call):
            if self.on_command is None:
                raise CommandFailed("this device has no hardware controls")
            return self.on_command(message)
        return self._reminder_command(message.body)

    def _refused(self, body: ServiceRefused) -> str | None:
        """What to say of a refusal: once for each message refused, since the device sends
        an unconfirmed alert again and each copy is refused while the cause lasts (a device
        not registered yet); but every time for an emergency, whose senior must know that
        it is still not passed on."""
        refused_type = self._sent_type(body.refused_id)
        if body.refused_id is not None and refused_type != "alert.emergency":
            with self._lock:
                if body.refused_id in self._refusals_told:
                    log.info("%s refused again (%s): said once already", body.refused_id,
                             body.reason)  # fmt: skip
                    return None
                self._refusals_told[body.refused_id] = None
                if len(self._refusals_told) > REFUSALS_KEPT:
                    del self._refusals_told[next(iter(self._refusals_told))]  # the oldest
        return replies.request_refused(refused_type)

    def _sent_type(self, message_id: str | None) -> str | None:
        if message_id is None or self.sent_type is None:
            return None
        return self.sent_type(message_id)

    def _reminder_command(self, body: ReminderAdd | ReminderChange | ReminderRemove) -> str:
        try:
            return self._apply_reminder_command(body)
        except ScheduleError as exc:  # e.g. no weekdays at all: the caregiver hears why
            raise CommandFailed(str(exc)) from None

    def _apply_reminder_command(self, body: ReminderAdd | ReminderChange | ReminderRemove) -> str:
        if self.reminders is None:
            raise CommandFailed("this device keeps no reminders")
        if isinstance(body, ReminderRemove):
            gone = self.reminders.get(body.reminder_id)
            self.reminders.remove(body.reminder_id)
            return replies.reminder_removed(gone.text, gone.at) if gone else ""
        if isinstance(body, ReminderAdd):
            reminder = Reminder(
                id=body.reminder_id,
                kind=body.kind,
                text=body.text,
                schedule=schedule_of(body.at, body.days, body.every_hours, body.date),
                medication=body.medication,
                dose=body.dose,
                source="caregiver",
            )
            replaced = self._store_over_own(reminder)
            said = replies.reminder_added(body.text, body.at)
            return f"{said} {replies.OWN_REMINDER_REPLACED}" if replaced else said
        current = self.reminders.get(body.reminder_id)
        if current is None:
            raise CommandFailed("no such reminder on this device")
        changes = {
            name: getattr(body, name)
            for name in ("text", "medication", "dose")
            if getattr(body, name) is not None
        }
        old = current.schedule
        # A new kind of repeat (weekdays, every N hours, a date) replaces the old one:
        # carried over, the old one would win and the change be confirmed but not made.
        given = body.days is not None or body.every_hours is not None or body.date is not None
        changes["schedule"] = schedule_of(
            body.at or old.at,
            body.days if given else old.days,
            body.every_hours if given else old.every_hours,
            body.date if given else old.date,
        )
        changed = replace(current, **changes)
        if self._store_over_own(changed):
            return replies.reminder_changed_over_own(changed.text, changed.at)
        return ""

    def _store_over_own(self, reminder: Reminder) -> list[Reminder]:
        """Store a caregiver's reminder; the senior's own for the same dose (a twin:
        protocol/reminder_twins.py) are handed over to it, one dose one reminder, with
        what was answered (`ReminderStore.put_replacing`), and returned. Refused when it has no
        medicine's name and an own it would replace has: said once and a miss never
        reported, it would replace one asked about until answered."""
        assert self.reminders is not None
        copies = [r for r in self.reminders.copies_of(reminder) if r.source == "senior"]
        if not reminder.answered and any(own.answered for own in copies):
            raise CommandFailed(UNTRACKED_TWIN)
        self.reminders.put_replacing(reminder, copies, self.clock())
        return copies

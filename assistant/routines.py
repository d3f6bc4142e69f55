"""Daily care routines: reminders said at their time, answers recorded, misses reported;
a check-in that asks how the senior feels; an alert when nobody has spoken to the device
for too long.

The loop asks `tick()` between turns; what it returns is said, and a prompt that waits
for an answer makes the dialog listen for it (`Dialog.expect`). Messages to the family
service go through `publish` (the link's outbox): stored before `publish` returns, sent
when the broker can be reached, so a reminder missed offline reaches the family later.

A miss and an inactivity alert are noted as told only after `publish` returned: when it
raises (a full disk, a locked database) the error is logged and the next tick tries again,
and the loop goes on. A power cut between the two commits sends it twice, never not at all.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from assistant import replies
from assistant.reminders import Due, Reminder, ReminderStore, aware, utc
from assistant.schedule import DAILY, Schedule
from protocol import (
    CheckinAnswer,
    InactivityAlert,
    Message,
    MissedMedicationAlert,
    ReminderMissed,
    ReminderTaken,
    WellnessAlert,
)
from protocol.schema import utc_timestamp

log = logging.getLogger(__name__)

CHECK_IN_QUESTION = "Good morning! How are you feeling today?"
CHECK_IN_ID = "check-in-{}"
LAST_ACTIVITY = "last_activity"
INACTIVITY_SENT = "inactivity_alert_for"
# While storing a report keeps failing it is retried at every tick; its traceback is logged
# when it starts failing and again this often, not at every tick.
FAILURE_LOG_EVERY = dt.timedelta(minutes=5)
# A feeling the family service raises a wellness alert for from a check-in answer on its
# own (services/family/service.py, WORRYING_FEELINGS); the device adds the bodily ones.
BODILY_CONCERNS = {"unwell": "medium", "pain": "medium"}


@dataclass(frozen=True)
class Prompt:
    """Something to say now; `expects` names the answer the dialog should wait for."""

    text: str
    expects: str | None = None  # "reminder" | "check_in" | None
    on_silence: str = ""  # what to say if no answer comes


class CareRoutines:
    def __init__(
        self,
        store: ReminderStore,
        publish: Callable[[Any], Message] | None = None,
        inactivity: dt.timedelta | None = None,
        on_reminder: Callable[[str], None] | None = None,
    ) -> None:
        """`inactivity`: raise an alert after this long without anyone speaking to the
        device (None: never); `on_reminder(text)`: a reminder also shown or felt (the
        phone vibrates and shows it)."""
        self.store = store
        self.publish = publish
        self.inactivity = inactivity
        self.on_reminder = on_reminder
        self._failing: dict[str, dt.datetime] = {}  # what fails to be stored: traceback last logged
        self._last_activity: str | None = None  # this run's, as written (or not) to the store

    # --- set up -----------------------------------------------------------------------

    def set_check_ins(self, times: list[str], now: dt.datetime) -> None:
        """The morning greeting(s) from the config; other config check-ins are removed."""
        wanted = {CHECK_IN_ID.format(at.replace(":", "")): at for at in times}
        for reminder in self.store.all():
            if reminder.source == "config" and reminder.id not in wanted:
                self.store.remove(reminder.id)
        for reminder_id, at in wanted.items():
            current = self.store.get(reminder_id)
            if current is not None and current.at == at:
                continue
            reminder = Reminder(
                reminder_id, "check_in", CHECK_IN_QUESTION, Schedule(DAILY, at), source="config"
            )
            self.store.put(reminder, now)

    # --- between turns ----------------------------------------------------------------

    def tick(self, now: dt.datetime) -> list[Prompt]:
        now = aware(now)
        prompts: list[Prompt] = []
        for due in self.store.tick(now):
            if due.event == "missed":
                log.warning("reminder %s missed (%s)", due.reminder.id, due.reason)
                prompts.append(Prompt(replies.reminder_missed(due)))
                continue
            text = replies.reminder_due(due)
            log.info(
                "reminder %s due (attempt %d%s)",
                due.reminder.id,
                due.attempt,
                ", late" if due.late else "",
            )
            if self.on_reminder is not None:
                self.on_reminder(text)
            expects = "check_in" if due.reminder.kind == "check_in" else None
            if due.reminder.kind == "medication" and due.reminder.answered:
                expects = "reminder"
            prompts.append(Prompt(text, expects, replies.REMINDER_SILENCE if expects else ""))
        self._report_misses(now)  # the ones just found, and any an earlier tick could not
        self._inactivity(now)
        # the ones that wait for an answer last: the answer is what is heard next
        return sorted(prompts, key=lambda prompt: prompt.expects is not None)

    def activity(self, now: dt.datetime) -> None:
        """Someone spoke to the device (or pressed its button). Kept in memory as well: a
        write that fails (another process holds the file; a disk that refuses it sends
        the store to memory instead) must neither stop the senior being heard nor make the
        family think nobody has spoken for hours."""
        self._last_activity = utc(now)
        try:
            self.store.set_meta(LAST_ACTIVITY, self._last_activity)
        except Exception:
            log.exception("the time of the last activity could not be written down")

    def _inactivity(self, now: dt.datetime) -> None:
        """One alert per quiet period, noted as sent only once it is stored for sending."""
        if self.inactivity is None:
            return
        last = self._last_activity or self.store.get_meta(LAST_ACTIVITY)
        if last is None:  # first start: the quiet period begins now
            self.activity(now)
            return
        now = aware(now)
        quiet = now - dt.datetime.fromisoformat(last)
        if quiet < self.inactivity or self.store.get_meta(INACTIVITY_SENT) == last:
            return
        since = utc_timestamp(dt.datetime.fromisoformat(last))
        try:
            self._send(InactivityAlert(quiet_for_s=int(quiet.total_seconds()), last_activity=since))
            self.store.set_meta(INACTIVITY_SENT, last)
        except Exception:
            self._failed("inactivity", "the inactivity alert", now)
            return
        self._stored("inactivity", "the inactivity alert")
        log.warning(
            "no interaction for %.1f hours: the family is told", quiet.total_seconds() / 3600
        )

    # --- answers ----------------------------------------------------------------------

    def taken(self, now: dt.datetime) -> Due | None:
        """ "I took it": the reminder it answers is closed and the family service told."""
        now = aware(now)
        due = self.store.latest_asked(now, "medication")
        if due is None:
            return None
        holder = self.store.answer(due, now)
        self._tell(
            ReminderTaken(
                reminder_id=holder, due=utc_timestamp(due.at), taken_at=utc_timestamp(now)
            )
        )
        return due

    def snooze(self, minutes: int, now: dt.datetime) -> str:
        due = self.store.latest_asked(now, "medication")
        if due is None:
            return replies.NOTHING_OPEN
        if due.event == "missed":  # reported already: putting it off would report it twice
            return replies.SNOOZE_AFTER_MISSED
        if not self.store.snooze(due, minutes, now):
            return replies.SNOOZE_REFUSED
        return replies.snoozed(minutes)

    def checked_in(self, feeling: str | None, words: str, now: dt.datetime) -> bool:
        """The answer to the check-in question; False when none was open."""
        due = self.store.latest_asked(now, "check_in")
        if due is None:
            return False
        holder = self.store.answer(due, now)
        self._tell(
            CheckinAnswer(
                checkin_id=holder,
                question=due.reminder.text,
                answer=words[:500] or (feeling or ""),
                feeling=feeling,
            )
        )
        severity = BODILY_CONCERNS.get(feeling or "")
        if severity is not None:
            self._tell(WellnessAlert(concern="check_in", severity=severity, detail=feeling))
        return True

    def _report_misses(self, now: dt.datetime) -> None:
        """Tell the family service of every miss not told yet. Each message is stored
        for sending first and noted as stored after, so one that could not be stored is
        tried again at the next tick, and one already stored is not sent again."""
        for due in self.store.unreported(now):
            what = f"the report of missed reminder {due.reminder.id} ({due.key})"
            failing = f"missed {due.reminder.id} {due.key}"
            messages = _miss_report(due)
            try:
                for done in range(due.reported, len(messages)):
                    self._send(messages[done])
                    last = done + 1 == len(messages)
                    self.store.mark_reported(due, None if last else done + 1)
            except Exception:
                self._failed(failing, what, now)
                continue  # the others may still go
            self._stored(failing, what)

    def _failed(self, key: str, what: str, now: dt.datetime) -> None:
        """Storing `what` for sending raised: logged (its traceback when it starts failing
        and every FAILURE_LOG_EVERY while it goes on), tried again at the next tick."""
        since = self._failing.get(key)
        if since is None or now - since >= FAILURE_LOG_EVERY:
            self._failing[key] = now
            log.exception("%s could not be stored for sending; trying again at the next tick", what)
        else:
            log.debug("%s could not be stored for sending again", what, exc_info=True)

    def _stored(self, key: str, what: str) -> None:
        if self._failing.pop(key, None) is not None:
            log.info("%s is stored for sending after all", what)

    def _tell(self, body: Any) -> None:
        """Store an answer's news for sending. When that fails (a full disk) the answer is
        still recorded and the senior still answered: logged at ERROR, the dialog goes on."""
        try:
            self._send(body)
        except Exception:
            log.exception("%s could not be stored for sending", type(body).__name__)

    def _send(self, body: Any) -> None:
        """Store for sending; raises what `publish` raises."""
        if self.publish is None:
            log.warning("%s not sent: this device has no link to the services", type(body).__name__)
            return
        self.publish(body)


def _miss_report(due: Due) -> list[Any]:
    """What the family service is told of a miss, in order."""
    reminder = due.reminder
    if reminder.kind == "check_in":
        detail = "no answer to the check-in"
        return [WellnessAlert(concern="check_in", severity="medium", detail=detail)]
    return [
        ReminderMissed(reminder_id=reminder.id, due=utc_timestamp(due.at)),
        MissedMedicationAlert(
            reminder_id=reminder.id,
            medication=reminder.medication or reminder.text,
            due=utc_timestamp(due.at),
            missed_times=max(1, due.attempt),
        ),
    ]

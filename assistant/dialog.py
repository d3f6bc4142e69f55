"""Dialog: confirm before anything that cannot be taken back, ask once more for what is
missing, let "repeat" and "cancel" work at any step, and never let an emergency wait for
an answer that does not come.

The dialog turns what was heard into a reply and the actions to take; it does no I/O.
Actions leave the device through the outbox (protocol/ and assistant/outbox.py).
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from assistant import replies
from intents import IntentEngine, IntentMatch

if TYPE_CHECKING:
    from assistant.routines import CareRoutines

log = logging.getLogger(__name__)

REQUIRED_SLOTS: dict[str, tuple[str, ...]] = {
    "request_consultation": ("mode",),
    "book_appointment": ("department", "day", "time"),
    "set_medication_reminder": ("medication", "time"),
    "cancel_reminder": ("medication",),
    "order_medicine": ("medication",),
    "call_family": ("contact",),
    "send_family_message": ("contact", "message"),
    "share_location": ("contact",),
    "report_health_reading": ("measure", "value"),
}
NEEDS_CONFIRMATION = frozenset(
    {
        "request_consultation",
        "book_appointment",
        "set_medication_reminder",
        "cancel_reminder",
        "order_medicine",
        "call_family",
        "send_family_message",
        "share_location",
    }
)
SURE_EMERGENCY = 0.9  # below this (or a lone "help") the dialog asks, and escalates on silence
MAX_ASKS = 2  # a question is asked at most twice, then the dialog gives up


@dataclass(frozen=True)
class Action:
    """Something the device must do or tell a backend; `kind` is the intent's name."""

    kind: str
    slots: dict[str, str] = field(default_factory=dict)


@dataclass
class DialogReply:
    text: str  # empty: say nothing
    actions: list[Action] = field(default_factory=list)
    expects_answer: bool = False  # listen again without the wake phrase


@dataclass
class _Pending:
    kind: str  # "slot", "confirm", "emergency_check", "after_alert", "reminder", "check_in"
    intent: str
    slots: dict[str, str]
    slot: str = ""
    asks: int = 1
    on_silence: str = ""  # for a question the device asked on its own


ANSWERS_TAKEN = ("confirm_medication_taken", "yes")
# What a garbled answer to a yes/no question may still be read by: a "no" that leads it.
# The recognizer often hears the "no" and not what follows ("no thank you" by flite's rms
# as "no sam que", "no I haven't" as "no i hate meant"; 7 of 80 short answers by four
# voices). Only "no", and only where a wrong "no" costs nothing lasting: the question is
# asked again or nothing is done; never to the emergency check, where "no" stands down.
LEADING_NO = frozenset({"no", "nope", "nah"})
READS_LEADING_NO = ("confirm", "reminder")


# "No" to "do you need help?" only when it surely means she is all right: an exact match
# (a tolerant one may be a cry misheard), not the cry "oh no", nor "no, I'm not okay".
_NOT_ALL_RIGHT = re.compile(r"\b(not|n't) (feeling )?(ok|okay|fine|all right|alright|well|good)\b")


def stands_down(match: IntentMatch | None, text: str) -> bool:
    """Does this answer to "do you need help?" say she is all right?"""
    if match is None or match.method != "exact":
        return False
    fine = match.intent == "report_feeling" and match.slots.get("feeling") == "good"
    if not fine and match.intent not in ("no", "false_alarm"):
        return False
    words = " ".join(_words(text))
    return not words.startswith("oh no") and not _NOT_ALL_RIGHT.search(words)


def leading_no(text: str) -> bool:
    """Does the sentence begin with a plain no ("no, ...", "nope ...")?"""
    words = _words(text)
    return bool(words) and words[0] in LEADING_NO


def _words(text: str) -> list[str]:
    """The sentence's words, lower case, without commas and full stops."""
    return text.lower().replace(",", " ").replace(".", " ").split()


class Dialog:
    def __init__(
        self,
        engine: IntentEngine,
        clock: Callable[[], dt.datetime] = dt.datetime.now,
        routines: CareRoutines | None = None,
    ) -> None:
        """`routines`: the reminders and check-ins that answers ("I took it", "remind me
        later", "I feel fine") are recorded in."""
        self.engine = engine
        self.clock = clock
        self.routines = routines
        self.pending: _Pending | None = None
        self.last_said = ""
        self.phone_line = False  # the device calls itself (a phone) rather than ask back

    def hear(self, text: str, match: IntentMatch | None = None) -> DialogReply:
        """The answer to what the senior said (`match`: the engine's reading of it)."""
        if match is None:
            match = self.engine.recognize(text)
        reply = self._hear(text, match)
        if reply.text:
            self.last_said = reply.text
        return reply

    def expect(self, kind: str, on_silence: str = "") -> None:
        """The device asked something on its own (a reminder, the check-in): listen for
        the answer. `on_silence`: said when none comes. An emergency in progress keeps
        the dialog's attention ("I took it" is understood without the context anyway)."""
        if self.pending is not None and self.pending.kind in ("emergency_check", "after_alert"):
            return
        self.pending = _Pending(kind, kind, {}, on_silence=on_silence)

    def no_answer(self) -> DialogReply:
        """The senior said nothing after a question."""
        pending, self.pending = self.pending, None
        if pending is None:
            return DialogReply("")
        if pending.kind in ("reminder", "check_in"):  # asked again later by the routine
            return self._say(pending.on_silence)
        if pending.kind == "emergency_check":
            log.info("no answer to the emergency check: escalating")
            return self._alert(pending.slots)
        if pending.kind == "after_alert":
            return self._say(replies.STILL_HERE)
        return self._say(replies.NO_ANSWER)

    # --- what was heard ---------------------------------------------------------------

    def _hear(self, text: str, match: IntentMatch | None) -> DialogReply:
        intent = match.intent if match else None
        if intent == "repeat":
            said = self.last_said or replies.NOTHING_TO_REPEAT
            return DialogReply(said, expects_answer=self.pending is not None)
        if intent in ("cancel", "false_alarm") and self._alert_sent():
            return DialogReply(replies.ALERT_NOT_CANCELLED, expects_answer=True)
        if intent == "cancel":
            had = self.pending is not None
            self.pending = None
            return DialogReply(replies.CANCELLED if had else "All right.")
        pending = self.pending
        if pending is not None:
            if intent is None and pending.kind in READS_LEADING_NO and leading_no(text):
                intent = "no"
            if pending.kind == "emergency_check":
                return self._emergency_answer(pending, match, text)
            if pending.kind == "reminder":
                answer = self._reminder_answer(pending, intent, match)
                if answer is not None:
                    return answer
            if pending.kind == "check_in":
                answer = self._check_in_answer(pending, intent, match, text)
                if answer is not None:
                    return answer
            if pending.kind == "after_alert" and intent != "emergency":
                self.pending = None  # whatever follows an alert is a request of its own
            if pending.kind == "confirm":
                if intent == "yes":
                    self.pending = None
                    return self._act(pending.intent, pending.slots)
                if intent == "no":
                    self.pending = None
                    return self._say("All right, I will not.")
                if intent is None:
                    return self._ask_again(pending, "Please say yes or no.")
            if pending.kind == "slot" and (intent is None or intent in ("yes", "no")):
                return self._fill(pending, text)
            if pending.kind == "slot" and intent == pending.intent and match:
                merged = {**pending.slots, **match.slots}
                self.pending = None
                return self._continue(pending.intent, merged, list(match.invalid_slots))
            self.pending = None  # something else was asked for: that is the new request
        if match is None:
            return self._say(replies.NOT_UNDERSTOOD)
        return self._start(match, text)

    def _start(self, match: IntentMatch, text: str) -> DialogReply:
        intent, slots = match.intent, dict(match.slots)
        if intent == "emergency":
            sure = match.method == "exact" and match.confidence >= SURE_EMERGENCY
            if sure and not match.hedged and text.strip().lower() not in ("help", "help."):
                return self._alert(slots)
            self.pending = _Pending("emergency_check", intent, slots)
            return DialogReply(replies.EMERGENCY_CHECK, expects_answer=True)
        simple = self._simple(intent, slots)
        if simple is not None:
            return simple
        return self._continue(intent, slots, list(match.invalid_slots))

    def _simple(self, intent: str, slots: dict[str, str]) -> DialogReply | None:
        """Requests answered at once, with no question back."""
        if intent == "what_time":
            return self._say(replies.spoken_time(self.clock()))
        if intent == "help":
            return self._say(replies.HELP)
        if intent == "health_tip":
            return self._say(replies.HEALTH_TIP)
        if intent in ("yes", "no", "false_alarm"):
            return self._say("All right.")
        if intent == "volume_up":
            return self._say("Is this better?", Action("volume_up"))
        if intent == "volume_down":
            return self._say("Is this better?", Action("volume_down"))
        if intent == "confirm_medication_taken":
            return self._taken()
        if intent == "snooze_reminder":
            return self._snooze(slots)
        if intent == "list_reminders":
            return self._say(self._reminders_read_out())
        if intent == "report_feeling":
            feeling = slots.get("feeling", "unwell")
            return self._say(replies.FEELING_REPLIES[feeling], Action(intent, {"feeling": feeling}))
        return None

    # --- reminders and check-ins -----------------------------------------------------

    def _reminder_answer(
        self, pending: _Pending, intent: str | None, match: IntentMatch | None
    ) -> DialogReply | None:
        """The answer to "have you taken it?"; None: something else was asked for."""
        if intent in ANSWERS_TAKEN:
            self.pending = None
            return self._taken()
        if intent == "no":
            self.pending = None
            return self._say(replies.REMINDER_NOT_YET)
        if intent == "snooze_reminder" and match is not None:
            self.pending = None
            return self._snooze(match.slots)
        if intent is None or intent == "false_alarm":  # "it's fine": taken, or not?
            return self._ask_again(pending, replies.REMINDER_ASK_AGAIN)
        return None

    def _check_in_answer(
        self, pending: _Pending, intent: str | None, match: IntentMatch | None, text: str
    ) -> DialogReply | None:
        """The answer to "how are you feeling?"; None: something else was asked for."""
        if intent == "report_feeling" and match is not None:
            feeling = match.slots.get("feeling", "unwell")
        elif intent in ("yes", "false_alarm"):  # "good, thanks", "yes, fine", "it's fine"
            feeling = "good"
        elif intent is None or intent == "no":
            return self._ask_again(pending, replies.CHECK_IN_ASK_AGAIN)
        else:
            return None
        self.pending = None
        if self.routines is None:
            return self._say(
                replies.FEELING_REPLIES[feeling], Action("report_feeling", {"feeling": feeling})
            )
        self.routines.checked_in(feeling, text, self.clock())
        return self._say(replies.FEELING_REPLIES[feeling])

    def _taken(self) -> DialogReply:
        if self.routines is None:
            return self._say(replies.TAKEN_NOTED, Action("confirm_medication_taken"))
        due = self.routines.taken(self.clock())
        if due is None:
            return self._say(replies.TAKEN_NOTHING_OPEN)
        return self._say(replies.taken(due.reminder.medication))

    def _snooze(self, slots: dict[str, str]) -> DialogReply:
        minutes = int(slots.get("minutes", str(replies.SNOOZE_DEFAULT_MIN)))
        if self.routines is None:
            return self._say(
                replies.snoozed(minutes), Action("snooze_reminder", {"minutes": str(minutes)})
            )
        return self._say(self.routines.snooze(minutes, self.clock()))

    def _reminders_read_out(self) -> str:
        if self.routines is None:
            return replies.reminders_read_out([])
        reminders = [r for r in self.routines.store.all() if r.kind != "check_in"]
        return replies.reminders_read_out([replies.reminder_line(r) for r in reminders])

    # --- requests ---------------------------------------------------------------------

    def _continue(self, intent: str, slots: dict[str, str], invalid: list[str]) -> DialogReply:
        """Ask for the first missing slot, else confirm, else act."""
        for slot in REQUIRED_SLOTS.get(intent, ()):
            if slot not in slots or slot in invalid:
                self.pending = _Pending("slot", intent, slots, slot=slot)
                question = replies.SLOT_PROMPTS.get((intent, slot), f"What {slot}?")
                if slot in invalid:
                    question = replies.INVALID_SLOT.get(slot, replies.DID_NOT_UNDERSTAND) + question
                return DialogReply(question, expects_answer=True)
        if intent == "set_medication_reminder" and self._passed_today(slots):
            slots = {**slots, "repeat": "once:tomorrow"}
            self.pending = _Pending("confirm", intent, slots)
            return DialogReply(replies.passed_today(slots["time"]), expects_answer=True)
        if intent in NEEDS_CONFIRMATION:
            self.pending = _Pending("confirm", intent, slots)
            return DialogReply(replies.confirmation(intent, slots), expects_answer=True)
        return self._act(intent, slots)

    def _passed_today(self, slots: dict[str, str]) -> bool:
        """A one-off reminder for today at a time that is already over."""
        if slots.get("repeat") != "once:today" or "time" not in slots:
            return False
        hour, minute = (int(part) for part in slots["time"].split(":"))
        return dt.time(hour, minute) <= self.clock().time()

    def _fill(self, pending: _Pending, text: str) -> DialogReply:
        value = self.engine.slot_value(pending.slot, text, context=pending.slots)
        if value is None:
            question = replies.SLOT_PROMPTS.get((pending.intent, pending.slot), "")
            return self._ask_again(pending, f"Sorry, I did not catch that. {question}".strip())
        self.pending = None
        return self._continue(pending.intent, {**pending.slots, pending.slot: value}, [])

    def _ask_again(self, pending: _Pending, question: str) -> DialogReply:
        if pending.asks >= MAX_ASKS:
            self.pending = None
            return self._say(replies.GIVE_UP)
        pending.asks += 1
        return DialogReply(question, expects_answer=True)

    def _emergency_answer(
        self, pending: _Pending, match: IntentMatch | None, text: str
    ) -> DialogReply:
        """The answer to "do you need help?": no, "false alarm" or "I'm fine" stands down;
        a request for help said with a negation ("no, I don't think I need an ambulance")
        is asked about once more; yes, another emergency, or anything unclear alerts."""
        intent = match.intent if match else None
        if stands_down(match, text):
            self.pending = None
            return self._say("All right. I am here if you need me.")
        if intent == "emergency" and match is not None and match.hedged and pending.asks < MAX_ASKS:
            pending.asks += 1
            return DialogReply(replies.EMERGENCY_CHECK_AGAIN, expects_answer=True)
        self.pending = None
        return self._alert(pending.slots)

    def in_emergency(self) -> bool:
        """Asking "do you need help?", or listening on after an alert."""
        return self.pending is not None and self.pending.kind in ("emergency_check", "after_alert")

    def _alert_sent(self) -> bool:
        return self.pending is not None and self.pending.kind == "after_alert"

    def _act(self, intent: str, slots: dict[str, str]) -> DialogReply:
        if intent == "set_medication_reminder" and self._passed_today(slots):
            # the minute passed while the senior was answering: ask, never say "Done"
            return self._continue(intent, slots, [])
        if intent == "call_family" and self.phone_line:
            return self._say(f"Calling {replies.relation(slots)} now.", Action(intent, slots))
        if intent == "report_health_reading":
            return self._say(replies.reading_noted(slots), Action(intent, slots))
        return self._say(replies.done(intent, slots), Action(intent, slots))

    def alert(self, trigger: str) -> DialogReply:
        """An emergency raised without words (the SOS key): the alert, the reassurance,
        and listening on, as after a spoken one."""
        return self._alert({"kind": "help"}, trigger)

    def alert_raised(self, slots: dict[str, str]) -> DialogReply:
        """An alert raised for her before the dialog was there (a "do you need help?" the
        last run left unanswered, alerted as the device started): she hears help is on the
        way, and is listened to after, as after one she raised."""
        kind = slots.get("kind", "help")
        self.pending = _Pending("after_alert", "emergency", {"kind": kind})
        text = replies.EMERGENCY_SENT.get(kind, replies.EMERGENCY_SENT["help"])
        return DialogReply(text, expects_answer=True)

    def resume_after_alert(self) -> DialogReply:
        """A restart while an alert waits for an answer (it is being sent again): the
        senior is reassured and listened to without the wake phrase, as after raising it."""
        self.pending = _Pending("after_alert", "emergency", {"kind": "help"})
        return DialogReply(replies.STILL_WAITING, expects_answer=True)

    def not_done(self) -> None:
        """The last reply's action failed: nothing that reply waited for follows (after a
        failed alert, silence must not be answered "help is on the way")."""
        self.pending = None

    def open_emergency_check(self) -> dict[str, str] | None:
        """The slots of the emergency the senior is being asked about, or None."""
        pending = self.pending
        if pending is not None and pending.kind == "emergency_check":
            return dict(pending.slots)
        return None

    def unanswered_check(self, slots: dict[str, str]) -> DialogReply:
        """An emergency check a restart cut short: no "no" came, so it alerts, as silence
        does (`no_answer`)."""
        return self._alert(dict(slots))

    def _alert(self, slots: dict[str, str], trigger: str = "voice") -> DialogReply:
        reply = self.alert_raised(slots)  # said, and listened on after
        kind = slots.get("kind", "help")
        action = {"kind": kind} if trigger == "voice" else {"kind": kind, "trigger": trigger}
        reply.actions = [Action("emergency", action)]
        return reply

    @staticmethod
    def _say(text: str, action: Action | None = None) -> DialogReply:
        return DialogReply(text, [action] if action else [])

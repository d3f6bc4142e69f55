"""What the assistant says: short, plain sentences, one idea each, for older listeners.

Only wording lives here; when to say what is the dialog's business (assistant/dialog.py).
"""

from __future__ import annotations

import datetime as dt

from assistant.reminders import Due, Reminder
from intents.repeat import WEEKDAYS

NOT_UNDERSTOOD = "Sorry, I did not understand that. Please say it again, or ask what I can do."
NOTHING_HEARD = "I did not hear anything. Say hey helper when you need me."
NO_ANSWER = "I did not hear an answer, so I have not done anything."
CANCELLED = "All right, I have cancelled that."
GIVE_UP = "Sorry, I still did not understand. Let us start again."
# an action that failed on the device (its state file refused the write): not what the
# dialog had promised
ACTION_FAILED = (
    "Sorry, something went wrong, and I could not do that. Please try again later, or ask "
    "your family for help."
)
EMERGENCY_FAILED = (
    "Something went wrong, and I could not send for help. If you can, call for help on a phone."
)
STILL_HERE = "I am still here with you. Help is on the way."
# "cancel" or "false alarm" once the alert has gone: it cannot be called back from here
ALERT_NOT_CANCELLED = (
    "Your call for help has already gone to your family, and I cannot take it back. "
    "When they answer, tell them you are all right."
)
STILL_WAITING = (
    "I had to start again. Your call for help is still waiting for an answer, and I keep "
    "sending it to your family. I am here with you."
)
NOTHING_TO_REPEAT = "I have not said anything yet."
HELP = (
    "You can ask me for a doctor, call or message your family, set a medicine reminder, "
    "tell me how you feel, or ask the time. If you fall or feel very unwell, just say: "
    "help, I fell, or: call an ambulance."
)
HEALTH_TIP = (
    "Here is a tip. Drink a glass of water with every meal, and take a short walk "
    "every day if you can."
)

_RELATIONS = {"grandchild": "grandchild", "family": "family", "caregiver": "caregiver"}
_MODES = {"video": "a video", "phone": "a phone", "text": "a text"}
_DEPARTMENTS = {
    "general_practice": "a family doctor",
    "cardiology": "a heart specialist",
    "respiratory": "a lung and breathing specialist",
    "endocrinology": "a diabetes and hormone specialist",
    "dermatology": "a skin specialist",
    "psychology": "a psychologist",
    "geriatrics": "a specialist for older people",
}
_MEASURES = {
    "blood_pressure": "blood pressure",
    "blood_sugar": "blood sugar",
    "heart_rate": "pulse",
    "weight": "weight",
    "temperature": "temperature",
}
EMERGENCY_SENT = {
    "fall": "I am getting help for your fall right now. Stay where you are. I am here with you.",
    "medical": "I am calling for medical help right now. Stay calm. I am here with you.",
    "help": "I am getting help right now. I am here with you.",
}
EMERGENCY_CHECK = (
    "Do you need help? Say yes, or say no if you are all right. "
    "If I hear nothing, I will call for help."
)
EMERGENCY_CHECK_AGAIN = "Please say yes if you need help, or no if you are all right."

# The question asked when a slot is missing or was not understood.
SLOT_PROMPTS = {
    ("request_consultation", "mode"): "Would you like a video call, a phone call, or a text chat?",
    ("set_medication_reminder", "medication"): "Which medicine should I remind you about?",
    ("set_medication_reminder", "time"): "At what time should I remind you?",
    ("cancel_reminder", "medication"): "Which medicine reminder should I cancel?",
    ("order_medicine", "medication"): "Which medicine should I order?",
    ("call_family", "contact"): "Who should I call?",
    ("send_family_message", "contact"): "Who is the message for?",
    ("send_family_message", "message"): "What should the message say?",
    ("share_location", "contact"): "Who should I share your location with?",
    ("report_health_reading", "value"): "What was the reading?",
    ("book_appointment", "department"): "Which kind of doctor is the appointment with?",
    ("book_appointment", "day"): "On which day?",
    ("book_appointment", "time"): "At what time?",
}


def spoken_clock(hhmm: str) -> str:
    """'19:30' → 'half past 7 in the evening'; said the way people say times."""
    hour, minute = (int(part) for part in hhmm.split(":"))
    if (hour, minute) == (0, 0):
        return "midnight"
    if (hour, minute) == (12, 0):
        return "noon"
    part = "in the morning" if hour < 12 else "in the afternoon" if hour < 18 else "in the evening"
    twelve = hour % 12 or 12
    following = (hour + 1) % 12 or 12
    if minute == 0:
        return f"{twelve} o'clock {part}"
    if minute == 15:
        return f"quarter past {twelve} {part}"
    if minute == 30:
        return f"half past {twelve} {part}"
    if minute == 45:
        return f"quarter to {following} {part}"
    if minute < 30:
        return f"{minute} past {twelve} {part}"
    return f"{60 - minute} to {following} {part}"


def spoken_time(now: dt.datetime) -> str:
    return f"It is {spoken_clock(f'{now.hour:02d}:{now.minute:02d}')}."


def relation(slots: dict[str, str]) -> str:
    contact = slots.get("contact", "family")
    return f"your {_RELATIONS.get(contact, contact)}"


def consultation(slots: dict[str, str]) -> str:
    mode = _MODES.get(slots.get("mode", ""), "a")
    who = _DEPARTMENTS.get(slots.get("department", ""), "a doctor")
    return f"{mode} consultation with {who}"


def confirmation(intent: str, slots: dict[str, str]) -> str:
    """The question before an action that cannot be taken back."""
    if intent == "request_consultation":
        return f"Shall I ask for {consultation(slots)} now?"
    if intent == "set_medication_reminder":
        return (
            f"I will remind you to take your {slots['medication']} "
            f"{spoken_repeat(slots.get('repeat', 'daily'))} at "
            f"{spoken_clock(slots['time'])}. Is that right?"
        )
    if intent == "cancel_reminder":
        return f"Shall I stop reminding you about your {slots['medication']}?"
    if intent == "order_medicine":
        return f"Shall I order more {slots['medication']}?"
    if intent == "call_family":
        return f"Shall I call {relation(slots)}?"
    if intent == "send_family_message":
        return f"Shall I send {relation(slots)} this message: {slots['message']}?"
    if intent == "share_location":
        return f"Shall I share where you are with {relation(slots)}?"
    if intent == "book_appointment":
        who = _DEPARTMENTS.get(slots["department"], "a doctor")
        day = slots["day"].replace("_", " ")
        return f"Shall I book an appointment with {who} {day} at {spoken_clock(slots['time'])}?"
    raise KeyError(intent)


def done(intent: str, slots: dict[str, str]) -> str:
    """What is said once the action has been handed on."""
    if intent == "request_consultation":
        return f"I am asking for {consultation(slots)}. I will tell you when a doctor is ready."
    if intent == "set_medication_reminder":
        return f"Done. I will remind you at {spoken_clock(slots['time'])}."
    if intent == "cancel_reminder":
        return f"Done. I will not remind you about your {slots['medication']} any more."
    if intent == "order_medicine":
        return f"I have asked for more {slots['medication']}."
    if intent == "call_family":  # a speaker has no phone line: the family calls back
        return f"I have asked {relation(slots)} to call you back."
    if intent == "send_family_message":
        return f"I have sent your message to {relation(slots)}."
    if intent == "share_location":  # a speaker stays at home; a phone adds its position
        return f"I have told {relation(slots)} where you are."
    if intent == "book_appointment":
        return "I have asked for the appointment. I will tell you when it is confirmed."
    raise KeyError(intent)


def spoken_repeat(repeat: str) -> str:
    """The `repeat` slot (intents.repeat) said: "every day", "tomorrow", "on Mondays"."""
    kind, _, rest = repeat.partition(":")
    if kind == "once":
        if rest in ("today", "tomorrow"):
            return rest
        day = dt.date.fromisoformat(rest)
        return f"on {_DAY_NAMES[WEEKDAYS[day.weekday()]]} {day.day} {day:%B}"
    if kind == "hours":
        return f"every {rest} hours, starting"
    if kind == "days":
        return "on " + listed([_DAY_NAMES[d] + "s" for d in rest.split(",")])
    return "every day"


def listed(items: list[str]) -> str:
    """ "a", "a and b", "a, b and c"."""
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


_DAY_NAMES = {
    "mon": "Monday", "tue": "Tuesday", "wed": "Wednesday", "thu": "Thursday",
    "fri": "Friday", "sat": "Saturday", "sun": "Sunday",
}  # fmt: skip


def reading_noted(slots: dict[str, str]) -> str:
    measure = _MEASURES.get(slots.get("measure", ""), "reading")
    value = slots.get("value", "").replace("/", " over ")
    return f"Thank you. I have noted your {measure}: {value}."


FEELING_REPLIES = {
    "good": "I am glad to hear that.",
    "unwell": "I am sorry you are not feeling well. I will let your family know. "
    "If it gets worse, ask me for a doctor.",
    "lonely": "I am sorry you feel lonely. I will let your family know you would like "
    "to hear from them.",
    "sad": "I am sorry you feel sad. I will let your family know. Would a chat with "
    "someone help? You can ask me to call your family.",
    "anxious": "I am sorry you feel worried. Take a slow, deep breath. I will let your "
    "family know.",
    "pain": "I am sorry you are in pain. I will let your family know. If it is bad, "
    "ask me for a doctor.",
    "tired": "Thank you for telling me. Rest a little, and drink some water.",
}


# --- what the device says when a backend answers ------------------------------------------

_ACK_ACTIONS = {
    "seen": "has seen your message",
    "calling": "is calling you now",
    "on_the_way": "is on the way",
    "resolved": "says it is taken care of",
}


def in_minutes(seconds: int | None) -> str:
    """'in about 5 minutes'; empty when nobody knows."""
    if seconds is None:
        return ""
    minutes = max(1, round(seconds / 60))
    if minutes >= 120:
        return f" in about {round(minutes / 60)} hours"
    return f" in about {minutes} minute{'s' if minutes != 1 else ''}"


def alert_acknowledged(by: str, action: str, eta_min: int | None) -> str:
    """'Your daughter has seen your message.' `by` is a relation or a name."""
    if by.lower().startswith("your "):  # the family service names the relation
        who = f"Your {by[5:]}"
    else:
        who = by if by[:1].isupper() else f"Your {by}"
    text = f"{who} {_ACK_ACTIONS.get(action, 'has seen your message')}."
    if action == "on_the_way" and eta_min is not None:
        text = f"{text[:-1]} and will be with you{in_minutes(eta_min * 60)}."
    return text


def consultation_waiting(position: int, wait_s: int | None) -> str:
    if position <= 1:
        return f"You are next in line for a doctor. A doctor will answer{in_minutes(wait_s)}."
    return (
        f"You are number {position} in line for a doctor. "
        f"The wait is{in_minutes(wait_s) or ' not known yet'}."
    ).replace("is in about", "is about")


def consultation_assigned(doctor: str, start_s: int | None) -> str:
    when = in_minutes(start_s) if start_s else " now"
    return f"{doctor} will join you{when}."


def consultation_session(mode: str) -> str:
    if mode == "video":
        return "Your video call with the doctor is ready. Look at the screen."
    if mode == "phone":
        return "The doctor will phone you. Please answer when it rings."
    return "The doctor will write to you now."


def consultation_cancelled(by: str) -> str:
    if by == "senior":
        return "Your consultation is cancelled."
    return "Sorry, the doctor had to cancel. Say: I need a doctor, and I will ask again."


def reminder_added(text: str, at: str) -> str:
    return f"A new reminder was set up for you: {text}, at {spoken_clock(at)}."


def reminder_removed(text: str, at: str) -> str:
    """A reminder the family stopped from afar: said, or one the senior relies on would
    just stop coming."""
    return f"Your family stopped a reminder: {text}, at {spoken_clock(at)}."


OWN_REMINDER_REPLACED = "It replaces the one you set up for the same time."


def reminder_changed_over_own(text: str, at: str) -> str:
    """A change by the family that made their reminder the same dose as one the senior
    set up herself: hers is stopped (one dose, one reminder), and she is told."""
    return f"Your family changed a reminder: {text}, at {spoken_clock(at)}. {OWN_REMINDER_REPLACED}"


def _ago(late_by: dt.timedelta) -> str:
    minutes = int(late_by.total_seconds() // 60)
    if minutes < 90:
        return f"{minutes} minutes ago"
    return f"about {round(minutes / 60)} hours ago"


def reminder_due(due: Due) -> str:
    """A reminder said at its time, again, or late (the late one says so, and why)."""
    reminder = due.reminder
    if reminder.kind == "check_in":
        if due.attempt > 1:
            return "Are you all right? Please tell me how you are feeling."
        return reminder.text
    if reminder.medication is None:
        return f"This is your reminder: {reminder.text}."
    what = reminder.medication + (f", {reminder.dose}" if reminder.dose else "")
    if due.attempt > 1:
        text = f"A reminder again: your {what}. Have you taken it?"
    elif due.late:
        clock = spoken_clock(due.at.strftime("%H:%M"))
        text = (
            f"I am late with this reminder: your {what}{',' if reminder.dose else ''} "
            f"was due at {clock}, "
            f"{_ago(due.late_by)}. If you have not taken it yet, please take it now. "
            "Have you taken it?"
        )
    else:
        text = f"It is time to take your {what}. Have you taken it?"
    if due.final:
        text += " If I do not hear from you, I will let your family know."
    return text


def reminder_missed(due: Due) -> str:
    what = due.reminder.medication or due.reminder.text
    clock = spoken_clock(due.at.strftime("%H:%M"))
    if due.reminder.kind == "check_in":
        return "I did not hear from you this morning, so I have let your family know."
    if due.reason == "device_off":
        return f"While I was switched off, your {what} was due at {clock}. I have told your family."
    return f"I have let your family know that your {what} from {clock} is not confirmed yet."


TAKEN_NOTED = "Well done. I have noted that you took it."
TAKEN_NOTHING_OPEN = "Well done. There was no reminder waiting, so there is nothing to note."
SNOOZE_DEFAULT_MIN = 10
DID_NOT_UNDERSTAND = "Sorry, I did not understand that. "
INVALID_SLOT = {
    "time": "That is not a time on the clock. ",
    "medication": "Sorry, I did not catch the name of the medicine. ",
}


def taken(medication: str | None) -> str:
    return f"Well done. I have noted that you took your {medication or 'medicine'}."


def passed_today(at: str) -> str:
    return (
        f"{spoken_clock(at).capitalize()} has already passed today. "
        f"Shall I remind you tomorrow at {spoken_clock(at)} instead?"
    )


REMINDER_SILENCE = "All right. I will ask you again in a few minutes."
REMINDER_NOT_YET = "Please take it when you can. I will ask you again in a few minutes."
REMINDER_ASK_AGAIN = "Have you taken it? Please say yes, or: remind me later."
CHECK_IN_ASK_AGAIN = "Sorry. How are you feeling today? Good, or not so well?"
SNOOZE_REFUSED = "I cannot put it off any longer. Please take it now if you can."
SNOOZE_AFTER_MISSED = (
    "Your family has already been told this one was missed. "
    "Please take it now if you can, and tell me when you have."
)
NOTHING_OPEN = "There is no reminder waiting for an answer just now."


def snoozed(minutes: int) -> str:
    return f"All right. I will remind you again in {minutes} minutes."


def reminders_read_out(lines: list[str]) -> str:
    if not lines:
        return "You have no reminders."
    head = "You have one reminder: " if len(lines) == 1 else f"You have {len(lines)} reminders. "
    return head + " ".join(lines)


def reminder_line(reminder: Reminder) -> str:
    what = f"your {reminder.medication}" if reminder.medication else reminder.text
    return f"{what}, {spoken_repeat(reminder.schedule.repeat)} at {spoken_clock(reminder.at)}."


_REFUSED = {
    "alert.emergency": "your call for help",
    "consultation.request": "your request for a doctor",
    "family.message": "your message to your family",
}


def request_refused(message_type: str | None) -> str:
    what = _REFUSED.get(message_type or "", "your last request")
    return f"Sorry, {what} could not be accepted. Please try again, or ask your family for help."


CONSULTATION_ENDED = "Your consultation has ended. I hope you feel better soon."


def spoken_day(when: dt.datetime, today: dt.date) -> str:
    if when.date() == today:
        return "today"
    if when.date() == today + dt.timedelta(days=1):
        return "tomorrow"
    return f"on {when.strftime('%A')}, the {when.day}{_ordinal(when.day)}"


def _ordinal(day: int) -> str:
    if day in (11, 12, 13):
        return "th"
    return {1: "st", 2: "nd", 3: "rd"}.get(day % 10, "th")


def appointment_confirmed(doctor: str, when: dt.datetime, today: dt.date | None = None) -> str:
    day = spoken_day(when, today or dt.date.today())
    return (
        f"Your appointment is confirmed: {doctor}, {day} at "
        f"{spoken_clock(f'{when.hour:02d}:{when.minute:02d}')}."
    )


def appointment_soon(doctor: str, minutes_before: int) -> str:
    return f"A reminder: your appointment with {doctor} is{in_minutes(minutes_before * 60)}."

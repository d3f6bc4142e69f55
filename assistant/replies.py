"""What the assistant says back for an understood request.

A minimal dialog: one short, plain sentence per intent, said slowly. The actions behind
them (alerts, consultations) leave the device through the MQTT outbox once that exists;
until then the reply says what the device is doing, never that something happened which
did not.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from intents import IntentMatch

NOT_UNDERSTOOD = "Sorry, I did not understand that. Please say it again, or say help."
NOTHING_HEARD = "I did not hear anything. Say hey helper when you need me."

_MODES = {"video": "a video", "phone": "a phone", "text": "a text"}
_EMERGENCY = {
    "fall": "I am getting help for your fall right now. Stay where you are. I am here with you.",
    "medical": "I am calling for medical help right now. Stay calm. I am here with you.",
    "help": "I am getting help right now. I am here with you.",
}


def spoken_time(now: dt.datetime) -> str:
    hour = now.hour % 12 or 12
    part = (
        "in the morning"
        if now.hour < 12
        else "in the afternoon"
        if now.hour < 18
        else ("in the evening")
    )
    minutes = f"{now.minute:02d}" if now.minute else "o'clock"
    return f"It is {hour} {minutes} {part}."


def _consultation(match: IntentMatch, now: dt.datetime) -> str:
    mode = _MODES.get(match.slots.get("mode", ""), "a")
    return f"I am asking for {mode} consultation with a doctor. I will tell you when one is ready."


def _emergency(match: IntentMatch, now: dt.datetime) -> str:
    return _EMERGENCY.get(match.slots.get("kind", "help"), _EMERGENCY["help"])


def _call_family(match: IntentMatch, now: dt.datetime) -> str:
    return f"Calling your {match.slots.get('contact', 'family')}."


_REPLIES: dict[str, Callable[[IntentMatch, dt.datetime], str]] = {
    "request_consultation": _consultation,
    "emergency": _emergency,
    "call_family": _call_family,
    "what_time": lambda match, now: spoken_time(now),
    "help": lambda match, now: (
        "You can ask me for a doctor, call your family, or ask the time. "
        "If you need help, just say help."
    ),
    "cancel": lambda match, now: "All right, cancelled.",
    "yes": lambda match, now: "All right.",
    "no": lambda match, now: "All right, I will not.",
}


def reply_for(match: IntentMatch | None, now: dt.datetime | None = None) -> str:
    if match is None:
        return NOT_UNDERSTOOD
    handler = _REPLIES.get(match.intent)
    if handler is None:
        return NOT_UNDERSTOOD
    return handler(match, now or dt.datetime.now())

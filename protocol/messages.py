"""Versioned message types and the envelope every MQTT payload carries.

```
{"v": 1, "id": <uuid>, "ts": <ISO-8601 UTC>, "type": ..., "household": ..., "device": ...,
 "body": {...}}
```

`device` is the device the exchange is about: the sender of what a device publishes, the
addressee of what is published to a device. On a family member's topics
(`care/v1/{household}/member/{member}/...`) it names the member instead. The message id is
its identity for receivers: a resend carries the same id, and receivers drop ids they have
already handled.

Bodies are dataclasses checked by `protocol.schema`. Within version 1 a body may gain
optional fields (receivers ignore keys they do not know); anything else is a new `v`.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

from protocol import topics
from protocol.schema import (
    SchemaError,
    canonical_uuid,
    from_dict,
    is_utc_timestamp,
    rule,
    to_dict,
    utc_timestamp,
)

VERSION = topics.VERSION
MAX_PAYLOAD_BYTES = 64 * 1024
ENVELOPE_KEYS = frozenset({"v", "id", "ts", "type", "household", "device", "body"})

PRIORITY_NORMAL = 0
PRIORITY_ALERT = 10  # drained first from the outbox


class Reason:
    """Machine reasons for a rejected incoming message (counted and shown by `status`)."""

    TOO_LARGE = "too_large"
    NOT_UTF8 = "not_utf8"
    NOT_JSON = "not_json"
    NOT_OBJECT = "not_object"
    BAD_ENVELOPE = "bad_envelope"
    UNSUPPORTED_VERSION = "unsupported_version"
    UNKNOWN_TYPE = "unknown_type"
    BAD_BODY = "bad_body"
    WRONG_HOUSEHOLD = "wrong_household"
    WRONG_DEVICE = "wrong_device"
    WRONG_TOPIC = "wrong_topic"
    DUPLICATE = "duplicate"
    RATE_LIMITED = "rate_limited"  # the sender is over its limit (protocol.ratelimit)
    # Not the sender's fault, but counted with the rest so nothing fails silently:
    NO_HANDLER = "no_handler"
    HANDLER_ERROR = "handler_error"


class ServiceReason:
    """Reasons a service refuses a valid message (sent back in `service.refused`). A service
    may use reasons of its own; these are the ones several services share."""

    UNKNOWN_HOUSEHOLD = "unknown_household"
    UNKNOWN_DEVICE = "unknown_device"
    NOT_A_MEMBER = "not_a_member"
    NOT_ALLOWED = "not_allowed"  # a member whose role may not do this
    UNKNOWN_ALERT = "unknown_alert"
    UNKNOWN_REMINDER = "unknown_reminder"
    UNKNOWN_DEPARTMENT = "unknown_department"
    UNSUPPORTED = "unsupported"  # a valid type this service does not take from this sender


class RejectedMessage(Exception):
    """An incoming payload that is not a valid message for this receiver.

    `reason` is one of `Reason`; `detail` names a field or a limit, never payload content."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason} ({detail})" if detail else reason)
        self.reason = reason
        self.detail = detail


# --- the registry of types ---------------------------------------------------------------


class Body:
    """Base of every body class (set by `message_type`)."""

    TYPE: ClassVar[str]
    KIND: ClassVar[str]  # the topic kind it is sent on by default
    KINDS: ClassVar[tuple[str, ...]]  # every kind it may be sent on, KIND first
    PRIORITY: ClassVar[int]


_TYPES: dict[str, type[Body]] = {}


def message_type(
    name: str, kind: str, priority: int = PRIORITY_NORMAL, *, also: tuple[str, ...] = ()
) -> Callable[[type[Body]], type[Body]]:
    """Register a body dataclass as message type `name`, published on topic `kind` (and,
    when the message says so, on the kinds in `also`)."""
    for each in (kind, *also):
        topics.party_of(each)  # raises TopicError (a ValueError) for an unknown kind

    def register(cls: type[Body]) -> type[Body]:
        if name in _TYPES:
            raise ValueError(f"message type {name!r} registered twice")
        cls = dataclass(frozen=True)(cls)
        cls.TYPE = name
        cls.KIND = kind
        cls.KINDS = (kind, *also)
        cls.PRIORITY = priority
        _TYPES[name] = cls
        return cls

    return register


def message_types() -> dict[str, type[Body]]:
    """Every registered type name → its body class."""
    return dict(_TYPES)


def types_for_kind(kind: str) -> list[str]:
    return [name for name, cls in _TYPES.items() if kind in cls.KINDS]


Text = str  # free text: personal data, never logged at INFO
Feeling = Literal["good", "unwell", "lonely", "sad", "anxious", "pain", "tired"]
Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
ConsultationMode = Literal["video", "phone", "text"]


@dataclass(frozen=True)
class Location:
    lat: float = rule(low=-90, high=90)
    lon: float = rule(low=-180, high=180)
    accuracy_m: float | None = rule(None, low=0)


# --- presence -----------------------------------------------------------------------------


@message_type("device.status", kind="status")
class DeviceStatus(Body):
    """Retained on the status topic; the last will says `offline`."""

    state: Literal["online", "offline"]
    reason: Literal["connected", "connection_lost", "shutdown"]
    battery: int | None = rule(None, low=0, high=100)  # percent, on a phone; None: mains


# --- alerts (device → family-notification) and their acknowledgements --------------------


@message_type("alert.emergency", kind="alert", priority=PRIORITY_ALERT)
class EmergencyAlert(Body):
    trigger: Literal["voice", "sos_button", "fall_detected", "no_answer"]
    said: Text | None = None  # what the senior said, when it was spoken
    location: Location | None = None
    kind: Literal["fall", "medical", "help"] = "help"  # what the senior said happened


@message_type("alert.missed_medication", kind="alert", priority=PRIORITY_ALERT)
class MissedMedicationAlert(Body):
    reminder_id: str = rule(fmt="id")
    medication: Text = rule(max_len=200)
    due: str = rule(fmt="ts")
    missed_times: int = rule(1, low=1, high=1000)


# The device's state stores that `WellnessAlert.lost` may name (assistant/lost_state.py),
# and those whose loss may hide a call for help nobody was told of: both sides read them.
LOST_STORES = ("reminders", "outbox", "unanswered_alerts", "unconfirmed_alerts", "emergency_check")
LOST_URGENT = frozenset({"outbox", "unanswered_alerts", "emergency_check"})


@message_type("alert.wellness", kind="alert", priority=PRIORITY_ALERT)
class WellnessAlert(Body):
    """A calm concern. `lost` (with concern `other`): the device found state files damaged
    and started without them; their keys (assistant/lost_state.py). `storage_failing`
    (with concern `other`): the device's disk refuses writes, so it goes on in memory and
    loses what it keeps from now on at a restart. `not_restored` (raised by the family
    service, never sent by a device): the texts of caregivers' reminders a device that lost
    its reminders did not take back (services/family/reminders.py, `restore`). `severity`
    high: not held for a member's quiet hours."""

    concern: Literal["feeling", "health_reading", "check_in", "other"]
    severity: Literal["low", "medium", "high"]
    detail: Text | None = None
    lost: list[str] | None = rule(None, max_len=10)
    storage_failing: bool | None = None
    not_restored: list[Text] | None = rule(None, max_len=50)


@message_type("alert.inactivity", kind="alert", priority=PRIORITY_ALERT)
class InactivityAlert(Body):
    quiet_for_s: int = rule(low=0)
    last_activity: str | None = rule(None, fmt="ts")


@message_type("alert.ack", kind="alert_ack")
class AlertAck(Body):
    """Someone took charge of an alert: the device tells the senior, the service stops
    escalating."""

    alert_id: str = rule(fmt="uuid")  # the alert message's id
    by: Text = rule(max_len=200)  # who: a family member's name or a caregiver's role
    action: Literal["seen", "calling", "on_the_way", "resolved"]
    eta_min: int | None = rule(None, low=0, high=24 * 60)


@message_type("alert.received", kind="alert_ack")
class AlertReceived(Body):
    """The family service has stored an alert: it is in the service's hands, and the device
    stops sending it again (assistant/resend.py). Not an answer: nobody has seen it yet.
    Given for the alerts in `RECEIPTED`; an emergency is sent again until someone answers
    it (`alert.ack`)."""

    alert_id: str = rule(fmt="uuid")  # the alert message's id


# What the family service confirms with `alert.received` once stored: the alerts but an
# emergency, and the senior's messages for the family (kept as alerts there too). The
# broker's acknowledgement only says a broker has them: a service worker that died holding
# its share of a shared subscription can keep them for the life of its session.
RECEIPTED = frozenset(
    {"alert.missed_medication", "alert.wellness", "alert.inactivity", "family.message"}
)


# --- commands to the device -----------------------------------------------------------------


# A family member's app sends these to the family service on its `member_command` topic;
# the service checks the member belongs to the household and passes them on to the device.


@message_type("command.say", kind="command", also=("member_command",))
class Say(Body):
    text: Text
    urgent: bool = False  # interrupt what the device is saying


@message_type("command.volume", kind="command", also=("member_command",))
class Volume(Body):
    level: float = rule(low=0.0, high=1.0)


# A caregiver's app sends the same reminder commands to the family service on its own
# `member_command` topic; the service checks them and passes them on to the device.


@message_type("command.reminder.add", kind="command", also=("member_command",))
class ReminderAdd(Body):
    reminder_id: str = rule(fmt="id")
    kind: Literal["medication", "appointment", "check_in", "other"]
    text: Text
    at: str = rule(fmt="clock")  # local time HH:MM (the first of the day for every_hours)
    days: list[Weekday] | None = None  # None: every day
    medication: Text | None = rule(None, max_len=200)
    dose: Text | None = rule(None, max_len=200)
    every_hours: int | None = rule(None, low=1, high=12)  # from `at`, within each day
    date: str | None = rule(None, fmt="date")  # a one-off on this local date


@message_type("command.reminder.change", kind="command", also=("member_command",))
class ReminderChange(Body):
    """Only the fields given change."""

    reminder_id: str = rule(fmt="id")
    text: Text | None = None
    at: str | None = rule(None, fmt="clock")
    days: list[Weekday] | None = None
    medication: Text | None = rule(None, max_len=200)
    dose: Text | None = rule(None, max_len=200)
    every_hours: int | None = rule(None, low=1, high=12)
    date: str | None = rule(None, fmt="date")


@message_type("command.reminder.remove", kind="command", also=("member_command",))
class ReminderRemove(Body):
    reminder_id: str = rule(fmt="id")


@message_type("command.call", kind="command", also=("member_command",))
class Call(Body):
    contact: Text = rule(max_len=200)
    number: str | None = rule(None, fmt="phone")
    mode: Literal["voice", "video"] = "voice"


# --- device events ------------------------------------------------------------------------


@message_type("event.reminder.taken", kind="event")
class ReminderTaken(Body):
    reminder_id: str = rule(fmt="id")
    due: str = rule(fmt="ts")
    taken_at: str = rule(fmt="ts")


@message_type("event.reminder.missed", kind="event")
class ReminderMissed(Body):
    reminder_id: str = rule(fmt="id")
    due: str = rule(fmt="ts")


@message_type("event.reminder.removed", kind="event")
class ReminderRemoved(Body):
    """The senior stopped, by voice ("cancel my aspirin reminder"), a reminder a caregiver
    set up: the family service's copy shows it removed, and does not send it again to a
    device that lost its reminders."""

    reminder_id: str = rule(fmt="id")


@message_type("event.health.reading", kind="event")
class HealthReading(Body):
    measure: Literal[
        "blood_pressure", "blood_sugar", "heart_rate", "weight", "temperature", "oxygen"
    ]
    value: float = rule(low=0, high=1000)  # systolic for blood pressure
    taken_at: str = rule(fmt="ts")
    diastolic: float | None = rule(None, low=0, high=300)
    unit: str | None = rule(None, max_len=20)

    def check(self) -> str | None:
        if (self.measure == "blood_pressure") != (self.diastolic is not None):
            return "diastolic is given for blood pressure and only for it"
        return None


@message_type("event.checkin.answer", kind="event")
class CheckinAnswer(Body):
    checkin_id: str = rule(fmt="id")
    question: Text
    answer: Text
    feeling: Feeling | None = None


@message_type("event.command.done", kind="event")
class CommandDone(Body):
    """The device carried out a command (`ok`) or could not (`detail` says why)."""

    command_id: str = rule(fmt="uuid")  # the command message's id
    command: str = rule(max_len=100)  # its type, e.g. command.reminder.add
    ok: bool = True
    detail: Text | None = rule(None, max_len=500)


# --- consultations ------------------------------------------------------------------------


@message_type("consultation.request", kind="consultation")
class ConsultationRequest(Body):
    """Its message id is the request id the updates refer to."""

    mode: ConsultationMode
    urgency: Literal["routine", "soon", "urgent"] = "soon"
    department: Text | None = rule(None, max_len=200)
    reason: Text | None = None
    # Optional since the start of doctor-connect: what the senior said is wrong (triaged to
    # a department when `department` is not given), the language to be spoken to in (a
    # BCP 47 tag such as "en" or "de") and, for a phone consultation, the number to call.
    symptoms: list[Text] | None = rule(None, max_len=20)
    language: str | None = rule(None, max_len=16)
    callback_number: str | None = rule(None, fmt="phone")


@message_type("consultation.cancel", kind="consultation")
class ConsultationCancel(Body):
    """The senior no longer wants the consultation."""

    request_id: str = rule(fmt="uuid")


@message_type("consultation.queued", kind="consultation_update")
class ConsultationQueued(Body):
    request_id: str = rule(fmt="uuid")
    position: int = rule(low=1)
    estimated_wait_s: int | None = rule(None, low=0)


@message_type("consultation.position", kind="consultation_update")
class ConsultationPosition(Body):
    request_id: str = rule(fmt="uuid")
    position: int = rule(low=1)
    estimated_wait_s: int | None = rule(None, low=0)


@message_type("consultation.assigned", kind="consultation_update")
class ConsultationAssigned(Body):
    request_id: str = rule(fmt="uuid")
    doctor: Text = rule(max_len=200)  # the name the senior will hear
    estimated_start_s: int | None = rule(None, low=0)


@message_type("consultation.session", kind="consultation_update")
class ConsultationSession(Body):
    request_id: str = rule(fmt="uuid")
    mode: ConsultationMode
    join_url: str | None = rule(None, fmt="url", max_len=1000)
    phone_number: str | None = rule(None, fmt="phone")  # for phone: the number that calls
    starts_at: str | None = rule(None, fmt="ts")
    # Optional since doctor-connect: the video room, the topic of a text consultation
    # (`topics.conversation`) and the doctor's name.
    room_id: str | None = rule(None, fmt="id")
    conversation_topic: str | None = rule(None, max_len=300)
    doctor: Text | None = rule(None, max_len=200)

    def check(self) -> str | None:
        if self.mode == "video" and self.join_url is None:
            return "a video session needs join_url"
        if self.mode == "phone" and self.phone_number is None:
            return "a phone session needs phone_number"
        if self.mode == "text" and self.conversation_topic is None:
            return "a text session needs conversation_topic"
        return None


@message_type("consultation.cancelled", kind="consultation_update")
class ConsultationCancelled(Body):
    request_id: str = rule(fmt="uuid")
    by: Literal["doctor", "service", "senior"]
    reason: Text | None = None


@message_type("consultation.ended", kind="consultation_update")
class ConsultationEnded(Body):
    """The session is over (the doctor or the senior ended it)."""

    request_id: str = rule(fmt="uuid")
    by: Literal["doctor", "senior", "service"]


@message_type("consultation.text", kind="conversation", also=("doctor_text", "doctor_session"))
class ConsultationText(Body):
    """One line of a text consultation. The senior's device and doctor-connect exchange
    them on the device's conversation topic, the doctor's app and doctor-connect on the
    app's own topics (`doctor_text` out, `doctor_session` in): doctor-connect passes them
    on only between the senior and the doctor who holds the consultation."""

    request_id: str = rule(fmt="uuid")
    sender: Literal["senior", "doctor"]
    text: Text


# --- appointments -------------------------------------------------------------------------


def _is_date(value: str) -> bool:
    try:
        dt.date.fromisoformat(value)
    except ValueError:
        return False
    return len(value) == 10


@message_type("appointment.request", kind="consultation")
class AppointmentRequest(Body):
    """A consultation with a department at a day and time (the practice's local time). Its
    message id is the request id the confirmation refers to."""

    department: Text = rule(max_len=200)
    date: str = rule(max_len=10)  # YYYY-MM-DD
    at: str = rule(fmt="clock")  # HH:MM
    mode: ConsultationMode = "video"
    language: str | None = rule(None, max_len=16)
    reason: Text | None = None

    def check(self) -> str | None:
        return None if _is_date(self.date) else "date: expected YYYY-MM-DD"


@message_type("appointment.confirmed", kind="consultation_update")
class AppointmentConfirmed(Body):
    request_id: str = rule(fmt="uuid")
    appointment_id: str = rule(fmt="id")
    department: Text = rule(max_len=200)
    doctor: Text = rule(max_len=200)
    starts_at: str = rule(fmt="ts")
    mode: ConsultationMode = "video"


@message_type("appointment.reminder", kind="consultation_update")
class AppointmentReminder(Body):
    appointment_id: str = rule(fmt="id")
    doctor: Text = rule(max_len=200)
    starts_at: str = rule(fmt="ts")
    minutes_before: int = rule(low=0)


# --- doctors' apps (envelope: household = the practice, device = the doctor) --------------

DoctorState = Literal["available", "busy", "offline"]


@message_type("doctor.status", kind="doctor_status")
class DoctorStatus(Body):
    """Retained on the doctor's status topic; the app's last will says `offline`."""

    state: DoctorState


@message_type("doctor.accept", kind="doctor_action")
class DoctorAccept(Body):
    request_id: str = rule(fmt="uuid")


@message_type("doctor.end", kind="doctor_action")
class DoctorEnd(Body):
    request_id: str = rule(fmt="uuid")


@message_type("doctor.session", kind="doctor_session")
class DoctorSession(Body):
    """A consultation handed to a doctor: what the doctor's app needs to start it. `reason`
    and `symptoms` are health data."""

    request_id: str = rule(fmt="uuid")
    household: str = rule(fmt="id")
    device: str = rule(fmt="id")
    mode: ConsultationMode
    department: Text = rule(max_len=200)
    urgency: Literal["routine", "soon", "urgent"]
    starts_at: str = rule(fmt="ts")
    language: str | None = rule(None, max_len=16)
    reason: Text | None = None
    symptoms: list[Text] | None = rule(None, max_len=20)
    room_id: str | None = rule(None, fmt="id")
    join_url: str | None = rule(None, fmt="url", max_len=1000)  # the doctor's own link
    callback_number: str | None = rule(None, fmt="phone")
    # text: the app's own topic for its lines (`doctor_text`); the senior's come on its
    # session topic, passed on by doctor-connect
    conversation_topic: str | None = rule(None, max_len=300)
    appointment_id: str | None = rule(None, fmt="id")


@message_type("doctor.session.cancelled", kind="doctor_session")
class DoctorSessionCancelled(Body):
    request_id: str = rule(fmt="uuid")
    by: Literal["senior", "service"]


# --- messages to family members -----------------------------------------------------------


@message_type("family.message", kind="family")
class FamilyMessage(Body):
    to: Text = rule(max_len=200)  # a contact's name, or "all"
    text: Text
    urgent: bool = False
    location: Location | None = None  # "share my location" on a device that knows it


# --- family members' and caregivers' apps --------------------------------------------------

AlertCategory = Literal["emergency", "missed_medication", "wellness", "inactivity", "message"]
AckAction = Literal["seen", "calling", "on_the_way", "resolved"]


@message_type("member.alert", kind="inbox", priority=PRIORITY_ALERT)
class MemberAlert(Body):
    """An alert about the senior, in a member's inbox. The member answers with `member.ack`
    naming `alert_id`."""

    alert_id: str = rule(fmt="uuid")  # the device's alert message id
    category: AlertCategory
    device: str = rule(fmt="id")
    tone: Literal["urgent", "calm"]
    text: Text  # what the app shows, in the member's language
    raised_at: str = rule(fmt="ts")
    step: int = rule(0, low=0, high=100)  # 0: first notice; n: the n-th escalation
    location: Location | None = None


@message_type("member.alert.update", kind="inbox")
class MemberAlertUpdate(Body):
    """What became of an alert a member was told about (someone answered, it escalated)."""

    alert_id: str = rule(fmt="uuid")
    state: Literal["acknowledged", "escalated", "closed"]
    text: Text
    by: Text | None = rule(None, max_len=200)


@message_type("member.ack", kind="member_ack")
class MemberAck(Body):
    """A member takes charge of an alert; the service stops escalating and tells the
    device who answered."""

    alert_id: str = rule(fmt="uuid")
    action: AckAction = "seen"
    eta_min: int | None = rule(None, low=0, high=24 * 60)


@message_type("member.command.result", kind="inbox")
class MemberCommandResult(Body):
    """What became of a caregiver's command: sent to the device, then confirmed (or not)."""

    command_id: str = rule(fmt="uuid")  # the caregiver's command message id
    status: Literal["sent", "confirmed", "failed"]
    reminder_id: str | None = rule(None, fmt="id")
    detail: Text | None = rule(None, max_len=500)


@message_type("member.digest", kind="inbox")
class MemberDigest(Body):
    """A household's day: reminders taken and missed, readings, alerts."""

    day: str = rule(max_len=10)  # YYYY-MM-DD, the household's local date
    reminders_taken: int = rule(low=0)
    reminders_missed: int = rule(low=0)
    readings: int = rule(low=0)
    alerts: int = rule(low=0)
    lines: list[Text] = rule(max_len=200)  # one short sentence each, for people


# --- refusals by services -------------------------------------------------------------------


@message_type("service.refused", kind="refused", also=("member_refused", "doctor_refused"))
class ServiceRefused(Body):
    """A service tells a sender why it did not take a message: one of `Reason` (it could not
    be read as a valid message) or a service reason (`ServiceReason`, or the service's own).
    `detail` names a field or a rule, never the payload's content."""

    reason: str = rule(fmt="id")
    refused_id: str | None = rule(None, fmt="uuid")  # None: the payload had no readable id
    detail: Text | None = rule(None, max_len=500)


# --- the envelope -------------------------------------------------------------------------


@dataclass(frozen=True, repr=False)
class Message:
    """One message. Its repr leaves the body out: bodies carry personal data."""

    body: Any  # an instance of a registered body class
    household: str
    device: str
    id: str = field(default_factory=lambda: str(uuid.uuid4()))
    ts: str = field(default_factory=utc_timestamp)
    v: int = VERSION
    on: str | None = None  # the topic kind when not the type's default (one of its KINDS)

    @property
    def type(self) -> str:
        return self.body.TYPE

    @property
    def kind(self) -> str:
        return self.on or self.body.KIND

    @property
    def priority(self) -> int:
        return self.body.PRIORITY

    @property
    def topic(self) -> str:
        return topics.endpoint_topic(self.household, self.device, self.kind)

    def to_dict(self) -> dict[str, Any]:
        return {
            "v": self.v,
            "id": self.id,
            "ts": self.ts,
            "type": self.type,
            "household": self.household,
            "device": self.device,
            "body": to_dict(self.body),
        }

    def __repr__(self) -> str:
        return (
            f"Message(type={self.type}, id={self.id}, household={self.household}, "
            f"device={self.device})"
        )


def create(body: Any, household: str, device: str, *, on: str | None = None) -> Message:
    """A new message with a fresh id and the current time; checked as a receiver would.

    `on`: the topic kind, when the type may go on several (see `message_type(also=...)`);
    `device` is then the endpoint of that kind (a member for a member's kind)."""
    if type(body) not in _TYPES.values():
        raise TypeError(f"{type(body).__name__} is not a registered message body")
    if on is not None and on not in body.KINDS:
        raise ValueError(f"{body.TYPE} is not sent on {on}")
    on = None if on == body.KIND else on
    message = Message(body=body, household=household, device=device, on=on)
    encode(message)  # raises ValueError when a receiver would reject it
    return message


def encode(message: Message) -> bytes:
    """Compact UTF-8 JSON. Refuses (ValueError) what `decode` would reject."""
    data = message.to_dict()
    payload = json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    try:
        _check(data, payload, message.household, message.device, None)
    except RejectedMessage as exc:
        raise ValueError(f"cannot send an invalid {message.type} message: {exc}") from None
    return payload


def decode(
    payload: bytes,
    expected_household: str | None,
    *,
    expected_device: str | None = None,
    topic: str | None = None,
) -> Message:
    """Parse and validate an incoming payload, or raise `RejectedMessage`.

    `expected_household` None accepts any household (a service serving many); the device
    passes its own. With `topic`, the topic's household and device must match the envelope
    and the type must belong on that topic."""
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise RejectedMessage(Reason.TOO_LARGE, f"over {MAX_PAYLOAD_BYTES} bytes")
    try:
        text = bytes(payload).decode("utf-8")
    except UnicodeDecodeError:
        raise RejectedMessage(Reason.NOT_UTF8) from None
    try:
        data = json.loads(text, parse_constant=_no_constants, object_pairs_hook=_unique_keys)
    except RecursionError:
        raise RejectedMessage(Reason.NOT_JSON, "nested too deeply") from None
    except ValueError as exc:
        where = f"at char {exc.pos}" if isinstance(exc, json.JSONDecodeError) else ""
        raise RejectedMessage(Reason.NOT_JSON, where) from None
    return _check(data, payload, expected_household, expected_device, topic)


def _no_constants(name: str) -> Any:
    raise ValueError("NaN and Infinity are not JSON")


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """An object with a key twice is refused: parsers disagree on which value counts, so a
    service and an app could each act on a different one."""
    data = dict(pairs)
    if len(data) != len(pairs):
        raise ValueError("a key appears twice in an object")
    return data


def _check(
    data: Any,
    payload: bytes,
    household: str | None,
    device: str | None,
    topic: str | None,
) -> Message:
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise RejectedMessage(Reason.TOO_LARGE, f"over {MAX_PAYLOAD_BYTES} bytes")
    if not isinstance(data, dict):
        raise RejectedMessage(Reason.NOT_OBJECT)
    version = data.get("v")
    if not isinstance(version, int) or isinstance(version, bool):
        raise RejectedMessage(Reason.BAD_ENVELOPE, "v: expected an integer")
    if version != VERSION:
        raise RejectedMessage(Reason.UNSUPPORTED_VERSION, f"v{version}, this side speaks v1")
    missing = sorted(ENVELOPE_KEYS - data.keys())
    if missing:
        raise RejectedMessage(Reason.BAD_ENVELOPE, f"missing {', '.join(missing)}")
    extra = sorted(data.keys() - ENVELOPE_KEYS)
    if extra:
        raise RejectedMessage(Reason.BAD_ENVELOPE, f"{len(extra)} unknown envelope key(s)")
    message_id = canonical_uuid(data["id"])
    if message_id is None:
        raise RejectedMessage(Reason.BAD_ENVELOPE, "id: expected a UUID")
    if not is_utc_timestamp(data["ts"]):
        raise RejectedMessage(Reason.BAD_ENVELOPE, "ts: expected an ISO-8601 UTC timestamp")
    for key in ("type", "household", "device"):
        if not isinstance(data[key], str):
            raise RejectedMessage(Reason.BAD_ENVELOPE, f"{key}: expected a string")
    if not topics.valid_id(data["household"]) or not topics.valid_id(data["device"]):
        raise RejectedMessage(Reason.BAD_ENVELOPE, "household/device: not a valid id")
    if household is not None and data["household"] != household:
        raise RejectedMessage(Reason.WRONG_HOUSEHOLD, "the envelope names another household")
    if device is not None and data["device"] != device:
        raise RejectedMessage(Reason.WRONG_DEVICE, "the envelope names another device")
    cls = _TYPES.get(data["type"])
    if cls is None:
        raise RejectedMessage(Reason.UNKNOWN_TYPE, "not a v1 message type")
    if topic is not None:
        info = topics.parse(topic)
        if info is None:
            raise RejectedMessage(Reason.WRONG_TOPIC, "not a care topic")
        if info.household != data["household"]:
            raise RejectedMessage(Reason.WRONG_HOUSEHOLD, "topic and envelope disagree")
        if info.device != data["device"]:
            raise RejectedMessage(Reason.WRONG_DEVICE, "topic and envelope disagree")
        if info.kind not in cls.KINDS:
            raise RejectedMessage(Reason.WRONG_TOPIC, f"{data['type']} is not sent on {info.kind}")
        on = None if info.kind == cls.KIND else info.kind
    else:
        on = None
    try:
        body = from_dict(cls, data["body"])
    except SchemaError as exc:
        raise RejectedMessage(Reason.BAD_BODY, str(exc)) from None
    return Message(
        body=body,
        household=data["household"],
        device=data["device"],
        id=message_id,
        ts=data["ts"],
        v=version,
        on=on,
    )

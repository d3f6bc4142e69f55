"""MQTT topics: the only place in the project where a topic string is put together.

Everything lives under `care/v1/{household}/device/{device}/`:

| kind                  | suffix                | direction               | types             |
|-----------------------|-----------------------|-------------------------|-------------------|
| `status`              | `status` (retained)   | device → everyone       | `device.status`   |
| `alert`               | `alert`               | device → services       | `alert.*` but ack |
| `alert_ack`           | `alert/ack`           | services → device       | `alert.ack`       |
| `command`             | `command`             | services → device       | `command.*`       |
| `event`               | `event`               | device → services       | `event.*`         |
| `consultation`        | `consultation`        | device → doctor-connect | request, cancel   |
| `consultation_update` | `consultation/update` | doctor-connect → device | the other ones    |
| `family`              | `family`              | device → family service | `family.message`  |
| `conversation`        | `conversation`        | device ↔ doctor         | `consultation.text`|

Doctors' apps have topics of their own, `care/v1/{practice}/doctor/{doctor}/...`: the
practice (the doctors' organisation) stands where a household stands and the doctor where a
device stands, in the topic and in the envelope alike:

| kind             | suffix              | direction              | types                      |
|------------------|---------------------|------------------------|----------------------------|
| `doctor_status`  | `status` (retained) | doctor's app → all     | `doctor.status`            |
| `doctor_action`  | `action`            | app → doctor-connect   | `doctor.accept`, `.end`    |
| `doctor_session` | `session`           | doctor-connect → app   | `doctor.session*`          |

Services subscribe across households with `ANY` ("+") and share the load with
`shared(group, topic)` (`$share/<group>/...`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

VERSION = 1
ROOT = f"care/v{VERSION}"
ANY = "+"  # a single-level wildcard for subscriptions: any household or any device

# kind -> the segments after `device/{device}/` (or `doctor/{doctor}/`, see `owner`)
KINDS: dict[str, tuple[str, ...]] = {
    "status": ("status",),
    "alert": ("alert",),
    "alert_ack": ("alert", "ack"),
    "command": ("command",),
    "event": ("event",),
    "consultation": ("consultation",),
    "consultation_update": ("consultation", "update"),
    "family": ("family",),
    "conversation": ("conversation",),
    "doctor_status": ("status",),
    "doctor_action": ("action",),
    "doctor_session": ("session",),
}
DEVICE = "device"
DOCTOR = "doctor"
# kind -> whose topic it is when not a device's: the marker after the household/practice
_OWNER: dict[str, str] = {
    "doctor_status": DOCTOR,
    "doctor_action": DOCTOR,
    "doctor_session": DOCTOR,
}
# What a doctor's app listens to, and what it publishes.
DOCTOR_INBOUND = ("doctor_session",)
DOCTOR_OUTBOUND = ("doctor_status", "doctor_action")
# What the device itself listens to, and what it publishes.
DEVICE_INBOUND = ("command", "alert_ack", "consultation_update")
DEVICE_OUTBOUND = ("status", "alert", "event", "consultation", "family")

_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
_GROUP = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")


class TopicError(ValueError):
    """An identifier that cannot be part of a topic (empty, too long, `/`, `+`, `#`...)."""


def valid_id(value: object) -> bool:
    """A household or device id: 1-64 of letters, digits, `_`, `.`, `-` (not first)."""
    return isinstance(value, str) and _ID.fullmatch(value) is not None


def _segment(value: str, what: str, wildcard: bool) -> str:
    if wildcard and value == ANY:
        return value
    if not valid_id(value):
        raise TopicError(f"{what} is not a valid topic segment")
    return value


def device_topic(household: str, device: str, kind: str, *, wildcard: bool = False) -> str:
    """The topic of `kind` for one device. With `wildcard`, household/device may be `ANY`."""
    if kind not in KINDS:
        raise TopicError(f"unknown topic kind {kind!r}")
    return "/".join(
        (
            ROOT,
            _segment(household, "household", wildcard),
            owner(kind),
            _segment(device, "device", wildcard),
            *KINDS[kind],
        )
    )


def owner(kind: str) -> str:
    """`device` for a senior's device's topics, `doctor` for a doctor's app's."""
    return _OWNER.get(kind, DEVICE)


def status(household: str, device: str) -> str:
    return device_topic(household, device, "status")


def alert(household: str, device: str) -> str:
    return device_topic(household, device, "alert")


def alert_ack(household: str, device: str) -> str:
    return device_topic(household, device, "alert_ack")


def command(household: str, device: str) -> str:
    return device_topic(household, device, "command")


def event(household: str, device: str) -> str:
    return device_topic(household, device, "event")


def consultation(household: str, device: str) -> str:
    return device_topic(household, device, "consultation")


def consultation_update(household: str, device: str) -> str:
    return device_topic(household, device, "consultation_update")


def family(household: str, device: str) -> str:
    return device_topic(household, device, "family")


def conversation(household: str, device: str) -> str:
    """A text consultation's lines, written by the senior's device and the doctor alike."""
    return device_topic(household, device, "conversation")


def doctor_topic(practice: str, doctor: str, kind: str) -> str:
    """A doctor's app's topic of `kind` (one of `DOCTOR_INBOUND` or `DOCTOR_OUTBOUND`)."""
    if owner(kind) != DOCTOR:
        raise TopicError(f"{kind!r} is not a doctor's topic")
    return device_topic(practice, doctor, kind)


def subscription(kind: str, household: str = ANY, device: str = ANY) -> str:
    """A subscription filter for `kind`, by default across all households and devices."""
    return device_topic(household, device, kind, wildcard=True)


def shared(group: str, topic_filter: str) -> str:
    """An MQTT 5 shared subscription: the workers of `group` split the messages."""
    if not _GROUP.fullmatch(group):
        raise TopicError("group is not a valid share name")
    return f"$share/{group}/{topic_filter}"


@dataclass(frozen=True)
class TopicInfo:
    household: str
    device: str
    kind: str


def parse(topic: str) -> TopicInfo | None:
    """The household, device and kind of a concrete topic; None when it is not ours."""
    parts = topic.split("/")
    root = ROOT.split("/")
    if parts[: len(root)] != root or len(parts) < len(root) + 3:
        return None
    household, marker, device, *rest = parts[len(root) :]
    if marker not in (DEVICE, DOCTOR) or not valid_id(household) or not valid_id(device):
        return None
    for kind, suffix in KINDS.items():
        if tuple(rest) == suffix and owner(kind) == marker:
            return TopicInfo(household, device, kind)
    return None

"""MQTT topics: the only place in the project where a topic string is put together.

Everything lives under `care/v1/{household}/device/{device}/`:

| kind                  | suffix                | direction               | types             |
|-----------------------|-----------------------|-------------------------|-------------------|
| `status`              | `status` (retained)   | device → everyone       | `device.status`   |
| `alert`               | `alert`               | device → services       | the other `alert.*` |
| `alert_ack`           | `alert/ack`           | services → device       | `alert.ack, .received` |
| `command`             | `command`             | services → device       | `command.*`       |
| `event`               | `event`               | device → services       | `event.*`         |
| `consultation`        | `consultation`        | device → doctor-connect | request, cancel   |
| `consultation_update` | `consultation/update` | doctor-connect → device | the other ones    |
| `family`              | `family`              | device → family service | `family.message`  |
| `refused`             | `refused`             | services → device       | `service.refused` |
| `conversation`        | `conversation`        | device ↔ doctor-connect | `consultation.text` |

Family members and caregivers (their apps) have topics of their own under
`care/v1/{household}/member/{member}/`; on these the envelope's `device` names the member:

| kind             | suffix    | direction              | types                               |
|------------------|-----------|------------------------|-------------------------------------|
| `inbox`          | `inbox`   | family service → app   | `member.*` (alerts, results, digest) |
| `member_ack`     | `ack`     | app → family service   | `member.ack`                        |
| `member_command` | `command` | app → family service   | `command.*` (reminders, say, volume...) |
| `member_refused` | `refused` | services → app         | `service.refused`                   |

Doctors' apps have topics of their own under `care/v1/{practice}/doctor/{doctor}/`: the
practice (the doctors' organisation) stands where a household stands and the doctor where a
device stands, in the topic and in the envelope alike:

| kind             | suffix              | direction                | types                     |
|------------------|---------------------|--------------------------|---------------------------|
| `doctor_status`  | `status` (retained) | doctor's app → all       | `doctor.status`           |
| `doctor_action`  | `action`            | app → doctor-connect     | `doctor.accept`, `.end`   |
| `doctor_text`    | `text`              | app → doctor-connect     | `consultation.text`       |
| `doctor_session` | `session`           | doctor-connect → app     | `doctor.session*`, text   |
| `doctor_refused` | `refused`           | doctor-connect → app     | `service.refused`         |

A text consultation goes through doctor-connect both ways: the senior's lines on the
device's `conversation` topic, the doctor's on the app's `doctor_text`; doctor-connect
passes each on (to the doctor's `doctor_session`, to the device's `conversation`) only
while that doctor holds that consultation. A doctor's app can read no device's topic.

Services subscribe across households with `ANY` ("+") and share the load with
`shared(group, topic)` (`$share/<group>/...`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

VERSION = 1
ROOT = f"care/v{VERSION}"
ANY = "+"  # a single-level wildcard for subscriptions: any household or any device

# kind -> the segments after `device/{device}/`
KINDS: dict[str, tuple[str, ...]] = {
    "status": ("status",),
    "alert": ("alert",),
    "alert_ack": ("alert", "ack"),
    "command": ("command",),
    "event": ("event",),
    "consultation": ("consultation",),
    "consultation_update": ("consultation", "update"),
    "family": ("family",),
    "refused": ("refused",),
    "conversation": ("conversation",),
}
# kind -> the segments after `member/{member}/`
MEMBER_KINDS: dict[str, tuple[str, ...]] = {
    "inbox": ("inbox",),
    "member_ack": ("ack",),
    "member_command": ("command",),
    "member_refused": ("refused",),
}
# kind -> the segments after `doctor/{doctor}/`
DOCTOR_KINDS: dict[str, tuple[str, ...]] = {
    "doctor_status": ("status",),
    "doctor_action": ("action",),
    "doctor_text": ("text",),
    "doctor_session": ("session",),
    "doctor_refused": ("refused",),
}
# Where a service answers a refused message, by the kind it came on: the sender's own topics.
REFUSAL_KIND = {"device": "refused", "member": "member_refused", "doctor": "doctor_refused"}
# What a doctor's app listens to, and what it publishes.
DOCTOR_INBOUND = ("doctor_session", "doctor_refused")
DOCTOR_OUTBOUND = ("doctor_status", "doctor_action", "doctor_text")
# What the device itself listens to, and what it publishes.
DEVICE_INBOUND = ("command", "alert_ack", "consultation_update", "refused")
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


def _topic(party: str, owner: str, endpoint: str, kind: str, wildcard: bool) -> str:
    """`care/v1/{owner}/{party}/{endpoint}/...`: owner is the household (the practice for a
    doctor), endpoint the device, member or doctor."""
    kinds = _BY_PARTY[party]
    if kind not in kinds:
        what = "topic kind" if party == "device" else f"{party} topic kind"
        raise TopicError(f"unknown {what} {kind!r}")
    return "/".join(
        (
            ROOT,
            _segment(owner, "practice" if party == "doctor" else "household", wildcard),
            party,
            _segment(endpoint, party, wildcard),
            *kinds[kind],
        )
    )


def device_topic(household: str, device: str, kind: str, *, wildcard: bool = False) -> str:
    """The topic of `kind` for one device. With `wildcard`, household/device may be `ANY`."""
    return _topic("device", household, device, kind, wildcard)


def member_topic(household: str, member: str, kind: str, *, wildcard: bool = False) -> str:
    """The topic of member `kind` for one family member or caregiver (their app)."""
    return _topic("member", household, member, kind, wildcard)


def doctor_topic(practice: str, doctor: str, kind: str, *, wildcard: bool = False) -> str:
    """The topic of doctor `kind` for one doctor (their app) of a practice."""
    return _topic("doctor", practice, doctor, kind, wildcard)


def party_of(kind: str) -> str:
    """Whose topics `kind` is on: "device", "member" or "doctor"."""
    if kind in KINDS:
        return "device"
    if kind in MEMBER_KINDS:
        return "member"
    if kind in DOCTOR_KINDS:
        return "doctor"
    raise TopicError(f"unknown topic kind {kind!r}")


def endpoint_topic(household: str, endpoint: str, kind: str) -> str:
    """The topic of any kind: `endpoint` is the device, the member or the doctor, as the kind
    says."""
    party = party_of(kind)
    if party == "member":
        return member_topic(household, endpoint, kind)
    if party == "doctor":
        return doctor_topic(household, endpoint, kind)
    return device_topic(household, endpoint, kind)


def inbox(household: str, member: str) -> str:
    return member_topic(household, member, "inbox")


def member_ack(household: str, member: str) -> str:
    return member_topic(household, member, "member_ack")


def member_command(household: str, member: str) -> str:
    return member_topic(household, member, "member_command")


def refused(household: str, device: str) -> str:
    return device_topic(household, device, "refused")


def member_refused(household: str, member: str) -> str:
    return member_topic(household, member, "member_refused")


def conversation(household: str, device: str) -> str:
    """A text consultation's lines, written by the senior's device and the doctor alike."""
    return device_topic(household, device, "conversation")


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


def subscription(kind: str, household: str = ANY, device: str = ANY) -> str:
    """A subscription filter for `kind`, by default across all households and devices."""
    return device_topic(household, device, kind, wildcard=True)


def member_subscription(kind: str, household: str = ANY, member: str = ANY) -> str:
    """A subscription filter for member `kind`, by default across households and members."""
    return member_topic(household, member, kind, wildcard=True)


def doctor_subscription(kind: str, practice: str = ANY, doctor: str = ANY) -> str:
    """A subscription filter for doctor `kind`, by default across practices and doctors."""
    return doctor_topic(practice, doctor, kind, wildcard=True)


def shared(group: str, topic_filter: str) -> str:
    """An MQTT 5 shared subscription: the workers of `group` split the messages."""
    if not _GROUP.fullmatch(group):
        raise TopicError("group is not a valid share name")
    return f"$share/{group}/{topic_filter}"


def device_client_id(household: str, device: str) -> str:
    """The MQTT client id of a device's link; the broker binds the device's account to it."""
    return f"care-device/{household}/{device}"


def shared_any(topic_filter: str) -> str:
    """The broker ACL pattern of `topic_filter` shared by any group (`$share/+/...`)."""
    return f"$share/{ANY}/{topic_filter}"


@dataclass(frozen=True)
class TopicInfo:
    household: str
    device: str  # on a member's topic: the member; on a doctor's: the doctor
    kind: str

    @property
    def party(self) -> str:
        return party_of(self.kind)


_BY_PARTY = {"device": KINDS, "member": MEMBER_KINDS, "doctor": DOCTOR_KINDS}


def parse(topic: str) -> TopicInfo | None:
    """The household, device (or member) and kind of a concrete topic; None when it is not
    ours."""
    parts = topic.split("/")
    root = ROOT.split("/")
    if parts[: len(root)] != root or len(parts) < len(root) + 3:
        return None
    household, marker, device, *rest = parts[len(root) :]
    kinds = _BY_PARTY.get(marker)
    if kinds is None or not valid_id(household) or not valid_id(device):
        return None
    for kind, suffix in kinds.items():
        if tuple(rest) == suffix:
            return TopicInfo(household, device, kind)
    return None

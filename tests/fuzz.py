"""Hostile input for every receiver: hypothesis strategies, known-nasty payloads built for
a receiver's own topics (`hostile_payloads`), and the receivers themselves, each fed
through the path its MQTT callback takes.

Targets (each a `Target`: `deliver(topic, payload)`, then `outcome` counts):

- `DeviceTarget`: the device as `assistant.device.Device` builds it (its link's receiver,
  the announcer, reminders in SQLite, the outbox), fed through `Link._on_message` with a
  paho `MQTTMessage`;
- `ServiceTarget`: a started family-notify or doctor-connect worker (real SQLite, connected
  to a real Mosquitto, so its answers are really published), fed through
  `MqttService._process`, what its worker thread runs for each message that arrives.

Every payload must end in exactly one of: handled, or counted as rejected for a reason (a
refusal by the service's rules counts as a rejection). A `handler_error` (an exception
inside the application) or a dead letter is a bug: the harness records it, the tests
assert there are none.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import datetime as dt
import json
import random
import re
import types
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin

import paho.mqtt.client as mqtt
from hypothesis import strategies as st

from protocol import Reason, message_types, topics
from protocol.messages import MAX_PAYLOAD_BYTES
from protocol.schema import _hints

H, D, M, C = "h1", "d1", "m1", "c1"  # the household the targets know: device, member, carer
PRACTICE, DOCTOR = "practice", "doc-1"
KNOWN_HOUSEHOLDS = (H, "h2")
KNOWN_ENDPOINTS = (D, M, C, DOCTOR, "d2")

# --- strategies -------------------------------------------------------------------------------

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=40)
)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=12), children, max_size=5)
    ),
    max_leaves=20,
)
ids = st.sampled_from(KNOWN_HOUSEHOLDS + KNOWN_ENDPOINTS + (PRACTICE,)) | st.from_regex(
    r"\A[A-Za-z0-9][A-Za-z0-9_.-]{0,10}\Z"
)
hostile_text = st.text(
    alphabet=st.characters(codec=None, exclude_categories=()), max_size=60
)  # includes lone surrogates, NUL, RTL marks, emoji


@st.composite
def timestamps(draw: st.DrawFn) -> str:
    when = draw(
        st.datetimes(min_value=dt.datetime(1970, 1, 2), max_value=dt.datetime(9998, 12, 31))
    )
    text = when.replace(tzinfo=dt.UTC).isoformat(timespec="milliseconds")
    return text.replace("+00:00", "Z") if draw(st.booleans()) else text


def _text_for(meta: Any) -> st.SearchStrategy[str]:
    fmt = meta.get("fmt")
    if fmt == "ts":
        return timestamps()
    if fmt == "uuid":
        return st.uuids().map(str)
    if fmt == "id":
        return ids
    if fmt == "clock":
        return st.from_regex(r"\A([01]\d|2[0-3]):[0-5]\d\Z")
    if fmt == "phone":
        return st.from_regex(r"\A\+?[0-9][0-9 ()-]{2,15}\Z")
    if fmt == "url":
        return st.text(max_size=20).map(lambda s: "https://video.example.org/" + s)
    longest = meta.get("max_len") or 2000
    return st.text(min_size=1, max_size=min(longest, 80)) | hostile_text


def _for_type(tp: Any, meta: Any) -> st.SearchStrategy[Any]:
    origin = get_origin(tp)
    if origin in (Union, types.UnionType):
        inner = next(a for a in get_args(tp) if a is not type(None))
        return st.none() | _for_type(inner, meta)
    if origin is Literal:
        return st.sampled_from(get_args(tp))
    if origin is list:
        (item,) = get_args(tp)
        return st.lists(_for_type(item, {}), max_size=min(meta.get("max_len") or 5, 5))
    if tp is bool:
        return st.booleans()
    if tp in (int, float):
        low, high = meta.get("low"), meta.get("high")
        low = -(2**40) if low is None else low
        high = 2**40 if high is None else high
        if tp is int:
            return st.integers(min_value=int(low), max_value=int(high))
        return st.floats(min_value=low, max_value=high, allow_nan=False)
    if tp is str:
        return _text_for(meta)
    if dataclasses.is_dataclass(tp):
        return body_dicts(tp)
    raise TypeError(f"no strategy for {tp!r}")


def body_dicts(cls: type) -> st.SearchStrategy[dict[str, Any]]:
    """Bodies of `cls` as dicts, mostly valid: every field from its type and rules, optional
    fields sometimes left out."""
    hints = _hints(cls)
    fields = dataclasses.fields(cls)
    strategies = {f.name: _for_type(hints[f.name], f.metadata) for f in fields}
    optional = {
        f.name
        for f in fields
        if f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING
    }

    @st.composite
    def build(draw: st.DrawFn) -> dict[str, Any]:
        out = {}
        for name, strategy in strategies.items():
            if name in optional and draw(st.integers(0, 3)) == 3:
                continue
            out[name] = draw(strategy)
        return out

    return build()


TYPES = message_types()


def _topic_for(draw: st.DrawFn, kind: str, household: str, endpoint: str) -> str:
    # (hypothesis draws small integers most often: 0 is the plain case)
    choice = draw(st.integers(0, 9))
    if choice == 7:  # any string at all, wildcards and system topics included
        return draw(
            st.text(max_size=60)
            | st.sampled_from(["", "#", "+", "$SYS/broker", topics.ROOT, topics.ROOT + "/"])
        )
    if choice == 8:  # the right shape, another kind
        kind = draw(st.sampled_from(sorted({*topics.KINDS, *topics.MEMBER_KINDS})))
    if choice == 9:  # another sender than the envelope says
        endpoint = draw(ids)
    party = topics.party_of(kind)
    if party == "doctor":
        return topics.doctor_topic(household, endpoint, kind)
    if party == "member":
        return topics.member_topic(household, endpoint, kind)
    return topics.device_topic(household, endpoint, kind)


@st.composite
def envelopes(draw: st.DrawFn, types: list[str]) -> tuple[str, bytes]:
    """A message of one of `types` with a body built from its rules, for a known household
    or not, on its topic or another, sometimes with one envelope or body field replaced by
    any JSON value, an id reused (a duplicate), a version or type changed."""
    name = draw(st.sampled_from(types))
    cls = TYPES[name]
    kind = draw(st.sampled_from(cls.KINDS))
    party = topics.party_of(kind)
    # mostly the parties the receivers know (so that messages get past the envelope checks
    # into the application), sometimes anyone (hypothesis draws small integers most often)
    known = PRACTICE if party == "doctor" else H
    household = known if draw(st.integers(0, 3)) < 3 else draw(ids)
    if draw(st.integers(0, 3)) < 3:
        natural = {"device": [D], "member": [M, C], "doctor": [DOCTOR, "doc-2"]}[party]
        endpoint = draw(st.sampled_from(natural))
    else:
        endpoint = draw(st.sampled_from(KNOWN_ENDPOINTS) | ids)
    body = draw(body_dicts(cls))
    data: dict[str, Any] = {
        "v": 1,
        # a fresh id, or now and then one of a few reused ones (a duplicate)
        "id": draw(st.sampled_from(_ID_POOL)) if draw(st.integers(0, 9)) == 9 else _fresh_id(),
        "ts": draw(timestamps()),
        "type": name,
        "household": household,
        "device": endpoint,
        "body": body,
    }
    mutation = draw(st.integers(0, 7))  # 0-3: none
    if mutation == 4:
        data[draw(st.sampled_from(sorted(data)))] = draw(json_values)
    elif mutation == 5 and body:
        body[draw(st.sampled_from(sorted(body)))] = draw(json_values)
    elif mutation == 6:
        del data[draw(st.sampled_from(sorted(data)))]
    elif mutation == 7:
        data[draw(st.text(max_size=8))] = draw(json_values)
    topic = _topic_for(draw, kind, household, endpoint)
    try:
        payload = json.dumps(data, ensure_ascii=draw(st.booleans())).encode(
            "utf-8", "surrogatepass"
        )
    except (ValueError, TypeError):
        payload = b"{}"
    return topic, payload


_ID_POOL = [str(uuid.UUID(int=n)) for n in range(1, 8)]  # reused ids: duplicates


def _fresh_id() -> str:
    # not drawn from hypothesis, which would hand out the same few UUIDs again and again
    return str(uuid.uuid4())


@st.composite
def raw_payloads(draw: st.DrawFn) -> tuple[str, bytes]:
    """Not a message at all: bytes, any JSON, text; on a plausible topic."""
    kind = draw(st.sampled_from(sorted({*topics.KINDS, *topics.MEMBER_KINDS})))
    topic = _topic_for(draw, kind, draw(st.sampled_from(KNOWN_HOUSEHOLDS)), draw(ids))
    choice = draw(st.integers(0, 3))
    if choice == 0:
        payload = draw(st.binary(max_size=200))
    elif choice == 1:
        payload = json.dumps(draw(json_values)).encode()
    elif choice == 2:
        payload = draw(hostile_text).encode("utf-8", "surrogatepass")
    else:
        payload = draw(st.sampled_from(_HOSTILE_SAMPLES))[1]
    return topic, payload


def payloads(types: list[str]) -> st.SearchStrategy[tuple[str, bytes]]:
    """What the fuzz tests draw from: three quarters near-valid messages, the rest junk."""
    return st.one_of(envelopes(types), envelopes(types), envelopes(types), raw_payloads())


def cases(types: list[str]) -> st.SearchStrategy[tuple[str, bytes, int]]:
    """A payload and a seed for its `mutants`."""
    return st.tuples(payloads(types), st.integers(0, 2**32 - 1)).map(lambda t: (*t[0], t[1]))


# Values a mutation puts in place of a number or a string: limits, types, injections.
_NUMBERS = [b"-1", b"0", b"1e308", b"-1e308", b"1e999", b"99999999999999999999999", b"0.1",
            b"null", b"true", b'""', b"[]", b"{}", b"NaN", b"-0", b"4294967296"]  # fmt: skip
_STRINGS = [rb"\u0000", rb"\ud800", rb"\u202e", b"../../etc/passwd", b"' OR 1=1 --", b"%s%n",
            b"+", b"#", topics.shared("x", "#").encode(), b"a" * 3000, b"\\", b'\"',
            topics.subscription("alert").encode(), rb"\n\r", b"\n",
            b"2026-02-30T25:61:00Z", b"00000000-0000-0000-0000-000000000000"]  # fmt: skip


def mutants(payload: bytes, seed: int, count: int) -> list[bytes]:
    """`count` byte-level variants of `payload` (truncated, a byte changed, bytes inserted,
    a span repeated, a number or a string swapped for a nasty one): near misses of a valid
    message reach the schema's every check."""
    rng = random.Random(seed)
    out = []
    for _ in range(count):
        data = bytearray(payload)
        op = rng.randrange(6)
        at = rng.randrange(len(data) + 1)
        if op == 0:
            del data[at:]
        elif op == 1 and data:
            data[min(at, len(data) - 1)] = rng.randrange(256)
        elif op == 2:
            data[at:at] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 8)))
        elif op == 3:
            end = rng.randint(at, min(len(data), at + 64))
            data[at:at] = data[at:end] * rng.randint(1, 50)
        else:
            quote = op == 5
            spans = _spans(bytes(data), quote)
            if spans:
                start, end = rng.choice(spans)
                data[start:end] = rng.choice(_STRINGS if quote else _NUMBERS)
        out.append(bytes(data))
    return out


def _spans(data: bytes, strings: bool) -> list[tuple[int, int]]:
    """Where the numbers (or the insides of strings) are in a JSON text, roughly."""
    pattern = rb'"([^"\\]*)"' if strings else rb"(?<![\w\\.])-?\d+(\.\d+)?"
    return [m.span(1 if strings else 0) for m in re.finditer(pattern, data)]


# --- known-nasty payloads ---------------------------------------------------------------------

# Per topic kind: a type that belongs there, a valid body of it, and its free-text field.
_BASE: dict[str, tuple[str, dict[str, Any], str | None]] = {
    "command": ("command.say", {"text": "hello"}, "text"),
    "consultation_update": (
        "consultation.cancelled", {"request_id": str(uuid.UUID(int=9)), "by": "doctor",
                                   "reason": "sorry"}, "reason"),
    "alert": ("alert.emergency", {"trigger": "voice", "said": "help"}, "said"),
    "member_command": ("command.reminder.add", {"reminder_id": "r1", "kind": "medication",
                                                "text": "pills", "at": "08:00"}, "text"),
    "consultation": ("consultation.request", {"mode": "video", "reason": "a rash"}, "reason"),
    "doctor_action": ("doctor.accept", {"request_id": str(uuid.UUID(int=9))}, None),
}  # fmt: skip


def _dumps(data: Any) -> bytes:
    return json.dumps(data).encode()


def hostile_payloads(topic: str) -> list[tuple[str, bytes]]:
    """Known-nasty payloads for a receiver's `topic` (one of `_BASE`'s kinds): envelopes
    that fit the topic, so that each case is refused for what it is about, not for being
    on the wrong topic."""
    info = topics.parse(topic)
    assert info is not None and info.kind in _BASE, topic
    type_, body, text = _BASE[info.kind]

    def message(body: dict[str, Any] = body, type_: str = type_, **envelope: Any) -> dict:
        data = {"v": 1, "id": str(uuid.uuid4()), "ts": "2026-11-23T10:00:00.000Z",
                "type": type_, "household": info.household, "device": info.device,
                "body": body}  # fmt: skip
        return {**data, **envelope}

    # a type no party may send on this topic (command.say is a member command too)
    other_type = "alert.emergency" if not type_.startswith("alert.") else "command.say"
    cases: list[tuple[str, bytes]] = [
        ("empty payload", b""),
        ("one NUL byte", b"\x00"),
        ("invalid UTF-8", b"\xff\xfe\xfd"),
        ("UTF-8 byte order mark before JSON", b"\xef\xbb\xbf" + _dumps(message())),
        ("UTF-16 JSON", json.dumps(message()).encode("utf-16")),
        ("JSON null", b"null"),
        ("JSON array", b"[1, 2, 3]"),
        ("JSON string", b'"hello"'),
        ("nested 30,000 deep", b"[" * 30_000 + b"]" * 30_000),  # under 64 KiB
        ("nested object 10,000 deep", b'{"a":' * 10_000 + b"1" + b"}" * 10_000),
        ("nested 100,000 deep (200 KB)", b"[" * 100_000 + b"]" * 100_000),
        ("NaN as the version", _dumps(message(v=0)).replace(b'"v": 0', b'"v": NaN')),
        ("Infinity", b'{"v": Infinity}'),
        ("a 5,000-digit integer", b'{"v": ' + b"9" * 5000 + b"}"),
        ("1 MiB of zeros", b"0" * (1 << 20)),
        ("v as true", _dumps(message(v=True))),
        ("v2 message", _dumps(message(v=2))),
        ("unknown type", _dumps(message(type_="command.self_destruct"))),
        ("a type of another topic", _dumps(message(type_=other_type))),
        ("envelope names another household", _dumps(message(household="h-other"))),
        ("envelope names another sender", _dumps(message(device="someone-else"))),
        ("household wildcard", _dumps(message(household="+"))),
        ("household with a slash", _dumps(message(household=f"{info.household}/x"))),
        ("device 65 characters", _dumps(message(device="d" * 65))),
        ("id not a UUID", _dumps(message(id="1; DROP TABLE alerts"))),
        ("ts not UTC", _dumps(message(ts="2026-11-23T10:00:00+02:00"))),
        ("ts 30 February", _dumps(message(ts="2026-02-30T10:00:00Z"))),
        ("extra envelope key", _dumps(message(admin=True))),
        ("a key twice", b'{"v":1,"v":1,' + _dumps(message())[1:]),
        ("body a list", _dumps(message(body=[1]))),
        ("body missing a required field", _dumps(message(body={}))),
    ]
    if text is not None:
        for name, value in [
            ("text 2,001 characters", "x" * 2001),
            ("text of blanks", " \t\n "),
            ("lone surrogate in text", "\ud800 hi"),
            ("NUL in text", "a\x00b"),
            ("escape sequence in text", "\x1b[2Jcleared"),
            ("right-to-left override in text", "\u202eevil"),
            ("text a number", 42),
            ("text of 64 KiB", "x" * MAX_PAYLOAD_BYTES),
        ]:
            cases.append((name, _dumps(message(body={**body, text: value}))))
    if type_ == "command.reminder.add" or info.kind == "command":
        reminder = dict(_BASE["member_command"][1])
        add = "command.reminder.add"
        cases += [
            ("SQL in a reminder id", _dumps(message(
                type_=add, body={**reminder, "reminder_id": "x'; DROP TABLE reminders;--"}))),
            ("reminder at 25:00", _dumps(message(type_=add, body={**reminder, "at": "25:00"}))),
            ("10,000 weekdays", _dumps(message(type_=add, body={**reminder,
                                                               "days": ["mon"] * 10_000}))),
            ("weekday 'someday'", _dumps(message(type_=add, body={**reminder,
                                                                 "days": ["someday"]}))),
        ]  # fmt: skip
    if info.kind == "command":
        cases += [
            ("volume -1", _dumps(message(type_="command.volume", body={"level": -1}))),
            ("volume 1e999", _dumps(message(type_="command.volume", body={"level": 0.5}))
             .replace(b"0.5", b"1e999")),
        ]  # fmt: skip
    if info.kind == "consultation_update":
        session = {"request_id": str(uuid.UUID(int=9)), "mode": "video"}
        cases += [
            ("http URL for a video room", _dumps(message(type_="consultation.session",
                body={**session, "join_url": "http://evil.example/room"}))),
            ("video session without a room", _dumps(message(type_="consultation.session",
                body=session))),
        ]  # fmt: skip
    if info.kind == "alert":
        cases += [
            ("latitude 91", _dumps(message(body={**body, "location": {"lat": 91, "lon": 0}}))),
            ("trigger 'prank'", _dumps(message(body={**body, "trigger": "prank"}))),
        ]
    if info.kind == "doctor_action":
        cases.append(("request id not a UUID", _dumps(message(body={"request_id": "1 OR 1"}))))
    return cases


_HOSTILE_SAMPLES = hostile_payloads(topics.command(H, D)) + hostile_payloads(topics.alert(H, D))

# --- targets --------------------------------------------------------------------------------


class Target:
    """A receiver under test. `outcome` counts what became of each payload: "handled", a
    rejection reason, or "refused:<reason>" (valid, refused by the service's rules)."""

    name = "target"

    def __init__(self) -> None:
        self.types: list[str] = []
        self.delivered = 0
        self.outcome: collections.Counter[str] = collections.Counter()

    def deliver(self, topic: str, payload: bytes) -> str:
        counts, handled = self._state()
        self._deliver(topic, payload)
        self.delivered += 1
        counts_after, handled_after = self._state()
        diff = counts_after - counts
        handled = handled_after - handled
        rejected = sum(diff.values())
        if Reason.HANDLER_ERROR in diff:
            result = Reason.HANDLER_ERROR
        elif handled == 0 and rejected == 1:
            result = next(iter(diff))
        elif handled == 1 and rejected == 0:
            result = "handled"
        elif handled == 1 and rejected == 1:
            result = f"refused:{next(iter(diff))}"
        else:
            result = f"UNACCOUNTED(handled {handled}, rejections {dict(diff)})"
        self.outcome[result] += 1
        return result

    @property
    def bugs(self) -> dict[str, int]:
        """Outcomes that mean a bug: an exception in the application, a payload neither
        handled nor counted."""
        return {
            k: v for k, v in self.outcome.items()
            if k == Reason.HANDLER_ERROR or k.startswith("UNACCOUNTED")
        }  # fmt: skip

    def _state(self) -> tuple[collections.Counter[str], int]:
        receiver = self.receiver
        return collections.Counter(receiver.rejections.counts()), receiver.handled

    @property
    def receiver(self) -> Any:
        raise NotImplementedError

    def _deliver(self, topic: str, payload: bytes) -> None:
        raise NotImplementedError

    def close(self) -> None:
        pass


class DeviceTarget(Target):
    name = "device"

    def __init__(self, state_dir: Path) -> None:
        from assistant.config import config_from_dict
        from assistant.device import Device

        super().__init__()
        config = config_from_dict(
            {
                "device": {"household": H, "device_id": D},
                "paths": {"state_dir": str(state_dir)},
            }
        )
        self.device = Device(config)  # the link is not started: nothing to connect to
        assert self.device.link is not None
        self.link = self.device.link
        self.link._receiver.limiter = None  # the fuzz is of what is read; limits have tests
        inbound = {*topics.DEVICE_INBOUND}
        self.types = sorted(n for n, cls in TYPES.items() if set(cls.KINDS) & inbound)
        self.types += ["alert.emergency", "family.message", "member.ack"]  # what is not its

    @property
    def receiver(self) -> Any:
        return self.link._receiver

    def _deliver(self, topic: str, payload: bytes) -> None:
        message = mqtt.MQTTMessage(topic=topic.encode("utf-8", "surrogatepass"))
        message.payload = payload
        self.link._on_message(self.link._client, None, message)  # the paho callback
        self.device.announcer.take()  # what the loop does between turns

    def close(self) -> None:
        self.device.close(drain_s=0)


class ServiceTarget(Target):
    """A started family-notify or doctor-connect worker; payloads go through its
    `MqttService._process`, which its worker thread runs for each message that arrives.
    A refusal by the service's rules is published to the sender's topic, really."""

    def __init__(self, name: str, service: Any, mqtt_service: Any, kinds: tuple[str, ...]):
        super().__init__()
        self.name = name
        self.service = service
        self.mqtt = mqtt_service
        self.mqtt.receiver.limiter = None  # see DeviceTarget
        self.mqtt.handler_attempts = 1  # a failure is a bug either way; no retry delays
        self.types = sorted(n for n, cls in TYPES.items() if set(cls.KINDS) & set(kinds))
        self.types += ["command.say", "device.status"]  # what is not its

    @property
    def receiver(self) -> Any:
        return self.mqtt.receiver

    def _deliver(self, topic: str, payload: bytes) -> None:
        from services.mqtt_service import _Delivery

        self.mqtt._process(_Delivery(0, 0, 0, topic, payload))

    def close(self) -> None:
        self.service.stop()


# --- the three receivers, set up ------------------------------------------------------------


@contextlib.contextmanager
def device_target(directory: Path) -> Iterator[DeviceTarget]:
    target = DeviceTarget(directory / "device-state")
    try:
        yield target
    finally:
        target.close()


@contextlib.contextmanager
def family_target(directory: Path) -> Iterator[ServiceTarget]:
    """family-notify with household H: its device, a family member with an SMS number, a
    caregiver; connected to a Mosquitto of its own."""
    from services.family import households
    from services.family.config import ChannelsSection, FamilyConfig, ServiceSection
    from services.family.households import Household, Member
    from services.family.service import FILTERS, FamilyService
    from services.family.store import Store
    from services.mqtt_service import MqttSettings
    from tests.broker import Mosquitto

    with Mosquitto(directory / "family-broker") as broker:
        config = FamilyConfig(
            mqtt=MqttSettings(host=broker.host, port=broker.port),
            service=ServiceSection(database=str(directory / "family.sqlite3"), tick_s=0.2),
            channels=ChannelsSection(sms=f"file:{directory / 'sms.jsonl'}"),
        )
        store = Store(config.database())
        members = (
            Member(M, "Anna", "family", "daughter", ("sms:+4915100001",)),
            Member(C, "Carla", "caregiver", "carer", ("sms:+4915100003",)),
        )
        households.add(store, Household(H, "Mum", (D,), "Europe/Berlin", "+49112", members))
        store.close()
        service = FamilyService(config).start(timeout=30)
        kinds = tuple(topics.parse(f.replace(topics.ANY, "x")).kind for f in FILTERS)
        target = ServiceTarget("family-notify", service, service.mqtt, kinds)
        try:
            yield target
        finally:
            target.close()


@contextlib.contextmanager
def doctor_target(directory: Path) -> Iterator[ServiceTarget]:
    """doctor-connect with one available GP and one offline specialist, connected to a
    Mosquitto of its own."""
    from services.doctor_connect import roster
    from services.doctor_connect.config import Config, MqttSettings, ServiceSettings
    from services.doctor_connect.service import DoctorConnect
    from services.doctor_connect.store import Store
    from tests.broker import Mosquitto

    with Mosquitto(directory / "doctor-broker") as broker:
        config = Config(
            mqtt=MqttSettings(host=broker.host, port=broker.port),
            service=ServiceSettings(practice=PRACTICE, database=str(directory / "dc.sqlite3")),
        )
        store = Store(config.database_path())
        roster.save(
            store, roster.build(roster.NewDoctor(DOCTOR, "Dr A", "general", state="available"))
        )
        roster.save(store, roster.build(roster.NewDoctor("doc-2", "Dr B", "cardiology")))
        store.close()
        service = DoctorConnect(config).start(timeout=30)
        kinds = ("consultation", "doctor_status", "doctor_action")
        target = ServiceTarget("doctor-connect", service, service.mqtt, kinds)
        try:
            yield target
        finally:
            target.close()


TARGETS = {"device": device_target, "family-notify": family_target, "doctor-connect": doctor_target}

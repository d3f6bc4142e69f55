"""The MQTT contract: topics, the envelope, every message type, and what receivers refuse."""

from __future__ import annotations

import json
import logging
import re
import uuid
from pathlib import Path

import pytest

import protocol
from protocol import (
    MAX_PAYLOAD_BYTES,
    AlertAck,
    AlertReceived,
    AppointmentConfirmed,
    AppointmentReminder,
    AppointmentRequest,
    Call,
    CheckinAnswer,
    CommandDone,
    ConsultationAssigned,
    ConsultationCancel,
    ConsultationCancelled,
    ConsultationEnded,
    ConsultationPosition,
    ConsultationQueued,
    ConsultationRequest,
    ConsultationSession,
    ConsultationText,
    DeviceStatus,
    DoctorAccept,
    DoctorEnd,
    DoctorSession,
    DoctorSessionCancelled,
    DoctorStatus,
    DuplicateFilter,
    EmergencyAlert,
    FamilyMessage,
    HealthReading,
    InactivityAlert,
    Location,
    MemberAck,
    MemberAlert,
    MemberAlertUpdate,
    MemberCommandResult,
    MemberDigest,
    Message,
    MissedMedicationAlert,
    Reason,
    Receiver,
    RejectedMessage,
    RejectionCounter,
    ReminderAdd,
    ReminderChange,
    ReminderMissed,
    ReminderRemove,
    ReminderRemoved,
    ReminderTaken,
    Say,
    ServiceReason,
    ServiceRefused,
    Volume,
    WellnessAlert,
    create,
    decode,
    encode,
    topics,
)

ROOT = Path(__file__).resolve().parent.parent
H, D = "household-1", "kitchen-speaker"
REQUEST = str(uuid.uuid4())
TS = "2026-11-23T08:00:00.000Z"

EXAMPLES = [
    DeviceStatus(state="online", reason="connected"),
    EmergencyAlert(trigger="fall_detected", said="I fell", location=Location(52.5, 13.4, 8.0)),
    MissedMedicationAlert(reminder_id="metformin-am", medication="metformin", due=TS),
    WellnessAlert(concern="feeling", severity="medium", detail="feels dizzy"),
    InactivityAlert(quiet_for_s=6 * 3600, last_activity=TS),
    AlertAck(alert_id=REQUEST, by="Anna", action="on_the_way", eta_min=20),
    AlertReceived(alert_id=REQUEST),
    Say(text="Anna is on her way", urgent=True),
    Volume(level=0.8),
    ReminderAdd(
        reminder_id="r1",
        kind="medication",
        text="Take your pills",
        at="08:30",
        days=["mon", "thu"],
        medication="aspirin",
        dose="100 mg",
    ),
    ReminderChange(reminder_id="r1", at="09:00"),
    ReminderRemove(reminder_id="r1"),
    Call(contact="Anna", number="+49 30 1234567", mode="video"),
    ReminderTaken(reminder_id="r1", due=TS, taken_at=TS),
    ReminderMissed(reminder_id="r1", due=TS),
    ReminderRemoved(reminder_id="r1"),
    HealthReading(measure="blood_pressure", value=135, diastolic=85, taken_at=TS, unit="mmHg"),
    CheckinAnswer(checkin_id="morning", question="How did you sleep?", answer="well"),
    ConsultationRequest(mode="video", urgency="urgent", reason="chest pain"),
    ConsultationCancel(request_id=REQUEST),
    ConsultationQueued(request_id=REQUEST, position=3, estimated_wait_s=600),
    ConsultationPosition(request_id=REQUEST, position=1),
    ConsultationAssigned(request_id=REQUEST, doctor="Dr. Weber", estimated_start_s=60),
    ConsultationSession(request_id=REQUEST, mode="video", join_url="https://meet.example/x"),
    ConsultationCancelled(request_id=REQUEST, by="doctor"),
    FamilyMessage(to="Anna", text="Please call me tonight"),
    CommandDone(command_id=REQUEST, command="command.reminder.add"),
    MemberAlert(
        alert_id=REQUEST,
        category="emergency",
        device=D,
        tone="urgent",
        text="Mum said: help, I fell",
        raised_at=TS,
        location=Location(52.5, 13.4),
    ),
    MemberAlertUpdate(alert_id=REQUEST, state="acknowledged", text="Anna is on her way", by="Anna"),
    MemberAck(alert_id=REQUEST, action="calling"),
    MemberCommandResult(command_id=REQUEST, status="confirmed", reminder_id="r1"),
    MemberDigest(
        day="2026-11-23",
        reminders_taken=3,
        reminders_missed=1,
        readings=2,
        alerts=0,
        lines=["Took metformin at 08:05"],
    ),
    ServiceRefused(reason=ServiceReason.UNKNOWN_HOUSEHOLD, refused_id=REQUEST, detail="not here"),
    ConsultationEnded(request_id=REQUEST, by="doctor"),
    ConsultationText(request_id=REQUEST, sender="doctor", text="How is the rash today?"),
    AppointmentRequest(department="cardiology", date="2026-11-24", at="10:30"),
    AppointmentConfirmed(
        request_id=REQUEST,
        appointment_id="a1",
        department="cardiology",
        doctor="Dr. Weber",
        starts_at=TS,
    ),
    AppointmentReminder(appointment_id="a1", doctor="Dr. Weber", starts_at=TS, minutes_before=30),
]
# A doctor's app's messages: the practice in place of the household, the doctor's id in place
# of the device's.
DOCTOR_EXAMPLES = [
    DoctorStatus(state="available"),
    DoctorAccept(request_id=REQUEST),
    DoctorEnd(request_id=REQUEST),
    DoctorSession(
        request_id=REQUEST,
        household=H,
        device=D,
        mode="video",
        department="cardiology",
        urgency="urgent",
        starts_at=TS,
        room_id="room-1",
        join_url="https://meet.example/x",
    ),
    DoctorSessionCancelled(request_id=REQUEST, by="senior"),
]
M = "anna"  # a family member


def valid(body=None, household: str = H, device: str = D) -> Message:
    return create(body or Say(text="hello"), household, device)


def envelope(**changes) -> bytes:
    data = valid().to_dict()
    data.update(changes)
    return json.dumps(data).encode()


# --- topics ---------------------------------------------------------------------------------


def test_topics_follow_the_design() -> None:
    assert topics.command(H, D).split("/") == ["care", "v1", H, "device", D, "command"]
    assert topics.alert_ack(H, D).split("/")[-2:] == ["alert", "ack"]
    assert topics.consultation_update(H, D).split("/")[-2:] == ["consultation", "update"]
    assert topics.subscription("alert").split("/") == ["care", "v1", "+", "device", "+", "alert"]
    shared = topics.shared("family", topics.subscription("alert"))
    assert shared.split("/", 2) == ["$share", "family", topics.subscription("alert")]


@pytest.mark.parametrize("kind", sorted(topics.KINDS))
def test_every_topic_parses_back_to_its_parts(kind: str) -> None:
    info = topics.parse(topics.device_topic(H, D, kind))
    assert info == topics.TopicInfo(H, D, kind)
    assert info.party == "device"


@pytest.mark.parametrize("kind", sorted(topics.MEMBER_KINDS))
def test_every_member_topic_parses_back_to_its_parts(kind: str) -> None:
    topic = topics.member_topic(H, M, kind)
    assert topic.split("/")[:5] == ["care", "v1", H, "member", M]
    info = topics.parse(topic)
    assert info == topics.TopicInfo(H, M, kind)
    assert info.party == "member"
    assert topics.endpoint_topic(H, M, kind) == topic


def test_member_and_device_kinds_do_not_mix() -> None:
    assert topics.inbox(H, M).endswith("/member/anna/inbox")
    with pytest.raises(topics.TopicError):
        topics.device_topic(H, D, "inbox")
    with pytest.raises(topics.TopicError):
        topics.member_topic(H, M, "alert")
    assert topics.parse(topics.inbox(H, M).replace("/member/", "/device/")) is None
    assert topics.member_subscription("member_ack").split("/")[2:] == ["+", "member", "+", "ack"]
    for party, kind in topics.REFUSAL_KIND.items():
        assert topics.party_of(kind) == party


def test_foreign_or_malformed_topics_are_not_ours() -> None:
    command = topics.command(H, D)
    assert topics.parse(command.replace("/v1/", "/v2/")) is None
    assert topics.parse(command + "/extra") is None
    assert topics.parse(command.replace("/device/", "/speaker/")) is None
    assert topics.parse(topics.subscription("command")) is None  # a filter, not a topic


@pytest.mark.parametrize("bad", ["", "+", "#", "a/b", "a b", "-lead", "x" * 65, "ü"])
def test_ids_that_would_break_a_topic_are_refused(bad: str) -> None:
    with pytest.raises(topics.TopicError):
        topics.command(bad, D)
    with pytest.raises(topics.TopicError):
        topics.command(H, bad)


def test_wildcards_only_in_subscriptions_and_share_names_are_checked() -> None:
    with pytest.raises(topics.TopicError):
        topics.command(topics.ANY, D)
    with pytest.raises(topics.TopicError):
        topics.shared("a/b", topics.subscription("alert"))


def test_no_topic_string_is_built_outside_protocol_topics() -> None:
    """The contract lives in one place: no other file spells a topic."""
    literal = re.compile(r"""["'](care/v\d|\$share/)""")
    offenders = []
    for folder in ("assistant", "protocol", "services", "devices", "intents", "bench", "tests"):
        for path in (ROOT / folder).rglob("*.py"):
            if path == ROOT / "protocol" / "topics.py":
                continue
            for number, line in enumerate(path.read_text().splitlines(), 1):
                if literal.search(line):
                    offenders.append(f"{path.relative_to(ROOT)}:{number}")
    assert offenders == []


# --- the envelope and every type ------------------------------------------------------------


def test_every_registered_type_has_an_example_here() -> None:
    examples = EXAMPLES + DOCTOR_EXAMPLES
    assert {type(body).TYPE for body in examples} == set(protocol.message_types())


@pytest.mark.parametrize("body", DOCTOR_EXAMPLES, ids=lambda b: type(b).TYPE)
def test_doctor_messages_live_on_the_doctors_topics(body) -> None:
    message = create(body, "practice-1", "dr-weber")
    assert message.topic.split("/")[:5] == ["care", "v1", "practice-1", "doctor", "dr-weber"]
    back = decode(encode(message), None, topic=message.topic)
    assert back.body == body
    with pytest.raises(RejectedMessage) as info:  # the same kind on a device's topic
        decode(encode(message), None, topic=message.topic.replace("/doctor/", "/device/"))
    assert info.value.reason == Reason.WRONG_TOPIC


def test_a_device_topic_and_a_doctor_topic_never_parse_alike() -> None:
    assert topics.parse(topics.status(H, D)).kind == "status"
    assert topics.parse(topics.doctor_topic(H, D, "doctor_status")).kind == "doctor_status"
    with pytest.raises(topics.TopicError):
        topics.doctor_topic(H, D, "command")


def test_a_refusal_goes_back_to_a_doctor_on_the_doctors_own_topic() -> None:
    body = ServiceRefused(reason="unknown_request", refused_id=REQUEST)
    message = create(body, "practice-1", "dr-weber", on=topics.REFUSAL_KIND["doctor"])
    assert message.topic == topics.doctor_topic("practice-1", "dr-weber", "doctor_refused")
    assert decode(encode(message), None, topic=message.topic).body == body


def test_a_text_session_needs_its_conversation_topic() -> None:
    with pytest.raises(ValueError, match="conversation_topic"):
        create(ConsultationSession(request_id=REQUEST, mode="text"), H, D)
    with pytest.raises(ValueError, match="date"):
        create(AppointmentRequest(department="cardiology", date="2026-02-30", at="10:00"), H, D)


@pytest.mark.parametrize("body", EXAMPLES, ids=lambda b: type(b).TYPE)
def test_every_type_survives_the_wire(body) -> None:
    message = create(body, H, D)
    payload = encode(message)
    data = json.loads(payload)
    assert set(data) == {"v", "id", "ts", "type", "household", "device", "body"}
    assert data["v"] == 1 and data["type"] == type(body).TYPE
    assert str(uuid.UUID(data["id"])) == data["id"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", data["ts"])
    back = decode(payload, H, expected_device=D, topic=message.topic)
    assert back.body == body
    assert (back.id, back.ts, back.household, back.device) == (message.id, message.ts, H, D)


def test_alerts_have_priority_and_other_types_do_not() -> None:
    for body in EXAMPLES:
        message = create(body, H, D)
        alert = message.kind == "alert" or message.type == "member.alert"
        assert (message.priority == protocol.PRIORITY_ALERT) == alert


@pytest.mark.parametrize(
    "body",
    [
        ReminderAdd(reminder_id="r1", kind="medication", text="pills", at="08:30"),
        ServiceRefused(reason=Reason.BAD_BODY, detail="body.at: expected HH:MM"),
    ],
    ids=lambda b: type(b).TYPE,
)
def test_a_type_may_go_on_its_other_kind_when_the_message_says_so(body) -> None:
    other = type(body).KINDS[1]
    assert topics.party_of(other) == "member"
    message = create(body, H, M, on=other)
    assert message.kind == other and message.topic == topics.member_topic(H, M, other)
    back = decode(encode(message), None, topic=message.topic)
    assert back.kind == other and back.body == body
    default = create(body, H, D)
    assert default.topic == topics.device_topic(H, D, type(body).KIND)
    with pytest.raises(RejectedMessage) as info:  # the kind of a type it does not have
        decode(encode(create(FamilyMessage(to="all", text="hi"), H, M)), None, topic=message.topic)
    assert info.value.reason == Reason.WRONG_TOPIC
    with pytest.raises(ValueError):
        create(body, H, M, on="inbox")


def test_the_repr_of_a_message_leaves_the_body_out() -> None:
    message = valid(FamilyMessage(to="Anna", text="my blood sugar is 300"))
    assert "blood sugar" not in repr(message)
    assert message.id in repr(message)


@pytest.mark.parametrize(
    "body",
    [
        Volume(level=1.5),
        ReminderAdd(reminder_id="r1", kind="medication", text="pills", at="25:00"),
        HealthReading(measure="heart_rate", value=70, taken_at=TS, diastolic=80),
        ConsultationSession(request_id=REQUEST, mode="phone"),
        FamilyMessage(to="Anna", text="x" * 5000),
        Call(contact="Anna", number="call me"),
    ],
    ids=lambda b: type(b).TYPE,
)
def test_a_sender_cannot_create_what_a_receiver_would_refuse(body) -> None:
    with pytest.raises(ValueError, match="cannot send an invalid"):
        create(body, H, D)


def test_a_body_that_is_not_a_registered_type_is_refused() -> None:
    with pytest.raises(TypeError):
        create(Location(1.0, 2.0), H, D)


# --- what receivers refuse ------------------------------------------------------------------


def _body(**fields) -> bytes:
    data = valid().to_dict()
    data["body"] = fields
    return json.dumps(data).encode()


BAD_PAYLOADS = {
    "garbage": (b"\xff\xfe\x00garbage\x9c", Reason.NOT_UTF8),
    "not json": (b"hello there", Reason.NOT_JSON),
    "truncated json": (envelope()[:40], Reason.NOT_JSON),
    "a json list": (b"[1, 2, 3]", Reason.NOT_OBJECT),
    "nan": (envelope(v=float("nan")), Reason.NOT_JSON),
    "v as a string": (envelope(v="1"), Reason.BAD_ENVELOPE),
    "version 2": (envelope(v=2), Reason.UNSUPPORTED_VERSION),
    "id not a uuid": (envelope(id="12345"), Reason.BAD_ENVELOPE),
    "ts not utc": (envelope(ts="2026-11-23T08:00:00+02:00"), Reason.BAD_ENVELOPE),
    "missing body": (json.dumps({k: 1 for k in "v id ts".split()}).encode(), Reason.BAD_ENVELOPE),
    "extra envelope key": (envelope(extra=1), Reason.BAD_ENVELOPE),
    "household a number": (envelope(household=7), Reason.BAD_ENVELOPE),
    "unknown type": (envelope(type="command.self_destruct"), Reason.UNKNOWN_TYPE),
    "text a number": (_body(text=42), Reason.BAD_BODY),
    "urgent a string": (_body(text="hi", urgent="yes"), Reason.BAD_BODY),
    "body a list": (envelope(body=[]), Reason.BAD_BODY),
    "another household": (envelope(household="someone-else"), Reason.WRONG_HOUSEHOLD),
    "another device": (envelope(device="other-device"), Reason.WRONG_DEVICE),
    "one megabyte": (envelope()[:-1] + b" " * (1 << 20) + b"}", Reason.TOO_LARGE),
    "deeply nested and large": (b"[" * 100_000 + b"]" * 100_000, Reason.TOO_LARGE),
}


@pytest.mark.parametrize("name", sorted(BAD_PAYLOADS))
def test_bad_payloads_are_refused_with_their_reason(name: str) -> None:
    payload, reason = BAD_PAYLOADS[name]
    with pytest.raises(RejectedMessage) as info:
        decode(payload, H, expected_device=D, topic=topics.command(H, D))
    assert info.value.reason == reason


def test_nesting_below_the_size_limit_is_refused_not_a_crash() -> None:
    payload = b"[" * 30_000 + b"]" * 30_000
    assert len(payload) < MAX_PAYLOAD_BYTES
    with pytest.raises(RejectedMessage) as info:
        decode(payload, H)
    assert info.value.reason in (Reason.NOT_JSON, Reason.NOT_OBJECT)


def test_the_topic_must_agree_with_the_envelope() -> None:
    payload = encode(valid())
    with pytest.raises(RejectedMessage) as info:
        decode(payload, H, topic=topics.alert(H, D))  # a command on the alert topic
    assert info.value.reason == Reason.WRONG_TOPIC
    with pytest.raises(RejectedMessage) as info:
        decode(payload, None, topic=topics.command("other-house", D))
    assert info.value.reason == Reason.WRONG_HOUSEHOLD


def test_a_service_accepts_any_household_that_matches_its_topic() -> None:
    message = valid(household="house-42")
    back = decode(encode(message), None, topic=message.topic)
    assert back.household == "house-42"


def test_unknown_body_keys_are_ignored_for_forward_compatibility() -> None:
    payload = _body(text="hi", colour="blue")
    assert decode(payload, H).body == Say(text="hi")


# --- the receiver: counted, logged without content, still serving ---------------------------


def test_the_receiver_counts_each_refusal_and_keeps_serving(caplog) -> None:
    handled: list[Message] = []
    receiver = Receiver(handled.append, household=H, device=D)
    topic = topics.command(H, D)
    secret = b"my blood sugar is 300"
    with caplog.at_level(logging.INFO):
        for payload, _ in BAD_PAYLOADS.values():
            assert receiver.receive(topic, payload) is None
        assert receiver.receive(topic, secret) is None
    expected: dict[str, int] = {}
    for _, reason in BAD_PAYLOADS.values():
        expected[reason] = expected.get(reason, 0) + 1
    expected[Reason.NOT_JSON] += 1
    assert receiver.rejections.counts() == expected
    assert receiver.rejections.total == len(BAD_PAYLOADS) + 1
    assert "blood sugar" not in caplog.text
    assert "rejected a message on " + topic in caplog.text

    good = valid(Say(text="still here"))
    assert receiver.receive(topic, encode(good)) == good
    assert handled == [good]


def test_the_receiver_hands_each_id_over_once() -> None:
    handled: list[Message] = []
    receiver = Receiver(handled.append, household=H, device=D)
    message = valid()
    for _ in range(3):
        receiver.receive(message.topic, encode(message))
    assert handled == [message]
    assert receiver.rejections[Reason.DUPLICATE] == 2
    assert receiver.received == 3


def test_a_failing_handler_is_counted_and_the_message_can_come_again() -> None:
    calls: list[str] = []

    def handler(message: Message) -> None:
        calls.append(message.id)
        if len(calls) == 1:
            raise RuntimeError("the dialog is busy")

    receiver = Receiver(handler, household=H)
    message = valid()
    assert receiver.receive(message.topic, encode(message)) is None
    assert receiver.rejections[Reason.HANDLER_ERROR] == 1
    assert receiver.receive(message.topic, encode(message)) == message  # not marked handled
    assert calls == [message.id, message.id]


def test_a_failing_rejection_listener_does_not_stop_counting() -> None:
    def broken(reason: str) -> None:
        raise OSError("disk full")

    counter = RejectionCounter(listener=broken)
    counter.count(Reason.NOT_JSON)
    assert counter[Reason.NOT_JSON] == 1


# --- dedup ----------------------------------------------------------------------------------


def test_the_dedup_window_forgets_the_oldest_ids() -> None:
    dedup = DuplicateFilter(capacity=3)
    for name in "abcd":
        assert dedup.add(name)
    assert not dedup.add("d")
    assert not dedup.seen("a") and dedup.seen("b")
    assert len(dedup) == 3


def test_the_dedup_window_survives_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "seen.sqlite3"
    first = DuplicateFilter(capacity=150, path=path)
    ids = [str(uuid.uuid4()) for _ in range(250)]
    for message_id in ids:
        first.add(message_id)
    first.close()
    again = DuplicateFilter(capacity=150, path=path)
    assert all(again.seen(i) for i in ids[-150:])
    assert not any(again.seen(i) for i in ids[:100])
    assert (path.stat().st_mode & 0o777) == 0o600


def test_a_second_store_on_the_same_file_keeps_the_first_ones_writes_visible(tmp_path) -> None:
    """Opening another connection must not drop this process's SQLite locks: another process
    closing the file would then delete the WAL under the first connection's feet."""
    import subprocess
    import sys

    from protocol.sqlite import open_db

    path = tmp_path / "shared.sqlite3"
    first = open_db(path)
    first.execute("CREATE TABLE t (n INTEGER)")
    first.execute("INSERT INTO t VALUES (1)")
    second = open_db(path)  # e.g. the ids handled, next to the outbox
    code = "import sqlite3, sys; db = sqlite3.connect(sys.argv[1]); "
    count = "db.execute('SELECT COUNT(*) FROM t')"
    subprocess.run([sys.executable, "-c", f"{code}{count}; db.close()", str(path)], check=True)
    first.execute("INSERT INTO t VALUES (2)")
    seen = subprocess.run(
        [sys.executable, "-c", code + "print(db.execute('SELECT COUNT(*) FROM t').fetchone()[0])",
         str(path)],
        check=True, capture_output=True, text=True,
    ).stdout.strip()  # fmt: skip
    assert seen == "2"
    first.close()
    second.close()

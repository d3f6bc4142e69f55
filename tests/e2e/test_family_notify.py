"""The family-notification service end to end: real Mosquitto, real `family-notify serve`
processes and CLI, a real SQLite file; the device and the members' apps are stand-ins
publishing and hearing what they would, and the SMS and phone gateways are the recording
gateway (no such gateway exists here)."""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
import time
from collections import Counter
from contextlib import closing
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from protocol import (
    CheckinAnswer,
    CommandDone,
    DeviceStatus,
    EmergencyAlert,
    FamilyMessage,
    HealthReading,
    MemberAck,
    Message,
    MissedMedicationAlert,
    Reason,
    ReminderAdd,
    ReminderMissed,
    ReminderTaken,
    Say,
    WellnessAlert,
    create,
    decode,
    encode,
    topics,
    utc_timestamp,
)
from services.family.channels import read_gateway_file
from tests.backend import Backend
from tests.broker import Mosquitto
from tests.device_process import _wait as wait_for  # polls a condition until true
from tests.family_process import (
    FAMILY,
    D,
    FamilyConfigFiles,
    FamilyWorker,
    H,
    Household,
    MemberSpec,
    apps_standin,
    device_standin,
    family_cli,
    ok,
    setup_household,
    write_config,
)

pytestmark = pytest.mark.e2e

NOTIFIED = ("anna", "ben", "carla")  # everyone but Mum herself


def inbox(apps: Backend, member: str, type_: str = "member.alert", alert_id: str | None = None):
    """What reached a member's inbox (duplicates dropped by id)."""
    return [
        m
        for m in list(apps.handled)
        if m.device == member
        and m.type == type_
        and (alert_id is None or getattr(m.body, "alert_id", None) == alert_id)
    ]


def raw_alerts(apps: Backend) -> Counter[tuple[str, str]]:
    """(member, alert id) → how many member.alert (first notices) reached the inbox, copies
    included."""
    counts: Counter[tuple[str, str]] = Counter()
    for topic, payload in list(apps.raw):
        message = decode(payload, None, topic=topic)
        if message.type == "member.alert" and message.body.step == 0:
            counts[(message.device, message.body.alert_id)] += 1
    return counts


def show(config: FamilyConfigFiles, alert_id: str) -> dict:
    return json.loads(ok(family_cli(config, "alert", "show", alert_id)))


def trail(config: FamilyConfigFiles, alert_id: str) -> list[str]:
    return [e["event"] for e in show(config, alert_id)["trail"]]


def emergency(household: str = H, device: str = D) -> Message:
    return create(EmergencyAlert(trigger="voice", said="help, I fell"), household, device)


@pytest.fixture
def config(tmp_path: Path, broker: Mosquitto) -> FamilyConfigFiles:
    files = write_config(tmp_path / "family", broker)
    setup_household(files)
    return files


@pytest.fixture
def device(broker: Mosquitto):
    with device_standin(broker) as standin:
        yield standin


@pytest.fixture
def apps(broker: Mosquitto):
    with apps_standin(broker) as standin:
        yield standin


def slow_config(tmp_path: Path, broker: Mosquitto, **timings) -> FamilyConfigFiles:
    files = write_config(tmp_path / "family", broker, **timings)
    setup_household(files)
    return files


# --- an emergency -------------------------------------------------------------------------


def test_an_emergency_reaches_every_members_inbox(config, device, apps) -> None:
    with FamilyWorker(config):
        alert = emergency()
        device.send(alert)
        assert apps.wait_until(lambda: all(inbox(apps, m, alert_id=alert.id) for m in NOTIFIED))
        for member in NOTIFIED:
            (notice,) = inbox(apps, member, alert_id=alert.id)
            assert notice.body.tone == "urgent" and notice.body.category == "emergency"
            assert notice.topic == topics.inbox(H, member)
        assert not inbox(apps, "mum")  # not the senior herself
        (anna,) = inbox(apps, "anna")
        (ben,) = inbox(apps, "ben")
        assert anna.body.text == 'URGENT: Mum asked for help: "help, I fell". Please answer now.'
        assert ben.body.text.startswith("DRINGEND: Mum hat um Hilfe gerufen")  # Ben reads German
        assert wait_for(lambda: show(config, alert.id)["state"] == "delivered", 15)
        events = trail(config, alert.id)
        assert events[0] == "opened" and events.count("sent") == 3 and "delivered" in events


def test_an_unanswered_emergency_escalates_on_schedule(tmp_path, broker, device, apps) -> None:
    config = slow_config(tmp_path, broker, step_s=1.0, repeat_s=1.0, max_repeats=1)
    with FamilyWorker(config):
        alert = emergency()
        sent_at = time.time()
        device.send(alert)
        # ladder: first contacts (Anna sms, Ben sms, Carla phone), Anna's second (phone),
        # the emergency number, then one reminder in every inbox
        assert wait_for(lambda: len(inbox(apps, "anna", alert_id=alert.id)) == 2, 15)
    sms = read_gateway_file(config.sms)
    calls = read_gateway_file(config.phone)
    assert [(s["to"], s["step"]) for s in sms] == [("+4915100001", 1), ("+4915100002", 1)]
    assert sorted((c["step"], c["to"]) for c in calls) == [
        (1, "+4915100003"),
        (2, "+4915100001"),
        (3, "+49112"),
    ]
    emergency_call = next(c for c in calls if c["to"] == "+49112")
    assert "no family member has answered" in emergency_call["text"]
    # on schedule: step n about n * step_s after the alert, never before
    for record in sms + calls:
        delay = record["at"] - sent_at
        assert record["step"] * 1.0 <= delay + 0.05 < record["step"] * 1.0 + 1.5, record
    repeats = [m for m in inbox(apps, "anna", alert_id=alert.id) if m.body.step == 4]
    assert len(repeats) == 1
    updates = inbox(apps, "carla", "member.alert.update", alert.id)
    assert [u.body.state for u in updates] == ["escalated"] * 3
    described = show(config, alert.id)
    assert described["state"] == "escalated" and described["step"] == 4
    assert described["next_step_at"] is None  # max_repeats reached: it stays open
    assert trail(config, alert.id).count("escalated") == 4


def test_one_acknowledgement_stops_the_escalation_and_the_device_hears_who(
    tmp_path, broker, device, apps
) -> None:
    config = slow_config(tmp_path, broker, step_s=1.5)
    with FamilyWorker(config):
        alert = emergency()
        device.send(alert)
        assert apps.wait_until(lambda: inbox(apps, "anna", alert_id=alert.id))
        apps.send(create(MemberAck(alert_id=alert.id, action="on_the_way", eta_min=15), H, "anna"))
        assert device.wait_until(lambda: device.ids("alert.ack"))
        (ack,) = [m for m in device.handled if m.type == "alert.ack"]
        assert ack.topic == topics.alert_ack(H, D)
        assert (ack.body.alert_id, ack.body.by, ack.body.action) == (
            alert.id,
            "your daughter",
            "on_the_way",
        )
        assert ack.body.eta_min == 15
        assert apps.wait_until(lambda: inbox(apps, "ben", "member.alert.update", alert.id))
        (told,) = inbox(apps, "ben", "member.alert.update", alert.id)
        assert told.body.state == "acknowledged" and told.body.by == "Anna"
        assert "Anna ist auf dem Weg zu Mum (etwa 15 Min.)" in told.body.text
        assert not inbox(apps, "anna", "member.alert.update", alert.id)  # she knows
        apps.send(create(MemberAck(alert_id=alert.id, action="calling"), H, "ben"))
        time.sleep(3.5)  # two escalation steps' time: nothing more happens
        assert len(device.ids("alert.ack")) == 1  # only the first answer is told to the device
    assert read_gateway_file(config.sms) == [] and read_gateway_file(config.phone) == []
    described = show(config, alert.id)
    assert described["state"] == "acknowledged" and described["acked_by"] == "anna"
    assert trail(config, alert.id)[-1] == "answered_again"


def test_the_alert_states_and_their_audit_trail(tmp_path, broker, device, apps) -> None:
    config = slow_config(tmp_path, broker, step_s=1.0)
    with FamilyWorker(config):
        alert = emergency()
        device.send(alert)
        assert wait_for(lambda: read_gateway_file(config.sms), 10)  # escalated once
        assert show(config, alert.id)["state"] == "escalated"
        apps.send(create(MemberAck(alert_id=alert.id, action="calling"), H, "carla"))
        assert wait_for(lambda: show(config, alert.id)["state"] == "acknowledged", 15)
        apps.send(create(MemberAck(alert_id=alert.id, action="resolved"), H, "carla"))
        assert wait_for(lambda: show(config, alert.id)["state"] == "closed", 15)
    events = trail(config, alert.id)
    firsts = [e for i, e in enumerate(events) if e not in events[:i] and e != "sent"]
    assert firsts[:4] == ["opened", "delivered", "escalated", "acknowledged"]
    assert events[-2:] == ["answered_again", "closed"]
    described = show(config, alert.id)
    actors = {e["event"]: e["actor"] for e in described["trail"]}
    assert actors["acknowledged"] == "carla" and actors["closed"] == "carla"


# --- the other alerts ---------------------------------------------------------------------


def test_a_missed_medication_goes_to_the_caregiver_after_the_grace_period(
    tmp_path, broker, device, apps
) -> None:
    config = slow_config(tmp_path, broker, grace_s=1.5)
    due = utc_timestamp()
    with FamilyWorker(config):
        missed = create(
            MissedMedicationAlert(reminder_id="metformin", medication="Metformin", due=due), H, D
        )
        started = time.time()
        device.send(missed)
        assert apps.wait_until(lambda: inbox(apps, "carla", alert_id=missed.id), 10)
        assert time.time() - started >= 1.5
        (notice,) = inbox(apps, "carla", alert_id=missed.id)
        assert notice.body.category == "missed_medication" and "Metformin" in notice.body.text
        # a dose taken within the grace period: nobody is bothered
        later = create(
            MissedMedicationAlert(reminder_id="aspirin", medication="Aspirin", due=due), H, D
        )
        device.send(later)
        device.send(create(ReminderTaken(reminder_id="aspirin", due=due, taken_at=due), H, D))
        assert wait_for(lambda: show(config, later.id)["state"] == "closed", 15)
        time.sleep(2.0)
    assert not inbox(apps, "anna", alert_id=missed.id) and not inbox(apps, "ben")
    assert not inbox(apps, "carla", alert_id=later.id)
    assert trail(config, later.id)[-1] == "closed"


def test_a_wellness_concern_goes_to_the_family_in_a_calmer_tone(config, device, apps) -> None:
    with FamilyWorker(config):
        concern = create(WellnessAlert(concern="feeling", severity="low", detail="lonely"), H, D)
        device.send(concern)
        assert apps.wait_until(lambda: inbox(apps, "anna") and inbox(apps, "ben"))
        (anna,) = inbox(apps, "anna")
        assert anna.body.tone == "calm"
        assert anna.body.text.startswith("No emergency: Mum said they feel lonely")
        assert inbox(apps, "ben")[0].body.text.startswith("Kein Notfall")
        # an answer to a check-in that says "lonely" is a concern too
        answer = CheckinAnswer(
            checkin_id="evening", question="How are you?", answer="alone", feeling="sad"
        )
        device.send(create(answer, H, D))
        assert apps.wait_until(lambda: len(inbox(apps, "anna")) == 2)
        time.sleep(0.5)
    assert not inbox(apps, "carla")  # the caregiver is for medication, the family for this


def test_a_message_for_the_daughter_reaches_her_and_her_seen_goes_back(
    config, device, apps
) -> None:
    """ "Send a message to my daughter", "call my son" (a speaker asks for a call back) and
    "share my location" leave the device as family.message: delivered, never refused."""
    with FamilyWorker(config):
        message = create(FamilyMessage(to="daughter", text="I baked a cake, come over"), H, D)
        device.send(message)
        assert apps.wait_until(lambda: inbox(apps, "anna", alert_id=message.id))
        (anna,) = inbox(apps, "anna", alert_id=message.id)
        assert anna.body.category == "message" and anna.body.tone == "calm"
        assert anna.body.text == 'Message from Mum (daughter): "I baked a cake, come over"'
        apps.send(create(MemberAck(alert_id=message.id, action="seen"), H, "anna"))
        assert device.wait_until(lambda: device.ids("alert.ack"))
        (ack,) = [m.body for m in device.handled if m.type == "alert.ack"]
        assert (ack.by, ack.action) == ("your daughter", "seen")
        # to nobody in particular (or a name nobody here has): everyone reads it
        everyone = create(FamilyMessage(to="nephew", text="Please call me back."), H, D)
        device.send(everyone)
        assert apps.wait_until(lambda: all(inbox(apps, m, alert_id=everyone.id) for m in NOTIFIED))
        assert not device.ids("service.refused")
    assert not inbox(apps, "ben", alert_id=message.id)  # the son was not meant


def test_quiet_hours_hold_a_concern_but_not_an_emergency(tmp_path, broker, device, apps) -> None:
    now = dt.datetime.now(ZoneInfo("Europe/Berlin"))
    quiet = f"{(now - dt.timedelta(hours=1)):%H:%M}-{(now + dt.timedelta(hours=1)):%H:%M}"
    members = tuple(
        MemberSpec(
            m.id,
            m.name,
            m.role,
            m.relation,
            m.contacts,
            quiet if m.id == "ben" else None,
            m.language,
        )
        for m in FAMILY
    )
    config = write_config(tmp_path / "family", broker)
    setup_household(config, Household(members=members))
    with FamilyWorker(config):
        concern = create(WellnessAlert(concern="check_in", severity="low"), H, D)
        device.send(concern)
        assert apps.wait_until(lambda: inbox(apps, "anna", alert_id=concern.id))
        alert = emergency()
        device.send(alert)
        assert apps.wait_until(lambda: inbox(apps, "ben", alert_id=alert.id))  # quiet or not
        time.sleep(0.5)
        assert not inbox(apps, "ben", alert_id=concern.id)  # held until his quiet hours end
    rows = _outbox(config, concern.id)
    (held,) = [r for r in rows if r["member"] == "ben"]
    assert held["state"] == "pending"
    ends = now + dt.timedelta(hours=1)
    assert held["not_before"] == pytest.approx(ends.replace(second=0, microsecond=0).timestamp())


def _outbox(config: FamilyConfigFiles, alert_id: str) -> list[dict]:
    import sqlite3

    with sqlite3.connect(config.database) as db:
        db.row_factory = sqlite3.Row
        rows = db.execute("SELECT * FROM outbox WHERE alert_id = ?", (alert_id,)).fetchall()
        return [dict(r) for r in rows]


# --- caregivers' reminders ----------------------------------------------------------------


def pills(reminder_id: str = "evening-pills") -> ReminderAdd:
    return ReminderAdd(
        reminder_id=reminder_id,
        kind="medication",
        text="Time for your evening pills",
        at="19:30",
        medication="Ramipril",
        dose="5 mg",
    )


def test_a_caregiver_adds_a_reminder_over_mqtt_and_the_device_confirms(
    config, device, apps
) -> None:
    with FamilyWorker(config):
        request = create(pills(), H, "carla", on="member_command")
        apps.send(request)
        assert device.wait_until(lambda: device.ids("command.reminder.add"))
        (command,) = [m for m in device.handled if m.type == "command.reminder.add"]
        assert command.topic == topics.command(H, D) and command.body == pills()
        assert apps.wait_until(lambda: inbox(apps, "carla", "member.command.result"))
        device.send(create(CommandDone(command_id=command.id, command=command.type), H, D))
        assert apps.wait_until(lambda: len(inbox(apps, "carla", "member.command.result")) == 2)
        statuses = [m.body.status for m in inbox(apps, "carla", "member.command.result")]
        assert statuses == ["sent", "confirmed"]
        assert all(
            m.body.command_id == request.id for m in inbox(apps, "carla", "member.command.result")
        )
        apps.send(request)  # the app resends: the same command is not sent twice
        time.sleep(0.5)
        assert len(device.ids("command.reminder.add")) == 1
    listing = json.loads(ok(family_cli(config, "reminder", "list", H)))
    assert [(r["id"], r["state"], r["command"]) for r in listing] == [
        ("evening-pills", "active", "confirmed")
    ]


def test_the_cli_sends_reminders_to_the_device(config, device, apps) -> None:
    with FamilyWorker(config):
        ok(
            family_cli(
                config,
                "reminder",
                "add",
                H,
                "walk",
                "--text",
                "Time for a walk",
                "--at",
                "10:00",
                "--kind",
                "other",
                "--days",
                "mon,wed",
                "--as",
                "anna",
            )
        )
        assert device.wait_until(lambda: device.ids("command.reminder.add"))
        ok(family_cli(config, "reminder", "change", H, "walk", "--at", "10:30"))
        ok(family_cli(config, "reminder", "remove", H, "walk"))
        assert device.wait_until(lambda: device.ids("command.reminder.remove"))
    types = [m.type for m in device.handled if m.type.startswith("command.")]
    assert types == ["command.reminder.add", "command.reminder.change", "command.reminder.remove"]
    change = device.handled[1].body
    assert change.at == "10:30" and change.text is None
    listing = json.loads(ok(family_cli(config, "reminder", "list", H)))
    assert listing[0]["state"] == "removed" and listing[0]["at"] == "10:30"


def test_a_command_the_device_never_confirms_fails_and_a_refused_add_can_be_redone(
    tmp_path, broker, device, apps
) -> None:
    config = slow_config(tmp_path, broker, command_timeout_s=1.0)
    with FamilyWorker(config):
        # The device hears the command but never answers: after the deadline it failed.
        request = create(pills(), H, "carla", on="member_command")
        apps.send(request)
        assert device.wait_until(lambda: device.ids("command.reminder.add"))
        results = lambda: inbox(apps, "carla", "member.command.result")  # noqa: E731
        assert apps.wait_until(lambda: len(results()) == 2, 20)
        assert [(m.body.status, m.body.detail) for m in results()] == [
            ("sent", None), ("failed", "the device did not confirm")
        ]  # fmt: skip
        listing = json.loads(ok(family_cli(config, "reminder", "list", H)))
        assert [(r["id"], r["state"], r["command"]) for r in listing] == [
            ("evening-pills", "failed", "failed")
        ]
        # Added again (not refused as existing); the device refuses it at once.
        again = create(pills(), H, "carla", on="member_command")
        apps.send(again)
        assert device.wait_until(lambda: len(device.ids("command.reminder.add")) == 2)
        command = [m for m in device.handled if m.type == "command.reminder.add"][-1]
        refused = CommandDone(command_id=command.id, command=command.type, ok=False,
                              detail="no room for more reminders")  # fmt: skip
        device.send(create(refused, H, D))
        assert apps.wait_until(lambda: len(results()) == 4, 20)
        assert results()[-1].body.detail == "no room for more reminders"
        listing = json.loads(ok(family_cli(config, "reminder", "list", H)))
        assert [(r["state"], r["command"]) for r in listing] == [("failed", "failed")]
        status = json.loads(ok(family_cli(config, "status")))
        assert status["commands"] == {"failed": 2}


def test_a_command_the_broker_dropped_reaches_the_device_when_it_comes_online(
    config, broker, apps
) -> None:
    with FamilyWorker(config):
        # The device has never connected: the broker has no session to keep the command in.
        request = create(pills(), H, "carla", on="member_command")
        apps.send(request)
        assert apps.wait_until(lambda: inbox(apps, "carla", "member.command.result"))
        # the result and the command leave together, in no set order: the broker must have
        # had (and dropped) the command before the device connects
        assert wait_for(lambda: command_rows(config) == ["sent"], 10)
        with device_standin(broker, client_id="speaker-new") as device:
            time.sleep(0.5)
            assert not device.ids("command.")  # it was dropped, not queued
            device.send(create(DeviceStatus(state="online", reason="connected"), H, D),
                        retain=True)  # fmt: skip
            assert device.wait_until(lambda: device.ids("command.reminder.add"), 20)
            (command,) = [m for m in device.handled if m.type == "command.reminder.add"]
            assert command.body == pills()
            device.send(create(CommandDone(command_id=command.id, command=command.type), H, D))
            assert apps.wait_until(
                lambda: len(inbox(apps, "carla", "member.command.result")) == 2, 20
            )
        statuses = [m.body.status for m in inbox(apps, "carla", "member.command.result")]
        assert statuses == ["sent", "confirmed"]


def command_rows(config: FamilyConfigFiles) -> list[str]:
    """The states of the service's outbox rows that carry a command to a device."""
    with closing(sqlite3.connect(config.database)) as db:
        return [r[0] for r in db.execute("SELECT state FROM outbox WHERE purpose = 'command'")]


# --- bad input ----------------------------------------------------------------------------


def refusals(standin: Backend) -> list[Message]:
    return [m for m in list(standin.handled) if m.type == "service.refused"]


def test_bad_input_is_refused_with_a_clear_reason(config, broker, device, apps) -> None:
    other = Household(id="h2", device="radio-2", members=(MemberSpec("olga", "Olga", "family"),))
    setup_household(config, other)
    with FamilyWorker(config):
        # an alert from a household the service does not know
        stray = emergency("nowhere", "speaker-9")
        device.send(stray)
        # someone outside the household sets a reminder, or answers its alert
        outsider = create(pills(), H, "olga", on="member_command")
        apps.send(outsider)
        alert = emergency()
        device.send(alert)
        assert apps.wait_until(lambda: inbox(apps, "anna", alert_id=alert.id))
        apps.send(create(MemberAck(alert_id=alert.id), "h2", "olga"))
        # the senior cannot reconfigure herself from an app; a reminder that does not exist
        apps.send(create(pills(), H, "mum", on="member_command"))
        from protocol import ReminderRemove

        apps.send(create(ReminderRemove(reminder_id="nope"), H, "carla", on="member_command"))
        # a malformed command
        broken = create(pills(), H, "carla", on="member_command").to_dict()
        broken["body"]["at"] = "25:99"
        apps.send_raw(topics.member_command(H, "carla"), json.dumps(broken).encode())
        apps.send_raw(topics.member_command(H, "carla"), b"{not json")
        # a device of an unknown id in a known household; a command it does not take
        device.send(emergency(H, "toaster"))
        said = encode(create(Say(text="hi"), H, "anna"))  # a device command on an ack topic
        apps.send_raw(topics.member_ack(H, "anna"), said)
        assert apps.wait_until(lambda: len(refusals(apps)) == 7, 15)
        assert device.wait_until(lambda: len(refusals(device)) == 2, 10)
    by_sender = {(m.household, m.device): m.body for m in refusals(device)}
    assert by_sender[("nowhere", "speaker-9")].reason == "unknown_household"
    assert by_sender[("nowhere", "speaker-9")].refused_id == stray.id
    assert by_sender[(H, "toaster")].reason == "unknown_device"
    reasons = Counter((m.household, m.device, m.body.reason) for m in refusals(apps))
    assert reasons == Counter(
        {
            (H, "olga", "not_a_member"): 1,
            ("h2", "olga", "unknown_alert"): 1,
            (H, "mum", "not_allowed"): 1,
            (H, "carla", "unknown_reminder"): 1,
            (H, "carla", Reason.BAD_BODY): 1,
            (H, "carla", Reason.NOT_JSON): 1,
            (H, "anna", Reason.WRONG_TOPIC): 1,
        }
    )
    detail = next(m.body.detail for m in refusals(apps) if m.body.reason == Reason.BAD_BODY)
    assert detail == "body.at: expected HH:MM"
    assert not device.ids("command.reminder")  # nothing reached the device
    status = json.loads(ok(family_cli(config, "status")))
    assert status["refused"] == {
        "bad_body": 1,
        "not_allowed": 1,
        "not_a_member": 1,
        "not_json": 1,
        "unknown_alert": 1,
        "unknown_device": 1,
        "unknown_household": 1,
        "unknown_reminder": 1,
        "wrong_topic": 1,
    }


def test_an_emergency_from_a_device_registered_late_is_handled_when_it_comes_again(
    config, device, apps
) -> None:
    """A refusal whose cause the admin can fix is not remembered: the device's resends of an
    unanswered emergency are refused (and answered) again until its device is registered,
    then the same alert reaches the family."""
    with FamilyWorker(config):
        alert = emergency(H, "hall-speaker")  # a device the service does not know yet
        device.send(alert)
        assert device.wait_until(lambda: len(refusals(device)) == 1, 10)
        device.send(alert)  # sent again, the same id: refused again, with an answer
        assert device.wait_until(lambda: len(refusals(device)) == 2, 10)
        assert {(m.device, m.body.reason, m.body.refused_id) for m in refusals(device)} == {
            ("hall-speaker", "unknown_device", alert.id)
        }
        assert not inbox(apps, "anna", alert_id=alert.id)
        ok(family_cli(config, "household", "change", H, "--device", D, "--device", "hall-speaker"))
        device.send(alert)  # the device's next resend of the unanswered emergency
        assert apps.wait_until(lambda: all(inbox(apps, m, alert_id=alert.id) for m in NOTIFIED))
    alert_row = show(config, alert.id)
    assert (alert_row["device"], alert_row["category"]) == ("hall-speaker", "emergency")
    assert len(refusals(device)) == 2
    status = json.loads(ok(family_cli(config, "status")))
    assert status["refused"] == {"unknown_device": 2}


def test_the_cli_refuses_bad_input_with_a_reason(config) -> None:
    result = family_cli(config, "reminder", "add", H, "x", "--text", "t", "--at", "8:00")
    assert result.returncode == 2 and "body.at: expected HH:MM" in result.stderr
    result = family_cli(config, "reminder", "add", "nowhere", "x", "--text", "t", "--at", "08:00")
    assert result.returncode == 2 and "refused (unknown_household)" in result.stderr
    result = family_cli(
        config, "reminder", "add", H, "x", "--text", "t", "--at", "08:00", "--as", "stranger"
    )
    assert result.returncode == 2 and "refused (not_a_member)" in result.stderr
    for n in range(4):
        ok(family_cli(config, "household", "member", "add", H, f"extra{n}", "--name", f"E{n}"))
    result = family_cli(config, "household", "member", "add", H, "ninth", "--name", "Nine")
    assert result.returncode == 2 and "at most 8 members" in result.stderr
    result = family_cli(config, "household", "member", "change", H, "anna", "--quiet", "22-7")
    assert result.returncode == 2 and "HH:MM-HH:MM" in result.stderr


# --- several workers ----------------------------------------------------------------------


def test_two_workers_side_by_side_deliver_each_alert_once(config, device, apps) -> None:
    with FamilyWorker(config, "a") as first, FamilyWorker(config, "b") as second:
        # messages for everyone (emergencies of one household would be one emergency)
        alerts = [create(FamilyMessage(to="all", text=f"Note {n}"), H, D) for n in range(30)]
        for alert in alerts:
            device.send(alert)
        expected = {(m, a.id) for m in NOTIFIED for a in alerts}
        assert apps.wait_until(lambda: expected <= set(raw_alerts(apps)), 20)
        time.sleep(1.0)  # any second delivery would have come by now
        counts = raw_alerts(apps)
        first_log, second_log = first.log(), second.log()
    assert set(counts) == expected and set(counts.values()) == {1}
    handled_by = _handled_by(config, [a.id for a in alerts])
    assert set(handled_by.values()) == {1}  # one "opened" per alert
    assert "Traceback" not in first_log + second_log


def test_two_workers_fold_a_burst_of_calls_for_help_into_one_emergency(
    config, device, apps
) -> None:
    with FamilyWorker(config, "a") as first, FamilyWorker(config, "b") as second:
        calls = [emergency() for _ in range(10)]
        for call in calls:
            device.send(call)
        assert wait_for(lambda: len(show(config, calls[0].id)["repeats"]) == 9, 15)
        opened = show(config, calls[0].id)["id"]  # whichever a worker took first
        assert apps.wait_until(
            lambda: len(inbox(apps, "anna", "member.alert.update", opened)) >= 9, 10
        )
        time.sleep(1.0)  # any second delivery would have come by now
        counts = raw_alerts(apps)
        first_log, second_log = first.log(), second.log()
    assert set(counts) == {(m, opened) for m in NOTIFIED} and set(counts.values()) == {1}
    assert sorted(show(config, opened)["repeats"]) == sorted(c.id for c in calls if c.id != opened)
    assert set(_handled_by(config, [c.id for c in calls])) == {opened}  # one opened
    assert "Traceback" not in first_log + second_log


def _handled_by(config: FamilyConfigFiles, alert_ids: list[str]) -> Counter[str]:
    import sqlite3

    with sqlite3.connect(config.database) as db:
        marks = ",".join("?" * len(alert_ids))
        rows = db.execute(
            f"SELECT alert_id FROM alert_events WHERE event = 'opened' AND alert_id IN ({marks})",
            alert_ids,
        ).fetchall()
    return Counter(r[0] for r in rows)


def test_a_worker_killed_mid_escalation_loses_nothing(tmp_path, broker, device, apps) -> None:
    config = slow_config(tmp_path, broker, step_s=1.0, claim_s=1.0)
    first = FamilyWorker(config, "a").start()
    alert = emergency()
    device.send(alert)
    assert wait_for(lambda: read_gateway_file(config.sms), 10)  # step 1 happened
    first.kill()  # SIGKILL mid-escalation
    killed_at = time.time()
    with FamilyWorker(config, "b"):
        assert wait_for(
            lambda: any(c["to"] == "+49112" for c in read_gateway_file(config.phone)), 15
        )
    records = read_gateway_file(config.sms) + read_gateway_file(config.phone)
    ids: dict[tuple[str, int], set[str]] = {}
    for r in records:
        ids.setdefault((r["to"], r["step"]), set()).add(r["id"])
    # every step of the ladder happened, nothing was lost; what the killed worker sent but
    # had not recorded yet may go out once more, with the same id (a gateway's idempotency key)
    assert sorted(ids) == sorted(
        [
            ("+4915100001", 1),
            ("+4915100002", 1),
            ("+4915100003", 1),
            ("+4915100001", 2),
            ("+49112", 3),
        ]
    )
    assert all(len(v) == 1 for v in ids.values())
    assert max(Counter(r["id"] for r in records).values()) <= 2
    assert any(c["at"] > killed_at for c in read_gateway_file(config.phone))
    assert raw_alerts(apps)[("anna", alert.id)] == 1


def test_escalation_goes_on_while_the_broker_is_away(tmp_path, broker, device, apps) -> None:
    config = slow_config(tmp_path, broker, step_s=1.0)
    with FamilyWorker(config) as worker:
        alert = emergency()
        device.send(alert)
        assert apps.wait_until(lambda: inbox(apps, "anna", alert_id=alert.id))
        broker.stop()
        stopped = time.time()
        # the SMS and calls of the ladder go out without the broker ...
        assert wait_for(lambda: any(c["to"] == "+49112" for c in read_gateway_file(config.phone)))
        broker.start()
        # ... and what goes over MQTT (the step updates) once it is back, nothing lost
        assert apps.wait_until(
            lambda: len(inbox(apps, "anna", "member.alert.update", alert.id)) == 3, 20
        )
        assert worker.process.poll() is None
    sms_times = [s["at"] for s in read_gateway_file(config.sms)]
    assert sms_times and all(t > stopped for t in sms_times)
    assert "Traceback" not in worker.log()


# --- the digest ---------------------------------------------------------------------------


def test_the_daily_digest(config, device, apps) -> None:
    now = utc_timestamp()
    with FamilyWorker(config):
        apps.send(create(pills("metformin"), H, "carla", on="member_command"))
        assert device.wait_until(lambda: device.ids("command.reminder.add"))
        events = [
            ReminderTaken(reminder_id="metformin", due=now, taken_at=now),
            ReminderMissed(reminder_id="metformin", due=now),
            HealthReading(
                measure="blood_pressure", value=135, diastolic=85, taken_at=now, unit="mmHg"
            ),
        ]
        for body in events:
            device.send(create(body, H, D))
        device.send(create(WellnessAlert(concern="other", severity="low"), H, D))
        assert apps.wait_until(lambda: inbox(apps, "anna"))
        printed = json.loads(ok(family_cli(config, "digest", H)).split("\nqueued")[0])
        assert (printed["reminders_taken"], printed["reminders_missed"]) == (1, 1)
        ok(family_cli(config, "digest", H, "--send"))
        assert apps.wait_until(lambda: all(inbox(apps, m, "member.digest") for m in NOTIFIED))
    (digest,) = inbox(apps, "anna", "member.digest")
    body = digest.body
    assert (body.reminders_taken, body.reminders_missed, body.readings, body.alerts) == (1, 1, 1, 1)
    assert "Took Ramipril" in body.lines[0] and "Missed Ramipril" in body.lines[1]
    assert "blood_pressure 135/85 mmHg" in body.lines[2]
    assert inbox(apps, "ben", "member.digest")[0].body.lines[0].startswith("Ramipril genommen")


def test_the_digest_goes_out_by_itself_at_its_time(tmp_path, broker, device, apps) -> None:
    config = slow_config(tmp_path, broker, digest_at="00:00")  # always past: due at once
    with FamilyWorker(config), FamilyWorker(config, "2"):
        assert apps.wait_until(lambda: all(inbox(apps, m, "member.digest") for m in NOTIFIED))
        time.sleep(1.0)
    assert len(inbox(apps, "anna", "member.digest")) == 1  # two workers, one digest
    assert inbox(apps, "anna", "member.digest")[0].body.lines == ["A quiet day: nothing to report."]


# --- nobody to tell ----------------------------------------------------------------------


def test_an_emergency_nobody_can_be_told_of_is_refused_to_the_device(
    tmp_path, broker, device, apps
) -> None:
    config = write_config(tmp_path / "family", broker, step_s=0.5, repeat_s=0.5, max_repeats=3)
    alone = Household(emergency_number=None, members=(FAMILY[0],))  # only Mum herself
    setup_household(config, alone)
    with FamilyWorker(config) as worker:
        alert = emergency()
        device.send(alert)
        assert device.wait_until(lambda: refusals(device), 10)
        time.sleep(2.5)  # five steps' time
        log = worker.log()
    (refused,) = refusals(device)
    assert refused.topic == topics.refused(H, D)
    assert (refused.body.reason, refused.body.refused_id) == ("no_recipient", alert.id)
    events = trail(config, alert.id)
    assert "no_recipient" in events and "escalated" not in events
    assert show(config, alert.id)["next_step_at"] is None
    warnings = [line for line in log.splitlines() if "WARNING" in line and alert.id in line]
    assert warnings and "help, I fell" not in log  # ids only, never what was said
    status = json.loads(ok(family_cli(config, "status")))
    assert status["refused"] == {"no_recipient": 1}


def mum_alone(tmp_path: Path, broker: Mosquitto) -> FamilyConfigFiles:
    """A household of the senior alone, with no emergency number: nobody to tell."""
    config = write_config(tmp_path / "family", broker, step_s=30.0)
    setup_household(config, Household(emergency_number=None, members=(FAMILY[0],)))
    return config


def refused_emergency(device: Backend) -> Message:
    """An emergency the device sends and is told could not be passed on."""
    alert = emergency()
    device.send(alert)
    assert device.wait_until(lambda: refusals(device), 10)
    return alert


def test_an_emergency_nobody_could_be_told_of_goes_out_when_it_comes_again_after_a_member_is_added(
    tmp_path, broker, device, apps
) -> None:
    """The device sends an unanswered emergency again. Once the household has somebody to
    tell, that resend starts the alert's notices and ladder instead of being dropped as a
    duplicate; while it has nobody, a resend changes nothing (no second refusal)."""
    config = mum_alone(tmp_path, broker)
    with FamilyWorker(config):
        alert = refused_emergency(device)
        device.send(alert)  # still nobody: nothing new
        time.sleep(0.5)
        assert len(refusals(device)) == 1 and not inbox(apps, "anna")
        ok(family_cli(config, "household", "member", "add", H, "anna", "--name", "Anna"))
        device.send(alert)
        assert apps.wait_until(lambda: inbox(apps, "anna", alert_id=alert.id), 10)
        device.send(alert)  # told now: a duplicate
        time.sleep(0.5)
    assert len(inbox(apps, "anna", alert_id=alert.id)) == 1
    events = trail(config, alert.id)
    assert events.count("no_recipient") == 1 and events.count("recipients") == 1
    assert show(config, alert.id)["next_step_at"] is not None  # its ladder climbs now


def test_no_member_but_an_emergency_number_calls_it_at_once(tmp_path, broker, device) -> None:
    config = write_config(tmp_path / "family", broker, step_s=30.0)
    setup_household(config, Household(members=(FAMILY[0],)))
    with FamilyWorker(config):
        alert = emergency()
        device.send(alert)
        assert wait_for(lambda: read_gateway_file(config.phone), 10)  # not 30 s later
        time.sleep(0.5)
    assert [c["to"] for c in read_gateway_file(config.phone)] == ["+49112"]
    assert not refusals(device)  # it is passed on: to the emergency number


def test_an_emergency_nobody_could_be_told_of_calls_a_number_added_since(
    tmp_path, broker, device
) -> None:
    config = mum_alone(tmp_path, broker)
    with FamilyWorker(config):
        alert = refused_emergency(device)
        ok(family_cli(config, "household", "change", H, "--emergency-number", "+49112"))
        device.send(alert)  # the device's resend of the unanswered emergency
        assert wait_for(lambda: read_gateway_file(config.phone), 10)  # at once
    assert [c["to"] for c in read_gateway_file(config.phone)] == ["+49112"]


# --- a dose taken late --------------------------------------------------------------------


def test_a_dose_taken_after_the_grace_period_closes_the_caregivers_alert(
    tmp_path, broker, device, apps
) -> None:
    config = slow_config(tmp_path, broker, grace_s=0.5)
    due = utc_timestamp()
    with FamilyWorker(config):
        missed = create(
            MissedMedicationAlert(reminder_id="metformin", medication="Metformin", due=due), H, D
        )
        device.send(missed)
        assert apps.wait_until(lambda: inbox(apps, "carla", alert_id=missed.id), 10)
        assert wait_for(lambda: show(config, missed.id)["state"] == "delivered", 15)
        device.send(create(ReminderTaken(reminder_id="metformin", due=due, taken_at=due), H, D))
        assert wait_for(lambda: show(config, missed.id)["state"] == "closed", 15)
        assert apps.wait_until(lambda: inbox(apps, "carla", "member.alert.update", missed.id))
        time.sleep(0.5)
    (update,) = inbox(apps, "carla", "member.alert.update", missed.id)
    assert update.body.state == "closed"
    assert "taken" in update.body.text and "Metformin" in update.body.text
    assert not inbox(apps, "anna", "member.alert.update")  # she was never told of it
    described = show(config, missed.id)
    closed = [e for e in described["trail"] if e["event"] == "closed"]
    assert [e["detail"] for e in closed] == ["taken after all"]


# --- repeated calls for help ---------------------------------------------------------------


def test_repeated_calls_for_help_are_one_emergency_and_one_answer_clears_them_all(
    tmp_path, broker, device, apps
) -> None:
    """ "Help, I fell", again, then the SOS button: one emergency, one ladder; the daughter's
    answer stops it and the device hears of every call it made."""
    config = slow_config(tmp_path, broker, step_s=2.0, repeat_s=1.0, max_repeats=3)
    with FamilyWorker(config) as worker:
        first = emergency()
        device.send(first)
        assert apps.wait_until(lambda: inbox(apps, "anna", alert_id=first.id))
        again = emergency()
        sos = create(EmergencyAlert(trigger="sos_button"), H, D)
        device.send(again)
        device.send(sos)
        assert wait_for(lambda: trail(config, first.id).count("repeated") == 2, 15)
        # the family hears she called again, in the same alert, not as new emergencies
        assert apps.wait_until(lambda: len(inbox(apps, "anna", "member.alert.update")) >= 2)
        told = [m.body.text for m in inbox(apps, "anna", "member.alert.update", first.id)]
        assert any(t.startswith("Mum called for help again") and "SOS" in t for t in told)
        assert not inbox(apps, "anna", alert_id=again.id)
        assert not inbox(apps, "anna", alert_id=sos.id)
        assert all(m.body.alert_id == first.id for m in inbox(apps, "anna", "member.alert"))
        apps.send(create(MemberAck(alert_id=first.id, action="calling"), H, "anna"))
        assert device.wait_until(lambda: len(device.ids("alert.ack")) == 3)
        time.sleep(4.5)  # two more steps' time: no other ladder goes on
        log = worker.log()
    acked = {m.body.alert_id: m.body for m in device.handled if m.type == "alert.ack"}
    assert set(acked) == {first.id, again.id, sos.id}
    assert {(a.by, a.action) for a in acked.values()} == {("your daughter", "calling")}
    calls = read_gateway_file(config.phone)
    assert not any(c["to"] == "+49112" for c in calls)  # answered before the emergency number
    assert len([c for c in calls if c["to"] == "+4915100003"]) <= 1  # one ladder at most
    described = show(config, first.id)
    assert described["state"] == "acknowledged"
    assert described["repeats"] == [again.id, sos.id]
    repeated = [e for e in described["trail"] if e["event"] == "repeated"]
    assert [e["detail"] for e in repeated] == ["voice", "sos_button"]
    assert show(config, sos.id)["id"] == first.id  # a folded call leads to its emergency
    assert "Traceback" not in log


def test_a_call_for_help_after_an_answer_is_a_new_emergency(config, device, apps) -> None:
    with FamilyWorker(config):
        first = emergency()
        device.send(first)
        assert apps.wait_until(lambda: inbox(apps, "anna", alert_id=first.id))
        apps.send(create(MemberAck(alert_id=first.id, action="seen"), H, "anna"))
        assert device.wait_until(lambda: device.ids("alert.ack"))
        later = emergency()
        device.send(later)
        assert apps.wait_until(lambda: inbox(apps, "anna", alert_id=later.id))
    assert show(config, later.id)["id"] == later.id
    assert "repeated" not in trail(config, first.id)

"""The device end to end through its own parts: what the senior says becomes a message on a
real Mosquitto, and what the services send back is said (real TTS into a WAV file)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import sqlite3
import time
import uuid
from pathlib import Path

import pytest

from assistant import replies
from assistant.actions import ActionHandler, message_body
from assistant.config import Config, SpeechOutputConfig
from assistant.device import Device
from assistant.dialog import Action
from assistant.loop import Assistant
from assistant.lost_state import storage_spoken
from assistant.reminders import ReminderStore
from assistant.speech.tts import SpeechSynthesizer
from assistant.unanswered_alerts import ALERTS_FILE, UNCONFIRMED_FILE
from assistant.voice import Voice, WavRecorder
from protocol import (
    AlertAck,
    AppointmentConfirmed,
    AppointmentRequest,
    CommandDone,
    ConsultationAssigned,
    ConsultationQueued,
    ConsultationRequest,
    EmergencyAlert,
    FamilyMessage,
    HealthReading,
    ReminderAdd,
    ReminderMissed,
    ReminderTaken,
    Say,
    ServiceRefused,
    WellnessAlert,
    create,
    utc_timestamp,
)
from tests.backend import Backend
from tests.broker import Mosquitto
from tests.clock import Clock

H, D = "household-7", "living-room"


def device_config(
    broker: Mosquitto, state_dir: Path, household: str = H, device: str = D
) -> Config:
    config = Config()
    config.mqtt.host, config.mqtt.port = broker.host, broker.port
    config.mqtt.reconnect_min_s, config.mqtt.reconnect_max_s = 0.1, 0.5
    config.device.household, config.device.device_id = household, device
    config.paths.state_dir = str(state_dir)
    return config


@pytest.fixture
def said(tmp_path: Path) -> list[str]:
    return []


def assistant_for(device: Device, engine, tmp_path: Path, said: list[str], clock=None):
    voice = Voice(SpeechSynthesizer(SpeechOutputConfig()), WavRecorder(tmp_path / "said.wav"))
    return Assistant(
        engine,
        voice,
        on_action=device.actions,
        announcer=device.announcer,
        routines=device.routines,
        on_say=said.append,
        clock=clock or dt.datetime.now,
    )


def wait_for(condition, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


# --- which message carries which action --------------------------------------------------


def test_each_outgoing_action_has_its_message() -> None:
    alert = message_body(Action("emergency", {"kind": "fall"}), said="help I fell")
    assert isinstance(alert, EmergencyAlert)
    assert (alert.kind, alert.trigger, alert.said) == ("fall", "voice", "help I fell")

    consult = message_body(Action("request_consultation", {"mode": "video"}))
    assert isinstance(consult, ConsultationRequest) and consult.mode == "video"

    reading = message_body(
        Action("report_health_reading", {"measure": "blood_pressure", "value": "130/85"})
    )
    assert isinstance(reading, HealthReading)
    assert (reading.value, reading.diastolic) == (130.0, 85.0)

    lonely = message_body(Action("report_feeling", {"feeling": "lonely"}))
    assert isinstance(lonely, WellnessAlert) and lonely.severity == "low"
    pain = message_body(Action("report_feeling", {"feeling": "pain"}))
    assert isinstance(pain, WellnessAlert) and pain.severity == "medium"

    slots = {"department": "cardiology", "day": "monday", "time": "10:00"}
    visit = message_body(Action("book_appointment", slots), today=dt.date(2026, 11, 23))
    assert isinstance(visit, AppointmentRequest)
    assert (visit.department, visit.date, visit.at) == ("cardiology", "2026-11-30", "10:00")

    note = message_body(Action("send_family_message", {"contact": "son", "message": "hi"}))
    assert isinstance(note, FamilyMessage) and (note.to, note.text) == ("son", "hi")


@pytest.mark.parametrize(
    "action",
    [
        Action("report_feeling", {"feeling": "good"}),
        Action("volume_up"),
        Action("what_time"),
        Action("report_health_reading", {"measure": "blood_pressure", "value": "130"}),
        Action("report_health_reading", {"measure": "weight", "value": "seventy"}),
    ],
)
def test_what_stays_on_the_device_or_cannot_be_sent_makes_no_message(action: Action) -> None:
    assert message_body(action) is None


def test_without_a_link_nothing_is_pretended_sent(tmp_path: Path) -> None:
    handler = ActionHandler(None, ReminderStore(tmp_path / "r.sqlite3"))
    assert handler(Action("emergency", {"kind": "fall"})) is None
    assert handler.sent == {}


# --- over a real broker ------------------------------------------------------------------


def test_help_i_fell_reaches_the_services_and_the_answer_is_said(
    broker: Mosquitto, engine, tmp_path: Path, said: list[str]
) -> None:
    with Backend(broker, household=H) as backend, Device(device_config(broker, tmp_path)) as dev:
        assert dev.link is not None and dev.link.wait_connected(10)
        assistant = assistant_for(dev, engine, tmp_path, said)
        turn = assistant.respond("help I fell")
        assert turn.intent == "emergency"
        assert backend.wait_until(lambda: backend.ids("alert.emergency"))
        alert = next(m for m in backend.handled if m.type == "alert.emergency")
        assert alert.body.kind == "fall" and alert.body.said == "help I fell"
        assert alert.household == H and alert.device == D

        ack = AlertAck(alert_id=alert.id, by="daughter", action="seen")
        backend.send(create(ack, H, D))
        assert dev.announcer.wait(10), "the acknowledgement never reached the device"
        assistant.speak_pending()
        assert said == ["Your daughter has seen your message."]
        assert (tmp_path / "said.wav").stat().st_size > 20_000  # real speech was rendered


def test_a_reminders_file_failing_loses_no_family_news_and_no_reminder(
    broker: Mosquitto, engine, tmp_path: Path, said: list[str], caplog
) -> None:
    """speak_pending takes what the services sent, then checks the reminders: a failing
    reminders file used to raise out of it, losing the news it had taken and ending the
    listening loop. The file closed under it stands in for a disk failing."""
    with Backend(broker, household=H) as backend, Device(device_config(broker, tmp_path)) as dev:
        assert dev.link is not None and dev.link.wait_connected(10)
        assistant = assistant_for(dev, engine, tmp_path, said)
        assert assistant.routines is not None
        store = assistant.routines.store
        path = store.path
        store.close()
        backend.send(create(Say(text="Anna is on her way"), H, D))
        assert dev.announcer.wait(10)
        assert assistant.speak_pending() is False
        assert said == ["Anna is on her way"]
        assert "the reminders could not be checked" in caplog.text
        reopened = ReminderStore(path)  # the disk is back: the reminders go on
        assistant.routines.store = reopened
        assert assistant.speak_pending() is False
        reopened.close()


def test_an_alert_said_while_the_broker_is_down_arrives_when_it_is_back(
    broker: Mosquitto, engine, tmp_path: Path, said: list[str]
) -> None:
    broker.stop()
    with Device(device_config(broker, tmp_path)) as dev:
        assistant_for(dev, engine, tmp_path, said).respond("call an ambulance")
        assert dev.link is not None and len(dev.link.outbox) == 1
        dev.close(drain_s=0.1)  # the senior unplugs the speaker
    broker.start()
    with Backend(broker, household=H) as backend, Device(device_config(broker, tmp_path)):
        assert backend.wait_until(lambda: backend.ids("alert.emergency"), timeout=15)
        assert len(backend.ids("alert.emergency")) == 1


def test_a_call_for_help_goes_out_when_the_disk_refuses_to_store_it(
    broker: Mosquitto, engine, tmp_path: Path, said: list[str]
) -> None:
    """A disk remounted read-only after an error (SQLite's own refusal of every write to
    the device's files, as in tests/test_outbox.py): the alert cannot be kept for a
    restart, but the broker is there, so it goes out, and so does what is said after it
    (the acknowledged alert could not be deleted from the file either, which once stopped
    the link sending anything; writing the time of the senior's words failed, which once
    stopped the assistant answering anything)."""
    with Backend(broker, household=H) as backend, Device(device_config(broker, tmp_path)) as dev:
        assert dev.link is not None and dev.link.wait_connected(10)
        assert dev.alerts is not None and dev.unconfirmed is not None
        stores = (dev.link.outbox, dev.reminders, dev.checks, dev.alerts, dev.unconfirmed.store)
        for store in stores:
            store._db.execute("PRAGMA query_only = ON")
        assistant = assistant_for(dev, engine, tmp_path, said)
        assistant.respond("call an ambulance")
        assert backend.wait_until(lambda: backend.ids("alert.emergency"), timeout=15)
        assert not any("cannot send for help" in line for line in said)
        assistant.respond("send a message to my son saying I am fine")
        assistant.respond("yes")
        assert backend.wait_until(lambda: backend.ids("family.message"), timeout=15)
        assert len(backend.ids("alert.emergency")) == 1
        # the senior and the family are told the device can no longer save, once
        assert backend.wait_until(lambda: backend.ids("alert.wellness"), timeout=15)
        [notice] = [m for m in backend.handled if m.type == "alert.wellness"]
        assert notice.body.storage_failing and notice.body.severity == "medium"
        assert wait_for(lambda: (assistant.speak_pending(), said)[1])
        assert said == [storage_spoken(family_told=True)]


def test_a_reminder_set_on_a_disk_that_refuses_writes_still_comes(
    engine, tmp_path: Path, said: list[str], caplog: pytest.LogCaptureFixture
) -> None:
    """The reminders' file refuses writes (SQLite's own refusal, as on a disk remounted
    read-only): the reminders go on in memory, so one set now still comes when it is due."""
    clock = Clock(dt.datetime(2026, 11, 24, 7, 0).astimezone())
    config = Config()
    config.paths.state_dir = str(tmp_path)
    with Device(config, link=False, clock=clock) as dev:
        assistant = assistant_for(dev, engine, tmp_path, said, clock=clock)
        dev.reminders._db.execute("PRAGMA query_only = ON")
        turn = assistant.respond("remind me to take my blood pressure pills at 8 am")
        if turn.expects_answer:  # the dialog checks the time first
            turn = assistant.respond("yes")
        assert turn.reply == "Done. I will remind you at 8 o'clock in the morning."
        assert "the disk refuses writes to reminders.sqlite3" in caplog.text
        clock.advance(hours=1, minutes=1)
        assistant.speak_pending()
        assert said == [  # told first that it can no longer save (offline: no family)
            storage_spoken(family_told=False),
            "It is time to take your blood pressure pills. Have you taken it?",
        ]


def test_an_action_that_fails_is_said_not_promised(
    engine, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The reminders' store has failed for good (closed under the device): the senior is
    not told the reminder is set, and the assistant goes on listening."""
    config = Config()
    config.paths.state_dir = str(tmp_path)
    with Device(config, link=False) as dev:
        assistant = assistant_for(dev, engine, tmp_path, [])
        dev.reminders.close()
        turn = assistant.respond("remind me to take my blood pressure pills at 8 am")
        if turn.expects_answer:
            turn = assistant.respond("yes")
        assert turn.reply == replies.ACTION_FAILED
        assert "action set_medication_reminder failed" in caplog.text
        assert assistant.respond("what time is it").reply.startswith("It is")


def test_consultation_updates_are_announced(
    broker: Mosquitto, engine, tmp_path: Path, said: list[str]
) -> None:
    with Backend(broker, household=H) as backend, Device(device_config(broker, tmp_path)) as dev:
        assert dev.link is not None and dev.link.wait_connected(10)
        assistant = assistant_for(dev, engine, tmp_path, said)
        assistant.respond("I need a video consultation")
        assistant.respond("yes")
        assert backend.wait_until(lambda: backend.ids("consultation.request"))
        request_id = backend.ids("consultation.request")[0]
        queued = ConsultationQueued(request_id=request_id, position=3, estimated_wait_s=600)
        assigned = ConsultationAssigned(
            request_id=request_id, doctor="Doctor Weber", estimated_start_s=120
        )
        for body in (queued, assigned):
            backend.send(create(body, H, D))
        assert wait_for(lambda: (assistant.speak_pending(), len(said) >= 2)[1])
        assert said == [
            "You are number 3 in line for a doctor. The wait is about 10 minutes.",
            "Doctor Weber will join you in about 2 minutes.",
        ]


def test_an_appointment_is_confirmed_aloud_in_local_time(
    broker: Mosquitto, engine, tmp_path: Path, said: list[str]
) -> None:
    with Backend(broker, household=H) as backend, Device(device_config(broker, tmp_path)) as dev:
        assert dev.link is not None and dev.link.wait_connected(10)
        assistant = assistant_for(dev, engine, tmp_path, said)
        assistant.respond("book an appointment with the heart doctor on monday at 10 am")
        assistant.respond("yes")
        assert backend.wait_until(lambda: backend.ids("appointment.request"))
        [request] = [m for m in backend.handled if m.type == "appointment.request"]
        assert (request.body.department, request.body.at) == ("cardiology", "10:00")
        starts = dt.datetime.fromisoformat(f"{request.body.date}T10:00").astimezone()
        confirmed = AppointmentConfirmed(
            request_id=request.id,
            appointment_id="a-1",
            department="cardiology",
            doctor="Dr. Weber",
            starts_at=utc_timestamp(starts),
        )
        backend.send(create(confirmed, H, D))
        assert dev.announcer.wait(10)
        assistant.speak_pending()
        assert said[0].startswith("Your appointment is confirmed: Dr. Weber, ")  # day: from today
        assert said[0].endswith("at 10 o'clock in the morning.")


def test_a_refused_request_is_said_not_swallowed(
    broker: Mosquitto, engine, tmp_path: Path, said: list[str]
) -> None:
    with Backend(broker, household=H) as backend, Device(device_config(broker, tmp_path)) as dev:
        assert dev.link is not None and dev.link.wait_connected(10)
        assistant = assistant_for(dev, engine, tmp_path, said)
        assistant.respond("send a message to my son saying I am fine")
        assistant.respond("yes")
        assert backend.wait_until(lambda: backend.ids("family.message"))
        refused = ServiceRefused(
            reason="not_a_member", refused_id=backend.ids("family.message")[0], detail="to"
        )
        backend.send(create(refused, H, D))
        assert dev.announcer.wait(10)
        assistant.speak_pending()
        assert said == [
            "Sorry, your message to your family could not be accepted. "
            "Please try again, or ask your family for help."
        ]

        # The device sends the message again until the service confirms it, and while the
        # cause lasts each copy is refused: the senior has heard it, once is enough.
        handled = dev.link._receiver.handled
        backend.send(create(refused, H, D))
        assert wait_for(lambda: dev.link._receiver.handled > handled)
        assistant.speak_pending()
        assert len(said) == 1


def test_an_emergency_refused_after_a_restart_is_said_every_time(
    broker: Mosquitto, engine, tmp_path: Path, said: list[str]
) -> None:
    """After a restart the device sends its unanswered emergency again, and a device not
    registered yet gets each copy refused: the senior hears it every time, as before the
    restart (the refused message's type comes from what waits to be sent again)."""
    config = device_config(broker, tmp_path)
    with Backend(broker, household=H) as backend, Device(config) as dev:
        assert dev.link is not None and dev.link.wait_connected(10)
        alert = dev.actions(Action("emergency", {"kind": "fall"}), said="help I fell")
        assert alert is not None
        assert backend.wait_until(lambda: alert.id in backend.ids("alert.emergency"))
    with Backend(broker, household=H) as backend, Device(config) as dev:
        assert dev.link is not None and dev.link.wait_connected(10)
        assistant = assistant_for(dev, engine, tmp_path, said)
        refused = create(ServiceRefused(reason="unknown_device", refused_id=alert.id), H, D)
        for _ in range(2):
            handled = dev.link._receiver.handled
            backend.send(dataclasses.replace(refused, id=str(uuid.uuid4())))
            assert wait_for(lambda n=handled: dev.link._receiver.handled > n)
            assistant.speak_pending()
    assert len(said) == 2 and all("your call for help could not be" in s for s in said), said


def test_a_caregivers_reminder_is_stored_confirmed_and_announced_at_its_time(
    broker: Mosquitto, engine, tmp_path: Path, said: list[str]
) -> None:
    clock = Clock(dt.datetime(2026, 11, 23, 7, 59))
    config = device_config(broker, tmp_path)
    with Backend(broker, household=H) as backend, Device(config, clock=clock) as dev:
        assert dev.link is not None and dev.link.wait_connected(10)
        assistant = assistant_for(dev, engine, tmp_path, said, clock)
        add = ReminderAdd(
            reminder_id="bp-morning",
            kind="medication",
            text="take your blood pressure pills",
            at="08:00",
            medication="blood pressure pills",
        )
        command = create(add, H, D)
        backend.send(command)
        assert backend.wait_until(lambda: backend.ids("event.command.done"))
        done = next(m for m in backend.handled if m.type == "event.command.done")
        assert isinstance(done.body, CommandDone) and done.body.command_id == command.id
        assert dev.reminders.get("bp-morning") is not None

        assert assistant.speak_pending() is False  # 07:59: only the news of the reminder
        assert said == [
            "A new reminder was set up for you: take your blood pressure pills, "
            "at 8 o'clock in the morning."
        ]
        clock.now = dt.datetime(2026, 11, 23, 8, 0, 20)
        assert assistant.speak_pending() is True  # its time: announced, an answer awaited
        assert said[-1].startswith("It is time to take your blood pressure pills.")
        assert assistant.speak_pending() is False  # and only once

        turn = assistant.respond("I took it")
        assert turn.intent == "confirm_medication_taken"
        assert backend.wait_until(lambda: backend.ids("event.reminder.taken"))
        taken = next(m for m in backend.handled if m.type == "event.reminder.taken")
        assert isinstance(taken.body, ReminderTaken) and taken.body.reminder_id == "bp-morning"


def test_a_command_the_device_cannot_carry_out_is_answered_with_the_reason(
    broker: Mosquitto, tmp_path: Path
) -> None:
    from protocol import ReminderChange

    with Backend(broker, household=H) as backend, Device(device_config(broker, tmp_path)) as dev:
        assert dev.link is not None and dev.link.wait_connected(10)
        command = create(ReminderChange(reminder_id="nope", at="09:00"), H, D)
        backend.send(command)
        assert backend.wait_until(lambda: backend.ids("event.command.done"))
        [done] = [m.body for m in backend.handled if m.type == "event.command.done"]
        assert (done.command_id, done.ok) == (command.id, False)
        assert done.detail == "no such reminder on this device"
        assert dev.reminders.get("nope") is None
        assert dev.announcer.take() == []  # nothing to tell the senior


def test_a_reminder_fires_offline_and_its_miss_reaches_the_family_later(
    broker: Mosquitto, engine, tmp_path: Path, said: list[str]
) -> None:
    """The broker is down all morning: the reminder is still said (and repeated), the
    device is restarted in the middle of it, and the missed dose reaches the family
    service once the network is back."""
    broker.stop()
    clock = Clock(dt.datetime(2026, 11, 23, 7, 0))
    add = ReminderAdd(reminder_id="bp", kind="medication", text="take your pills", at="08:00",
                      medication="blood pressure pills")  # fmt: skip
    with Device(device_config(broker, tmp_path), clock=clock) as dev:
        dev.announcer.handle(create(add, H, D))  # stored before the network went
        assistant = assistant_for(dev, engine, tmp_path, said, clock)
        clock.now = dt.datetime(2026, 11, 23, 8, 0)
        assert assistant.speak_pending() is True
        dev.close(drain_s=0.1)  # restarted while the reminder waits for an answer

    with Device(device_config(broker, tmp_path), clock=clock) as dev:
        assistant = assistant_for(dev, engine, tmp_path, said, clock)
        assert assistant.speak_pending() is False  # not said twice after the restart
        for _ in range(3):
            clock.now += dt.timedelta(minutes=10)
            assistant.speak_pending()
        assert said[-1].startswith("I have let your family know")
        assert dev.link is not None
        queued = len(dev.link.outbox)
        assert queued >= 2  # the missed event and the alert (and the command's answer)
        dev.close(drain_s=0.1)

    broker.start()
    with Backend(broker, household=H) as backend, Device(device_config(broker, tmp_path)):
        assert backend.wait_until(lambda: backend.ids("alert.missed_medication"), timeout=15)
        assert backend.wait_until(lambda: backend.ids("event.reminder.missed"), timeout=15)
        [missed] = [m.body for m in backend.handled if m.type == "event.reminder.missed"]
        assert isinstance(missed, ReminderMissed) and missed.reminder_id == "bp"
        assert missed.due == utc_timestamp(dt.datetime(2026, 11, 23, 8, 0).astimezone())
        assert len(backend.ids("alert.missed_medication")) == 1


@pytest.mark.parametrize(
    "fields",
    [{"days": []}, {"date": "2020-01-01"}],
)
def test_a_reminder_command_that_cannot_be_kept_is_refused_not_crashed(
    tmp_path: Path, fields: dict
) -> None:
    """Found by fuzzing: a schedule the protocol lets through but no clock can keep."""
    from protocol.schema import from_dict

    config = Config()
    config.paths.state_dir = str(tmp_path)
    answers: list[tuple[bool, str | None]] = []
    with Device(config, link=False) as dev:
        dev.announcer.on_done = lambda _m, ok, why: answers.append((ok, why))
        body = {"reminder_id": "r1", "kind": "other", "text": "walk", "at": "08:00", **fields}
        add = from_dict(ReminderAdd, body)  # the schema lets both through
        dev.announcer.handle(create(add, H, D))
        assert answers and answers[0][0] is False and answers[0][1]
        assert dev.reminders.get("r1") is None


def test_an_offline_device_keeps_no_unanswered_alerts_file(tmp_path: Path) -> None:
    """Unanswered alerts are kept to be sent again over the link; without one there is
    nothing to resend, so no file is made (and an alert is still raised)."""
    config = Config()
    config.paths.state_dir = str(tmp_path)
    with Device(config, link=False) as dev:
        assert dev.alerts is None
        dev.emergencies.raised(None)  # the SOS key with no link: the light, no store
    assert not (tmp_path / ALERTS_FILE).exists() and not (tmp_path / UNCONFIRMED_FILE).exists()


def test_a_command_whose_confirmation_cannot_be_stored_is_carried_out_once(
    broker: Mosquitto, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The command is done (a sentence said, a call dialled) before its confirmation is
    stored; a failing outbox must not make the link hand the command over again."""
    with Backend(broker, household=H) as backend, Device(device_config(broker, tmp_path)) as dev:
        assert dev.link is not None and dev.link.wait_connected(10)
        real_publish = dev.link.publish

        def publish_no_confirmation(body):
            if isinstance(body, CommandDone):
                raise sqlite3.OperationalError("database or disk is full")
            return real_publish(body)

        monkeypatch.setattr(dev.link, "publish", publish_no_confirmation)
        backend.send(create(Say(text="Your pills are in the kitchen"), H, D))
        assert dev.announcer.wait(10)
        assert dev.announcer.take() == ["Your pills are in the kitchen"]
        time.sleep(3.0)  # the link's first retry of a failed message comes after 2 s
        assert dev.announcer.take() == []  # not said (or dialled) again


class BrokenVibration:
    """A phone whose vibration motor and screen fail (neither can exist here)."""

    def vibrate(self, pattern_ms) -> None:
        raise OSError("no such device")

    def notify(self, text: str) -> None:
        raise OSError("no such device")


def test_a_failing_vibration_neither_stops_the_alert_nor_what_is_said(
    broker: Mosquitto, engine, tmp_path: Path, said: list[str], caplog: pytest.LogCaptureFixture
) -> None:
    with Backend(broker, household=H) as backend, Device(device_config(broker, tmp_path)) as dev:
        assert dev.link is not None and dev.link.wait_connected(10)
        dev.emergencies.notifier = BrokenVibration()
        turn = assistant_for(dev, engine, tmp_path, said).respond("call an ambulance")
        assert turn.reply in replies.EMERGENCY_SENT.values()
        assert backend.wait_until(lambda: backend.ids("alert.emergency"), timeout=15)
        assert "the alert light or vibration failed" in caplog.text

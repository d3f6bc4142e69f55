"""doctor-connect end to end: the real `doctor-connect serve` process, a real Mosquitto, a
device stand-in (a paho client publishing what the device would) and simulated doctors'
apps (real MQTT clients). Everything the issue asks to see, but the speech."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from protocol import (
    AppointmentRequest,
    ConsultationCancel,
    ConsultationRequest,
    ConsultationText,
    DoctorStatus,
    Message,
    Reason,
    create,
    encode,
    topics,
)
from tests.backend import Backend
from tests.broker import Mosquitto
from tests.device_process import _wait
from tests.doctor_connect_process import PRACTICE, DoctorClient, DoctorConnectProcess

pytestmark = pytest.mark.e2e

H, D = "household-7", "living-room"
GP = "general_practice"


class Device(Backend):
    """What the senior's device sends and hears about consultations."""

    def __init__(self, broker: Mosquitto, device: str = D) -> None:
        super().__init__(
            broker,
            household=H,
            kinds=("consultation_update", "refused", "conversation"),
            client_id=f"device-{device}",
        )
        self.device = device

    def ask(self, **fields) -> Message:
        fields.setdefault("mode", "video")
        message = create(ConsultationRequest(**fields), H, self.device)
        self.send(message)
        return message

    def updates(self, request_id: str, kind: str | None = None) -> list:
        return [
            m.body
            for m in self.handled
            if getattr(m.body, "request_id", None) == request_id
            and (kind is None or m.type == kind)
        ]

    def expect(self, request_id: str, kind: str, count: int = 1, timeout: float = 10) -> list:
        """Wait for `count` messages of `kind` about a request; all of them."""
        assert self.wait_until(lambda: len(self.updates(request_id, kind)) >= count, timeout), (
            f"no {kind} for {request_id}: {[m.type for m in self.handled]}"
        )
        return self.updates(request_id, kind)

    def refusals(self) -> list:
        return [m.body for m in self.handled if m.type == "service.refused"]


@pytest.fixture
def start(tmp_path: Path, broker: Mosquitto):
    """start(doctors=[(id, department)], **timings) -> a running doctor-connect."""
    running: list[DoctorConnectProcess] = []

    def starter(doctors=(), **timings) -> DoctorConnectProcess:
        backend = DoctorConnectProcess.setup(tmp_path / "dc", broker, list(doctors), **timings)
        running.append(backend)
        return backend

    yield starter
    for backend in running:
        backend.stop()


@pytest.fixture
def device(broker: Mosquitto):
    with Device(broker) as client:
        yield client


@contextlib.contextmanager
def doctor(broker: Mosquitto, doctor_id: str, state: str = "available") -> Iterator[DoctorClient]:
    """A doctor's app, connected, that has said its state."""
    with DoctorClient(broker, doctor_id) as client:
        client.set_status(state)
        yield client


def test_a_video_request_ends_with_a_doctor_and_a_room_on_both_sides(
    start, broker: Mosquitto, device: Device
) -> None:
    start([("weber", GP)])
    with doctor(broker, "weber") as weber:
        asked = device.ask(mode="video", reason="I feel dizzy")
        (assigned,) = device.expect(asked.id, "consultation.assigned")
        (session,) = device.expect(asked.id, "consultation.session")
        assert assigned.doctor == "Dr. Weber" and assigned.estimated_start_s == 60
        assert session.mode == "video" and session.room_id
        assert session.join_url.startswith(f"https://video.test/room/{session.room_id}?")
        assert weber.wait_until(lambda: weber.sessions())
        (handed,) = weber.sessions()
        assert (handed.request_id, handed.household, handed.device) == (asked.id, H, D)
        assert handed.room_id == session.room_id and "role=doctor" in handed.join_url
        assert handed.reason == "I feel dizzy" and handed.starts_at == session.starts_at
        weber.accept(asked.id)
        weber.end(asked.id)
        (ended,) = device.expect(asked.id, "consultation.ended")
        assert ended.by == "doctor"


def test_phone_gets_a_callback_and_text_a_conversation_topic(
    start, broker: Mosquitto, device: Device
) -> None:
    backend = start([("weber", GP), ("lang", GP)])
    backend.add_doctor("lang", GP, phone="+49 30 555 0101")
    with doctor(broker, "weber") as weber, doctor(broker, "lang") as lang:
        phone = device.ask(mode="phone", callback_number="+49 30 1234567")
        (session,) = device.expect(phone.id, "consultation.session")
        doctors = {weber.doctor: weber, lang.doctor: lang}
        assert session.doctor in ("Dr. Weber", "Dr. Lang")
        who = doctors[session.doctor.removeprefix("Dr. ").lower()]
        assert who.wait_until(lambda: who.sessions())
        assert who.sessions()[0].callback_number == "+49 30 1234567"
        assert session.phone_number in ("+49 30 555 0101", "+10000000000")

        text = device.ask(mode="text")
        (session,) = device.expect(text.id, "consultation.session")
        assert session.conversation_topic == topics.conversation(H, D)
        other = lang if who is weber else weber
        assert other.wait_until(lambda: other.sessions())
        handed = other.sessions()[0]
        assert handed.conversation_topic == topics.doctor_topic(
            PRACTICE, other.doctor, "doctor_text"
        )
        # the doctor writes on its own topic; doctor-connect passes the line to the device
        line = create(ConsultationText(text.id, "doctor", "How can I help?"), PRACTICE,
                      other.doctor, on="doctor_text")  # fmt: skip
        other.send_raw(handed.conversation_topic, encode(line))
        assert device.wait_until(lambda: lines(device.handled, "doctor") == ["How can I help?"])
        # the senior answers on the device's topic; only the doctor holding it reads it
        answer = create(ConsultationText(text.id, "senior", "My knee hurts."), H, D)
        device.send(answer)
        assert other.wait_until(lambda: lines(other.handled) == ["My knee hurts."])
        # the other doctor may not write into it, and reads nothing of it
        intruder = create(ConsultationText(text.id, "doctor", "Hello?"), PRACTICE,
                          who.doctor, on="doctor_text")  # fmt: skip
        who.send(intruder)
        assert who.wait_until(lambda: refused(who.handled, intruder.id) == "not_yours")
        assert lines(who.handled) == []
        assert lines(device.handled, "doctor") == ["How can I help?"]


def lines(handled: list[Message], sender: str | None = None) -> list[str]:
    """The texts of the consultation lines heard (by `sender` only, when given: the device
    hears its own lines back on its topic)."""
    return [
        m.body.text
        for m in handled
        if m.type == "consultation.text" and sender in (None, m.body.sender)
    ]


def refused(handled: list[Message], message_id: str) -> str | None:
    reasons = [
        m.body.reason
        for m in handled
        if m.type == "service.refused" and m.body.refused_id == message_id
    ]
    return reasons[0] if reasons else None


def test_busy_doctors_give_queue_positions_that_are_told_again_when_they_change(
    start, broker: Mosquitto, device: Device
) -> None:
    start([("weber", GP)])
    with doctor(broker, "weber") as weber:
        first = device.ask()
        device.expect(first.id, "consultation.assigned")
        second, third = device.ask(), device.ask()
        (queued,) = device.expect(third.id, "consultation.queued")
        assert queued.position == 2 and queued.estimated_wait_s == 600
        assert device.expect(second.id, "consultation.queued")[0].position == 1
        weber.end(first.id)
        device.expect(second.id, "consultation.assigned")
        (moved,) = device.expect(third.id, "consultation.position")
        assert moved.position == 1 and moved.estimated_wait_s == 300


def test_urgent_requests_go_first(start, broker: Mosquitto, device: Device) -> None:
    start([("weber", GP)])
    with doctor(broker, "weber") as weber:
        busy = device.ask()
        device.expect(busy.id, "consultation.assigned")
        routine = device.ask(urgency="routine")
        device.expect(routine.id, "consultation.queued")
        urgent = device.ask(urgency="urgent", reason="chest pain")
        assert device.expect(urgent.id, "consultation.queued")[0].position == 1
        assert device.expect(routine.id, "consultation.position")[0].position == 2
        weber.end(busy.id)
        device.expect(urgent.id, "consultation.assigned")
        assert device.updates(routine.id, "consultation.assigned") == []


def test_a_doctor_going_offline_moves_the_request_to_another(
    start, broker: Mosquitto, device: Device
) -> None:
    start([("weber", GP), ("lang", GP)])
    with doctor(broker, "weber") as weber, doctor(broker, "lang", "busy") as lang:
        asked = device.ask()
        assert device.expect(asked.id, "consultation.assigned")[0].doctor == "Dr. Weber"
        weber.set_status("offline")
        (queued,) = device.expect(asked.id, "consultation.queued")
        assert queued.position == 1
        lang.set_status("available")
        assigned = device.expect(asked.id, "consultation.assigned", count=2)
        assert assigned[-1].doctor == "Dr. Lang"
        assert lang.wait_until(lambda: lang.sessions())
        assert lang.sessions()[0].request_id == asked.id
        # Dr. Weber's app is told the consultation is no longer theirs
        assert weber.wait_until(
            lambda: (
                [m.body.request_id for m in weber.handled if m.type.endswith("cancelled")]
                == [asked.id]
            )
        )


def test_an_app_that_dies_is_offline_by_its_last_will(
    start, broker: Mosquitto, device: Device
) -> None:
    backend = start([("weber", GP)])
    weber = DoctorClient(broker, "weber").start()
    weber.set_status("available")
    asked = device.ask()
    device.expect(asked.id, "consultation.assigned")
    weber._client._sock.close()  # the network goes: no DISCONNECT, the broker sends the will
    assert device.expect(asked.id, "consultation.queued", timeout=20)[0].position == 1
    assert json.loads(backend.cli("doctor", "list", "--json").stdout)[0]["state"] == "offline"
    weber._client.loop_stop()


def test_a_cancelled_request_frees_the_doctor(start, broker: Mosquitto, device: Device) -> None:
    start([("weber", GP)])
    with doctor(broker, "weber") as weber:
        first, second = device.ask(), device.ask()
        device.expect(first.id, "consultation.assigned")
        device.expect(second.id, "consultation.queued")
        device.send(create(ConsultationCancel(first.id), H, D))
        assert device.expect(first.id, "consultation.cancelled")[0].by == "senior"
        device.expect(second.id, "consultation.assigned")
        assert weber.wait_until(
            lambda: (
                [m.type for m in weber.handled]
                == ["doctor.session", "doctor.session.cancelled", "doctor.session"]
            )
        )


def test_a_specialist_request_falls_back_to_a_gp_when_the_specialist_is_not_there_in_time(
    start, broker: Mosquitto, device: Device
) -> None:
    start([("weber", GP), ("herz", "cardiology")], specialist_promise_s=4, consult_s=2)
    with doctor(broker, "weber") as weber, doctor(broker, "herz", "busy"):
        # no dermatologist on the roster at all: a GP at once
        skin = device.ask(department="dermatology")
        assert device.expect(skin.id, "consultation.assigned")[0].doctor == "Dr. Weber"
        weber.end(skin.id)
        device.expect(skin.id, "consultation.ended")
        # the cardiologist is busy but expected within the promise: the request waits...
        heart = device.ask(department="cardiology")
        (queued,) = device.expect(heart.id, "consultation.queued")
        assert queued.position == 1 and queued.estimated_wait_s == 2
        # ...and nobody took it when the promise ran out: the GP does
        (assigned,) = device.expect(heart.id, "consultation.assigned", timeout=15)
        assert assigned.doctor == "Dr. Weber"
        assert weber.wait_until(lambda: len(weber.sessions()) == 2)
        assert [s.department for s in weber.sessions()] == [GP, GP]


def test_symptoms_are_triaged_to_the_department(start, broker: Mosquitto, device: Device) -> None:
    start([("weber", GP), ("haut", "dermatology")])
    with doctor(broker, "weber"), doctor(broker, "haut") as haut:
        asked = device.ask(symptoms=["an itchy rash on my arm"])
        assert device.expect(asked.id, "consultation.assigned")[0].doctor == "Dr. Haut"
        assert haut.wait_until(lambda: haut.sessions())
        assert haut.sessions()[0].department == "dermatology"


def test_a_restart_loses_no_request_and_no_session(
    start, broker: Mosquitto, device: Device
) -> None:
    backend = start([("weber", GP)])
    with doctor(broker, "weber") as weber:
        first, second = device.ask(), device.ask()
        device.expect(second.id, "consultation.queued")
        backend.kill()
        third = device.ask()  # sent while the backend is down: the broker keeps it
        backend.start()
        status = backend.status()
        assert status["open_sessions"] == 1
        device.expect(third.id, "consultation.queued")
        assert backend.status()["waiting"] == 2
        weber.end(first.id)  # the session from before the crash
        device.expect(first.id, "consultation.ended")
        device.expect(second.id, "consultation.assigned")
        assert weber.wait_until(lambda: len(weber.sessions()) == 2)
        assert [s.request_id for s in weber.sessions()] == [first.id, second.id]


def test_bad_input_is_refused_with_a_reason(start, broker: Mosquitto, device: Device) -> None:
    backend = start([("weber", GP)])
    with doctor(broker, "weber") as weber:
        unknown = device.ask(department="astrology")
        topic = topics.consultation(H, D)
        device.send_raw(topic, b'{"v": 1, "type": "consultation.request", "id": ')
        good = create(ConsultationRequest(mode="video"), H, D)
        foreign = dict(good.to_dict(), household="household-8")  # another household's
        device.send_raw(topic, json.dumps(foreign).encode())
        stranger = create(ConsultationCancel(good.id), H, D)  # a request it never made
        device.send(stranger)
        weber.end(unknown.id)  # a session the doctor never had
        assert device.wait_until(lambda: len(device.refusals()) == 4)
        reasons = {r.reason: r for r in device.refusals()}
        assert set(reasons) == {
            "unknown_department",
            Reason.NOT_JSON,
            Reason.WRONG_HOUSEHOLD,
            "unknown_request",
        }
        assert reasons["unknown_department"].refused_id == unknown.id
        assert reasons[Reason.WRONG_HOUSEHOLD].refused_id == good.id
        assert weber.wait_until(lambda: any(m.type == "service.refused" for m in weber.handled))
        # counted (in the store, for the status command) and logged, nothing else changed
        assert _wait(lambda: sum(backend.status()["refused"].values()) == 5, timeout=10)
        assert backend.status()["requests"] == {}
        assert "unknown_department" in backend.log() and "astrology" not in backend.log()


def test_a_doctor_added_to_the_roster_is_heard_when_the_app_sends_again(
    start, broker: Mosquitto, device: Device
) -> None:
    """`unknown_doctor` is not final: the roster may change. The same status message sent
    again after the admin added the doctor is taken, and the doctor gets consultations."""
    backend = start()
    with DoctorClient(broker, "neu") as neu:
        status = create(DoctorStatus("available"), PRACTICE, "neu")
        neu.send(status)
        assert neu.wait_until(lambda: any(m.type == "service.refused" for m in neu.handled))
        (refused,) = [m.body for m in neu.handled if m.type == "service.refused"]
        assert (refused.reason, refused.refused_id) == ("unknown_doctor", status.id)
        backend.add_doctor("neu", GP)
        asked = device.ask()
        # The app says its state again, the same message. The running engine reads the
        # roster on its next tick: a resend before that is refused again, one after taken.
        for _ in range(20):
            neu.send(status)
            if device.wait_until(lambda: device.updates(asked.id, "consultation.assigned"), 0.5):
                break
        assert len(device.expect(asked.id, "consultation.assigned")) == 1
        assert neu.wait_until(lambda: [s.request_id for s in neu.sessions()] == [asked.id])
    answers = [m.body for m in neu.handled if m.type == "service.refused"]
    assert {(a.reason, a.refused_id) for a in answers} == {("unknown_doctor", status.id)}
    assert _wait(lambda: set(backend.status()["refused"]) == {"unknown_doctor"}, timeout=10)


def test_appointments_are_confirmed_with_a_reminder_before(
    start, broker: Mosquitto, device: Device
) -> None:
    start([("herz", "cardiology")], reminder_before_s=3 * 24 * 3600)
    day = (dt.datetime.now(dt.UTC) + dt.timedelta(days=1)).date().isoformat()
    asked = create(AppointmentRequest("cardiology", day, "10:30"), H, D)
    device.send(asked)
    (confirmed,) = device.expect(asked.id, "appointment.confirmed")
    assert confirmed.doctor == "Dr. Herz" and confirmed.starts_at == f"{day}T10:30:00.000Z"
    assert device.wait_until(lambda: device.ids("appointment.reminder"))
    (reminder,) = [m.body for m in device.handled if m.type == "appointment.reminder"]
    assert reminder.appointment_id == confirmed.appointment_id
    assert reminder.minutes_before > 0

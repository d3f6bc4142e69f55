"""The real parties through the project's secured broker (TLS, accounts, ACL), each with
the credentials `care-broker` made for it: the device's link (its config is the
credentials file), family-notify and doctor-connect. An emergency with a location reaches a
member's app, the member's answer comes back to the device, a consultation request is
answered: the ACL gives each party what it needs.

Meanwhile every log record at INFO and above is captured: none may carry a name, a health
reading, a message's words, a location or a phone number.
"""

from __future__ import annotations

import logging
import queue
import time
from pathlib import Path

import pytest

from assistant.config import load_config as load_device_config
from assistant.link import Link
from protocol import (
    AlertAck,
    ConsultationRequest,
    EmergencyAlert,
    FamilyMessage,
    HealthReading,
    Location,
    MemberAck,
    Message,
    create,
    decode,
    encode,
    topics,
)
from protocol.schema import utc_timestamp
from services.doctor_connect.config import load_config as load_doctor_config
from services.doctor_connect.service import DoctorConnect
from services.family import households
from services.family.config import load_config as load_family_config
from services.family.households import Household, Member
from services.family.service import FamilyService
from services.family.store import Store
from tests.secure_broker import Probe, secure_broker

pytestmark = pytest.mark.e2e

H, D, M = "whitfield", "kitchen-speaker", "daughter-1"
PRACTICE = "riverside"
# Personal values that must never reach a log at INFO
SENIOR = "Margaret Whitfield"
MEMBER_NAME = "Annabel Quigley"
PHONE = "+4915100001234"
SAID = "I slipped by the bathtub and my hip hurts"
MESSAGE = "Please bring the blue cardigan on Sunday"
LAT, LON = 52.520008, 13.404954
SECRETS = [SENIOR, "Margaret", MEMBER_NAME, "Annabel", "Quigley", PHONE, "15100001234", SAID,
           "bathtub", MESSAGE, "cardigan", "130/85", "130 over 85", "130.0", "85.0",
           str(LAT), str(LON), "52.52", "13.40"]  # fmt: skip


def _service_config(path: Path, credentials: Path, extra: str) -> Path:
    path.write_text(credentials.read_text().replace("[mqtt]", "[mqtt]\nkeepalive_s = 5", 1) + extra)
    return path


def test_the_parties_work_through_the_secured_broker_and_log_nothing_personal(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    broker_dir, broker = secure_broker(tmp_path, practice=PRACTICE)
    try:
        _run(tmp_path, broker_dir, broker)
    finally:
        broker.stop()
    logged = "\n".join(r.getMessage() for r in caplog.records if r.levelno >= logging.INFO)
    assert logged, "nothing was logged: the flow did not run"
    leaks = [value for value in SECRETS if value in logged]
    assert leaks == [], f"personal data in INFO logs: {leaks}"


def _run(tmp_path: Path, broker_dir, broker) -> None:
    device_creds, member_creds = broker_dir.add_household(H, [D], [M])
    family_creds = broker_dir.credentials_path(broker_dir.accounts()["service/family-notify"])
    doctor_creds = broker_dir.credentials_path(broker_dir.accounts()["service/doctor-connect"])

    family_config = load_family_config(
        _service_config(
            tmp_path / "family.toml",
            family_creds,
            f'\n[service]\ndatabase = "{tmp_path / "family.sqlite3"}"\ntick_s = 0.1\n'
            f'[channels]\nsms = "file:{tmp_path / "sms.jsonl"}"\n[digest]\nat = ""\n',
        )
    )
    store = Store(family_config.database())
    member = Member(M, MEMBER_NAME, "family", "daughter", (f"sms:{PHONE}",))
    households.add(store, Household(H, SENIOR, (D,), "Europe/Berlin", None, (member,)))
    store.close()
    doctor_config = load_doctor_config(
        _service_config(
            tmp_path / "doctor.toml",
            doctor_creds,
            f'\n[service]\npractice = "{PRACTICE}"\ndatabase = "{tmp_path / "doctor.sqlite3"}"\n',
        )
    )
    # the device's config is the credentials file care-broker wrote for it
    device_config = load_device_config(device_creds.path)
    assert device_config.mqtt.username == device_creds.account.username
    incoming: queue.Queue[Message] = queue.Queue()
    link = Link(
        device_config.mqtt,
        household=device_config.device.household,
        device=device_config.device.device_id,
        state_dir=tmp_path / "device-state",
        on_message=incoming.put,
    )
    family = FamilyService(family_config)
    doctors = DoctorConnect(doctor_config)
    app = Probe(broker, member_creds.account.username, broker_dir)
    try:
        family.start(timeout=30)  # TimeoutError if a subscription were refused
        doctors.start(timeout=30)
        assert doctors.mqtt.wait_ready(30)
        assert app.connect() == "Success"
        assert app.subscribe(topics.inbox(H, M)) == "Granted QoS 1"
        link.start()
        assert link.wait_connected(30)

        alert = link.publish(
            EmergencyAlert(trigger="voice", said=SAID, location=Location(LAT, LON), kind="fall")
        )
        link.publish(HealthReading("blood_pressure", 130, utc_timestamp(), diastolic=85))
        link.publish(FamilyMessage(to="all", text=MESSAGE))
        request = link.publish(ConsultationRequest(mode="video", reason=SAID))

        inbox = app.wait_for(topics.inbox(H, M), timeout=30)
        assert inbox, "the member's app got no alert"
        notice = decode(inbox[0], H, expected_device=M, topic=topics.inbox(H, M))
        assert notice.body.alert_id == alert.id
        # personal values do go through the system (the app is told who and what) ...
        assert "Margaret" in notice.body.text and "bathtub" in notice.body.text
        ack = create(MemberAck(alert_id=alert.id, action="calling"), H, M)
        assert app.publish(ack.topic, encode(ack)) in ("Success", "No matching subscribers")

        got: dict[str, Message] = {}
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not (
            "alert.ack" in got and any(t.startswith("consultation.") for t in got)
        ):
            try:
                message = incoming.get(timeout=0.5)
            except queue.Empty:
                continue
            got[message.type] = message
        answered = got.get("alert.ack")
        assert answered is not None and isinstance(answered.body, AlertAck)
        assert answered.body.by == "your daughter"
        answers = [m for t, m in got.items() if t.startswith("consultation.")]
        assert answers, f"no answer to the consultation request: {sorted(got)}"
        assert all(m.body.request_id == request.id for m in answers)
        assert link.wait_drained(30)
        assert family.mqtt.rejections.total == 0, family.mqtt.rejections.counts()
        assert link.rejections.total == 0, link.rejections.counts()
    finally:
        app.close()
        link.close()
        doctors.stop()
        family.stop()

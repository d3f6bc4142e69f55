"""The family service's escalation scheduler on its own (no broker): one alert that cannot
take its step does not hold up any other household's, and the config keeps the ladder within
what the protocol can carry."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import logging
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from protocol import (
    EmergencyAlert,
    MemberAck,
    MemberAlert,
    MissedMedicationAlert,
    ReminderTaken,
    create,
)
from protocol.schema import utc_timestamp
from services.family import alerts, households
from services.family.alerts import Alerts
from services.family.channels import FileGateway, WithDeadline, gateways, read_gateway_file
from services.family.config import (
    ConfigError,
    EscalationSection,
    FamilyConfig,
    config_from_dict,
)
from services.family.households import Household, Member
from services.family.outbox import Outbox
from services.family.store import Store

ROOT = Path(__file__).resolve().parents[1]  # the checkout, for a child process's imports


def household(household_id: str) -> Household:
    return Household(
        id=household_id,
        senior="Mum",
        devices=("speaker",),
        timezone="Europe/Berlin",
        emergency_number="+49112",
        members=(
            Member("mum", "Mum", role="senior"),
            Member("anna", "Anna", relation="daughter", contacts=("sms:+4915100001",)),
        ),
    )


@pytest.fixture
def service(tmp_path: Path) -> Alerts:
    store = Store(tmp_path / "family.sqlite3")
    for household_id in ("h1", "h2"):
        households.add(store, household(household_id))
    # nothing is sent here: the channels only need to exist for the ladder to use them
    outbox = Outbox(store, {"mqtt": None, "sms": None, "phone": None}, "w1")  # type: ignore[dict-item]
    config = FamilyConfig(escalation=EscalationSection(step_s=60.0, max_repeats=100))
    return Alerts(store, outbox, config, "w1")


def raise_emergency(service: Alerts, household_id: str) -> str:
    message = create(EmergencyAlert(trigger="sos_button"), household_id, "speaker")
    service.receive(message, households.require(service.store.db, household_id))
    return message.id


def row(service: Alerts, alert_id: str) -> dict:
    described = alerts.describe(service.store.db, alert_id)
    assert described is not None
    return described


def test_one_alert_that_cannot_step_does_not_stop_the_others(service, caplog) -> None:
    broken = raise_emergency(service, "h1")
    fine = raise_emergency(service, "h2")
    with service.store.write() as db:  # h1's ladder is past what a member.alert can say
        db.execute(
            "UPDATE alerts SET step = ?, state = 'escalated', next_step_at = 1 WHERE id = ?",
            (MemberAlert.__dataclass_fields__["step"].metadata["high"], broken),
        )
        db.execute(  # and called the emergency number on its way
            "INSERT INTO outbox (id, household, alert_id, channel, address, payload, purpose,"
            " step, not_before, state, created) VALUES ('call', 'h1', ?, 'phone', '+49112',"
            " x'', 'escalation', 2, 0, 'sent', 0)",
            (broken,),
        )
        db.execute("UPDATE alerts SET next_step_at = 2 WHERE id = ?", (fine,))
    now = time.time()
    with caplog.at_level(logging.ERROR, logger="services.family"):
        ids = service.escalate_due(now)
    assert ids  # h2's step went out
    assert row(service, fine)["state"] == "escalated" and row(service, fine)["step"] == 1
    described = row(service, broken)
    events = [e["event"] for e in described["trail"]]
    assert events[-2:] == ["step_failed", "stopped"]  # nothing sent: not "escalated"
    assert "step 101" in described["trail"][-2]["detail"]
    assert described["state"] == "escalated" and described["next_step_at"] is None
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert errors and broken in errors[0].getMessage()
    # the failed step is not tried again on every tick
    caplog.clear()
    with caplog.at_level(logging.ERROR, logger="services.family"):
        service.escalate_due(now)
    assert not caplog.records


def test_the_ladder_stops_at_the_protocols_last_step(service) -> None:
    alert_id = raise_emergency(service, "h1")
    with service.store.write() as db:
        db.execute(
            "UPDATE alerts SET step = 99, state = 'escalated', next_step_at = 1 WHERE id = ?",
            (alert_id,),
        )
    assert service.escalate_due(time.time())
    described = row(service, alert_id)
    assert described["step"] == 100 and described["next_step_at"] is None
    assert described["trail"][-1]["event"] == "stopped"


def test_max_repeats_beyond_what_the_protocol_carries_is_a_config_error() -> None:
    assert config_from_dict({"escalation": {"max_repeats": 100}}).escalation.max_repeats == 100
    with pytest.raises(ConfigError, match=r"escalation.max_repeats must be at most 100"):
        config_from_dict({"escalation": {"max_repeats": 101}})
    with pytest.raises(ConfigError, match="must not be negative"):
        config_from_dict({"escalation": {"max_repeats": -1}})


def test_a_failed_step_is_skipped_and_the_ladder_goes_on(service, monkeypatch) -> None:
    alert_id = raise_emergency(service, "h1")
    real_step = Alerts._step

    def failing_first(self, row, household, step, now, called):
        if step == 1:
            raise RuntimeError("a gateway's wording broke")
        return real_step(self, row, household, step, now, called)

    monkeypatch.setattr(Alerts, "_step", failing_first)
    now = time.time() + 61
    assert service.escalate_due(now) == []
    described = row(service, alert_id)
    assert described["step"] == 1 and described["next_step_at"] == pytest.approx(now + 60)
    assert described["trail"][-1]["event"] == "step_failed"
    assert service.escalate_due(now + 61)  # step 2: the emergency number
    described = row(service, alert_id)
    assert described["step"] == 2 and described["trail"][-1]["detail"] == "step 2: emergency"


def number_called(service: Alerts, alert_id: str) -> int:
    """How often the ladder has called the household's emergency number."""
    return service.store.db.execute(
        "SELECT COUNT(*) FROM outbox WHERE alert_id = ? AND address = '+49112'", (alert_id,)
    ).fetchone()[0]


@pytest.mark.parametrize(
    ("contacts", "removed_after"),
    [((), 1), (("sms:+4915100002",), 2)],
    ids=["the only member", "the member with the most contacts"],
)
def test_the_emergency_number_is_called_when_the_ladder_shrinks_midway(
    service, contacts, removed_after
) -> None:
    """Anna (an SMS and a phone number) is removed while Mum's emergency climbs its
    ladder: the call to the emergency number, due at the step after the members' last
    contact, was never made (the step it was due at had passed) and, with nobody left,
    the ladder stopped silently. It is called once, at the next step."""
    anna = Member("anna", "Anna", relation="daughter",
                  contacts=("sms:+4915100001", "phone:+4915100001"))  # fmt: skip
    members = [Member("mum", "Mum", role="senior"), anna]
    if contacts:
        members.append(Member("ben", "Ben", relation="son", contacts=contacts))
    households.add(service.store, Household(id="h3", senior="Mum", devices=("speaker",),
                                            timezone="Europe/Berlin", emergency_number="+49112",
                                            members=tuple(members)))  # fmt: skip
    alert_id = raise_emergency(service, "h3")
    now = time.time()
    for step in range(1, 8):
        now += 400
        service.escalate_due(now)
        if step == removed_after:
            households.remove_member(service.store, "h3", "anna")
    assert number_called(service, alert_id) == 1, row(service, alert_id)["trail"]


def test_the_emergency_number_is_called_once_on_the_full_ladder(service) -> None:
    alert_id = raise_emergency(service, "h1")
    now = time.time()
    for _ in range(6):
        now += 400
        service.escalate_due(now)
    assert number_called(service, alert_id) == 1
    assert "step 2: emergency" in [e["detail"] for e in row(service, alert_id)["trail"]]


def test_a_member_removed_is_not_sent_what_waited_and_the_others_are_told(service) -> None:
    """A missed dose goes to the caregiver first (Carl), after a grace period; Carl is
    removed from the household during it. His notice used to go out all the same (to
    someone no longer of the family) and count as delivered, and Anna never heard. Now his
    is cancelled, and Anna's first notice waits out the same grace period."""
    carl = Member("carl", "Carl", role="caregiver")
    anna = Member("anna", "Anna", relation="daughter")
    households.add(service.store, Household(id="h4", senior="Mum", devices=("speaker",),
                                            timezone="UTC", members=(carl, anna)))  # fmt: skip
    due = utc_timestamp(dt.datetime.now(dt.UTC))
    message = create(MissedMedicationAlert(reminder_id="aspirin", medication="Aspirin", due=due),
                     "h4", "speaker")  # fmt: skip
    service.receive(message, households.require(service.store.db, "h4"))
    received = row(service, message.id)["received"]

    def notices() -> dict[str, tuple[str, float]]:
        rows = service.store.db.execute(
            "SELECT member, state, not_before FROM outbox WHERE alert_id = ? AND purpose = 'alert'",
            (message.id,),
        ).fetchall()
        return {member: (state, not_before) for member, state, not_before in rows}

    assert notices() == {"carl": ("pending", received + service.config.medication.grace_s)}
    service.remove_member("h4", "carl", now=received + 600)
    assert notices() == {
        "carl": ("cancelled", received + service.config.medication.grace_s),
        "anna": ("pending", received + service.config.medication.grace_s),
    }
    assert "carl" not in [m.id for m in households.require(service.store.db, "h4").members]


def test_a_dose_reported_taken_before_its_missed_alert_arrives_is_not_told_as_missed(
    tmp_path: Path,
) -> None:
    """After an outage the device sends the missed-dose alert and then "taken"; two workers
    of the shared subscription handle them, and the one with "taken" commits first (or the
    alert is replayed from the dead letters later). The alert used to open all the same,
    and the caregiver was told the dose was missed."""
    from services.family.service import FamilyService

    raw = {"service": {"database": str(tmp_path / "f.sqlite3")}, "medication": {"grace_s": 0}}
    family = FamilyService(config_from_dict(raw))
    try:
        members = (Member("mum", "Mum", role="senior"), Member("carl", "Carl", role="caregiver"))
        households.add(family.store, Household(id="h1", senior="Mum", devices=("speaker",),
                                               timezone="UTC", members=members))  # fmt: skip
        due = utc_timestamp(dt.datetime.now(dt.UTC) - dt.timedelta(hours=1))
        taken = ReminderTaken(reminder_id="aspirin", due=due, taken_at=utc_timestamp())
        missed = MissedMedicationAlert(reminder_id="aspirin", medication="Aspirin", due=due)
        other = MissedMedicationAlert(reminder_id="aspirin", medication="Aspirin",
                                      due=utc_timestamp(dt.datetime.now(dt.UTC)))  # fmt: skip
        family.handle(create(taken, "h1", "speaker"))
        alert, later = create(missed, "h1", "speaker"), create(other, "h1", "speaker")
        family.handle(alert)
        family.handle(later)  # another dose of it: told as before
        states = dict(family.store.db.execute("SELECT id, state FROM alerts").fetchall())
        assert (states[alert.id], states[later.id]) == ("closed", "open")
        told = family.store.db.execute(
            "SELECT DISTINCT alert_id FROM outbox WHERE purpose = 'alert'"
        ).fetchall()
        assert [alert_id for (alert_id,) in told] == [later.id]
    finally:
        family.store.close()


def test_the_device_sending_an_answered_emergency_again_is_told_the_answer_again(
    service,
) -> None:
    """Anna answered Mum's emergency and the device was sent the answer, which the broker
    then lost (the device's session expired). The device sends its alert again every few
    minutes until it hears an answer; each time, the service used to take it as a
    duplicate and say nothing, so the light stayed on and Mum never heard who answered."""
    message = create(EmergencyAlert(trigger="sos_button"), "h1", "speaker")
    household = households.require(service.store.db, "h1")
    service.receive(message, household)
    answer = create(MemberAck(alert_id=message.id, action="calling"), "h1", "anna")
    service.acknowledge(answer, household, household.member("anna"))
    acks = service.store.db.execute(
        "SELECT id FROM outbox WHERE alert_id = ? AND purpose = 'ack'", (message.id,)
    ).fetchall()
    [(ack_id,)] = acks
    with service.store.write() as db:  # sent, then lost with the broker's session
        db.execute("UPDATE outbox SET state = 'sent' WHERE id = ?", (ack_id,))
    assert service.receive(message, household) == [ack_id]
    (state,) = service.store.db.execute(
        "SELECT state FROM outbox WHERE id = ?", (ack_id,)
    ).fetchone()
    assert state == "pending"
    assert row(service, message.id)["state"] == "acknowledged"  # nothing else changes


class HangingGateway:
    """An SMS gateway whose HTTP call never answers (until released)."""

    name = "sms"

    def __init__(self) -> None:
        self.release = threading.Event()

    def send_many(self, deliveries: list) -> list:
        self.release.wait(30)
        return [None] * len(deliveries)


def test_a_hanging_gateway_does_not_hold_up_another_households_emergency(tmp_path) -> None:
    """h1's SMS gateway hangs; h2's emergency is to be phoned (a real file gateway). One
    scheduler thread takes every household's steps: before, it waited on h1's SMS for ever,
    and h2's emergency number was never called."""
    store = Store(tmp_path / "family.sqlite3")
    for household_id, contact in (("h1", "sms:+4915100001"), ("h2", "phone:+4915100002")):
        members = (Member("mum", "Mum", role="senior"), Member("kid", "Kid", contacts=(contact,)))
        households.add(store, Household(id=household_id, senior="Mum", devices=("speaker",),
                                        timezone="UTC", members=members))  # fmt: skip
    sms = HangingGateway()
    phone = gateways({"phone": f"file:{tmp_path / 'phone.jsonl'}"}, deadline_s=0.5)["phone"]
    channels = {"mqtt": FileGateway("mqtt", tmp_path / "app.jsonl"),
                "sms": WithDeadline(sms, 0.5), "phone": phone}  # fmt: skip
    outbox = Outbox(store, channels, "w1")  # type: ignore[arg-type]
    service = Alerts(store, outbox, FamilyConfig(escalation=EscalationSection(step_s=1.0)), "w1")
    outbox.on_failed = service.failed
    try:
        for household_id in ("h1", "h2"):
            message = create(EmergencyAlert(trigger="sos_button"), household_id, "speaker")
            outbox.send(service.receive(message, households.require(store.db, household_id)))
        now = time.time()
        started = time.monotonic()
        for tick in range(1, 4):  # the scheduler's ticks, a step apart
            outbox.send(service.escalate_due(now + tick * 1.1))
        called = [line["household"] for line in read_gateway_file(tmp_path / "phone.jsonl")]
        assert "h2" in called, "h2's emergency waited behind h1's gateway"
        (h1,) = store.db.execute("SELECT id FROM alerts WHERE household = 'h1'").fetchone()
        said = [e["detail"] for e in alerts.describe(store.db, h1)["trail"]
                if e["event"] == "undelivered"]  # fmt: skip
        assert said and "did not answer" in said[0]  # in the alert's trail, not only the log
        assert time.monotonic() - started < 5  # each hanging send cost its deadline at most
    finally:
        sms.release.set()
        store.close()


def test_an_emergency_closed_by_hand_is_answered_to_the_device(service) -> None:
    """Nobody had answered Mum's emergency when the admin closed it (`alert close`, after a
    phone call): the device was never told, so it sent the alert again for ever, its light
    stayed on, and Mum never heard it was dealt with."""
    alert_id = raise_emergency(service, "h1")
    assert service.close(alert_id, "cli")
    [(body,)] = service.store.db.execute(
        "SELECT payload FROM outbox WHERE alert_id = ? AND purpose = 'ack'", (alert_id,)
    ).fetchall()
    answer = json.loads(body)
    assert answer["type"] == "alert.ack" and answer["body"]["alert_id"] == alert_id
    assert (answer["body"]["by"], answer["body"]["action"]) == ("your care service", "resolved")
    assert not service.close(alert_id, "cli")  # closed already: nothing more


def test_removing_the_member_who_answered_keeps_the_answer_for_the_device(service) -> None:
    """Anna answered Mum's emergency while the broker was out of reach, so the device's
    copy of her answer still waited; then Anna was removed. That copy was cancelled with
    her notices: the device never heard that help was coming."""
    message = create(EmergencyAlert(trigger="sos_button"), "h1", "speaker")
    household = households.require(service.store.db, "h1")
    service.receive(message, household)
    answer = create(MemberAck(alert_id=message.id, action="on_the_way"), "h1", "anna")
    service.acknowledge(answer, household, household.member("anna"))
    service.remove_member("h1", "anna")
    states = service.store.db.execute(
        "SELECT purpose, state FROM outbox WHERE alert_id = ? AND purpose = 'ack'", (message.id,)
    ).fetchall()
    assert [tuple(row) for row in states] == [("ack", "pending")]


def test_a_hung_gateway_does_not_keep_the_service_from_exiting(tmp_path) -> None:
    script = (
        "import threading\n"
        "from services.family.channels import WithDeadline\n"
        "class Hangs:\n"
        "    name = 'sms'\n"
        "    def send_many(self, deliveries):\n"
        "        threading.Event().wait()\n"
        "print(WithDeadline(Hangs(), 0.2).send_many([None]))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=30, env={**os.environ, "PYTHONPATH": str(ROOT)})  # fmt: skip
    assert done.returncode == 0 and "did not answer in 0.2 s" in done.stdout, done.stderr


def test_a_new_emergency_channel_midway_does_not_call_the_number_twice(service) -> None:
    """The admin moves the emergency number from phone to SMS (a restart with the new
    config) while an emergency climbs its ladder, after the number was called: it is not
    called again on the new channel."""
    alert_id = raise_emergency(service, "h1")
    now = time.time()
    for _ in range(2):  # Anna's SMS, then the call
        now += 400
        service.escalate_due(now)
    assert number_called(service, alert_id) == 1
    sms = dataclasses.replace(service.config.escalation, emergency_channel="sms")
    service.config = dataclasses.replace(service.config, escalation=sms)
    for _ in range(4):
        now += 400
        service.escalate_due(now)
    assert number_called(service, alert_id) == 1

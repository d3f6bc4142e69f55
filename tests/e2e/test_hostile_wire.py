"""Hostile input over the wire: a household's own device and member app, authenticated,
sending junk, floods and oversized packets through the secured broker to the real
family-notify and doctor-connect. Nothing crashes, every payload that reaches a service is
accounted for, a flooding sender is limited and the other households are still served.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings

from protocol import EmergencyAlert, Reason, create, encode, topics
from protocol.messages import MAX_PAYLOAD_BYTES
from protocol.ratelimit import SERVICE_LIMIT
from services.broker.provision import MAX_PACKET_BYTES
from services.doctor_connect.config import load_config as load_doctor_config
from services.doctor_connect.service import DoctorConnect
from services.family import households
from services.family.config import load_config as load_family_config
from services.family.households import Household, Member
from services.family.service import FamilyService
from services.family.store import Store
from tests.fuzz import TYPES, cases, hostile_payloads, mutants
from tests.secure_broker import Probe, secure_broker

pytestmark = pytest.mark.e2e

A, B = "house-a", "house-b"
DA, DB = "speaker-a", "speaker-b"
MA = "anna"
WIRE_EXAMPLES = 250  # hypothesis cases; each is sent with 3 mutants: 1,000 payloads


def wait_until(condition: Callable[[], bool], timeout: float = 60.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


@pytest.fixture(scope="module")
def system(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    directory = tmp_path_factory.mktemp("wire")
    broker_dir, broker = secure_broker(directory)
    family = doctors = None
    try:
        broker_dir.add_household(A, [DA], [MA])
        broker_dir.add_household(B, [DB], [])
        accounts = broker_dir.accounts()

        def config(service: str, extra: str) -> Path:
            path = directory / f"{service}.toml"
            creds = broker_dir.credentials_path(accounts[f"service/{service}"]).read_text()
            path.write_text(creds + extra)
            return path

        family_config = load_family_config(
            config(
                "family-notify",
                f'\n[service]\ndatabase = "{directory / "family.sqlite3"}"\n'
                f'[channels]\nsms = "file:{directory / "sms.jsonl"}"\n[digest]\nat = ""\n',
            )
        )
        store = Store(family_config.database())
        anna = Member(MA, "Anna", "family", "daughter", ("sms:+4915100001",))
        households.add(store, Household(A, "Mum", (DA,), "UTC", None, (anna,)))
        households.add(store, Household(B, "Dad", (DB,), "UTC", None, ()))
        store.close()
        family = FamilyService(family_config).start(timeout=30)
        doctors = DoctorConnect(
            load_doctor_config(
                config("doctor-connect", f'\n[service]\ndatabase = "{directory / "dc.sqlite3"}"\n')
            )
        ).start(timeout=30)
        assert doctors.mqtt.wait_ready(30)
        yield {"broker_dir": broker_dir, "broker": broker, "family": family, "doctors": doctors}
    finally:
        if doctors is not None:
            doctors.stop()
        if family is not None:
            family.stop()
        broker.stop()


def client(system: dict, username: str) -> Probe:
    return Probe(system["broker"], username, system["broker_dir"])


def test_fuzzed_payloads_from_an_authenticated_device_are_all_accounted_for(system) -> None:
    family, doctors = system["family"].mqtt, system["doctors"].mqtt
    sent = {"family": 0, "doctors": 0}
    family_before, doctors_before = family.receiver.received, doctors.receiver.received
    own = {  # the only topics the device may publish on, and who reads each
        topics.alert(A, DA): "family",
        topics.event(A, DA): "family",
        topics.consultation(A, DA): "doctors",
    }
    with client(system, f"{A}/device/{DA}") as device:

        @settings(
            max_examples=WIRE_EXAMPLES,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        @given(cases(sorted(TYPES)))
        def one(case: tuple[str, bytes, int]) -> None:
            _, payload, seed = case
            for n, each in enumerate((payload, *mutants(payload, seed, 3))):
                if len(each) > MAX_PAYLOAD_BYTES:  # the broker would cut the connection
                    continue
                topic = list(own)[(seed + n) % len(own)]
                assert device.publish(topic, each) in ("Success", "No matching subscribers")
                sent[own[topic]] += 1

        one()
        for topic in (topics.alert(A, DA), topics.consultation(A, DA)):
            for _, payload in hostile_payloads(topic):
                if len(payload) <= MAX_PAYLOAD_BYTES:
                    assert device.publish(topic, payload) == "Success"
                    sent[own[topic]] += 1
    assert wait_until(
        lambda: (
            family.receiver.received - family_before == sent["family"]
            and doctors.receiver.received - doctors_before == sent["doctors"]
        )
    ), (family.receiver.received - family_before, doctors.receiver.received - doctors_before)
    for service in (family, doctors):
        counts = service.rejections.counts()
        assert counts.get(Reason.HANDLER_ERROR, 0) == 0, counts
        assert service.dead_letters == 0
    assert sum(sent.values()) >= 1000
    # and the services still serve: another household's alert is handled
    assert_still_served(system)


def assert_still_served(system: dict) -> None:
    family = system["family"].mqtt
    handled = family.receiver.handled
    with client(system, f"{B}/device/{DB}") as other:
        alert = create(EmergencyAlert(trigger="sos_button"), B, DB)
        assert other.publish(alert.topic, encode(alert)) == "Success"
    assert wait_until(lambda: family.receiver.handled > handled)
    # Dad's household has nobody to tell: the alert is recorded, and its id is left out of
    # the duplicates so that the device's resend is told to a member added later
    assert system["family"].alerts.told_nobody(alert.id)
    assert not family.dedup.seen(alert.id)


def test_a_flooding_member_is_limited_and_another_household_is_still_served(system) -> None:
    family = system["family"].mqtt
    limited = family.rejections[Reason.RATE_LIMITED]
    received = family.receiver.received
    flood = SERVICE_LIMIT.burst + 400
    with client(system, f"{A}/member/{MA}") as member:
        for n in range(flood):
            member.client.publish(topics.member_ack(A, MA), b'{"n": %d}' % n, qos=1)
        assert wait_until(lambda: family.receiver.received - received >= flood)
    over = family.rejections[Reason.RATE_LIMITED] - limited
    # the burst and what the rate allowed while the flood lasted went through; the rest not
    assert over >= 300, family.rejections.counts()
    assert over <= flood - SERVICE_LIMIT.burst
    assert_still_served(system)


def test_a_packet_over_the_brokers_limit_cuts_off_its_sender_only(system) -> None:
    with client(system, f"{A}/device/{DA}") as device:
        answer = device.publish(topics.alert(A, DA), b"x" * (MAX_PACKET_BYTES + 1), timeout=5)
        assert answer != "Success"
        assert wait_until(lambda: not device.client.is_connected(), 10)
    assert_still_served(system)

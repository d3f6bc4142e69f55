"""The project's broker configuration (`care-broker`) against a real Mosquitto: TLS only, no
one in without an account, and every account confined to its own topics.

Households A and B each have a device and a member's app; a practice has a doctor. Each
denial is the broker's own answer: "Not authorized" in the CONNACK, SUBACK or PUBACK, and a
message refused is shown not to arrive by a later message on the same path that does.
"""

from __future__ import annotations

import socket
import ssl
import stat
from pathlib import Path

import pytest

from protocol import topics
from services.broker.provision import BrokerDir
from services.doctor_connect.service import subscriptions as doctor_connect_filters
from services.family.service import FILTERS as FAMILY_FILTERS
from tests.broker import Mosquitto, make_tls
from tests.secure_broker import Probe, secure_broker

A, B = "house-a", "house-b"
DA, DB = "speaker-a", "speaker-b"
MA, MB = "anna", "bert"
PRACTICE, DOCTOR = "practice", "dr-who"
DENIED = "Not authorized"
GRANTED = "Granted QoS 1"
ACCEPTED = ("Success", "No matching subscribers")  # PUBACK reasons of a publication taken
FAMILY, DOCTOR_CONNECT = "service/family-notify", "service/doctor-connect"


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory):
    broker_dir, broker = secure_broker(tmp_path_factory.mktemp("secure"), practice=PRACTICE)
    try:
        # provisioned while the broker runs: applied through its control API
        broker_dir.add_household(A, [DA], [MA])
        broker_dir.add_household(B, [DB], [MB])
        broker_dir.add_doctor(PRACTICE, DOCTOR)
        yield broker_dir, broker
    finally:
        broker.stop()


def probe(secured, username: str | None, **kwargs) -> Probe:
    broker_dir, broker = secured
    return Probe(broker, username, broker_dir, **kwargs)


def device_user(household: str, device: str) -> str:
    return f"{household}/device/{device}"


def member_user(household: str, member: str) -> str:
    return f"{household}/member/{member}"


# --- who gets in ----------------------------------------------------------------------------


def test_a_client_without_credentials_is_refused(secured) -> None:
    client = probe(secured, None)
    assert client.connect() == DENIED
    client.close()


@pytest.mark.parametrize(
    ("username", "password"),
    [
        (device_user(A, DA), "wrong-password"),
        (device_user(A, DA), ""),
        ("nobody", "whatever"),
        ("care-broker-admin", "guess"),
    ],
)
def test_a_wrong_password_or_unknown_user_is_refused(secured, username, password) -> None:
    client = probe(secured, username, password=password)
    assert client.connect() in (DENIED, "Bad user name or password")
    client.close()


def test_tls_is_required(secured) -> None:
    _, broker = secured
    # MQTT in the clear on the broker's port: the TLS listener never answers with a CONNACK
    client = probe(secured, device_user(A, DA), tls=False, password="x")
    assert client.connect(timeout=5) != "Success"
    client.close()
    # a raw CONNECT packet gets no MQTT answer: the connection is closed
    with socket.create_connection((broker.host, broker.port), timeout=5) as sock:
        sock.sendall(bytes.fromhex("101000044d5154540502003c000004746573740000"))
        try:
            answer = sock.recv(64)
        except (ConnectionResetError, TimeoutError):
            answer = b""
        assert not answer.startswith(b"\x20"), "a CONNACK came back over plain TCP"


def test_a_broker_certificate_not_from_our_ca_is_refused_by_clients(
    secured, tmp_path: Path
) -> None:
    foreign = make_tls(tmp_path / "foreign")
    client = probe(secured, device_user(A, DA), ca=str(foreign.ca))
    assert client.connect().startswith("failed: SSL")
    client.close()
    # and the device's TLS context checks the host name too (Python's default)
    assert ssl.create_default_context().check_hostname


# --- a device is confined to its own topics -----------------------------------------------


def test_a_device_subscribes_to_its_own_topics_only(secured) -> None:
    with probe(secured, device_user(A, DA)) as device:
        for kind in topics.DEVICE_INBOUND:
            assert device.subscribe(topics.device_topic(A, DA, kind)) == GRANTED
        refused = [topics.device_topic(B, DB, kind) for kind in topics.KINDS]
        refused += [topics.member_topic(B, MB, kind) for kind in topics.MEMBER_KINDS]
        refused += [topics.member_topic(A, MA, kind) for kind in topics.MEMBER_KINDS]
        refused += [topics.subscription(kind) for kind in topics.KINDS]  # every household
        refused += [topics.subscription(kind, household=A) for kind in topics.KINDS]
        refused += [topics.shared("x", topics.subscription("command")), "#", "$SYS/#"]
        refused += [topics.device_topic(A, DA, kind) for kind in topics.DEVICE_OUTBOUND]
        answers = {f: device.subscribe(f) for f in refused}
        assert answers == dict.fromkeys(refused, DENIED)


def test_a_device_cannot_publish_on_another_households_topics(secured) -> None:
    with (
        probe(secured, FAMILY) as family,
        probe(secured, device_user(B, DB)) as device_b,
        probe(secured, device_user(A, DA)) as device_a,
    ):
        for f in FAMILY_FILTERS:
            assert family.subscribe(topics.shared("family-notify", f)) == GRANTED
        assert device_b.subscribe(topics.command(B, DB)) == GRANTED
        hostile = [topics.device_topic(B, DB, kind) for kind in topics.KINDS]
        hostile += [topics.member_topic(B, MB, kind) for kind in topics.MEMBER_KINDS]
        hostile += [topics.member_topic(A, MA, kind) for kind in topics.MEMBER_KINDS]
        hostile += [topics.command(A, DA), topics.alert_ack(A, DA)]  # the services' to say
        answers = {t: device_a.publish(t, b'{"forged": true}') for t in hostile}
        assert answers == dict.fromkeys(hostile, DENIED)
        # its own topics work, and they are all that arrives
        assert device_a.publish(topics.alert(A, DA), b"marker") == "Success"
        assert family.wait_for(topics.alert(A, DA)) == [b"marker"]
        assert [t for t, _, _ in family.messages] == [topics.alert(A, DA)]
        assert device_b.received() == []


def test_a_device_cannot_say_it_is_another_device(secured) -> None:
    """Presence is retained: a forged "offline" for B's device would be what everyone sees."""
    with probe(secured, device_user(A, DA)) as device_a:
        assert device_a.publish(topics.status(B, DB), b"forged", retain=True) == DENIED
        assert device_a.publish(topics.status(A, DB), b"forged", retain=True) == DENIED
    with probe(secured, member_user(B, MB)) as member_b:
        assert member_b.subscribe(topics.status(B, DB)) == GRANTED
        assert member_b.subscribe(topics.status(A, DB)) == DENIED
        assert member_b.received() == []  # no retained message was stored


# --- a family member is confined to its own household ---------------------------------------


def test_a_member_cannot_command_another_households_device(secured) -> None:
    with (
        probe(secured, FAMILY) as family,
        probe(secured, device_user(B, DB)) as device_b,
        probe(secured, member_user(A, MA)) as member_a,
    ):
        for f in FAMILY_FILTERS:
            assert family.subscribe(topics.shared("family-notify", f)) == GRANTED
        assert device_b.subscribe(topics.command(B, DB)) == GRANTED
        hostile = [
            topics.command(B, DB),  # B's device directly
            topics.member_command(B, MB),  # as B's member, through the service
            topics.member_ack(B, MB),  # answering B's alerts
            topics.command(A, DA),  # even its own device: only the service commands it
            topics.member_command(A, "someone-else"),  # another member of its household
        ]
        answers = {t: member_a.publish(t, b'{"forged": true}') for t in hostile}
        assert answers == dict.fromkeys(hostile, DENIED)
        for f in (topics.inbox(B, MB), topics.member_subscription("inbox"), topics.alert(B, DB)):
            assert member_a.subscribe(f) == DENIED
        # its own command topic reaches the service, and nothing else arrived
        assert member_a.publish(topics.member_command(A, MA), b"marker") == "Success"
        assert family.wait_for(topics.member_command(A, MA)) == [b"marker"]
        assert [t for t, _, _ in family.messages] == [topics.member_command(A, MA)]
        assert device_b.received() == []


# --- services and doctors --------------------------------------------------------------------


def test_services_get_what_they_take_and_nothing_else(secured) -> None:
    with probe(secured, FAMILY) as family:
        for f in FAMILY_FILTERS:
            assert family.subscribe(topics.shared("family-notify", f)) == GRANTED
        for f in (topics.subscription("consultation"), topics.subscription("command"), "#"):
            assert family.subscribe(f) == DENIED
        assert family.publish(topics.command(A, DA)) in ACCEPTED
        assert family.publish(topics.consultation_update(A, DA)) == DENIED
        assert family.publish(topics.alert(A, DA)) == DENIED  # no forged alerts either
    with probe(secured, DOCTOR_CONNECT) as doctor_connect:
        for f in doctor_connect_filters(PRACTICE):
            assert doctor_connect.subscribe(topics.shared("doctor-connect", f)) == GRANTED
        others = [topics.doctor_subscription(k, "other-practice") for k in topics.DOCTOR_KINDS]
        for f in [*others, topics.subscription("alert")]:
            assert doctor_connect.subscribe(f) == DENIED
        assert doctor_connect.publish(topics.consultation_update(A, DA)) in ACCEPTED
        assert doctor_connect.publish(topics.command(A, DA)) == DENIED
        assert doctor_connect.publish(topics.inbox(A, MA)) == DENIED


def test_a_doctor_is_confined_to_its_own_topics(secured) -> None:
    """No device's topic, a conversation neither: a text consultation goes through
    doctor-connect, which passes lines on only to and from the doctor holding it (before,
    any doctor could read and write every senior's conversation)."""
    with probe(secured, f"{PRACTICE}/doctor/{DOCTOR}") as doctor:
        assert doctor.subscribe(topics.doctor_topic(PRACTICE, DOCTOR, "doctor_session")) == GRANTED
        assert doctor.publish(topics.doctor_topic(PRACTICE, DOCTOR, "doctor_text")) in ACCEPTED
        assert doctor.subscribe(topics.conversation(A, DA)) == DENIED
        assert doctor.subscribe(topics.subscription("conversation")) == DENIED
        assert doctor.publish(topics.conversation(A, DA)) == DENIED
        assert doctor.subscribe(topics.doctor_topic(PRACTICE, "dr-no", "doctor_session")) == DENIED
        for kind in ("alert", "event", "command", "family", "consultation"):
            assert doctor.subscribe(topics.device_topic(A, DA, kind)) == DENIED
        assert doctor.publish(topics.doctor_topic(PRACTICE, "dr-no", "doctor_action")) == DENIED
        assert doctor.publish(topics.command(A, DA)) == DENIED


def test_a_client_id_of_another_account_is_refused(secured) -> None:
    """Client ids are not secrets: B's device connecting with A's device's client id would
    take over A's session, and the commands waiting there for A would be dropped (delivery
    to B is not allowed). Each account is bound to its own client id."""
    client_id = topics.device_client_id(A, DA)  # what assistant/link.py connects with
    with probe(secured, device_user(A, DA), clean_start=False) as device:
        assert device.subscribe(topics.command(A, DA)) == GRANTED
    with probe(secured, FAMILY) as family:
        assert family.publish(topics.command(A, DA), b"queued for A") in ACCEPTED
    for username in (device_user(B, DB), member_user(A, MA)):
        impostor = probe(secured, username, client_id=client_id, clean_start=False)
        assert impostor.connect() == DENIED
        impostor.close()
    for other_id in ("any-other-id", topics.device_client_id(B, DB)):
        wrong = probe(secured, device_user(A, DA), client_id=other_id)
        assert wrong.connect() == DENIED
        wrong.close()
    with probe(secured, device_user(A, DA), clean_start=False) as device:
        assert device.wait_for(topics.command(A, DA)) == [b"queued for A"]


def test_a_removed_account_is_refused(secured) -> None:
    broker_dir, _ = secured
    made = broker_dir.add_household(A, ["temporary"], [])[0]
    with probe(secured, made.account.username) as device:
        assert device.subscribe(topics.command(A, "temporary")) == GRANTED
    broker_dir.remove([made.account.username])
    client = probe(secured, made.account.username, password=made.password)
    assert client.connect() in (DENIED, "Bad user name or password")
    client.close()


def test_the_broker_folder_is_private(secured) -> None:
    broker_dir, _ = secured
    assert stat.S_IMODE(broker_dir.path.stat().st_mode) == 0o700
    secrets = [broker_dir.ca_key, broker_dir.key, broker_dir.dynsec_file, broker_dir.admin_file]
    secrets += [broker_dir.accounts_file, broker_dir.config, *broker_dir.credentials.iterdir()]
    assert {p.name: stat.S_IMODE(p.stat().st_mode) for p in secrets} == {
        p.name: 0o600 for p in secrets
    }
    # clear passwords only in the credentials files: the rest keeps salted hashes
    stored = broker_dir.accounts_file.read_text() + broker_dir.dynsec_file.read_text()
    clear = [broker_dir.read_credentials(name)["password"] for name in broker_dir.accounts()]
    assert len(clear) >= 6 and not [p for p in clear if p in stored]


def test_running_init_again_keeps_the_ca_and_the_passwords(tmp_path: Path) -> None:
    broker_dir = BrokerDir(tmp_path / "b")
    broker_dir.init(port=18883)
    ca = broker_dir.ca.read_bytes()
    first = broker_dir.add_household(A, [DA], [])[0]
    broker_dir.init(port=18883, hosts=["care.example.org"])
    again = broker_dir.add_household(A, [DA], [])[0]
    assert broker_dir.ca.read_bytes() == ca
    assert again.password == first.password
    rotated = broker_dir.add_household(A, [DA], [], rotate=True)[0]
    assert rotated.password != first.password
    assert broker_dir.read_credentials(first.account.username)["host"] == "care.example.org"


def test_the_plain_test_broker_still_works(tmp_path: Path) -> None:
    """tests/broker.py's own TLS files come from the same helper."""
    files = make_tls(tmp_path / "tls")
    with Mosquitto(tmp_path / "plain", tls=files) as broker:
        client = Probe(broker, None, ca=str(files.ca))
        assert client.connect() == "Success"
        client.close()


def test_a_broker_set_up_by_an_older_version_gets_this_versions_rules_when_started(
    tmp_path: Path,
) -> None:
    """The plugin reads its file only when it starts, and an account keeps the role it was
    made with: without writing the roles anew at `care-broker run`, a doctor's app kept the
    older rule that let it read every device's conversation."""
    import json

    from services.broker.provision import ProvisionError

    broker_dir, broker = secure_broker(tmp_path, practice=PRACTICE)
    try:
        broker_dir.add_doctor(PRACTICE, DOCTOR)
        with pytest.raises(ProvisionError, match="stop it first"):
            broker_dir.refresh_roles()
    finally:
        broker.stop()
    data = json.loads(broker_dir.dynsec_file.read_text())
    (role,) = [r for r in data["roles"] if r["rolename"] == f"{PRACTICE}/doctor/{DOCTOR}"]
    everyones = topics.subscription("conversation")  # the older version's grant
    role["acls"] += [
        {"acltype": kind, "topic": everyones, "allow": True}
        for kind in ("subscribePattern", "publishClientReceive", "publishClientSend")
    ]
    broker_dir.dynsec_file.write_text(json.dumps(data))
    for refresh in (False, True):
        if refresh:
            broker_dir.refresh_roles()  # what `care-broker run` does before it starts it
        broker.start()
        try:
            with probe((broker_dir, broker), f"{PRACTICE}/doctor/{DOCTOR}") as doctor:
                allowed = doctor.subscribe(topics.conversation(A, DA))
            assert allowed == (DENIED if refresh else GRANTED)
        finally:
            broker.stop()

"""The services' MQTT plumbing against a real Mosquitto: shared subscriptions, manual
acknowledgement (a crash mid-handling means redelivery), shared dedup, refusals answered to
the sender, credentials and TLS, a broker restart."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from protocol import (
    EmergencyAlert,
    Message,
    Reason,
    ReminderAdd,
    Say,
    ServiceReason,
    create,
    encode,
    topics,
)
from services.mqtt_service import MqttService, MqttSettings, PublishError, Refusal, Undelivered
from tests.backend import Backend
from tests.broker import Mosquitto, free_port, make_tls
from tests.device_process import _wait as eventually  # polls a condition until true

ROOT = Path(__file__).resolve().parent.parent
H, D = "house-1", "speaker-1"


def settings_for(broker: Mosquitto, **changes) -> MqttSettings:
    return MqttSettings(
        host=broker.host,
        port=broker.port,
        keepalive_s=5,
        reconnect_min_s=0.1,
        reconnect_max_s=0.5,
        **changes,
    )


class Recorder:
    """A handler that records what it is handed, and can be told to refuse or fail."""

    def __init__(self) -> None:
        self.messages: list[Message] = []
        self.fail_times = 0  # raise this many times before handling
        self.refuse: Refusal | None = None
        self.cond = threading.Condition()

    def __call__(self, message: Message) -> None:
        with self.cond:
            if self.fail_times:
                self.fail_times -= 1
                raise OSError("the database is away")
            if self.refuse is not None:
                raise self.refuse
            self.messages.append(message)
            self.cond.notify_all()

    def wait_for(self, count: int, timeout: float = 10.0) -> bool:
        with self.cond:
            return self.cond.wait_for(lambda: len(self.messages) >= count, timeout)


def service_for(broker: Mosquitto, handler, client_id: str = "svc-1", **kwargs) -> MqttService:
    kwargs.setdefault("group", "test-group")
    kwargs.setdefault("filters", [topics.subscription("alert")])
    return MqttService(settings_for(broker), client_id=client_id, handler=handler, **kwargs)


def alert(household: str = H) -> Message:
    return create(EmergencyAlert(trigger="voice", said="help, I fell"), household, D)


@pytest.fixture
def device(broker: Mosquitto):
    """A device stand-in: publishes what a device would, hears commands and refusals."""
    with Backend(broker, kinds=("command", "refused"), client_id="device-standin") as standin:
        yield standin


def test_a_message_is_handled_and_a_reply_waits_for_the_broker(broker, device) -> None:
    recorder = Recorder()
    with service_for(broker, recorder) as service:
        sent = alert()
        device.send(sent)
        assert recorder.wait_for(1)
        assert recorder.messages[0] == sent
        command = create(Say(text="Anna is on her way"), H, D)
        service.publish(command)  # returns once the broker acknowledged it
        assert device.wait_until(lambda: command.id in device.ids())
        device.send(sent)  # a resend: dropped by id
        assert eventually(lambda: service.rejections[Reason.DUPLICATE] == 1, 5)
        assert service.receiver.received == 2 and service.receiver.handled == 1
    assert len(recorder.messages) == 1


def test_bad_payloads_are_refused_back_to_their_sender(broker, device) -> None:
    recorder = Recorder()
    with service_for(broker, recorder) as service:
        topic = topics.alert(H, D)
        good = alert().to_dict()
        broken = {**good, "body": {"trigger": "a rumour"}}
        device.send_raw(topic, b"\xff\xfe not even text")
        device.send_raw(topic, json.dumps(broken).encode())
        assert device.wait_until(lambda: len(device.ids("service.refused")) == 2)
        answers = {m.body.reason: m for m in device.handled if m.type == "service.refused"}
        assert set(answers) == {Reason.NOT_UTF8, Reason.BAD_BODY}
        assert answers[Reason.NOT_UTF8].body.refused_id is None
        assert answers[Reason.BAD_BODY].body.refused_id == good["id"]
        assert "body.trigger" in answers[Reason.BAD_BODY].body.detail
        assert answers[Reason.BAD_BODY].topic == topics.refused(H, D)
        assert service.rejections.counts() == {Reason.NOT_UTF8: 1, Reason.BAD_BODY: 1}
        assert eventually(lambda: service.refused_sent == 2, 5)  # PUBACK came
        device.send(alert())  # and it keeps serving
        assert recorder.wait_for(1)


def test_a_handler_refusal_is_answered_counted_and_not_retried(broker, device, caplog) -> None:
    recorder = Recorder()
    recorder.refuse = Refusal(ServiceReason.UNKNOWN_HOUSEHOLD, "no household of that id here")
    with service_for(broker, recorder) as service:
        sent = alert("nowhere")
        device.send(sent)
        assert device.wait_until(lambda: device.ids("service.refused"))
        (answer,) = [m for m in device.handled if m.type == "service.refused"]
        assert answer.household == "nowhere" and answer.body.refused_id == sent.id
        assert answer.body.reason == "unknown_household"
        assert service.rejections[ServiceReason.UNKNOWN_HOUSEHOLD] == 1
        assert "unknown_household" in caplog.text
        device.send(sent)  # refused once is handled: a resend is a duplicate
        assert eventually(lambda: service.rejections[Reason.DUPLICATE] == 1, 5)
    assert recorder.messages == []


def refusals_of(device: Backend, message_id: str) -> list[Message]:
    return [
        m
        for m in list(device.handled)
        if m.type == "service.refused" and m.body.refused_id == message_id
    ]


def test_a_refusal_that_may_change_is_looked_at_again_when_the_message_comes_again(
    broker, device
) -> None:
    """A device the service does not know yet: its alert is refused, and so is a resend of
    it (answered again), until the admin registers the device; then the resend is taken."""
    recorder = Recorder()
    unknown = Refusal(ServiceReason.UNKNOWN_DEVICE, "not a device of this household", final=False)
    recorder.refuse = unknown
    with service_for(broker, recorder) as service:
        sent = alert()
        device.send(sent)
        assert device.wait_until(lambda: len(refusals_of(device, sent.id)) == 1)
        device.send(sent)  # still unknown: refused and answered again, not a duplicate
        assert device.wait_until(lambda: len(refusals_of(device, sent.id)) == 2)
        assert service.rejections[ServiceReason.UNKNOWN_DEVICE] == 2
        assert not service.dedup.seen(sent.id)
        recorder.refuse = None  # the admin registered the device
        device.send(sent)
        assert recorder.wait_for(1)
        assert eventually(lambda: service.dedup.seen(sent.id), 5)
        device.send(sent)  # taken now: a resend is a duplicate
        assert eventually(lambda: service.rejections[Reason.DUPLICATE] == 1, 5)
        assert service.rejections[ServiceReason.UNKNOWN_DEVICE] == 2
    assert recorder.messages == [sent]
    assert len(refusals_of(device, sent.id)) == 2


def test_a_refusal_that_could_not_be_answered_is_answered_when_the_message_comes_again(
    broker, device, tmp_path
) -> None:
    """The broker goes away while the service refuses: the answer cannot be sent, so the
    id is not remembered, and the message sent again (after a worker restart, which loses
    what paho had queued) is refused and answered then."""
    state = tmp_path / "state.sqlite3"
    gone = threading.Event()
    running: list[MqttService] = []

    def refuse_with_the_broker_gone(message: Message) -> None:
        if not gone.is_set():
            broker.stop()
            gone.set()
            assert eventually(lambda: not running[0].connected, 10)
        raise Refusal(ServiceReason.UNSUPPORTED, "not taken here")  # a final refusal

    sent = alert()
    with service_for(broker, refuse_with_the_broker_gone, state_path=state) as first:
        running.append(first)
        device.send(sent)
        assert eventually(lambda: first.rejections[ServiceReason.UNSUPPORTED] == 1, 15)
        assert first.refused_sent == 0  # the answer did not go out
    broker.start()
    assert eventually(device._client.is_connected, 15)
    with service_for(broker, refuse_with_the_broker_gone, state_path=state) as second:
        device.send(sent)  # the device sends it again (and the broker may redeliver it)
        assert device.wait_until(lambda: refusals_of(device, sent.id), 15)
        assert eventually(lambda: second.dedup.seen(sent.id), 5)  # answered: final now
    (answer,) = refusals_of(device, sent.id)
    assert answer.body.reason == ServiceReason.UNSUPPORTED


def test_a_member_is_answered_on_the_member_refused_topic(broker) -> None:
    recorder = Recorder()
    recorder.refuse = Refusal(ServiceReason.NOT_A_MEMBER, "not in this household")
    filters = [topics.member_subscription("member_command")]
    with (
        Backend(broker, kinds=("member_refused",), client_id="member-app") as app,
        service_for(broker, recorder, filters=filters),
    ):
        body = ReminderAdd(reminder_id="r1", kind="medication", text="pills", at="08:00")
        command = create(body, H, "stranger", on="member_command")
        app.send(command)
        assert app.wait_until(lambda: bool(app.handled), 10)
        (answer,) = app.handled
        assert answer.type == "service.refused" and answer.device == "stranger"
        assert answer.topic == topics.member_refused(H, "stranger")
        assert answer.body.refused_id == command.id
        assert answer.body.reason == "not_a_member"


def test_two_workers_of_a_group_split_the_messages(broker, device, tmp_path) -> None:
    first, second = Recorder(), Recorder()
    state = tmp_path / "shared.sqlite3"
    with (
        service_for(broker, first, "worker-a", state_path=state),
        service_for(broker, second, "worker-b", state_path=state),
    ):
        sent = [alert() for _ in range(40)]
        for message in sent:
            device.send(message)
        assert eventually(lambda: len(first.messages) + len(second.messages) >= len(sent), 15)
        time.sleep(0.3)  # nothing more arrives
    ids_a = [m.id for m in first.messages]
    ids_b = [m.id for m in second.messages]
    assert sorted(ids_a + ids_b) == sorted(m.id for m in sent)  # each once, none lost
    assert ids_a and ids_b  # both worked


def test_the_dedup_file_is_shared_by_the_workers(broker, device, tmp_path) -> None:
    state = tmp_path / "shared.sqlite3"
    sent = alert()
    first = Recorder()
    with service_for(broker, first, "worker-a", state_path=state):
        device.send(sent)
        assert first.wait_for(1)
    second = Recorder()
    with service_for(broker, second, "worker-b", state_path=state) as other:
        device.send(sent)  # the same id again, now to another worker
        assert eventually(lambda: other.rejections[Reason.DUPLICATE] == 1, 10)
    assert second.messages == []


def test_a_crash_mid_handling_means_redelivery_not_loss(broker, device, tmp_path) -> None:
    record, marker = tmp_path / "handled.txt", tmp_path / "crashed"

    def worker() -> subprocess.Popen[str]:
        command = [sys.executable, "-m", "tests.mqtt_service_child", "--port", str(broker.port)]
        command += ["--client-id", "crashy", "--record", str(record), "--crash-once", str(marker)]
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True)
        assert process.stdout is not None and process.stdout.readline().strip() == "ready"
        return process

    first = worker()
    sent = alert()
    device.send(sent)
    assert first.wait(15) == 3 and marker.exists()  # died while handling it
    assert not record.exists()
    second = worker()  # the same client id: the broker kept the unacknowledged message
    try:
        deadline = time.monotonic() + 15
        while not (record.exists() and record.read_text()) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert record.read_text().split() == [sent.id]
    finally:
        second.terminate()
        second.wait(10)


def test_a_stop_that_runs_out_of_time_leaves_the_rest_for_the_next_start(
    broker, device, tmp_path, caplog
) -> None:
    """A clean stop ended the worker's session after waiting 5 s for its backlog; the broker
    then discarded what this worker was dealt and had not acknowledged, which no other
    worker gets (a reviewer saw 529 of 1,000 handled). Now the session is kept and the
    worker's next start gets the rest."""
    sent = [alert() for _ in range(120)]
    slow = Recorder()

    def slow_handler(message: Message) -> None:
        time.sleep(0.02)
        slow(message)

    first = service_for(broker, slow_handler, client_id="backlog", rate_limit=None)
    first.start(timeout=10)  # subscribed: none of the 120 is dropped for want of a worker
    device.send_many(sent)
    assert slow.wait_for(5)
    first.stop(timeout=0.2)
    assert "not handled; the session is kept" in caplog.text
    assert len(slow.messages) < len(sent)
    fast = Recorder()
    with service_for(broker, fast, client_id="backlog", rate_limit=None):
        assert fast.wait_for(len(sent) - len(slow.messages), 15)
    got = [m.id for m in slow.messages + fast.messages]
    assert sorted(set(got)) == sorted(m.id for m in sent)


def test_a_failing_handler_is_retried_then_kept_aside(broker, device, tmp_path) -> None:
    recorder = Recorder()
    recorder.fail_times = 1
    state = tmp_path / "state.sqlite3"
    service = service_for(broker, recorder, state_path=state, retry_delay_s=0.01)
    with service:
        first = alert()
        device.send(first)  # fails once, then handled
        assert recorder.wait_for(1)
        recorder.fail_times = 10
        second = alert()
        device.send(second)  # fails every time: kept aside, acknowledged
        assert eventually(lambda: service.dead_letters == 1, 10)
        assert service.rejections[Reason.HANDLER_ERROR] == 1 + 3 + 1
    with sqlite3.connect(state) as db:
        rows = db.execute("SELECT topic, payload FROM dead_letters").fetchall()
    assert rows == [(second.topic, encode(second))]
    assert [m.id for m in recorder.messages] == [first.id]


def dead_letters(state: Path) -> list[tuple]:
    """The kept-aside messages: (topic, payload, error, replays, claimed_by)."""
    db = sqlite3.connect(state)
    try:
        query = "SELECT topic, payload, error, replays, claimed_by FROM dead_letters ORDER BY id"
        return [(t, bytes(p), e, r, c) for t, p, e, r, c in db.execute(query)]
    finally:
        db.close()


def handled_ids(state: Path) -> set[str]:
    db = sqlite3.connect(state)
    try:
        return {row[0] for row in db.execute("SELECT id FROM seen_ids")}
    finally:
        db.close()


def failing_service(
    broker: Mosquitto, state: Path, client_id: str = "svc-1", **kwargs
) -> tuple[Recorder, MqttService]:
    """A worker with a state file whose handler fails (1000 times) until told otherwise."""
    recorder = Recorder()
    recorder.fail_times = 1000
    kwargs.setdefault("retry_delay_s", 0.01)
    return recorder, service_for(broker, recorder, client_id, state_path=state, **kwargs)


def park(broker, device, state: Path, message: Message, client_id: str = "svc-1") -> None:
    """Run `message` into a handler that fails every time, so that it is kept aside."""
    failing, service = failing_service(broker, state, client_id)
    with service:
        device.send(message)
        assert eventually(lambda: service.dead_letters == 1, 10)
    assert failing.messages == [] and failing.fail_times == 1000 - 3


def test_a_kept_aside_message_is_handled_once_after_a_restart(broker, device, tmp_path) -> None:
    state, sent = tmp_path / "state.sqlite3", alert()
    park(broker, device, state, sent)
    assert dead_letters(state) == [(sent.topic, encode(sent), "OSError", 0, None)]
    assert sent.id not in handled_ids(state)  # else its replay would be dropped as a duplicate
    working = Recorder()
    with service_for(broker, working, state_path=state) as service:
        assert working.wait_for(1)  # replayed at the start
        assert eventually(lambda: service.dead_letters_done == 1, 5)
        assert dead_letters(state) == [] and sent.id in handled_ids(state)
        device.send(sent)  # the device sends it again: now a duplicate
        assert eventually(lambda: service.rejections[Reason.DUPLICATE] == 1, 5)
    assert [m.id for m in working.messages] == [sent.id]
    with service_for(broker, working, state_path=state):  # and not replayed again
        time.sleep(0.3)
    assert [m.id for m in working.messages] == [sent.id]


def test_a_kept_aside_message_is_replayed_while_running(broker, device, tmp_path) -> None:
    state, sent = tmp_path / "state.sqlite3", alert()
    recorder, service = failing_service(broker, state, dead_letter_retry_s=0.2)
    with service:
        device.send(sent)
        assert eventually(lambda: service.dead_letters == 1, 10)
        with recorder.cond:
            recorder.fail_times = 0  # the database is back
        assert recorder.wait_for(1, 5)
        assert eventually(lambda: dead_letters(state) == [], 5)
        time.sleep(0.6)  # a few more rounds
    assert [m.id for m in recorder.messages] == [sent.id]
    assert service.dead_letters_done == 1


def test_a_message_still_failing_stays_kept_aside(broker, device, tmp_path, caplog) -> None:
    state, sent = tmp_path / "state.sqlite3", alert()
    recorder, service = failing_service(broker, state, dead_letter_retry_s=0.2)
    with service:
        device.send(sent)
        assert eventually(lambda: dead_letters(state) and dead_letters(state)[0][3] >= 2, 10)
    ((topic, payload, error, replays, claimed_by),) = dead_letters(state)
    assert (topic, payload, error, claimed_by) == (sent.topic, encode(sent), "OSError", None)
    assert 1000 - recorder.fail_times == 3 + replays  # one run a replay, none twice
    assert recorder.messages == [] and sent.id not in handled_ids(state)
    failed_again = [r for r in caplog.records if "failed again" in r.getMessage()]
    assert len(failed_again) == replays and {r.levelname for r in failed_again} == {"ERROR"}
    assert "I fell" not in caplog.text  # never the payload


def test_a_kept_aside_message_handled_elsewhere_is_dropped(broker, device, tmp_path) -> None:
    state, sent = tmp_path / "state.sqlite3", alert()
    first = Recorder()
    first.fail_times = 3  # every try of the first delivery
    kwargs = {"state_path": state, "retry_delay_s": 0.01, "dead_letter_retry_s": 3600}
    with service_for(broker, first, "worker-a", **kwargs) as service:
        device.send(sent)
        assert eventually(lambda: service.dead_letters == 1, 10)
        device.send(sent)  # the device sends it again, and this time it is handled
        assert first.wait_for(1)
    assert [m.id for m in first.messages] == [sent.id] and len(dead_letters(state)) == 1
    second = Recorder()
    with service_for(broker, second, "worker-b", state_path=state) as service:
        assert eventually(lambda: service.dead_letters_done == 1, 5)
        assert service.rejections[Reason.DUPLICATE] == 1
    assert second.messages == [] and dead_letters(state) == []


class SlowRecorder(Recorder):
    def __call__(self, message: Message) -> None:
        time.sleep(1.0)
        super().__call__(message)


def test_two_workers_never_replay_the_same_message(broker, device, tmp_path) -> None:
    state, sent = tmp_path / "state.sqlite3", alert()
    park(broker, device, state, sent, "worker-a")
    shared = SlowRecorder()  # both replay at their start, the second while the first is in it
    with (
        service_for(broker, shared, "worker-a", state_path=state) as first,
        service_for(broker, shared, "worker-b", state_path=state) as second,
    ):
        assert shared.wait_for(1)
        assert eventually(lambda: dead_letters(state) == [], 5)
        time.sleep(1.2)
        assert first.dead_letters_done + second.dead_letters_done == 1
    assert [m.id for m in shared.messages] == [sent.id]


def test_an_old_dead_letters_table_is_taken_over(broker, device, tmp_path) -> None:
    state, sent = tmp_path / "state.sqlite3", alert()
    db = sqlite3.connect(state)
    db.execute(  # the table as the first version made it
        "CREATE TABLE dead_letters (id INTEGER PRIMARY KEY, at REAL NOT NULL,"
        " topic TEXT NOT NULL, payload BLOB NOT NULL, error TEXT NOT NULL)"
    )
    db.execute(
        "INSERT INTO dead_letters (at, topic, payload, error) VALUES (?, ?, ?, ?)",
        (time.time(), sent.topic, encode(sent), "OSError"),
    )
    db.commit()
    db.close()
    recorder = Recorder()
    with service_for(broker, recorder, state_path=state) as service:
        assert recorder.wait_for(1)
        assert eventually(lambda: service.dead_letters_done == 1, 5)
    assert [m.id for m in recorder.messages] == [sent.id] and dead_letters(state) == []


def test_credentials_and_tls(tmp_path) -> None:
    tls = make_tls(tmp_path / "tls")
    users = {"family-notify": "s3cret", "device": "d3vice"}
    with Mosquitto(tmp_path / "broker", users=users, tls=tls) as broker, Backend(broker) as dev:
        recorder = Recorder()
        wrong = MqttService(
            settings_for(broker, username="family-notify", password="nope", tls_ca=str(tls.ca)),
            client_id="svc-wrong",
            group="g",
            filters=[topics.subscription("alert")],
            handler=recorder,
        )
        with pytest.raises(TimeoutError, match="refused"):
            wrong.start(timeout=3)
        good = settings_for(broker, username="family-notify", password="s3cret", tls_ca=str(tls.ca))
        service = MqttService(
            good,
            client_id="svc",
            group="g",
            filters=[topics.subscription("alert")],
            handler=recorder,
        )
        with service:
            dev.send(alert())
            assert recorder.wait_for(1)


def test_the_service_comes_back_after_a_broker_restart(broker, device) -> None:
    recorder = Recorder()
    with service_for(broker, recorder) as service:
        broker.restart()
        time.sleep(0.5)
        assert service.wait_ready(15)
        assert device._subscribed.wait(15)
        device.send(alert())
        assert recorder.wait_for(1, 15)


def test_publishing_without_a_broker_fails_clearly(tmp_path) -> None:
    broker = Mosquitto(tmp_path / "broker")  # never started
    service = service_for(broker, Recorder())
    service.start()
    try:
        with pytest.raises(PublishError):
            service.publish(alert(), timeout=0.5)
    finally:
        service.stop()


def test_a_puback_for_nobody_is_not_a_delivery_when_it_must_be(broker, device) -> None:
    """Mosquitto answers a publication nobody subscribed to with PUBACK 0x10 "No matching
    subscribers" and drops it: paho calls that published. With `delivered` it is reported."""
    with service_for(broker, Recorder()) as service:
        nobody = topics.inbox(H, "anna")  # no app subscribed to it
        heard = topics.command(H, D)  # the device stand-in listens here
        pairs = [(nobody, b"{}"), (heard, b"{}")]
        assert service.publish_many(pairs) == [None, None]  # any PUBACK, as before
        missed, taken = service.publish_many(pairs, delivered=True)
        assert isinstance(missed, Undelivered) and missed.no_subscriber
        assert missed.reason_code == 0x10 and "no subscriber" in str(missed)
        assert taken is None
        with pytest.raises(Undelivered):
            service.publish_raw(nobody, b"{}", delivered=True)
        service.publish_raw(heard, b"{}", delivered=True)


def test_a_puback_refusing_the_message_is_not_a_delivery(tmp_path) -> None:
    """A broker that refuses a publication (an ACL: 0x87 "Not authorized") acknowledges it
    all the same; with `delivered` it is reported, not taken for a delivery."""
    folder = tmp_path / "broker"
    folder.mkdir()
    (folder / "acl").write_text(
        "".join(f"topic readwrite {f}\n" for f in (topics.subscription("alert", H),
                                                     topics.subscription("command", H)))
    )  # fmt: skip
    port = free_port()
    conf = folder / "mosquitto.conf"
    conf.write_text(
        "per_listener_settings false\nallow_anonymous true\npersistence false\n"
        f"acl_file {folder / 'acl'}\nlog_dest file {folder / 'mosquitto.log'}\n"
        + ("user root\n" if os.getuid() == 0 else "")
        + f"listener {port} 127.0.0.1\n"
    )
    with Mosquitto(folder, config=conf, port=port) as acl_broker:
        alerts_here = [topics.subscription("alert", H)]
        service = service_for(acl_broker, Recorder(), group=None, filters=alerts_here)
        with service:
            elsewhere = topics.command("house-2", D)  # not this client's to write
            (refused,) = service.publish_many([(elsewhere, b"{}")], delivered=True)
            assert isinstance(refused, Undelivered) and not refused.no_subscriber
            assert refused.reason_code == 0x87 and "refused by the broker" in str(refused)
            assert service.publish_many([(elsewhere, b"{}")]) == [None]  # as before


def test_settings_refuse_unknown_keys() -> None:
    assert MqttSettings.from_dict({"host": "broker", "port": 8883}).port == 8883
    with pytest.raises(ValueError, match="hots"):
        MqttSettings.from_dict({"hots": "broker"})

"""An alert the broker took is not yet an alert delivered: a service worker that died with
its session alive keeps receiving its share of a shared subscription, and holds it until
it comes back (a day). The device sends an unanswered alert again, so a live worker gets
it; a copy the service has already is dropped by its id. It does so after a restart too
(assistant/unanswered_alerts.py)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from assistant.announcer import Announcer
from assistant.emergency import Emergencies
from assistant.link import Link
from assistant.resend import Resender
from assistant.unanswered_alerts import ALERTS_FILE, UNCONFIRMED_FILE, UnansweredAlertStore
from devices.indicator import StatusLights
from devices.simulated import RecordingIndicator
from protocol import AlertAck, EmergencyAlert, InactivityAlert, create, topics, utc_timestamp
from tests.assistant_process import wait_for
from tests.backend import Backend
from tests.broker import Mosquitto
from tests.test_link import settings

H, D, GROUP = "household-1", "kitchen-speaker", "family-notify"

DEAD_WORKER = """
import sys, time
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
host, port, topic = sys.argv[1], int(sys.argv[2]), sys.argv[3]
client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="worker-a",
                     protocol=MQTTProtocolVersion.MQTTv5)
props = Properties(PacketTypes.CONNECT)
props.SessionExpiryInterval = 86400
client.on_connect = lambda c, u, f, rc, p: c.subscribe(topic, qos=1)
client.on_subscribe = lambda *a: print("subscribed", flush=True)
client.connect(host, port, clean_start=False, properties=props)
client.loop_forever()
"""


def start_and_kill_a_worker(broker: Mosquitto) -> None:
    """A worker in the group that dies with its session and its place in the group kept."""
    shared = topics.shared(GROUP, topics.subscription("alert", topics.ANY))
    worker_a = subprocess.Popen(
        [sys.executable, "-c", DEAD_WORKER, broker.host, str(broker.port), shared],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert worker_a.stdout is not None and worker_a.stdout.readline().strip() == "subscribed"
    worker_a.kill()  # no DISCONNECT: its session and its place in the group stay
    worker_a.wait()


def test_alerts_held_by_a_dead_worker_reach_the_live_one(broker: Mosquitto, tmp_path: Path):
    start_and_kill_a_worker(broker)

    link = Link(settings(broker), household=H, device=D, state_dir=tmp_path / "state")
    announcer = Announcer()
    emergencies = Emergencies(
        link, announcer, StatusLights(RecordingIndicator()), resend_s=(1.0, 2.0)
    )
    with Backend(broker, kinds=["alert"], client_id="worker-b", group=GROUP) as b:
        link.start()
        emergencies.start()
        try:
            assert link.wait_connected(10)
            alerts = []
            for _ in range(10):
                message = link.publish(EmergencyAlert(trigger="sos_button"))
                emergencies.raised(message)
                alerts.append(message.id)
            assert b.wait_until(lambda: set(alerts) <= set(b.ids("alert")), 60), (
                f"{len(set(alerts) & set(b.ids('alert')))} of 10 reached the live worker"
            )
        finally:
            emergencies.close()
            link.close()


def test_an_unanswered_alert_is_sent_again_after_a_restart(broker: Mosquitto, tmp_path: Path):
    """The broker hands the alert to the dead worker (the group's only member), and the
    device restarts before anyone answers. The next start sends it again, and the live
    worker that has joined gets it; once answered it is forgotten."""
    start_and_kill_a_worker(broker)
    state = tmp_path / "state"

    def device(resend_s: tuple[float, float]) -> tuple[Link, Emergencies, RecordingIndicator]:
        link = Link(settings(broker), household=H, device=D, state_dir=state)
        indicator = RecordingIndicator()
        store = UnansweredAlertStore(state / ALERTS_FILE)
        emergencies = Emergencies(
            link, Announcer(), StatusLights(indicator), resend_s=resend_s, store=store
        )
        link.start()
        emergencies.start()
        assert link.wait_connected(10)
        return link, emergencies, indicator

    def stop(link: Link, emergencies: Emergencies) -> None:
        emergencies.close()
        link.close()
        assert emergencies.store is not None
        emergencies.store.close()

    link, emergencies, _ = device(resend_s=(600.0, 600.0))
    message = link.publish(EmergencyAlert(trigger="sos_button"))
    emergencies.raised(message)
    assert wait_for(lambda: not link.outbox.contains(message.id), 10)  # the broker took it
    stop(link, emergencies)  # the restart, before anyone answered

    with Backend(broker, kinds=["alert"], client_id="worker-b", group=GROUP) as b:
        link, emergencies, indicator = device(resend_s=(0.5, 1.0))
        try:
            assert indicator.state == "alert"  # still unanswered: the light says so
            assert b.wait_until(lambda: message.id in b.ids("alert"), 30)
            ack = AlertAck(alert_id=message.id, by="Anna", action="calling")
            emergencies.answered(ack)
            assert emergencies.store is not None and emergencies.store.all(H, D) == []
        finally:
            stop(link, emergencies)


def test_an_unreadable_unanswered_alert_is_logged_and_kept(tmp_path: Path, caplog) -> None:
    path = tmp_path / ALERTS_FILE
    store = UnansweredAlertStore(path)
    store._db.execute("INSERT INTO unanswered VALUES ('x', ?)", (b"not an alert",))
    with caplog.at_level("ERROR"):
        assert store.all(H, D) == []
    assert "cannot be sent again" in caplog.text
    assert store._db.execute("SELECT count(*) FROM unanswered").fetchone() == (1,)
    store.close()


def test_an_answer_is_taken_even_when_the_file_of_unanswered_alerts_fails(
    broker: Mosquitto, tmp_path: Path
) -> None:
    """The answer is said and the light goes off; the failure is logged (the alert would be
    sent again after a restart, a copy the service drops)."""
    link = Link(settings(broker), household=H, device=D, state_dir=tmp_path / "state")
    indicator = RecordingIndicator()
    store = UnansweredAlertStore(tmp_path / ALERTS_FILE)
    emergencies = Emergencies(link, Announcer(), StatusLights(indicator), store=store)
    try:
        message = link.publish(EmergencyAlert(trigger="sos_button"))
        emergencies.raised(message)
        assert indicator.state == "alert"
        store._db.close()  # the file fails under it
        emergencies.answered(AlertAck(alert_id=message.id, by="Anna", action="calling"))
        assert indicator.state != "alert"
        assert emergencies.unanswered is not None and len(emergencies.unanswered) == 0
    finally:
        link.close()


def test_a_message_never_confirmed_is_given_up_after_a_day_and_said_so(
    broker: Mosquitto, tmp_path: Path, caplog
) -> None:
    """A service that refuses it for good would otherwise get it every ten minutes for
    ever; an emergency is never given up (no limit)."""
    link = Link(settings(broker), household=H, device=D, state_dir=tmp_path / "state")
    store = UnansweredAlertStore(tmp_path / UNCONFIRMED_FILE)
    resender = Resender(link, store, 0.0, 0.0, "a confirmation", give_up_after_s=24 * 3600)
    try:
        old = dataclasses.replace(
            create(InactivityAlert(quiet_for_s=6 * 3600), H, D),
            ts=utc_timestamp(dt.datetime.now(dt.UTC) - dt.timedelta(hours=25)),
        )
        fresh = create(InactivityAlert(quiet_for_s=6 * 3600), H, D)
        resender.add(old)
        resender.add(fresh)
        with caplog.at_level("ERROR"):
            resender.send_due(time.monotonic() + 1)
        assert [m.id for m in store.all(H, D)] == [fresh.id] and len(resender) == 1
        assert f"{old.id} given up" in caplog.text
    finally:
        link.close()
        store.close()


def test_a_file_that_cannot_be_read_at_start_does_not_stop_the_rest(
    broker: Mosquitto, tmp_path: Path, caplog, monkeypatch
) -> None:
    link = Link(settings(broker), household=H, device=D, state_dir=tmp_path / "state")
    store = UnansweredAlertStore(tmp_path / UNCONFIRMED_FILE)

    def broken(*_: object) -> list:
        raise sqlite3.DatabaseError("database disk image is malformed")

    monkeypatch.setattr(store, "all", broken)
    resender = Resender(link, store, 60.0, 600.0, "a confirmation")
    try:
        with caplog.at_level("ERROR"):
            assert resender.start() == 0
        assert "could not read what waits for a confirmation" in caplog.text
        message = link.publish(InactivityAlert(quiet_for_s=3600))
        resender.add(message)  # it goes on working
        assert len(resender) == 1
    finally:
        resender.close()
        link.close()
        store.close()


def test_a_file_of_alerts_that_is_no_database_is_moved_aside_and_the_device_starts(
    tmp_path: Path, caplog
) -> None:
    """A corrupted file must not keep the device from starting (and calling for help): it
    is kept aside for whoever looks into it, named in an ERROR, and a new one is used."""
    from assistant.config import Config
    from assistant.device import Device

    state = tmp_path / "state"
    state.mkdir()
    for name in (ALERTS_FILE, UNCONFIRMED_FILE):
        (state / name).write_bytes(b"this is not a database " * 200)
    config = Config()
    config.paths.state_dir = str(state)
    config.device.household, config.device.device_id = H, D
    with caplog.at_level("ERROR"):
        device = Device(config)  # the link is made, not connected
    try:
        assert device.alerts is not None
        message = create(EmergencyAlert(trigger="sos_button"), H, D)
        device.alerts.add(message)
        assert [m.id for m in device.alerts.all(H, D)] == [message.id]
    finally:
        device.close()
    for name in (ALERTS_FILE, UNCONFIRMED_FILE):
        (aside,) = state.glob(f"{name}.unreadable-*")
        assert aside.read_bytes().startswith(b"this is not a database")
        assert f"{name} is damaged" in caplog.text

"""An alert the broker took is not yet an alert delivered: a service worker that died with
its session alive keeps receiving its share of a shared subscription, and holds it until
it comes back (a day). The device sends an unanswered alert again, so a live worker gets
it; a copy the service has already is dropped by its id."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from assistant.announcer import Announcer
from assistant.emergency import Emergencies
from assistant.link import Link
from devices.indicator import StatusLights
from devices.simulated import RecordingIndicator
from protocol import EmergencyAlert, topics
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


def test_alerts_held_by_a_dead_worker_reach_the_live_one(broker: Mosquitto, tmp_path: Path):
    shared = topics.shared(GROUP, topics.subscription("alert", topics.ANY))
    worker_a = subprocess.Popen(
        [sys.executable, "-c", DEAD_WORKER, broker.host, str(broker.port), shared],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert worker_a.stdout is not None and worker_a.stdout.readline().strip() == "subscribed"
    worker_a.kill()  # no DISCONNECT: its session and its place in the group stay
    worker_a.wait()

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

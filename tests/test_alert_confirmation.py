"""An alert other than an emergency (a missed dose, a worry, a long silence), or a message
for the family, is confirmed by the family service once stored (`alert.received`); the
device sends it again until then, also after a restart. Without that, an alert the broker
dealt to a service worker that died with its session kept (a container restarted under
another name) waited a day with that session and was then dropped: nobody in the family
ever heard of it.

Real Mosquitto, real `family-notify serve` processes and their SQLite file, the real device
(its link, outbox and state files); the device's stand-in where only the service is tested."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

import assistant.device as device_module
from assistant.device import Device
from assistant.dialog import Action
from protocol import (
    AlertReceived,
    CheckinAnswer,
    EmergencyAlert,
    FamilyMessage,
    MemberAlert,
    Message,
    MissedMedicationAlert,
    create,
    utc_timestamp,
)
from tests.broker import Mosquitto
from tests.device_process import _wait as wait_for  # polls a condition until true
from tests.family_process import (
    D,
    FamilyConfigFiles,
    FamilyWorker,
    H,
    apps_standin,
    device_standin,
    setup_household,
    write_config,
)
from tests.test_device import device_config


def stored(config: FamilyConfigFiles, alert_id: str) -> int:
    """How many alerts of that id the service's SQLite file holds (read only)."""
    db = sqlite3.connect(f"file:{config.database}?mode=ro", uri=True, timeout=10)
    try:
        return db.execute("SELECT count(*) FROM alerts WHERE id = ?", (alert_id,)).fetchone()[0]
    finally:
        db.close()


def receipts(handled: list[Message], alert_id: str) -> list[Message]:
    return [m for m in handled if isinstance(m.body, AlertReceived) and m.body.alert_id == alert_id]


def test_the_service_confirms_a_stored_alert_and_again_when_it_comes_again(
    tmp_path: Path, broker: Mosquitto
) -> None:
    config = write_config(tmp_path / "family", broker)
    setup_household(config)
    with FamilyWorker(config), device_standin(broker) as device:
        due = utc_timestamp()
        missed = create(
            MissedMedicationAlert(reminder_id="r1", medication="aspirin", due=due), H, D
        )
        device.send(missed)
        assert device.wait_until(lambda: receipts(device.handled, missed.id), 20)
        assert stored(config, missed.id) == 1

        note = create(FamilyMessage(to="all", text="Please call me back."), H, D)
        device.send(note)
        assert device.wait_until(lambda: receipts(device.handled, note.id), 20)

        device.send(missed)  # the device did not hear the confirmation: it sends again
        assert device.wait_until(lambda: len(receipts(device.handled, missed.id)) == 2, 20)
        first, second = receipts(device.handled, missed.id)
        assert first.id != second.id  # not dropped by the device as a copy of the first
        assert stored(config, missed.id) == 1  # one alert all the same

        # An emergency is sent again until someone answers it, not until it is stored; a
        # worry raised by the service itself from a check-in answer is the service's own.
        emergency = create(EmergencyAlert(trigger="sos_button"), H, D)
        sad = create(CheckinAnswer(checkin_id="evening", question="How are you?",
                                   answer="sad", feeling="sad"), H, D)  # fmt: skip
        device.send(emergency)
        device.send(sad)
        assert wait_for(lambda: stored(config, emergency.id) and stored(config, sad.id), 20)
        # a worry sent after them is confirmed on the same topic after any confirmation of
        # theirs (one worker handles them in turn): once it is here, none of theirs is coming
        later = create(MissedMedicationAlert(reminder_id="r2", medication="aspirin", due=due), H, D)
        device.send(later)
        assert device.wait_until(lambda: receipts(device.handled, later.id), 20)
        assert not receipts(device.handled, emergency.id)
        assert not receipts(device.handled, sad.id)


def told(handled: list[Message], alert_id: str) -> list[str]:
    """The members whose app got the alert."""
    return [
        m.device for m in handled if isinstance(m.body, MemberAlert) and m.body.alert_id == alert_id
    ]


def test_an_alert_a_dead_worker_holds_reaches_the_family_after_the_device_restarts(
    tmp_path: Path, broker: Mosquitto, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Worker 1 dies with its session and its place in the group kept, and is never back:
    its replacement has another name. The senior's worry goes to worker 1, and the device
    restarts. After the restart it sends the worry again until the new worker confirms it,
    and Anna is told."""
    family = write_config(tmp_path / "family", broker)
    setup_household(family)
    FamilyWorker(family, name="1").start().kill()  # no DISCONNECT: its session stays
    config = device_config(broker, tmp_path / "state", H, D)

    with Device(config) as device:
        assert device.link is not None and device.link.wait_connected(10)
        message = device.actions(Action("report_feeling", {"feeling": "pain"}))
        assert message is not None and message.type == "alert.wellness"
        assert wait_for(lambda: not device.link.outbox.contains(message.id), 10)  # broker took it
        assert device.unconfirmed is not None and len(device.unconfirmed) == 1

    monkeypatch.setattr(device_module, "CONFIRM_FIRST_S", 0.3)
    monkeypatch.setattr(device_module, "CONFIRM_MAX_S", 1.0)
    with FamilyWorker(family, name="2"), apps_standin(broker) as apps, Device(config) as device:
        assert device.unconfirmed is not None and device.unconfirmed.store is not None
        # the broker deals the group's messages in turn, to the dead worker too: the device
        # sends again until the live one has it and says so
        assert wait_for(lambda: len(device.unconfirmed) == 0, 30), "never confirmed"
        assert device.unconfirmed.store.all(H, D) == []
        assert stored(family, message.id) == 1
        assert apps.wait_until(lambda: told(apps.handled, message.id), 20)

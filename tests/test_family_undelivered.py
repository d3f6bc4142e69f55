"""An alert the broker acknowledged is not yet an alert a member received: Mosquitto answers
a publication to an inbox nobody subscribes to (the app never connected, or its session
expired) with PUBACK 0x10 "No matching subscribers" and drops it. The family service keeps
such a notice in its outbox, says so in the alert's trail (`undelivered`), tries again with
its backoff, and calls the alert `delivered` only once the member's app really took it.

Real Mosquitto, a real `family-notify serve` process and its SQLite file; the device is a
stand-in publishing what a device would, and the member's app a persistent MQTT session."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from protocol import EmergencyAlert, create
from services.family.channels import ChannelError
from tests.backend import Backend
from tests.broker import Mosquitto
from tests.device_process import _wait as wait_for  # polls a condition until true
from tests.family_process import (
    D,
    FamilyConfigFiles,
    FamilyWorker,
    H,
    Household,
    MemberSpec,
    device_standin,
    setup_household,
    write_config,
)

SAID = "help, I fell"
# Mum and her daughter, who has no SMS or phone contact and there is no emergency number:
# the inbox is the only way to reach anyone.
ONLY_THE_APP = Household(
    emergency_number=None,
    members=(MemberSpec("mum", "Mum", "senior"), MemberSpec("anna", "Anna", "family")),
)


def query(config: FamilyConfigFiles, sql: str, *args: object) -> list[sqlite3.Row]:
    """What the service's SQLite file says now (read only, a connection of its own)."""
    db = sqlite3.connect(f"file:{config.database}?mode=ro", uri=True, timeout=10)
    db.row_factory = sqlite3.Row
    try:
        return db.execute(sql, args).fetchall()
    finally:
        db.close()


def state(config: FamilyConfigFiles, alert_id: str) -> str | None:
    rows = query(config, "SELECT state FROM alerts WHERE id = ?", alert_id)
    return rows[0]["state"] if rows else None


def trail(config: FamilyConfigFiles, alert_id: str) -> list[sqlite3.Row]:
    return query(config, "SELECT * FROM alert_events WHERE alert_id = ? ORDER BY seq", alert_id)


def first_notice(config: FamilyConfigFiles, alert_id: str) -> sqlite3.Row | None:
    rows = query(
        config,
        "SELECT * FROM outbox WHERE alert_id = ? AND member = 'anna' AND purpose = 'alert'"
        " AND step = 0",
        alert_id,
    )
    return rows[0] if rows else None


def test_an_emergency_nobody_received_is_not_delivered_until_the_app_takes_it(
    tmp_path: Path, broker: Mosquitto
) -> None:
    # the ladder's first step far off: `delivered` is only the state of an alert not escalated
    config = write_config(tmp_path / "family", broker, step_s=60.0, repeat_s=60.0)
    setup_household(config, ONLY_THE_APP)
    with FamilyWorker(config) as worker, device_standin(broker) as device:
        alert = create(EmergencyAlert(trigger="voice", said=SAID), H, D)
        device.send(alert)

        # The broker took the notice for Anna's inbox (PUBACK 0x10) and dropped it.
        assert wait_for(lambda: (first_notice(config, alert.id) or {"attempts": 0})["attempts"])
        assert state(config, alert.id) == "open"
        notice = first_notice(config, alert.id)
        assert notice is not None and notice["state"] == "pending"
        assert "no subscriber" in notice["last_error"]
        events = [e["event"] for e in trail(config, alert.id)]
        assert "sent" not in events and "delivered" not in events
        (undelivered,) = [e for e in trail(config, alert.id) if e["event"] == "undelivered"]
        assert undelivered["actor"] == "anna"
        assert undelivered["detail"].startswith("alert by mqtt: no subscriber (0x10")

        # Anna's app comes online: a persistent session on the household's inboxes (hers is
        # the only one the service writes to).
        with Backend(broker, household=H, kinds=("inbox",), client_id="anna-app") as app:
            assert app.wait_until(lambda: alert.id in alert_ids(app), 20)
            assert wait_for(lambda: state(config, alert.id) == "delivered")
        notice = first_notice(config, alert.id)
        assert notice is not None and notice["state"] == "sent" and notice["attempts"] >= 2
        events = [e["event"] for e in trail(config, alert.id)]
        assert events.count("undelivered") == 1  # told once, not at every retry
        assert events.index("undelivered") < events.index("sent") < events.index("delivered")

    log = worker.log()
    warnings = [line for line in log.splitlines() if " WARNING " in line]
    assert any(alert.id in line and "not received: no subscriber" in line for line in warnings)
    assert SAID not in log  # ids and reasons only, never what she said
    assert "Traceback" not in log


def alert_ids(app: Backend) -> list[str]:
    return [m.body.alert_id for m in list(app.handled) if m.type == "member.alert"]


class GatewayDown:
    """An SMS gateway that never answers (the stand-in for one: none exists here)."""

    name = "sms"

    def send_many(self, deliveries: list) -> list[Exception | None]:
        return [ChannelError("the gateway is unreachable") for _ in deliveries]


def test_a_delivery_that_keeps_failing_is_tried_less_often_after_an_hour_and_logged_once(
    tmp_path: Path, caplog
) -> None:
    """A member's app or gateway that never comes back must not be tried every minute for
    good, nor fill the log at every try; it is still tried (no notice is dropped)."""
    import logging
    import time

    from services.family import outbox as outbox_module
    from services.family.outbox import Outbox, Planned
    from services.family.store import Store

    store = Store(tmp_path / "family.sqlite3")
    box = Outbox(store, {"sms": GatewayDown()}, "w1")
    row = Planned("n1", H, "sms", "+4915100001", b"Mum needs help", "alert", alert_id="a1")

    def wait_after_try(attempts: int) -> float:
        store.db.execute("UPDATE outbox SET attempts = ?, claim_until = 0", (attempts,))
        before = time.time()
        assert box.flush() == 0
        (claim_until,) = store.db.execute("SELECT claim_until FROM outbox").fetchone()
        return claim_until - before

    try:
        with store.write() as db:
            box.plan(db, [row], time.time())
        with caplog.at_level(logging.DEBUG, logger="services.family.outbox"):
            assert box.send(["n1"]) == 0  # the first try, made as it is planned
            assert 0.5 < wait_after_try(1) < 3  # 1, 2, 4 ... s
            assert 55 < wait_after_try(20) < 62  # then every minute
            late = wait_after_try(60)  # about an hour of tries
            assert outbox_module.RETRY_LATE_S - 5 < late < outbox_module.RETRY_LATE_S + 2
            # about an emergency nobody has answered: every minute still
            with store.write() as db:
                db.execute(
                    "INSERT INTO alerts (id, household, device, category, type, body,"
                    " raised_ts, received, state) VALUES ('a1', ?, ?, 'emergency',"
                    " 'alert.emergency', '{}', '2026-11-24T10:00:00Z', 0, 'escalated')",
                    (H, D),
                )
            assert 55 < wait_after_try(60) < 62
            store.db.execute("UPDATE alerts SET state = 'acknowledged'")
            assert wait_after_try(60) > outbox_module.RETRY_LATE_S - 5
        warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
        assert len(warnings) == 1 and "not sent" in warnings[0].getMessage()
        assert sum(r.levelno == logging.DEBUG for r in caplog.records) == 5
        (state,) = store.db.execute("SELECT state FROM outbox").fetchone()
        assert state == "pending"  # kept, never dropped
    finally:
        store.close()

"""Whether the senior's devices are there: their retained `device.status` (online or
offline, a phone's battery) and when the service last heard anything from each."""

from __future__ import annotations

import datetime as dt
import sqlite3
import time
from typing import Any

from protocol import DeviceStatus, Message
from services.family.store import Store


def record_status(store: Store, message: Message) -> bool:
    """Keep a device's status unless a newer one is kept already; False when it was older."""
    body: DeviceStatus = message.body
    # A retained status may be old when it reaches us: it was heard when it was sent.
    sent = dt.datetime.fromisoformat(message.ts.replace("Z", "+00:00")).timestamp()
    now = min(sent, time.time())
    with store.write(durable=False) as db:
        return bool(
            db.execute(
                "INSERT INTO device_status (household, device, state, reason, battery, ts, heard)"
                " VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (household, device) DO UPDATE SET"
                " state = excluded.state, reason = excluded.reason, battery = excluded.battery,"
                " ts = excluded.ts, heard = MAX(heard, excluded.heard)"
                " WHERE excluded.ts >= device_status.ts",
                (
                    message.household,
                    message.device,
                    body.state,
                    body.reason,
                    body.battery,
                    message.ts,
                    now,
                ),
            ).rowcount
        )


def heard(store: Store, household: str, device: str) -> None:
    """Anything from a device shows it is there, whatever its last status said."""
    store.db.execute(
        "UPDATE device_status SET heard = MAX(heard, ?) WHERE household = ? AND device = ?",
        (time.time(), household, device),
    )


def statuses(
    db: sqlite3.Connection, household: str, devices: tuple[str, ...]
) -> list[dict[str, Any]]:
    """One entry per device of the household, in its order; `state` None: never heard of."""
    rows = {
        r["device"]: dict(r)
        for r in db.execute("SELECT * FROM device_status WHERE household = ?", (household,))
    }
    out = []
    for device in devices:
        row = rows.get(device, {"state": None, "reason": None, "battery": None, "heard": None})
        out.append(
            {"device": device, **{k: row[k] for k in ("state", "reason", "battery", "heard")}}
        )
    return out

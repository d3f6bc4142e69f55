"""The web console of a `family-notify serve --web` worker, through a real Mosquitto, with
1,000 households in its SQLite file and one busy household looked at: 200 alerts with their
trails, 30 days of readings (three measures, three a day), four weeks of reminder events.

- page time: one signed-in client asking for each page in turn (p50/p99 of the whole
  request, HTTP on loopback, rendering and SQLite included);
- live update: with `STREAMS` pages open on the household (server-sent event streams), the
  time from the device publishing an emergency to each open page hearing `change` (one
  thread asks SQLite every 50 ms whether anyone committed, then each page looks);
- idle cost: the worker's CPU while those pages stay open and nothing happens.
"""

from __future__ import annotations

import datetime as dt
import http.client
import json
import random
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

from bench.common import Options
from bench.family import populate
from bench.mqtt import percentile
from protocol import EmergencyAlert, HealthReading, ReminderMissed, ReminderTaken, create
from protocol.schema import utc_timestamp
from services.family.store import Store
from tests.broker import Mosquitto
from tests.family_process import FamilyWorker, device_standin, write_config
from tests.family_web import WebClient, set_password

HOUSEHOLDS = Options().households
HOUSE, DEVICE = "house-0000", "dev-0000"
PASSWORD = "bench password"
PAGES = ("/", "/reminders", "/health")
REQUESTS = 100  # per page
STREAMS = 20
ALERTS = 20
IDLE_S = 10.0


def busy_household(database: Path) -> None:
    """Alerts, readings and reminder events for HOUSE, written straight into SQLite."""
    store = Store(database)
    now = time.time()
    try:
        with store.write() as db:
            for n in range(200):
                alert = create(EmergencyAlert(trigger="voice", said="help"), HOUSE, DEVICE)
                at = now - n * 3600
                db.execute(
                    "INSERT INTO alerts (id, household, device, category, type, body, raised_ts,"
                    " received, state, acked_by, acked_at) VALUES (?, ?, ?, 'emergency',"
                    " 'alert.emergency', ?, ?, ?, 'acknowledged', 'm1', ?)",
                    (alert.id, HOUSE, DEVICE, '{"trigger": "voice", "said": "help"}', alert.ts,
                     at, at + 60),
                )  # fmt: skip
                for event in ("opened", "sent", "delivered", "acknowledged"):
                    db.execute(
                        "INSERT INTO alert_events (alert_id, at, event, actor) VALUES (?, ?, ?,"
                        " 'm1')",
                        (alert.id, at, event),
                    )
            bodies = []
            for hours in range(0, 30 * 24, 8):
                taken = utc_timestamp(dt.datetime.now(dt.UTC) - dt.timedelta(hours=hours))
                bodies += [
                    HealthReading(measure="blood_pressure", value=130, diastolic=80,
                                  taken_at=taken),
                    HealthReading(measure="heart_rate", value=70, taken_at=taken),
                    HealthReading(measure="weight", value=62.5, taken_at=taken),
                    ReminderTaken(reminder_id="pills", due=taken, taken_at=taken)
                    if hours % 24 else ReminderMissed(reminder_id="pills", due=taken),
                ]  # fmt: skip
            for body in bodies:
                message = create(body, HOUSE, DEVICE)
                db.execute(
                    "INSERT INTO events (id, household, device, type, day, received, body)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (message.id, HOUSE, DEVICE, message.type, "2026-01-01", now,
                     json.dumps(message.to_dict()["body"])),
                )  # fmt: skip
    finally:
        store.close()


def page_times(client: WebClient) -> dict:
    out = {}
    for page in PAGES:
        times = []
        for _ in range(REQUESTS):
            started = time.perf_counter()
            response = client.get(page)
            times.append(time.perf_counter() - started)
            assert response.status == 200, response.status
        name = page.strip("/") or "alerts"
        out[f"{name}_ms_p50"] = 1000 * percentile(times, 50)
        out[f"{name}_ms_p99"] = 1000 * percentile(times, 99)
        out[f"{name}_kb"] = len(response.body.encode()) / 1024
    return out


class Stream:
    """One open page's event stream; the perf_counter of each `change` it heard."""

    def __init__(self, url: str, sid: str) -> None:
        parts = urlsplit(url)
        self.connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
        self.connection.request("GET", "/events", headers={"Cookie": f"sid={sid}"})
        self.response = self.connection.getresponse()
        self.changes: list[float] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        try:
            for line in self.response:
                if line.startswith(b"event: change"):
                    self.changes.append(time.perf_counter())
        except (OSError, ValueError):
            pass

    def close(self) -> None:
        self.connection.close()


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / 100.0  # utime + stime, in clock ticks


def run() -> dict:
    with (
        tempfile.TemporaryDirectory(prefix="bench-web-") as tmp,
        Mosquitto(Path(tmp) / "broker") as broker,
    ):
        files = write_config(Path(tmp) / "family", broker, step_s=3600, tick_s=0.5)
        populate(files.database, HOUSEHOLDS)
        busy_household(files.database)
        assert set_password(files, HOUSE, "m1", PASSWORD).returncode == 0
        with FamilyWorker(files, web="127.0.0.1:0") as worker, device_standin(broker) as device:
            url = worker.web_url or ""
            client = WebClient(url)
            assert client.sign_in(HOUSE, "m1", PASSWORD).status == 303
            results: dict = {"households": HOUSEHOLDS, "pages": page_times(client)}
            streams = [Stream(url, client.cookies["sid"]) for _ in range(STREAMS)]
            time.sleep(2.0)
            assert worker.process is not None
            before = cpu_seconds(worker.process.pid)
            time.sleep(IDLE_S)
            idle = (cpu_seconds(worker.process.pid) - before) / IDLE_S
            latencies = []
            for _ in range(ALERTS):
                heard = [len(s.changes) for s in streams]
                alert = create(EmergencyAlert(trigger="sos_button"), HOUSE, DEVICE)
                sent = time.perf_counter()
                device.send(alert)
                deadline = time.monotonic() + 30
                while any(len(s.changes) <= h for s, h in zip(streams, heard, strict=True)):
                    if time.monotonic() > deadline:
                        raise RuntimeError("an open page did not hear the alert")
                    time.sleep(0.005)
                latencies += [s.changes[h] - sent for s, h in zip(streams, heard, strict=True)]
                # The next alert after this one's trail settled, at a random phase.
                time.sleep(1.0 + random.random())
            for stream in streams:
                stream.close()
            results["live"] = {
                "open_pages": STREAMS,
                "alert_to_page_ms_p50": 1000 * percentile(latencies, 50),
                "alert_to_page_ms_p99": 1000 * percentile(latencies, 99),
                "idle_cpu_percent_of_a_core": 100 * idle,
            }
            return results

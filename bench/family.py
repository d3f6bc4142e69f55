"""The family-notification service through a real Mosquitto on this machine, with N
simulated households (`--households`, 1,000 by default; a senior and three members to tell
each): alerts per second and the latency from a device publishing `alert.emergency` to a
member's inbox having the notice, with one `family-notify serve` worker and with two side by side.

Loads, as in bench/mqtt.py: a burst (one emergency from every household at once; the rate
is alerts handled per second, the latency includes the queue) and steady 20 and 100
alerts/s from random households (the latency one alert sees on a busy service). The devices
are one MQTT client publishing for all households, the members' apps one client hearing
every inbox; both run in this process, on the same two cores as the broker and the workers.
Escalation is set an hour away, so what is measured is the first notice.
"""

from __future__ import annotations

import random
import tempfile
import time
from pathlib import Path

from bench.common import Options, percentile
from protocol import EmergencyAlert, Message, create
from services.family import households
from services.family.households import Household, Member
from services.family.store import Store
from tests.backend import Backend
from tests.broker import Mosquitto
from tests.family_process import FamilyWorker, apps_standin, device_standin, write_config

NOTIFIED = 3  # members told of an emergency in each household (plus the senior)
STEADY = 300
RATES = (20.0, 100.0)  # alerts a second: an ordinary busy hour, and a heavy one


def populate(database: Path, count: int) -> None:
    store = Store(database)
    try:
        for n in range(count):
            members = [Member(id="senior", name="Senior", role="senior")]
            members += [
                Member(id=f"m{i}", name=f"Member {i}", role="caregiver" if i == 0 else "family",
                       relation="daughter" if i == 1 else None,
                       contacts=(f"sms:+49151{n:05d}{i}",))
                for i in range(NOTIFIED)
            ]  # fmt: skip
            households.add(
                store,
                Household(id=f"house-{n:04d}", senior="Mum", devices=(f"dev-{n:04d}",),
                          timezone="Europe/Berlin", members=tuple(members)),
            )  # fmt: skip
    finally:
        store.close()


def alert_from(n: int) -> Message:
    """An emergency from household n's device."""
    return create(EmergencyAlert(trigger="voice", said="help"), f"house-{n:04d}", f"dev-{n:04d}")


def measure(device: Backend, apps: Backend, alerts: list[Message], rate: float | None) -> dict:
    """Publish the alerts (back to back, or `rate` a second) and wait for every notice."""
    sent: dict[str, float] = {}
    started = time.perf_counter()
    if rate is None:
        for message in alerts:
            sent[message.id] = time.perf_counter()
        device.send_many(alerts)
    else:
        for i, message in enumerate(alerts):
            time.sleep(max(0.0, started + i / rate - time.perf_counter()))
            sent[message.id] = time.perf_counter()
            device.send(message)
    expected = len(alerts) * NOTIFIED

    def notices() -> list[Message]:
        return [m for m in list(apps.handled) if m.type == "member.alert"
                and m.body.alert_id in sent]  # fmt: skip

    if not apps.wait_until(lambda: len(notices()) >= expected, 300):
        raise RuntimeError(f"{expected - len(notices())} notices did not arrive")
    arrived = notices()
    latency = [apps.arrivals[m.id] - sent[m.body.alert_id] for m in arrived]
    first_notice: dict[str, float] = {}
    for m in arrived:
        first_notice[m.body.alert_id] = min(
            first_notice.get(m.body.alert_id, 1e18), apps.arrivals[m.id]
        )
    last = max(apps.arrivals[m.id] for m in arrived)
    return {
        "alerts": len(alerts),
        "notices": len(arrived),
        "alerts_per_s": len(alerts) / (last - started),
        "alert_to_inbox_ms_p50": 1000 * percentile(latency, 50),
        "alert_to_inbox_ms_p99": 1000 * percentile(latency, 99),
        "alert_to_first_inbox_ms_p99": 1000
        * percentile([first_notice[a] - sent[a] for a in first_notice], 99),
    }


def run_with(workers: int, directory: Path, options: Options) -> dict:
    households = min(options.households, 20) if options.quick else options.households
    steady = 20 if options.quick else STEADY
    with Mosquitto(directory / "broker") as broker:
        files = write_config(
            directory / "family", broker, step_s=3600, repeat_s=3600, tick_s=0.5, claim_s=60
        )
        warm = 10 if options.quick else 50
        # A second call for help while a household's emergency is still unanswered is
        # folded into it (no alert of its own), so every alert measured comes from a
        # household with none open: the burst from each of `households`, the rest from
        # as many more, in a seeded random order.
        extra = warm + steady * len(RATES)
        populate(files.database, households + extra)
        fresh = list(range(households, households + extra))
        random.Random(options.seed).shuffle(fresh)
        running = [FamilyWorker(files, str(i)).start() for i in range(workers)]
        try:
            with device_standin(broker) as device, apps_standin(broker) as apps:
                measure(device, apps, [alert_from(fresh.pop()) for _ in range(warm)], None)
                burst = measure(device, apps, [alert_from(n) for n in range(households)], None)
                results = {"burst": burst}
                for rate in RATES:
                    alerts = [alert_from(fresh.pop()) for _ in range(steady)]
                    results[f"steady_{rate:.0f}_per_s"] = measure(device, apps, alerts, rate)
                return results
        finally:
            for worker in running:
                worker.stop()


def run(options: Options) -> dict:
    results = {
        "households": min(options.households, 20) if options.quick else options.households,
        "members_told_per_alert": NOTIFIED,
    }
    for workers in (1, 2):
        with tempfile.TemporaryDirectory(prefix="bench-family-") as tmp:
            results[f"workers_{workers}"] = run_with(workers, Path(tmp), options)
    return results

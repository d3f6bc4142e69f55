"""doctor-connect with 500 doctors and 5,000 waiting requests: how many requests a second it
matches and how long a request waits for its doctor once one is free.

Three layers, each timed on its own:

* `matcher`: the in-memory matcher alone. 500 doctors, all busy; 5,000 requests waiting
  across the seven departments. A cycle frees one doctor, matches, and adds a new request
  so 5,000 keep waiting.
* `engine`: the same through the engine and its SQLite store (`synchronous=FULL`: every
  change is on disk before it is acknowledged), messages built and queued, no network.
* `broker_default` / `broker_tcp_nodelay`: the real `doctor-connect serve` process and a
  real Mosquitto; devices and the doctors' apps are paho clients. 500 requests find a free
  doctor (`request_to_assigned`: device publishes → device hears `consultation.assigned`),
  then 5,000 more wait; doctors end sessions back to back (`drain`: ends/s turned into new
  assignments), then one at a time (`free_to_assigned`: doctor publishes `doctor.end` →
  the doctor's app has its next session). Once with Mosquitto's defaults (tests/broker.py),
  once with `set_tcp_nodelay true` (and TCP_NODELAY on the stand-ins' sockets too; the
  service sets it on its own), which is what a deployment should use.
"""

from __future__ import annotations

import datetime as dt
import itertools
import random
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
from paho.mqtt.subscribeoptions import SubscribeOptions

from bench.common import Options
from protocol import ConsultationRequest, DoctorEnd, create, topics
from protocol.tcp import no_delay
from services.doctor_connect import roster
from services.doctor_connect.config import Config
from services.doctor_connect.departments import DEPARTMENTS, GENERAL_PRACTICE
from services.doctor_connect.engine import Engine
from services.doctor_connect.hours import AROUND_THE_CLOCK, WorkingHours
from services.doctor_connect.matcher import Doctor, Matcher, Waiting
from services.doctor_connect.store import Store
from tests.backend import Backend
from tests.broker import Mosquitto
from tests.doctor_connect_process import PRACTICE, DoctorConnectProcess

DOCTORS = 500
WAITING = 5_000
CYCLES = 2_000
BATCH = 500  # requests sent before waiting for their answers
GPS = 200  # the rest are spread over the six specialist departments
HOUSEHOLD = "bench"
LANGUAGES = ("en", "en", "en", "de", "fr")


def percentiles(values: list[float], scale: float = 1000.0) -> dict[str, float]:
    return {
        "p50_ms": scale * float(np.percentile(values, 50)),
        "p99_ms": scale * float(np.percentile(values, 99)),
    }


def roster_plan() -> list[tuple[str, str, str]]:
    """(doctor id, department, language) for 500 doctors."""
    specialists = [d for d in DEPARTMENTS if d != GENERAL_PRACTICE]
    plan = []
    for n in range(DOCTORS):
        department = GENERAL_PRACTICE if n < GPS else specialists[n % len(specialists)]
        plan.append((f"dr-{n:03d}", department, LANGUAGES[n % len(LANGUAGES)]))
    return plan


def departments(rng: random.Random, count: int) -> list[str]:
    """Request departments in proportion to the doctors there."""
    weights = {}
    for _, department, _ in roster_plan():
        weights[department] = weights.get(department, 0) + 1
    return rng.choices(list(weights), list(weights.values()), k=count)


# --- the matcher alone ------------------------------------------------------------------------


def bench_matcher(seed: int) -> dict:
    rng = random.Random(seed + 1)
    matcher = Matcher(consult_s=600)
    hours = WorkingHours.parse(AROUND_THE_CLOCK)
    for doctor_id, department, language in roster_plan():
        matcher.put_doctor(
            Doctor(
                doctor_id, doctor_id, department, hours, frozenset({language, "en"}), "available"
            )
        )
        matcher.doctors[doctor_id].open_sessions = 1  # all busy
    seq = itertools.count()
    now = time.time()
    local = dt.datetime.now()

    def new_request(department: str) -> Waiting:
        n = next(seq)
        return Waiting(f"r{n}", department, rng.choice(("urgent", "soon", "soon", "routine")),
                       created=now + n, deadline=now + 1e9, seq=n,
                       language=rng.choice(LANGUAGES))  # fmt: skip

    for department in departments(rng, WAITING):
        matcher.add(new_request(department))
    doctor_ids = list(matcher.doctors)
    times, matched = [], 0
    started = time.perf_counter()
    for department in departments(rng, CYCLES):
        matcher.add(new_request(department))
        doctor = matcher.doctors[rng.choice(doctor_ids)]
        t0 = time.perf_counter()
        doctor.open_sessions = 0  # the doctor ended a consultation
        pairs = matcher.match(local)
        times.append(time.perf_counter() - t0)
        matched += len(pairs)
        if not pairs:
            doctor.open_sessions = 1
    elapsed = time.perf_counter() - started
    t0 = time.perf_counter()
    estimates = matcher.estimates(local)
    estimate_s = time.perf_counter() - t0
    return {
        "doctors": DOCTORS,
        "waiting": len(matcher),
        "matches": matched,
        "matches_per_s": matched / elapsed,
        "free_to_assigned": percentiles(times),
        "all_positions_ms": 1000 * estimate_s,  # positions and waits of every waiting request
        "positions": len(estimates),
    }


# --- the engine with its store --------------------------------------------------------------


def bench_engine(directory: Path, seed: int) -> dict:
    rng = random.Random(seed + 2)
    config = Config()
    config.service.practice = PRACTICE
    config.video.secret = "bench"
    config.timings.position_interval_s = 30
    store = Store(directory / "engine.sqlite3")
    for doctor_id, department, language in roster_plan():
        new = roster.NewDoctor(doctor_id, doctor_id, department, AROUND_THE_CLOCK,
                               (language, "en"), state="available")  # fmt: skip
        roster.save(store, roster.build(new))
    engine = Engine(store, config)
    request_times = []
    for n, department in enumerate(departments(rng, DOCTORS + WAITING)):
        body = ConsultationRequest(mode="video", department=department)
        message = create(body, HOUSEHOLD, f"dev-{n}")
        t0 = time.perf_counter()
        engine.handle(message)
        request_times.append(time.perf_counter() - t0)
    store.db.execute("DELETE FROM outbox")  # nobody publishes here
    open_rows = store.query("SELECT id, doctor FROM requests WHERE state = 'assigned'")
    end_times = []
    before = engine.assigned
    started = time.perf_counter()
    for row in open_rows[: CYCLES // 2]:
        t0 = time.perf_counter()
        engine.handle(create(DoctorEnd(row["id"]), PRACTICE, row["doctor"]))
        end_times.append(time.perf_counter() - t0)
    elapsed = time.perf_counter() - started
    t0 = time.perf_counter()
    engine.tick()
    tick_s = time.perf_counter() - t0
    result = {
        "waiting": len(engine.matcher),
        "request_handled": percentiles(request_times[:DOCTORS]),
        "request_queued": percentiles(request_times[DOCTORS:]),
        "matches_per_s": (engine.assigned - before) / elapsed,
        "free_to_assigned": percentiles(end_times),
        "tick_ms": 1000 * tick_s,
    }
    store.close()
    return result


# --- through the broker and the real process -------------------------------------------------


class Doctors(Backend):
    """Every doctor's app in one client: sessions arrive for all of them."""

    def _on_connect(self, client, userdata, flags, reason_code, props) -> None:
        if not reason_code.is_failure:
            filters = topics.doctor_subscription("doctor_session", PRACTICE)
            client.subscribe([(filters, SubscribeOptions(qos=1))])


def bench_broker(directory: Path, seed: int, *, tcp_nodelay: bool) -> dict:
    """With `tcp_nodelay`, Mosquitto sends small packets at once (`set_tcp_nodelay true`);
    by default Nagle's algorithm holds a PUBLISH that follows a PUBACK to the same client
    until that client's delayed TCP acknowledgement, some 40 ms."""
    rng = random.Random(seed + 3)
    broker = Mosquitto(directory / "broker")
    if tcp_nodelay:
        broker.config.write_text(broker.config.read_text() + "set_tcp_nodelay true\n")
    with broker:
        store = Store(directory / "dc" / "dc.sqlite3")
        for doctor_id, department, language in roster_plan():
            new = roster.NewDoctor(doctor_id, doctor_id, department, AROUND_THE_CLOCK,
                                   (language, "en"), state="available")  # fmt: skip
            roster.save(store, roster.build(new))
        store.close()
        backend = DoctorConnectProcess.setup(
            directory / "dc", broker, tick_s=1.0, position_interval_s=30, gp_promise_s=3600
        )
        devices = Backend(broker, household=HOUSEHOLD, kinds=("consultation_update", "refused"),
                          client_id="bench-devices")  # fmt: skip
        doctors = Doctors(broker, household=PRACTICE, kinds=(), client_id="bench-doctors")
        if tcp_nodelay:  # the stand-ins too: what they measure is the service's latency
            for client in (devices, doctors):
                client._client.on_socket_open = no_delay
        devices.start()
        doctors.start()
        try:
            return _run_broker(rng, devices, doctors)
        finally:
            devices.stop()
            doctors.stop()
            backend.stop()


def _assigned(devices: Backend) -> dict[str, float]:
    """request id -> when the device heard consultation.assigned"""
    with devices._cond:
        return {
            m.body.request_id: devices.arrivals[m.id]
            for m in devices.handled
            if m.type == "consultation.assigned"
        }


def _sessions(doctors: Doctors) -> list[tuple[str, str, float]]:
    """(doctor, request id, arrival) of every doctor.session, in arrival order"""
    with doctors._cond:
        return [
            (m.device, m.body.request_id, doctors.arrivals[m.id])
            for m in doctors.handled
            if m.type == "doctor.session"
        ]


def _run_broker(rng: random.Random, devices: Backend, doctors: Doctors) -> dict:
    # 1. one request per doctor, paced, each finds a free doctor at once
    sent: dict[str, float] = {}
    plan = departments(rng, DOCTORS + WAITING)
    # the first 500 exactly fill the roster: each department as many as it has doctors
    first = [department for _, department, _ in roster_plan()]
    rng.shuffle(first)
    for n, department in enumerate(first):
        message = create(ConsultationRequest(mode="video", department=department),
                         HOUSEHOLD, f"dev-{n}")  # fmt: skip
        sent[message.id] = time.perf_counter()
        devices.send(message)
        time.sleep(0.02)
    if not devices.wait_until(lambda: len(_assigned(devices)) >= DOCTORS, 120):
        raise RuntimeError(f"only {len(_assigned(devices))} of {DOCTORS} assigned")
    assigned = _assigned(devices)
    immediate = [assigned[i] - t for i, t in sent.items()]

    # 2. 5,000 more wait. Sent in batches of BATCH: mosquitto's default queue per client
    # (max_queued_messages 1000) drops QoS 1 messages beyond it for a subscriber that has
    # not caught up, so a burst larger than that needs a broker configured for it.
    t0 = time.perf_counter()
    for start in range(DOCTORS, DOCTORS + WAITING, BATCH):
        for n in range(start, min(start + BATCH, DOCTORS + WAITING)):
            body = ConsultationRequest(mode="video", department=plan[n])
            devices.send(create(body, HOUSEHOLD, f"dev-{n}"))
        done = min(start + BATCH, DOCTORS + WAITING) - DOCTORS
        if not devices.wait_until(lambda d=done: len(devices.ids("consultation.queued")) >= d, 120):
            count = len(devices.ids("consultation.queued"))
            raise RuntimeError(f"{count} of {done} requests were queued")
    intake_s = time.perf_counter() - t0

    # 3. drain: doctors end sessions back to back; each end is a new assignment
    open_sessions = {doctor: request for doctor, request, _ in _sessions(doctors)}
    ending = list(open_sessions.items())[:DOCTORS]
    before = len(_sessions(doctors))
    t0 = time.perf_counter()
    for doctor, request in ending:
        doctors.send(create(DoctorEnd(request), PRACTICE, doctor))
    if not doctors.wait_until(lambda: len(_sessions(doctors)) >= before + len(ending), 300):
        raise RuntimeError("the ended sessions were not all followed by new ones")
    drain_s = time.perf_counter() - t0

    # 4. one at a time: a doctor ends, how long until their next session arrives
    latencies = []
    current = {doctor: request for doctor, request, _ in _sessions(doctors)}
    for doctor in rng.sample(sorted(current), 200):
        count = len(_sessions(doctors))
        t0 = time.perf_counter()
        doctors.send(create(DoctorEnd(current[doctor]), PRACTICE, doctor))
        if not doctors.wait_until(lambda c=count: len(_sessions(doctors)) > c, 30):
            raise RuntimeError("no new session after an end")
        _, _, arrived = _sessions(doctors)[count]
        latencies.append(arrived - t0)
        time.sleep(0.01)
    return {
        "doctors": DOCTORS,
        "waiting_at_start_of_drain": WAITING,
        "request_to_assigned": percentiles(immediate),
        "requests_queued_per_s": WAITING / intake_s,
        "drain_matches_per_s": len(ending) / drain_s,
        "free_to_assigned": percentiles(latencies),
    }


def run(options: Options) -> dict:
    """Every layer; with `options.quick`, the in-memory matcher alone."""
    threading.current_thread().name = "bench-doctor"
    seed = options.seed
    if options.quick:
        return {"matcher": bench_matcher(seed)}
    with tempfile.TemporaryDirectory(prefix="bench-doctor-") as tmp:
        directory = Path(tmp)
        return {
            "matcher": bench_matcher(seed),
            "engine": bench_engine(directory, seed),
            "broker_default": bench_broker(directory / "default", seed, tcp_nodelay=False),
            "broker_tcp_nodelay": bench_broker(directory / "nodelay", seed, tcp_nodelay=True),
        }


if __name__ == "__main__":
    import json

    print(json.dumps(run(Options()), indent=2))

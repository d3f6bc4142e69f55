"""The device link through a real Mosquitto on this machine, outbox on: messages per second
and the delivery latency from `link.publish()` (stored, fsync'd) to a backend that
validated and deduplicated the message.

Two loads: a burst (as many as the link takes; the latency then includes the wait in the
outbox) and a steady 50 messages/s (the latency of one message on an idle link, which is
what an alert sees). `publish_call_ms` is how long `link.publish()` blocks its caller: the
store, one fsync'd SQLite commit, which is also what bounds the burst rate.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from assistant.config import MqttConfig
from assistant.link import Link
from bench.common import Options, percentile
from protocol import FamilyMessage
from tests.backend import Backend
from tests.broker import Mosquitto

HOUSEHOLD, DEVICE = "bench-household", "bench-device"
BURST = 2000
STEADY, STEADY_RATE = 250, 50.0


def measure(link: Link, backend: Backend, count: int, rate: float | None) -> dict:
    """Publish `count` messages (every 1/rate s, or back to back) and wait for all."""
    sent: dict[str, float] = {}
    calls: list[float] = []  # how long publish() blocks its caller: the fsync'd store
    body = FamilyMessage(to="all", text="benchmark message of an ordinary length, no more")
    started = time.perf_counter()
    for n in range(count):
        if rate is not None:
            time.sleep(max(0.0, started + n / rate - time.perf_counter()))
        before = time.perf_counter()
        sent[link.publish(body).id] = before
        calls.append(time.perf_counter() - before)
    if not backend.wait_until(lambda: all(i in backend.arrivals for i in sent), 120):
        raise RuntimeError("not every message arrived")
    arrivals = [backend.arrivals[i] for i in sent]
    latency = [backend.arrivals[i] - t for i, t in sent.items()]
    return {
        "messages": count,
        "messages_per_s": count / (max(arrivals) - started),
        "latency_ms_p50": 1000 * percentile(latency, 50),
        "latency_ms_p99": 1000 * percentile(latency, 99),
        "publish_call_ms_p50": 1000 * percentile(calls, 50),
        "publish_call_ms_p99": 1000 * percentile(calls, 99),
    }


def run(options: Options) -> dict:
    burst, steady = (100, 25) if options.quick else (BURST, STEADY)
    with tempfile.TemporaryDirectory(prefix="bench-mqtt-") as tmp:
        directory = Path(tmp)
        with Mosquitto(directory / "broker") as broker, Backend(broker) as backend:
            settings = MqttConfig(host=broker.host, port=broker.port, keepalive_s=30)
            # pace=None: the link's own speed; a device paces what is not an alert to
            # the services' rate limit (protocol.ratelimit.DEVICE_PACE), 1.6 msg/s after
            # a burst, which would be all this measured.
            link = Link(
                settings, household=HOUSEHOLD, device=DEVICE, state_dir=directory, pace=None
            )
            link.start()
            try:
                if not link.wait_connected(10):
                    raise RuntimeError("the link did not connect")
                measure(link, backend, 20 if options.quick else 100, None)  # warm-up
                results = {
                    "burst": measure(link, backend, burst, None),
                    "steady_50_per_s": measure(link, backend, steady, STEADY_RATE),
                }
                if not link.wait_drained(30):
                    raise RuntimeError("the outbox did not drain")
            finally:
                link.close()
    return results


if __name__ == "__main__":
    import json

    print(json.dumps(run(Options()), indent=2))

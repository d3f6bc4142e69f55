"""A service's main thread waits for SIGTERM with no lock in the handler: a handler calling
`Event.set()` while the main thread sat in `Event.wait()` on the same event hung a
family-notify worker for good (its SIGUSR1 stack dump showed the handler waiting on the
lock of the interrupted wait). Real processes, real signals."""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import time

CHILD = """
import sys, time
from services.stop_signals import StopSignals
stop = StopSignals()
print("ready", flush=True)
assert stop.wait(timeout=0.05) is False  # nothing yet: it times out
stop.wait()
print("stopped", flush=True)
"""


def test_a_service_stops_on_sigterm_and_sigint_whenever_they_come() -> None:
    rng = random.Random(3)
    for round_ in range(12):
        child = subprocess.Popen([sys.executable, "-c", CHILD], stdout=subprocess.PIPE, text=True)
        assert child.stdout is not None and child.stdout.readline().strip() == "ready"
        time.sleep(rng.uniform(0.06, 0.5))  # at any point of its polling
        child.send_signal(signal.SIGINT if round_ % 3 == 0 else signal.SIGTERM)
        out, _ = child.communicate(timeout=5)
        assert child.returncode == 0 and out.strip() == "stopped"

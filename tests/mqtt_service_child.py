"""An `MqttService` in a process of its own, for tests that crash it mid-handling.

    python -m tests.mqtt_service_child --port PORT --client-id ID --record FILE \
        [--crash-once MARKER] [--state FILE]

It serves the alert topics of every household; each message it handles is appended to
`--record` (one id a line). With `--crash-once`, the first message it is handed kills the
process (os._exit, no clean-up, no acknowledgement) and leaves MARKER behind, so the next
process started with the same MARKER handles messages normally. Prints `ready` once
subscribed.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from protocol import Message, topics
from services.mqtt_service import MqttService, MqttSettings


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--client-id", required=True)
    parser.add_argument("--record", required=True)
    parser.add_argument("--crash-once")
    parser.add_argument("--state")
    args = parser.parse_args()
    record = Path(args.record)

    def handle(message: Message) -> None:
        if args.crash_once and not Path(args.crash_once).exists():
            Path(args.crash_once).touch()
            os._exit(3)  # mid-handling: nothing persisted, nothing acknowledged
        with record.open("a") as out:
            out.write(message.id + "\n")

    settings = MqttSettings(port=args.port, reconnect_min_s=0.1, reconnect_max_s=0.5)
    service = MqttService(
        settings,
        client_id=args.client_id,
        group="crash-test",
        filters=[topics.subscription("alert")],
        handler=handle,
        state_path=args.state,
    )
    service.start(timeout=15)
    print("ready", flush=True)
    try:
        while True:
            time.sleep(0.2)
    except KeyboardInterrupt:
        service.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())

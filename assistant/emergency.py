"""After an alert is raised: what the senior is told about it getting out, and the alert
light and vibration.

The alert is on disk in the outbox before anything is said (assistant/link.py), so the
local part never waits for the network. If the broker has not taken the alert - the link is
down, or it is still not acknowledged `grace_s` later - the senior hears that it is queued
and that the device keeps trying; once it is acknowledged after that, that it has gone
out. An alert that leaves at once needs no word beyond the reassurance already said. When
someone answers (`alert.ack`) the announcer says who; the alert light goes off. Until then
it is sent again now and then, also after a restart (assistant/resend.py).
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass

from assistant.announcer import Announcer
from assistant.link import Link
from assistant.resend import Resender
from assistant.unanswered_alerts import UnansweredAlertStore
from devices.indicator import StatusLights
from devices.interfaces import Notifier
from protocol import AlertAck, Message

log = logging.getLogger(__name__)

QUEUED = "I could not reach your family yet. I will keep trying, and I am here with you."
SENT = "Your call for help has gone out to your family now."
NO_LINK = (
    "This device is not connected to your family, so I cannot send for help. "
    "If you can, call for help on a phone."
)
SCREEN_TEXT = "Calling for help"
ALERT_VIBRATION_MS = (600, 200, 600, 200, 600)
GRACE_S = 3.0
POLL_S = 0.2
# An alert out of the outbox but answered by nobody is sent again (assistant/resend.py)
# after these waits, doubling up to the last.
RESEND_FIRST_S = 30.0
RESEND_MAX_S = 300.0


@dataclass
class _Watch:
    raised: float
    told_queued: bool = False


class Emergencies:
    def __init__(
        self,
        link: Link | None,
        announcer: Announcer,
        lights: StatusLights,
        notifier: Notifier | None = None,
        grace_s: float = GRACE_S,
        resend_s: tuple[float, float] = (RESEND_FIRST_S, RESEND_MAX_S),
        store: UnansweredAlertStore | None = None,
    ) -> None:
        """`store`: where unanswered alerts are kept across a restart, to be sent again
        (assistant/unanswered_alerts.py); without one they are kept in memory only."""
        self.link = link
        self.store = store
        self.announcer = announcer
        self.lights = lights
        self.notifier = notifier
        self.grace_s = grace_s
        self.unanswered = (
            Resender(link, store, *resend_s, waits_for="an answer") if link is not None else None
        )
        self._lock = threading.Lock()
        self._waiting: dict[str, _Watch] = {}  # alert id -> its watch, until it is out
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def raised(self, message: Message | None) -> None:
        """An alert was stored for sending (None: it could not be, there is no link). A
        light or a vibration motor that fails is logged: the alert and what the senior
        hears of it go on."""
        try:
            self.lights.alert(True)
            if self.notifier is not None:
                self.notifier.vibrate(ALERT_VIBRATION_MS)
                self.notifier.notify(SCREEN_TEXT)
        except Exception:
            log.exception("the alert light or vibration failed")
        if message is None or self.link is None:
            self.announcer.queue(NO_LINK, urgent=True)
            return
        assert self.unanswered is not None
        self.unanswered.add(message)
        with self._lock:
            self._waiting[message.id] = _Watch(time.monotonic())
        self.check()

    def answered(self, ack: AlertAck) -> None:
        """Someone took charge of an alert: the light goes off once all are answered."""
        if self.unanswered is None or not self.unanswered.settle(ack.alert_id):
            self.lights.alert(False)

    def check(self) -> None:
        """Tell the senior what became of alerts waiting to go out; show the link's state."""
        if self.link is None:
            return
        connected = self.link.connected
        self.lights.offline(not connected)
        now = time.monotonic()
        say: list[str] = []
        with self._lock:
            for alert_id, watch in list(self._waiting.items()):
                if not self.link.outbox.contains(alert_id):  # acknowledged by the broker
                    del self._waiting[alert_id]
                    log.info("alert %s is out", alert_id)
                    if watch.told_queued:
                        say.append(SENT)
                elif not watch.told_queued and (not connected or now - watch.raised > self.grace_s):
                    watch.told_queued = True
                    log.warning("alert %s could not be sent yet: it waits in the outbox", alert_id)
                    say.append(QUEUED)
        for sentence in dict.fromkeys(say):  # several alerts at once: each sentence once
            self.announcer.queue(sentence, urgent=True)

    @property
    def waiting(self) -> int:
        with self._lock:
            return len(self._waiting)

    def start(self) -> None:
        """Alerts a previous run raised and nobody answered are sent again on the usual
        schedule, and the alert light goes on again for them."""
        if self.unanswered is not None and self.unanswered.start():
            self.lights.alert(True)
        self._thread = threading.Thread(target=self._run, name="emergencies", daemon=True)
        self._thread.start()

    def close(self) -> None:
        if self.unanswered is not None:
            self.unanswered.close()
        self._stop.set()
        if self._thread is not None:
            self._thread.join(2.0)

    def _run(self) -> None:
        while not self._stop.wait(POLL_S):
            try:
                self.check()
            except Exception:  # e.g. the outbox closed under us at shutdown
                log.exception("could not check the alerts waiting to go out")

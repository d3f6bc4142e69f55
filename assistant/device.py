"""The device's ties to the world beyond the speech loop, put together from the config: the
link to the services (with its outbox), the reminders, what the services send to be said,
and what the dialog's actions turn into."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from typing import Any

from assistant.actions import ActionHandler
from assistant.announcer import Announcer
from assistant.config import Config
from assistant.link import Link
from assistant.reminders import REMINDERS_FILE, ReminderPolicy, ReminderStore
from assistant.routines import CareRoutines
from assistant.schedule import parse_clock, time_zone
from protocol import CommandDone, Message

log = logging.getLogger(__name__)


def reminder_policy(config: Config) -> ReminderPolicy:
    settings = config.reminders
    return ReminderPolicy(
        repeat_every=dt.timedelta(minutes=settings.repeat_every_min),
        repeats=settings.repeats,
        catch_up=dt.timedelta(minutes=settings.catch_up_min),
    )


DRAIN_S = 5.0


class Device:
    def __init__(
        self,
        config: Config,
        *,
        link: bool = True,
        clock: Callable[[], dt.datetime] = dt.datetime.now,
    ) -> None:
        """`link` False: nothing leaves the device (a typed demo without services);
        `clock`: local time, for the reminders."""
        self.reminders = ReminderStore(
            config.state_dir() / REMINDERS_FILE,
            tz=time_zone(config.timezone),
            policy=reminder_policy(config),
        )
        self.link: Link | None = None
        if link:
            self.link = Link.from_config(config, on_message=self._received)
        publish = self.link.publish if self.link is not None else None
        self.actions = ActionHandler(publish, self.reminders, clock)
        self.announcer = Announcer(
            self.reminders, on_done=self._confirm, sent_type=self.actions.sent.get, clock=clock
        )
        hours = config.care.inactivity_hours
        self.routines = CareRoutines(
            self.reminders, publish, dt.timedelta(hours=hours) if hours > 0 else None
        )
        self.routines.set_check_ins(
            [f"{parse_clock(at):%H:%M}" for at in config.check_in_times()], clock()
        )

    def _received(self, message: Message) -> None:
        self.announcer.handle(message)

    def _confirm(self, command: Message, ok: bool, why: str | None) -> None:
        """Tell the sender whether a command was carried out (a caregiver sees it)."""
        if self.link is not None:
            done = CommandDone(command_id=command.id, command=command.type, ok=ok, detail=why)
            self.link.publish(done)

    def start(self) -> Device:
        if self.link is not None:
            self.link.start()
        return self

    def close(self, drain_s: float = DRAIN_S) -> None:
        """Stop; while connected, first give what was just stored a moment to go out (it
        stays in the outbox for the next start either way)."""
        if self.link is not None:
            if self.link.connected and not self.link.wait_drained(drain_s):
                log.warning("stopping with messages still to send: they go at the next start")
            self.link.close()
        self.reminders.close()

    def __enter__(self) -> Device:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.close()

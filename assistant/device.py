"""The device's ties to the world beyond the speech loop, put together from the config: the
link to the services (with its outbox), the reminders, what the services send to be said,
what the dialog's actions turn into, and the hardware (devices/: indicator, volume,
location, calls; the emergency path in assistant/emergency.py)."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from typing import Any

from assistant.actions import ActionHandler
from assistant.announcer import Announcer
from assistant.config import Config
from assistant.emergency import Emergencies
from assistant.emergency_check import CHECK_FILE, EmergencyCheckStore
from assistant.hardware import DeviceActions, RemoteControl
from assistant.link import Link
from assistant.lost_state import (
    StorageRefusals,
    mark_told,
    notice,
    spoken,
    storage_notice,
    storage_spoken,
    untold,
)
from assistant.reminders import REMINDERS_FILE, ReminderPolicy, ReminderStore
from assistant.resend import Resender
from assistant.routines import CareRoutines
from assistant.schedule import household_clock, parse_clock, time_zone
from assistant.unanswered_alerts import ALERTS_FILE, UNCONFIRMED_FILE, UnansweredAlertStore
from devices import hardware as hw
from devices.profiles import profile
from protocol import RECEIPTED, AlertAck, AlertReceived, CommandDone, Message, WellnessAlert

log = logging.getLogger(__name__)


REMINDER_VIBRATION_MS = (400, 200, 400)


def reminder_policy(config: Config) -> ReminderPolicy:
    settings = config.reminders
    return ReminderPolicy(
        repeat_every=dt.timedelta(minutes=settings.repeat_every_min),
        repeats=settings.repeats,
        catch_up=dt.timedelta(minutes=settings.catch_up_min),
    )


DRAIN_S = 5.0
# An alert other than an emergency that the family service has not confirmed it stored
# (`alert.received`) is sent again after these waits, doubling up to the last.
CONFIRM_FIRST_S = 60.0
CONFIRM_MAX_S = 600.0
# ... and dropped, with an ERROR, once a day old: a service that refuses it for good (a
# device removed from its household) would otherwise get it every ten minutes for ever.
CONFIRM_GIVE_UP_S = 24 * 3600.0


class Device:
    def __init__(
        self,
        config: Config,
        *,
        link: bool = True,
        clock: Callable[[], dt.datetime] | None = None,
        hardware: hw.Hardware | None = None,
    ) -> None:
        """`link` False: nothing leaves the device (a typed demo without services);
        `clock`: local time (default: the household's, `timezone`); `hardware`: the
        device's parts (default: the profile of `device.kind` with no keys, the
        indicator on the console)."""
        # listened for before the stores open, which may already go to memory
        self._refusals = StorageRefusals(config.state_dir(), self._tell_storage)
        try:
            self._assemble(config, link, clock, hardware)
        except BaseException:
            self._refusals.close()
            raise

    def _assemble(
        self,
        config: Config,
        link: bool,
        clock: Callable[[], dt.datetime] | None,
        hardware: hw.Hardware | None,
    ) -> None:
        self.hardware = hardware or hw.build(
            profile(config.device.kind), volume=config.speech.volume
        )
        tz = time_zone(config.timezone)
        self.clock = clock = clock or household_clock(tz)
        self.reminders = ReminderStore(
            config.state_dir() / REMINDERS_FILE, tz=tz, policy=reminder_policy(config)
        )
        self.checks = EmergencyCheckStore(config.state_dir() / CHECK_FILE)
        self.link: Link | None = None
        self.unconfirmed: Resender | None = None
        publish = None
        if link:
            self.link = Link.from_config(config, on_message=self._received)
            store = UnansweredAlertStore(config.state_dir() / UNCONFIRMED_FILE)
            self.unconfirmed = Resender(
                self.link, store, CONFIRM_FIRST_S, CONFIRM_MAX_S, waits_for="a confirmation",
                give_up_after_s=CONFIRM_GIVE_UP_S,
            )  # fmt: skip
            publish = self._publish
        handler = ActionHandler(publish, self.reminders, clock)
        self.announcer = Announcer(
            self.reminders,
            on_done=self._confirm,
            sent_type=lambda message_id: (
                handler.sent.get(message_id) or self._waiting_type(message_id)
            ),
            clock=clock,
            on_command=RemoteControl(self.hardware),
        )
        # unanswered alerts are resent over the link; offline there is nothing to keep
        self.alerts: UnansweredAlertStore | None = None
        if self.link is not None:
            self.alerts = UnansweredAlertStore(config.state_dir() / ALERTS_FILE)
        self.emergencies = Emergencies(
            self.link,
            self.announcer,
            self.hardware.lights,
            self.hardware.notifier,
            store=self.alerts,
        )
        self.actions = DeviceActions(
            handler,
            self.hardware,
            self.emergencies,
            self.announcer,
            location_with_alerts=config.device.location_with_alerts,
            location_on_request=config.device.location_on_request,
        )
        hours = config.care.inactivity_hours
        self.routines = CareRoutines(
            self.reminders,
            publish,
            dt.timedelta(hours=hours) if hours > 0 else None,
            on_reminder=self._show_reminder,
        )
        self.routines.set_check_ins(
            [f"{parse_clock(at):%H:%M}" for at in config.check_in_times()], clock()
        )
        # damaged state files moved aside (by this start or before) and not yet told of
        self._lost_files = untold(config.state_dir())
        self.lost = list(self._lost_files)  # in the order of protocol.LOST_STORES

    def _show_reminder(self, text: str) -> None:
        """A phone vibrates and shows a reminder as well as saying it."""
        notifier = self.hardware.notifier
        if notifier is not None:
            notifier.vibrate(REMINDER_VIBRATION_MS)
            notifier.notify(text)

    def _waiting_type(self, message_id: str) -> str | None:
        """The type of a message still sent again, also one from before a restart (a
        refusal of an emergency is said every time, of another message once)."""
        for resender in (self.emergencies.unanswered, self.unconfirmed):
            if resender is not None and (found := resender.type_of(message_id)):
                return found
        return None

    def _publish(self, body: Any) -> Message:
        """Store `body` for sending (the link's outbox); an alert the family service
        confirms is sent again until it does (assistant/resend.py)."""
        assert self.link is not None and self.unconfirmed is not None
        message = self.link.publish(body)
        if message.type in RECEIPTED:
            self.unconfirmed.add(message)
        return message

    def _received(self, message: Message) -> None:
        body = message.body
        if isinstance(body, AlertAck | AlertReceived) and self.unconfirmed is not None:
            self.unconfirmed.settle(body.alert_id)
        if isinstance(body, AlertAck):
            self.emergencies.answered(body)
        self.announcer.handle(message)

    def _confirm(self, command: Message, ok: bool, why: str | None) -> None:
        """Tell the sender whether a command was carried out (a caregiver sees it). Never
        raises: the command is done, and a failed confirmation must not have the link hand
        it over again (a call dialled twice); the caregiver sees it unconfirmed."""
        if self.link is not None:
            done = CommandDone(command_id=command.id, command=command.type, ok=ok, detail=why)
            try:
                self.link.publish(done)
            except Exception:
                log.exception("%s could not be confirmed (not stored for sending)", command.type)

    def start(self) -> Device:
        # what waits to be sent again is taken up before the link can bring its answer
        self.emergencies.start()
        if self.unconfirmed is not None:
            self.unconfirmed.start()
        if self.link is not None:
            self.link.start()
        self._tell_lost()
        self._refusals.start()
        return self

    def _tell_storage(self) -> None:
        """The disk refuses writes (`StorageRefusals`): the senior hears it, and the family
        is sent a notice."""
        told = self._notify_family(storage_notice(), "the disk refuses writes")
        self.announcer.queue(storage_spoken(family_told=told))

    def _notify_family(self, body: WellnessAlert, what: str) -> bool:
        """Store a notice for the family; False (logged) when there is no link or it cannot
        be stored."""
        if self.link is None:
            return False
        try:
            self._publish(body)
        except Exception:
            log.exception("the family could not be told that %s", what)
            return False
        return True

    def _tell_lost(self) -> None:
        """State files found damaged were moved aside (assistant/lost_state.py): the senior
        hears what was lost, and the family is sent a notice. They count as told once the
        notice is stored for sending; offline, or if it cannot be stored, the next start
        tells again."""
        lost, self.lost = self.lost, []
        if not lost:
            return
        told = self._notify_family(notice(lost), "stored state was lost")
        if told:
            mark_told([path for key in lost for path in self._lost_files[key]])
        self.announcer.queue(spoken(lost, family_told=told), urgent=True)

    def close(self, drain_s: float = DRAIN_S) -> None:
        """Stop; while connected, first give what was just stored a moment to go out (it
        stays in the outbox for the next start either way)."""
        self._refusals.close()
        self.emergencies.close()
        if self.unconfirmed is not None:
            self.unconfirmed.close()
        if self.link is not None:
            if self.link.connected and not self.link.wait_drained(drain_s):
                log.warning("stopping with messages still to send: they go at the next start")
            self.link.close()
        self.reminders.close()
        self.checks.close()
        if self.alerts is not None:
            self.alerts.close()
        if self.unconfirmed is not None and self.unconfirmed.store is not None:
            self.unconfirmed.store.close()
        self.hardware.close()

    def __enter__(self) -> Device:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.close()

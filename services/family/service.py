"""One worker of the family-notification service: the MQTT side and the scheduler.

Several workers (processes, on one machine sharing the SQLite file) run side by side: the
broker splits incoming messages between them (a shared subscription), and the scheduler's
work (escalation steps, deliveries that waited, digests) is claimed in SQLite transactions,
so each alert, step and delivery is handled by one worker.

Incoming, by type:
- `device.status` (retained, on a plain subscription): the device's presence, kept for the
  web console (`services.family.presence`); "online" sends the device again the commands
  it has not confirmed;
- `alert.*` from a household's device: a new alert (`services.family.alerts`); a device's
  notice that it lost its reminders also sends it again the caregivers' reminders
  (`Reminders.restore`);
- `event.*` from the device: kept for the digest; `event.reminder.taken` closes a pending
  missed-medication alert, `event.checkin.answer` with a sad or lonely feeling raises a
  wellness alert, `event.command.done` confirms a caregiver's command,
  `event.reminder.removed` marks a caregiver's reminder the senior stopped as removed;
- `member.ack` on a member's topic: an answer to an alert;
- `command.reminder.*` on a member's topic: a caregiver's reminder command;
- `command.say/volume/call` on a member's topic: passed on to the household's device.
Anything else, or from an unknown household, device or member, is refused with a reason;
a refusal an admin can make go away (`MAY_CHANGE`) is looked at again when the same message
comes again.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
import time

from protocol import (
    Call,
    CommandDone,
    DeviceStatus,
    MemberAck,
    Message,
    ReminderAdd,
    ReminderChange,
    ReminderRemove,
    Say,
    ServiceReason,
    Volume,
    WellnessAlert,
    topics,
)
from protocol.schema import utc_timestamp
from services.family import digest, households, presence
from services.family.alerts import CATEGORIES, Alerts
from services.family.channels import Channel, MqttChannel, gateways
from services.family.config import FamilyConfig
from services.family.digest import Digests
from services.family.households import Household, HouseholdError
from services.family.outbox import Outbox, stable_id
from services.family.reminders import Reminders
from services.family.store import Store
from services.mqtt_service import MqttService, Refusal

log = logging.getLogger("services.family")
MAX_NAMED = 50  # reminders a not-restored notice names (WellnessAlert.not_restored)

FILTERS = (
    topics.subscription("alert"),
    topics.subscription("event"),
    topics.subscription("family"),
    topics.member_subscription("member_ack"),
    topics.member_subscription("member_command"),
)
# Presence is retained, and brokers give retained messages to plain subscriptions only.
PLAIN_FILTERS = (topics.subscription("status"),)
# Refusals an admin makes go away by registering what was missing (a household, a device,
# a member, a member's role): not final, so the message's id is not remembered and a resend
# of it (a device resends an emergency nobody answered) is handled afresh.
MAY_CHANGE = frozenset(
    {
        ServiceReason.UNKNOWN_HOUSEHOLD,
        ServiceReason.UNKNOWN_DEVICE,
        ServiceReason.NOT_A_MEMBER,
        ServiceReason.NOT_ALLOWED,
    }
)
WORRYING_FEELINGS = ("lonely", "sad", "anxious")


class FamilyService:
    def __init__(self, config: FamilyConfig, worker: str = "1") -> None:
        self.config = config
        self.client_id = config.client_id(worker)
        self.store = Store(config.database())
        self.mqtt = MqttService(
            config.mqtt,
            client_id=self.client_id,
            group=config.service.group,
            filters=FILTERS,
            plain_filters=PLAIN_FILTERS,
            handler=self.handle,
            state_path=config.database(),
            dead_letter_retry_s=config.service.dead_letter_retry_s,
            rejection_listener=lambda reason: self.store.count_rejection(reason, time.time()),
            on_duplicate=self._duplicate,
        )
        channels: dict[str, Channel] = {"mqtt": MqttChannel(self.mqtt)}
        channels.update(gateways({"sms": config.channels.sms, "phone": config.channels.phone}))
        self.outbox = Outbox(self.store, channels, self.client_id, config.service.claim_s)
        self.alerts = Alerts(self.store, self.outbox, config, self.client_id)
        self.outbox.on_sent = self.alerts.sent
        self.outbox.on_failed = self.alerts.failed
        self.reminders = Reminders(self.store, self.outbox, self._not_restored)
        self.digests = Digests(self.store, self.outbox, config.digest.at)
        self._stop = threading.Event()
        self._scheduler: threading.Thread | None = None

    # --- running ----------------------------------------------------------------------------

    def start(self, timeout: float = 30.0) -> FamilyService:
        self.mqtt.start(timeout=timeout)
        self._scheduler = threading.Thread(target=self._schedule, name="scheduler", daemon=True)
        self._scheduler.start()
        log.info("family-notify worker %s serving", self.client_id)
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._scheduler is not None:
            self._scheduler.join(10)
        self.mqtt.stop()
        self.store.close()

    def __enter__(self) -> FamilyService:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def tick(self) -> None:
        """One round of the scheduler: due escalations, waiting deliveries, digests,
        commands the device did not confirm in time."""
        self.outbox.send(self.alerts.escalate_due())
        self.outbox.send(self.reminders.expire(self.config.service.command_timeout_s))
        self.outbox.send(self.digests.due())
        self.outbox.flush()

    def _schedule(self) -> None:
        # Also while the broker is away: an emergency's SMS and calls must not wait for it;
        # what goes over MQTT waits in the outbox.
        while not self._stop.wait(self.config.service.tick_s):
            try:
                self.tick()
            except Exception:  # the next tick tries again; nothing was marked done
                log.exception("scheduler round failed")

    # --- incoming ---------------------------------------------------------------------------

    def handle(self, message: Message) -> bool:
        """The MqttService handler: persist, then send what is due (before the PUBACK).
        False for an alert nobody could be told of: its id is not remembered as handled,
        so the device's resend is looked at again once a member is added."""
        try:
            ids = self._dispatch(message)
        except HouseholdError as exc:
            raise Refusal(exc.reason, str(exc), final=exc.reason not in MAY_CHANGE) from None
        self.outbox.send(ids)
        return not (message.type in CATEGORIES and self.alerts.told_nobody(message.id))

    def _duplicate(self, message: Message) -> None:
        """A message handled already came again: an alert the device sends until it is
        confirmed is confirmed again."""
        self.outbox.send(self.alerts.confirm_again(message))

    def _dispatch(self, message: Message) -> list[str]:
        info_party = topics.party_of(message.kind)
        household = self._household(message.household)
        if info_party == "device":
            if message.device not in household.devices:
                raise HouseholdError(ServiceReason.UNKNOWN_DEVICE, "not a device of this household")
            if isinstance(message.body, DeviceStatus):
                newest = presence.record_status(self.store, message)
                if newest and message.body.state == "online":
                    return self.reminders.resend(household.id, message.device)
                return []
            presence.heard(self.store, household.id, message.device)
            return self._from_device(message, household)
        member = households.require_member(household, message.device)
        body = message.body
        if isinstance(body, MemberAck):
            return self.alerts.acknowledge(message, household, member)
        if isinstance(body, ReminderAdd | ReminderChange | ReminderRemove | Say | Volume | Call):
            _, ids = self.reminders.request(body, household.id, member.id, message.id)
            return ids
        raise HouseholdError(ServiceReason.UNSUPPORTED, f"{message.type} is not taken here")

    def _not_restored(self, db: sqlite3.Connection, commands: list[sqlite3.Row]) -> list[str]:
        """A calm notice to the family of the caregivers' reminders a device that lost them
        did not take back when they were sent again (commands' rows of one device), raised
        in the transaction that failed them: one notice, its id from the first command."""
        first = commands[0]
        household = households.require(db, first["household"])
        texts = [json.loads(row["body"]).get("text") or row["reminder_id"] for row in commands]
        if len(texts) > MAX_NAMED:
            texts = [*texts[: MAX_NAMED - 1], f"{len(texts) - MAX_NAMED + 1} more"]
        raised = Message(
            body=WellnessAlert(concern="other", severity="medium", not_restored=texts),
            household=household.id,
            device=first["device"],
            id=stable_id(first["id"], "not_restored"),
            ts=utc_timestamp(),
        )
        return self.alerts.receive_in(db, raised, household, confirm=False)

    def _household(self, household_id: str) -> Household:
        return households.require(self.store.db, household_id)

    def _from_device(self, message: Message, household: Household) -> list[str]:
        if message.type in CATEGORIES:
            body = message.body
            restored = []
            if isinstance(body, WellnessAlert) and body.lost and "reminders" in body.lost:
                # before the alert is recorded: a notice handled again (its worker died
                # before the PUBACK) restores once, and one recorded has restored
                restored = self.reminders.restore(household.id, message.device, message.id)
            return restored + self.alerts.receive(message, household)
        if message.type not in digest.RECORDED:
            raise HouseholdError(ServiceReason.UNSUPPORTED, f"{message.type} is not taken here")
        body = message.body
        if isinstance(body, CommandDone):
            ids = self.reminders.done(body, household.id)
            digest.record(self.store, message, household)
            return ids
        digest.record(self.store, message, household)
        if message.type == "event.reminder.taken":
            return self.alerts.taken(household, body.reminder_id, body.due)
        if message.type == "event.reminder.removed":
            self.reminders.stopped_on_device(
                household.id, message.device, message.id, body.reminder_id
            )
            return []
        elif message.type == "event.checkin.answer" and body.feeling in WORRYING_FEELINGS:
            concern = WellnessAlert(concern="feeling", severity="low", detail=body.feeling)
            raised = Message(
                body=concern,
                household=message.household,
                device=message.device,
                id=message.id,  # one check-in answer, one alert, whoever handles it
                ts=message.ts,
            )
            return self.alerts.receive(raised, household, confirm=False)
        return []

"""Alerts from a senior's device: who hears of them, when, and what becomes of them.

States: `open` (received) → `delivered` (the first member's inbox has it: the broker passed
it on to an app, not only acknowledged it) → `escalated` (an emergency nobody answered moved
up the ladder) → `acknowledged` (a member answered: escalation stops, the device is told
who) → `closed` (resolved, or a missed dose taken late, or closed by hand). Every change and
every delivery is written to `alert_events`, the audit trail; so is a notice the broker
passed on to nobody (`undelivered`: no app listening, or refused), which is tried again.

Routing:
- an emergency goes to every member but the senior at once, quiet hours or not; unanswered,
  it climbs a ladder every `escalation.step_s`: each member's first contact channel (SMS,
  phone), then their next ones, then the household's emergency number; after the ladder the
  inboxes are reminded every `repeat_s`, `max_repeats` times;
- a missed medication goes to the caregivers (the family when there is none) once
  `medication.grace_s` has passed without the dose being taken, after their quiet hours;
- a wellness concern or inactivity goes to the family (the caregivers when there is none),
  calmly worded, after their quiet hours.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import logging
import sqlite3
import time
from typing import Any
from zoneinfo import ZoneInfo

from protocol import (
    LOST_STORES,
    LOST_URGENT,
    RECEIPTED,
    AlertAck,
    AlertReceived,
    MemberAck,
    MemberAlert,
    MemberAlertUpdate,
    Message,
    ReminderTaken,
    ServiceReason,
    ServiceRefused,
    create,
)
from protocol.messages import message_types
from protocol.schema import from_dict, to_dict
from services.family import households
from services.family.channels import ChannelError, Delivery
from services.family.config import MAX_STEP, FamilyConfig
from services.family.households import Household, HouseholdError, Member
from services.family.outbox import Outbox, Planned, stable_id
from services.family.store import Store
from services.family.texts import text, where
from services.mqtt_service import Undelivered

CATEGORIES = {
    "alert.emergency": "emergency",
    "alert.missed_medication": "missed_medication",
    "alert.wellness": "wellness",
    "alert.inactivity": "inactivity",
    "family.message": "message",  # the senior's words for the family: delivered like a calm
    #                               alert, so it has a trail and "seen" goes back to the device
}
log = logging.getLogger("services.family.alerts")

OPEN = ("open", "delivered", "escalated")
NO_RECIPIENT = "no_recipient"  # the service's refusal of an alert nobody can be told of
NOBODY_TOLD = "nobody to tell, no number to call"  # its trail entry's detail
CLOSED_BY = "your care service"  # who the device says dealt with an alert closed by hand
# What an acknowledgement makes unnecessary.
_UNANSWERED = ("alert", "escalation", "update")


def audit(
    db: sqlite3.Connection,
    alert_id: str,
    at: float,
    event: str,
    actor: str | None = None,
    detail: str | None = None,
    ref: str | None = None,
) -> None:
    db.execute(
        "INSERT INTO alert_events (alert_id, at, event, actor, detail, ref)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        (alert_id, at, event, actor, detail, ref),
    )


def recipients(household: Household, category: str, to: str | None = None) -> list[Member]:
    """Who hears of an alert of `category` (never the senior it is about); a message goes
    to the member it names (by relation or name), to everyone when it names nobody here:
    better read by all than lost."""
    others = list(household.others)
    if category == "emergency":
        return others
    if category == "message":
        wanted = (to or "all").strip().lower()
        named = [m for m in others if wanted in ((m.relation or "").lower(), m.name.lower())]
        return named or others
    first = "caregiver" if category == "missed_medication" else "family"
    chosen = [m for m in others if m.role == first]
    return chosen or others


def local_clock(timestamp: str, timezone: str) -> str:
    """HH:MM in the household's time of an ISO-8601 UTC time stamp."""
    when = dt.datetime.fromisoformat(timestamp.replace("Z", "+00:00"))
    return when.astimezone(ZoneInfo(timezone)).strftime("%H:%M")


class Alerts:
    def __init__(self, store: Store, outbox: Outbox, config: FamilyConfig, worker: str) -> None:
        self.store = store
        self.outbox = outbox
        self.config = config
        self.worker = worker

    # --- a new alert ------------------------------------------------------------------------

    def receive(self, message: Message, household: Household, *, confirm: bool = True) -> list[str]:
        """Record an alert and plan its first notices; the ids to send now (none when the
        alert was known already: another worker, or an earlier attempt, has it). An alert
        the device sends again until confirmed (`RECEIPTED`) is confirmed to it in the same
        transaction, and again when it comes again (`confirm` False: the alert is the
        service's own, raised from an event)."""
        with self.store.write() as db:
            return self.receive_in(db, message, household, confirm=confirm)

    def receive_in(
        self, db: sqlite3.Connection, message: Message, household: Household, *, confirm: bool
    ) -> list[str]:
        """`receive` within the caller's write transaction (an alert the service raises
        together with what caused it)."""
        category = CATEGORIES[message.type]
        now = time.time()
        first_step = now + self.config.escalation.step_s if category == "emergency" else None
        if category == "emergency":
            if _known(db, message.id):
                # Sent again by the device: it has not heard the answer, if there is one
                # (an `alert.ack` lost with the broker's session); it is told it again.
                answer = self.outbox.offer_again(db, [stable_id(message.id, "ack")], now)
                return self._told_at_last(db, message, category, household, now) + answer
            running = db.execute(
                "SELECT * FROM alerts WHERE household = ? AND category = 'emergency'"
                " AND state IN ('open', 'delivered', 'escalated') AND next_step_at IS NOT NULL"
                " ORDER BY received LIMIT 1",
                (household.id,),
            ).fetchone()
            if running is not None:
                planned = self._repeated(db, running, message, household, now)
                return self.outbox.plan(db, planned, now)
        inserted = db.execute(
            "INSERT OR IGNORE INTO alerts (id, household, device, category, type, body,"
            " raised_ts, received, state, next_step_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?,"
            " 'open', ?)",
            (message.id, household.id, message.device, category, message.type,
             json.dumps(to_dict(message.body)), message.ts, now, first_step),
        ).rowcount  # fmt: skip
        receipt = _receipt(message, fresh=inserted > 0) if confirm else []
        if not inserted:
            again = self._told_at_last(db, message, category, household, now)
            return again + self.outbox.plan(db, receipt, now)
        audit(db, message.id, now, "opened", message.device, category)
        if category == "missed_medication" and _taken_already(db, household.id, message.body):
            # the device's "taken" came first (it sent both after an outage, and another
            # worker handled the event): nobody is to hear of a miss that is not one
            self._close(db, message.id, now, None, "taken before the alert came")
            return self.outbox.plan(db, receipt, now)
        planned = self._first_notices(message, category, household, now)
        waiting = [p for p in planned if p.not_before > now]
        if waiting:
            audit(db, message.id, now, "waiting", None, f"{len(waiting)} notice(s) held")
        if not planned:
            planned = self._nobody_to_tell(db, message, category, household, now)
        return self.outbox.plan(db, receipt + planned, now)

    def _repeated(
        self,
        db: sqlite3.Connection,
        running: sqlite3.Row,
        message: Message,
        household: Household,
        now: float,
    ) -> list[Planned]:
        """Another call for help while an emergency of the household is unanswered and its
        ladder still climbs ("help, I fell", again, then the SOS button): the same emergency,
        not a new one with a ladder of its own. It goes into that alert's trail (`repeated`,
        with its id and device), the members hear she called again in an update of that
        alert, and the answer to it is told to the device for this call too."""
        alert_id = running["id"]
        audit(db, alert_id, now, "repeated", message.device, message.body.trigger, message.id)
        log.info("alert %s: repeated by %s, folded into %s", message.id, message.device, alert_id)
        planned = []
        for member in recipients(household, "emergency"):
            said = wording(message.body, "emergency", household, member.language)
            update = MemberAlertUpdate(
                alert_id=alert_id,
                state="escalated",
                text=text(member.language, "repeated", senior=household.senior, alert=said),
            )
            planned.append(
                self._notice(
                    update,
                    household,
                    member,
                    alert_id,
                    running["step"],
                    now,
                    "update",
                    id_key=("repeated", message.id),
                )
            )
        return planned

    def confirm_again(self, message: Message) -> list[str]:
        """The device sent again an alert this service has stored (the broker had it, but
        the device did not hear `alert.received`): it is confirmed again. The ids to send."""
        if message.type not in RECEIPTED:
            return []
        with self.store.write() as db:
            stored = db.execute(
                "SELECT 1 FROM alerts WHERE id = ? AND household = ? AND device = ?",
                (message.id, message.household, message.device),
            ).fetchone()
            if stored is None:  # refused, or not stored yet: no confirmation
                return []
            return self.outbox.plan(db, _receipt(message, fresh=False), time.time())

    def told_nobody(self, alert_id: str) -> bool:
        """An alert nobody could be told of, no number called (`_nobody_to_tell`), and
        nobody told since: the device's resend of it is looked at again, not a duplicate."""
        return _told_nobody(self.store.db, alert_id)

    def _told_at_last(
        self,
        db: sqlite3.Connection,
        message: Message,
        category: str,
        household: Household,
        now: float,
    ) -> list[str]:
        """The device sent again an alert nobody could be told of: when the household has
        someone to tell now (a member added since), the first notices go out and an
        emergency's ladder starts; with an emergency number and still no member, the
        number is called at once; else nothing (its refusal went out the first time)."""
        if not _told_nobody(db, message.id):
            return []
        planned = self._first_notices(message, category, household, now)
        calls = category == "emergency" and self._calls(household)
        if not planned and not calls:
            return []
        audit(db, message.id, now, "recipients", None, f"{len(planned)} to tell since")
        log.warning("alert %s of household %s: told at last", message.id, household.id)
        if category == "emergency":
            step_at = now + self.config.escalation.step_s if planned else now
            db.execute("UPDATE alerts SET next_step_at = ? WHERE id = ?", (step_at, message.id))
        return self.outbox.plan(db, planned, now)

    def _nobody_to_tell(
        self,
        db: sqlite3.Connection,
        message: Message,
        category: str,
        household: Household,
        now: float,
    ) -> list[Planned]:
        """An alert no member can be told of. An emergency goes straight to the household's
        emergency number when there is one; else the device is told its call could not be
        passed on (`service.refused`, `no_recipient`), as is a message for the family: the
        senior must not believe someone heard."""
        if category == "emergency" and self._calls(household):
            log.warning("alert %s of household %s: no member to tell, calling the emergency"
                        " number now", message.id, household.id)  # fmt: skip
            db.execute("UPDATE alerts SET next_step_at = ? WHERE id = ?", (now, message.id))
            audit(db, message.id, now, "no_recipient", None,
                  "no member to tell: the emergency number is called at once")  # fmt: skip
            return []
        log.warning("alert %s (%s) of household %s: nobody to tell", message.id, category,
                    household.id)  # fmt: skip
        db.execute("UPDATE alerts SET next_step_at = NULL WHERE id = ?", (message.id,))
        audit(db, message.id, now, "no_recipient", None, NOBODY_TOLD)
        if category not in ("emergency", "message"):
            return []
        refusal = create(
            ServiceRefused(reason=NO_RECIPIENT, refused_id=message.id,
                           detail="nobody in this household can be told"),
            household.id,
            message.device,
            on="refused",
        )  # fmt: skip
        refusal = dataclasses.replace(refusal, id=stable_id(message.id, "refused"))
        self.store.count_rejection(NO_RECIPIENT, now)  # in this transaction: `status` shows it
        return [Planned.message(refusal, "refused", alert_id=message.id)]

    def _first_notices(
        self, message: Message, category: str, household: Household, now: float
    ) -> list[Planned]:
        out = []
        for member in recipients(household, category, getattr(message.body, "to", None)):
            not_before = now
            if category == "missed_medication":
                not_before = now + self.config.medication.grace_s
            if category != "emergency" and not _not_held(message.body):
                not_before = member.quiet_until(not_before, household.timezone) or not_before
            body = self._member_alert(message, category, household, member, step=0)
            out.append(self._notice(body, household, member, message.id, 0, not_before))
        return out

    def _member_alert(
        self, message: Message, category: str, household: Household, member: Member, step: int
    ) -> MemberAlert:
        return MemberAlert(
            alert_id=message.id,
            category=category,
            device=message.device,
            tone="urgent" if category == "emergency" else "calm",
            text=self._wording(message.body, category, household, member.language),
            raised_at=message.ts,
            step=step,
            location=getattr(message.body, "location", None),
        )

    def _wording(self, body: Any, category: str, household: Household, language: str) -> str:
        return wording(body, category, household, language)

    def _notice(
        self,
        body: MemberAlert | MemberAlertUpdate,
        household: Household,
        member: Member,
        alert_id: str,
        step: int,
        not_before: float,
        purpose: str = "alert",
        id_key: tuple[object, ...] | None = None,
    ) -> Planned:
        """`id_key`: what makes this notice's id its own (default: its purpose and step;
        a repeated call's update: "repeated" and the call's id)."""
        message = create(body, household.id, member.id)
        key = id_key if id_key is not None else (purpose, step)
        message = dataclasses.replace(message, id=stable_id(alert_id, member.id, *key))
        return Planned.message(
            message, purpose, alert_id=alert_id, member=member.id, step=step, not_before=not_before
        )

    # --- members leaving --------------------------------------------------------------------

    def remove_member(
        self, household_id: str, member_id: str, now: float | None = None
    ) -> list[str]:
        """Remove a member (`households.remove_member_in`: what waited for them is
        cancelled); an open alert that no member who remains has been or is to be told of
        goes to those who remain now, as its first notices would have (the grace period
        and quiet hours counted from when it came). The ids planned."""
        now = time.time() if now is None else now
        with self.store.write() as db:
            waiting = [
                alert_id
                for (alert_id,) in db.execute(
                    "SELECT DISTINCT alert_id FROM outbox WHERE household = ? AND member = ?"
                    " AND state IN ('pending', 'sent') AND alert_id IS NOT NULL",
                    (household_id, member_id),
                )
            ]
            households.remove_member_in(db, household_id, member_id)
            household = households.require(db, household_id)
            planned: list[Planned] = []
            for alert_id in waiting:
                planned += self._told_instead(db, alert_id, household, member_id, now)
            return self.outbox.plan(db, planned, now)

    def _told_instead(
        self, db: sqlite3.Connection, alert_id: str, household: Household, gone: str, now: float
    ) -> list[Planned]:
        row = db.execute(
            "SELECT * FROM alerts WHERE id = ? AND state IN ('open', 'delivered', 'escalated')",
            (alert_id,),
        ).fetchone()
        if row is None:
            return []
        told = db.execute(
            "SELECT 1 FROM outbox WHERE alert_id = ? AND purpose = 'alert' AND member != ?"
            " AND state IN ('pending', 'sent') LIMIT 1",
            (alert_id, gone),
        ).fetchone()
        if told is not None:
            return []
        notices = self._first_notices(
            alert_message(row), row["category"], household, row["received"]
        )
        notices = [dataclasses.replace(p, not_before=max(p.not_before, now)) for p in notices]
        audit(db, alert_id, now, "recipients", None,
              f"{len(notices)} to tell instead of a member removed")  # fmt: skip
        log.warning("alert %s: a member removed; %d to tell instead", alert_id, len(notices))
        return notices

    # --- escalation -------------------------------------------------------------------------

    def escalate_due(self, now: float | None = None, limit: int = 50) -> list[str]:
        """Move every unanswered emergency whose time came one step up; the ids to send.

        Each alert's step is its own savepoint: one that fails (logged at ERROR, written to
        its trail as `step_failed`, the step skipped) never holds up any other household's."""
        now = time.time() if now is None else now
        ids: list[str] = []
        with self.store.write() as db:
            due = db.execute(
                "SELECT * FROM alerts WHERE state IN ('open', 'delivered', 'escalated')"
                " AND next_step_at <= ? ORDER BY next_step_at LIMIT ?",
                (now, limit),
            ).fetchall()
            for row in due:
                db.execute("SAVEPOINT escalation")
                try:
                    planned = self._escalate(db, row, now)
                    ids += self.outbox.plan(db, planned, now)
                except Exception as exc:
                    db.execute("ROLLBACK TO escalation")
                    self._step_failed(db, row, now, exc)
                db.execute("RELEASE escalation")
        return ids

    def _escalate(self, db: sqlite3.Connection, row: sqlite3.Row, now: float) -> list[Planned]:
        """One alert's next step, written to its row and trail; what it sends."""
        household = households.get(db, row["household"])
        if household is None:  # removed meanwhile: nobody left to tell
            db.execute("UPDATE alerts SET next_step_at = NULL WHERE id = ?", (row["id"],))
            audit(db, row["id"], now, "stopped", self.worker, "household removed")
            return []
        step = row["step"] + 1
        planned, next_at, what = self._step(row, household, step, now, self._called(db, row))
        if not planned:  # no member left to remind (nor a number to call): not "escalated"
            log.warning("alert %s: nobody left to tell at step %d", row["id"], step)
            db.execute("UPDATE alerts SET next_step_at = NULL WHERE id = ?", (row["id"],))
            audit(db, row["id"], now, "no_recipient", self.worker, f"step {step}: nobody to tell")
            return []
        last = next_at is not None and step >= MAX_STEP  # no member.alert can say more
        db.execute(
            "UPDATE alerts SET step = ?, state = 'escalated', next_step_at = ?"
            " WHERE id = ? AND step = ?",
            (step, None if last else next_at, row["id"], row["step"]),
        )
        audit(db, row["id"], now, "escalated", self.worker, f"step {step}: {what}")
        if last:
            audit(db, row["id"], now, "stopped", self.worker, f"step {step} is the last there is")
        return planned

    def _step_failed(
        self, db: sqlite3.Connection, row: sqlite3.Row, now: float, exc: Exception
    ) -> None:
        """A step that could not be taken (nothing of it was written): say so, and skip it,
        so the ladder goes on to its next step instead of failing on every tick."""
        step = row["step"] + 1
        log.error(
            "escalation step %d of alert %s failed (%s); skipped", step, row["id"],
            type(exc).__name__, exc_info=True,
        )  # fmt: skip
        try:
            household = households.get(db, row["household"])
            ladder = self._ladder(household) if household is not None else 0
            next_at = self._next_at(step, ladder, now) if step < MAX_STEP else None
        except Exception:  # nothing more can be decided about it: the ladder stops
            log.exception("alert %s: its ladder cannot go on", row["id"])
            next_at = None
        db.execute(
            "UPDATE alerts SET step = ?, next_step_at = ? WHERE id = ? AND step = ?",
            (step, next_at, row["id"], row["step"]),
        )
        detail = f"step {step}: {type(exc).__name__}: {exc}"
        audit(db, row["id"], now, "step_failed", self.worker, detail[:300])
        if next_at is None:
            audit(db, row["id"], now, "stopped", self.worker, f"after step {step}")

    def _channels(self, member: Member) -> list[tuple[str, str]]:
        usable = []
        for contact in member.contacts:
            channel, _, address = contact.partition(":")
            if channel in self.outbox.channels:
                usable.append((channel, address))
        return usable

    @staticmethod
    def _called(db: sqlite3.Connection, row: sqlite3.Row) -> bool:
        """Whether the ladder has called the household's emergency number already: its one
        escalation to nobody among the members, on whichever channel it was then."""
        return (
            db.execute(
                "SELECT 1 FROM outbox WHERE alert_id = ? AND purpose = 'escalation'"
                " AND member IS NULL LIMIT 1",
                (row["id"],),
            ).fetchone()
            is not None
        )

    def _step(
        self, row: sqlite3.Row, household: Household, step: int, now: float, called: bool
    ) -> tuple[list[Planned], float | None, str]:
        """Step `step` of an emergency's ladder: what to send, when the next is due, and a
        word for the audit trail. The emergency number is called at the first step past
        the members' contacts that has not called it: the ladder may have grown shorter
        since it started (a member removed, a contact dropped), and a call due at a step
        already passed must still be made."""
        policy = self.config.escalation
        members = recipients(household, "emergency")
        levels = self._levels(household)
        call = self._calls(household)
        ladder = levels + (1 if call else 0)
        message = alert_message(row)
        minutes = max(1, round((now - row["received"]) / 60))
        planned: list[Planned] = []
        if step <= levels:
            what = "contacts"
            for member in members:
                usable = self._channels(member)
                if len(usable) >= step:
                    channel, address = usable[step - 1]
                    wording = self._wording(message.body, "emergency", household, member.language)
                    planned.append(
                        Planned(
                            id=stable_id(row["id"], member.id, channel, step),
                            household=household.id,
                            channel=channel,
                            address=address,
                            payload=wording.encode(),
                            purpose="escalation",
                            alert_id=row["id"],
                            member=member.id,
                            step=step,
                            not_before=now,
                        )
                    )
        elif call and not called:
            what = "emergency"
            language = members[0].language if members else "en"
            planned.append(
                Planned(
                    id=stable_id(row["id"], "emergency-number", step),
                    household=household.id,
                    channel=policy.emergency_channel,
                    address=household.emergency_number or "",
                    payload=text(
                        language, "call", senior=household.senior, minutes=minutes
                    ).encode(),
                    purpose="escalation",
                    alert_id=row["id"],
                    step=step,
                    not_before=now,
                )
            )
        else:
            what = "repeat"
            for member in members:
                body = self._member_alert(message, "emergency", household, member, step)
                planned.append(self._notice(body, household, member, row["id"], step, now))
        if what != "repeat":
            for member in members:
                update = MemberAlertUpdate(
                    alert_id=row["id"],
                    state="escalated",
                    text=text(
                        member.language,
                        "escalated",
                        senior=household.senior,
                        what=text(member.language, f"what.{what}"),
                    ),
                )
                planned.append(
                    self._notice(update, household, member, row["id"], step, now, "update")
                )
        return planned, self._next_at(step, ladder, now), what

    def _levels(self, household: Household) -> int:
        """How many rounds of members' contact channels the ladder has."""
        members = recipients(household, "emergency")
        return max((len(self._channels(m)) for m in members), default=0)

    def _calls(self, household: Household) -> bool:
        """Whether the ladder ends with a call to the household's emergency number."""
        return (
            household.emergency_number is not None
            and self.config.escalation.emergency_channel in self.outbox.channels
        )

    def _ladder(self, household: Household) -> int:
        return self._levels(household) + (1 if self._calls(household) else 0)

    def _next_at(self, step: int, ladder: int, now: float) -> float | None:
        """When the step after `step` is due (None: the ladder and its repeats are done)."""
        policy = self.config.escalation
        if step < ladder:
            return now + policy.step_s
        if step - ladder < policy.max_repeats:
            return now + policy.repeat_s
        return None

    # --- answers ----------------------------------------------------------------------------

    def acknowledge(self, message: Message, household: Household, member: Member) -> list[str]:
        """A member's answer (`member.ack`): the first one stops the escalation and is told
        to the device and to the other members; the ids to send. The same answer handled
        twice (a redelivery) changes nothing."""
        ack: MemberAck = message.body
        now = time.time()
        with self.store.write() as db:
            row = db.execute("SELECT * FROM alerts WHERE id = ?", (ack.alert_id,)).fetchone()
            if row is None:  # a repeated call for help: the answer is to its emergency
                row = db.execute(
                    "SELECT alerts.* FROM alert_events JOIN alerts ON alerts.id = alert_id"
                    " WHERE event = 'repeated' AND ref = ?",
                    (ack.alert_id,),
                ).fetchone()
            if row is None or row["household"] != household.id:
                raise HouseholdError(ServiceReason.UNKNOWN_ALERT, "no such alert in this household")
            seen = db.execute(
                "SELECT 1 FROM alert_events WHERE alert_id = ? AND ref = ?", (row["id"], message.id)
            ).fetchone()
            if seen is not None:
                return []
            if row["state"] not in OPEN:
                audit(db, row["id"], now, "answered_again", member.id, ack.action, message.id)
                if ack.action == "resolved" and row["state"] == "acknowledged":
                    self._close(db, row["id"], now, member.id, "resolved")
                return []
            db.execute(
                "UPDATE alerts SET state = 'acknowledged', acked_by = ?, acked_at = ?,"
                " next_step_at = NULL WHERE id = ?",
                (member.id, now, row["id"]),
            )
            audit(db, row["id"], now, "acknowledged", member.id, ack.action, message.id)
            cancelled = self.outbox.cancel(db, row["id"], _UNANSWERED)
            if cancelled:
                audit(db, row["id"], now, "cancelled", None, f"{cancelled} pending notice(s)")
            answer = AlertAck(alert_id=row["id"], by=member.label, action=ack.action,
                              eta_min=ack.eta_min)  # fmt: skip
            planned = _device_acks(db, row, answer, member.id)
            for other in recipients(household, row["category"]):
                if other.id == member.id:
                    continue
                eta = text(other.language, "eta", minutes=ack.eta_min) if ack.eta_min else ""
                update = MemberAlertUpdate(
                    alert_id=row["id"],
                    state="acknowledged",
                    by=member.name,
                    text=text(
                        other.language,
                        f"acknowledged.{ack.action}",
                        by=member.name,
                        senior=household.senior,
                        eta=eta,
                    ),
                )
                planned.append(
                    self._notice(update, household, other, row["id"], -1, now, "answered")
                )
            if ack.action == "resolved":
                self._close(db, row["id"], now, member.id, "resolved")
            return self.outbox.plan(db, planned, now)

    def close(self, alert_id: str, actor: str, why: str = "closed by hand") -> bool:
        now = time.time()
        with self.store.write() as db:
            row = db.execute("SELECT * FROM alerts WHERE id = ?", (alert_id,)).fetchone()
            if row is None or row["state"] == "closed":
                return False
            self.outbox.cancel(db, alert_id, _UNANSWERED)
            self._close(db, alert_id, now, actor, why)
            if row["category"] == "emergency" and row["state"] in OPEN:
                # nobody answered it: without an answer the device would send it again for
                # ever, its light on, and the senior never told it was dealt with
                answer = AlertAck(alert_id=alert_id, by=CLOSED_BY, action="resolved")
                self.outbox.plan(db, _device_acks(db, row, answer, None), now)
            return True

    def taken(self, household: Household, reminder_id: str, due: str) -> list[str]:
        """A dose reported taken: the missed-medication alerts about it that are not closed
        yet are closed, and the members who were told of one hear it was taken after all
        (`member.alert.update`); the ids to send."""
        now = time.time()
        with self.store.write() as db:
            rows = db.execute(
                "SELECT * FROM alerts WHERE household = ? AND category = 'missed_medication'"
                " AND state != 'closed' AND json_extract(body, '$.reminder_id') = ?"
                " AND json_extract(body, '$.due') = ?",
                (household.id, reminder_id, due),
            ).fetchall()
            planned: list[Planned] = []
            for row in rows:
                self.outbox.cancel(db, row["id"], _UNANSWERED)
                self._close(db, row["id"], now, None, "taken after all")
                told = {
                    r["member"]
                    for r in db.execute(
                        "SELECT member FROM outbox WHERE alert_id = ? AND purpose = 'alert'"
                        " AND state = 'sent'",
                        (row["id"],),
                    )
                }
                body = alert_message(row).body
                for member in household.others:
                    if member.id not in told:
                        continue
                    update = MemberAlertUpdate(
                        alert_id=row["id"],
                        state="closed",
                        text=text(
                            member.language,
                            "taken_late",
                            senior=household.senior,
                            medication=body.medication,
                            due=local_clock(body.due, household.timezone),
                        ),
                    )
                    planned.append(
                        self._notice(update, household, member, row["id"], -1, now, "taken")
                    )
            return self.outbox.plan(db, planned, now)

    def _close(
        self, db: sqlite3.Connection, alert_id: str, now: float, actor: str | None, why: str
    ) -> None:
        db.execute(
            "UPDATE alerts SET state = 'closed', closed_at = ?, next_step_at = NULL WHERE id = ?",
            (now, alert_id),
        )
        audit(db, alert_id, now, "closed", actor, why)

    # --- what went out ----------------------------------------------------------------------

    def sent(self, db: sqlite3.Connection, deliveries: list[Delivery], now: float) -> None:
        """The outbox's hook: each delivery about an alert goes into its audit trail, and an
        alert's first notice in an inbox makes it `delivered`."""
        for d in deliveries:
            if d.alert_id is None:
                continue
            audit(db, d.alert_id, now, "sent", d.member, f"{d.purpose} by {d.channel}")
            if d.purpose == "alert" and d.step == 0:
                delivered = db.execute(
                    "UPDATE alerts SET state = 'delivered' WHERE id = ? AND state = 'open'",
                    (d.alert_id,),
                ).rowcount
                if delivered:
                    audit(db, d.alert_id, now, "delivered", d.member)

    def failed(
        self, db: sqlite3.Connection, failures: list[tuple[Delivery, Exception]], now: float
    ) -> None:
        """The outbox's hook for deliveries that did not go out (each once, not at every
        retry): one about an alert that the broker acknowledged but passed on to nobody (no
        app subscribed to the member's inbox, or refused), or that a gateway could not take
        (an SMS or the call to the emergency number), goes into its trail as `undelivered`.
        The outbox keeps it and tries again with its backoff, the alert is not
        `delivered` until an inbox took its first notice, and the ladder climbs on its own
        clock meanwhile, as it does while a gateway fails."""
        for d, error in failures:
            if d.alert_id is None or not isinstance(error, (Undelivered, ChannelError)):
                continue
            detail = f"{d.purpose} by {d.channel}: {error}"
            audit(db, d.alert_id, now, "undelivered", d.member, detail)
            log.warning(
                "alert %s: %s by %s for %s not received: %s; kept, tried again",
                d.alert_id, d.purpose, d.channel, d.member, error,
            )  # fmt: skip


def _not_held(body: Any) -> bool:
    """Told at once, quiet hours or not: a message the senior marked urgent, and a concern
    of high severity (a device that lost state that may hide a call for help)."""
    return bool(getattr(body, "urgent", False)) or getattr(body, "severity", None) == "high"


def wording(body: Any, category: str, household: Household, language: str) -> str:
    """What an alert says to a member, in their language."""
    senior = household.senior
    if category == "emergency":
        said = f': "{body.said}"' if body.said else ""
        words = text(language, f"emergency.{body.trigger}", senior=senior, said=said)
        return words + where(body.location, language)
    if category == "missed_medication":
        due = local_clock(body.due, household.timezone)
        return text(language, "missed_medication", senior=senior,
                    medication=body.medication, due=due)  # fmt: skip
    if category == "inactivity":
        return text(language, "inactivity", senior=senior, hours=body.quiet_for_s // 3600)
    if category == "message":
        for_whom = "" if body.to == "all" else f" ({body.to})"
        words = text(language, "message", senior=senior, message=body.text, for_whom=for_whom)
        return words + where(body.location, language)
    if body.lost:
        return _damage_wording(body.lost, senior, language)
    if body.storage_failing:
        return text(language, "wellness.storage", senior=senior)
    if body.not_restored:
        what = ", ".join(f'"{t}"' for t in body.not_restored)
        return text(language, "wellness.not_restored", senior=senior, what=what)
    detail = body.detail or ""
    return text(language, f"wellness.{body.concern}", senior=senior, detail=detail,
                detail_suffix=f" ({detail})" if detail else "")  # fmt: skip


def _damage_wording(keys: list[str], senior: str, language: str) -> str:
    """A device that started afresh without a damaged state file: what it lost (`keys`),
    worded in the member's language, and what to do about it."""
    things = [text(language, f"lost.{k}" if k in LOST_STORES else "lost.unknown") for k in keys]
    things = list(dict.fromkeys(things)) or [text(language, "lost.unknown")]
    lost = things[0] if len(things) == 1 else (
        ", ".join(things[:-1]) + f" {text(language, 'and')} " + things[-1]
    )  # fmt: skip
    then = text(language, "device.reminders", senior=senior) if "reminders" in keys else ""
    if LOST_URGENT & set(keys) or not set(keys) <= set(LOST_STORES):
        then += text(language, "device.check", senior=senior)
    return text(language, "wellness.device", senior=senior, lost=lost, then=then)


def _receipt(message: Message, fresh: bool) -> list[Planned]:
    """`alert.received` for the device that sent `message`, when it waits for one. The
    first one's id is fixed (a worker that plans it twice sends it once); one for an alert
    sent again is new each time, since the device asks because it did not hear it."""
    if message.type not in RECEIPTED:
        return []
    receipt = create(AlertReceived(alert_id=message.id), message.household, message.device)
    if fresh:
        receipt = dataclasses.replace(receipt, id=stable_id(message.id, "received"))
    return [Planned.message(receipt, "received", alert_id=message.id)]


def alert_message(row: sqlite3.Row) -> Message:
    """The device's alert back from its row (for the wording of later steps)."""
    body = from_dict(message_types()[row["type"]], json.loads(row["body"]))
    return Message(
        body=body, household=row["household"], device=row["device"], id=row["id"],
        ts=row["raised_ts"],
    )  # fmt: skip


def _device_acks(
    db: sqlite3.Connection, row: sqlite3.Row, answer: AlertAck, member: str | None
) -> list[Planned]:
    """The answer to an emergency, for the device: for every call for help it covers (each
    clears its alert light), the emergency's own and the repeated ones folded into it."""
    planned = []
    for call_id, device in [(row["id"], row["device"]), *repeats(db, row["id"])]:
        device_ack = create(dataclasses.replace(answer, alert_id=call_id), row["household"], device)
        device_ack = dataclasses.replace(device_ack, id=stable_id(call_id, "ack"))
        planned.append(Planned.message(device_ack, "ack", alert_id=row["id"], member=member))
    return planned


def _taken_already(db: sqlite3.Connection, household_id: str, body: object) -> bool:
    """Whether the device has reported the dose a missed-medication alert is about taken."""
    return (
        db.execute(
            "SELECT 1 FROM events WHERE household = ? AND type = ?"
            " AND json_extract(body, '$.reminder_id') = ? AND json_extract(body, '$.due') = ?"
            " LIMIT 1",
            (household_id, ReminderTaken.TYPE, getattr(body, "reminder_id", None),
             getattr(body, "due", None)),
        ).fetchone()
        is not None
    )  # fmt: skip


def _told_nobody(db: sqlite3.Connection, alert_id: str) -> bool:
    """An open emergency or family message whose last word on who to tell is that there
    was nobody (no `recipients` entry since its `no_recipient` one)."""
    last = db.execute(
        "SELECT e.event FROM alerts a JOIN alert_events e ON e.alert_id = a.id"
        " WHERE a.id = ? AND a.state = 'open' AND a.category IN ('emergency', 'message')"
        " AND (e.event = 'recipients' OR (e.event = 'no_recipient' AND e.detail = ?))"
        " ORDER BY e.seq DESC LIMIT 1",
        (alert_id, NOBODY_TOLD),
    ).fetchone()
    return last is not None and last[0] == "no_recipient"


def _known(db: sqlite3.Connection, alert_id: str) -> bool:
    """An alert id handled already: an alert of its own, or a call folded into one."""
    if db.execute("SELECT 1 FROM alerts WHERE id = ?", (alert_id,)).fetchone() is not None:
        return True
    folded = db.execute(
        "SELECT 1 FROM alert_events WHERE event = 'repeated' AND ref = ?", (alert_id,)
    ).fetchone()
    return folded is not None


def repeats(db: sqlite3.Connection, alert_id: str) -> list[tuple[str, str]]:
    """The repeated calls for help folded into an emergency: (their id, their device)."""
    rows = db.execute(
        "SELECT ref, actor FROM alert_events WHERE alert_id = ? AND event = 'repeated'"
        " ORDER BY seq",
        (alert_id,),
    ).fetchall()
    return [(r["ref"], r["actor"]) for r in rows]


def describe(db: sqlite3.Connection, alert_id: str) -> dict[str, Any] | None:
    """An alert and its audit trail, for `family-notify alert show`; for a repeated call
    for help, the emergency it was folded into (its id is among `repeats`)."""
    row = db.execute("SELECT * FROM alerts WHERE id = ?", (alert_id,)).fetchone()
    if row is None:
        folded = db.execute(
            "SELECT alert_id FROM alert_events WHERE event = 'repeated' AND ref = ?",
            (alert_id,),
        ).fetchone()
        return describe(db, folded["alert_id"]) if folded is not None else None
    events = db.execute(
        "SELECT at, event, actor, detail FROM alert_events WHERE alert_id = ? ORDER BY seq",
        (alert_id,),
    ).fetchall()
    out = dict(row)
    out.pop("body")
    out["trail"] = [dict(e) for e in events]
    out["repeats"] = [call_id for call_id, _ in repeats(db, row["id"])]
    return out

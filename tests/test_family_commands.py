"""A caregiver's commands and the service's copy of the senior's reminders, without a
broker: what the device refuses is undone in the copy."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from protocol import CommandDone, ReminderAdd, ReminderChange, ReminderRemove, decode
from services.family import households, reminders
from services.family.channels import Delivery
from services.family.households import Household, HouseholdError, Member
from services.family.outbox import Outbox
from services.family.reminders import Reminders
from services.family.store import Store

H, D = "h1", "speaker"
HOUSEHOLD = Household(
    id=H,
    senior="Mum",
    devices=(D,),
    members=(Member("mum", "Mum", role="senior"), Member("carla", "Carla", role="caregiver")),
)


class Recording:
    name = "mqtt"

    def __init__(self) -> None:
        self.sent: list[Delivery] = []

    def send_many(self, deliveries: list[Delivery]) -> list[Exception | None]:
        self.sent += deliveries
        return [None] * len(deliveries)


@pytest.fixture
def channel() -> Recording:
    return Recording()


@pytest.fixture
def service(tmp_path: Path, channel: Recording) -> Reminders:
    store = Store(tmp_path / "family.sqlite3")
    households.add(store, HOUSEHOLD)
    yield Reminders(store, Outbox(store, {"mqtt": channel}, "w1"))
    store.close()


def pills(**changes) -> ReminderAdd:
    fields = dict(reminder_id="pills", kind="medication", text="Pills", at="19:30")
    return ReminderAdd(**{**fields, **changes})


def ask(service: Reminders, body) -> str:
    """A caregiver's request over MQTT, sent at once; the command id the device gets."""
    command_id, ids = service.request(body, H, "carla", str(uuid.uuid4()))
    service.outbox.send(ids)
    return command_id


def answer(service: Reminders, command_id: str, body, ok: bool, detail: str | None = None):
    service.outbox.send(
        service.done(CommandDone(command_id=command_id, command=body.TYPE, ok=ok, detail=detail), H)
    )


def listed(service: Reminders) -> dict[str, dict]:
    return {r["id"]: r for r in reminders.listing(service.store.db, H)}


def results(channel: Recording) -> list[tuple[str, str | None]]:
    """What Carla was told: (status, detail) of each member.command.result."""
    out = []
    for d in channel.sent:
        message = decode(d.payload, None, topic=d.address)
        if message.type == "member.command.result":
            out.append((message.body.status, message.body.detail))
    return out


# --- the device refuses -----------------------------------------------------------------------


def test_an_add_the_device_refused_is_not_listed_active_and_can_be_added_again(
    service, channel
) -> None:
    add = pills()
    answer(service, ask(service, add), add, ok=False, detail="no room for more reminders")
    row = listed(service)["pills"]
    assert (row["state"], row["command"]) == ("failed", "failed")
    assert results(channel)[-1] == ("failed", "no room for more reminders")
    with pytest.raises(HouseholdError) as refused:  # nothing to change on the device
        service.request(ReminderChange(reminder_id="pills", at="20:00"), H, "carla")
    assert refused.value.reason == "unknown_reminder"
    again = pills(at="08:00")
    answer(service, ask(service, again), again, ok=True)  # not refused reminder_exists
    row = listed(service)["pills"]
    assert (row["state"], row["at"], row["command"]) == ("active", "08:00", "confirmed")


def test_a_change_the_device_refused_leaves_the_previous_values(service) -> None:
    add = pills(dose="5 mg")
    answer(service, ask(service, add), add, ok=True)
    change = ReminderChange(reminder_id="pills", at="21:00", dose="10 mg")
    command_id = ask(service, change)
    assert listed(service)["pills"]["at"] == "21:00"  # shown while the device is asked
    answer(service, command_id, change, ok=False, detail="no such reminder")
    row = listed(service)["pills"]
    assert (row["state"], row["at"], row["dose"], row["command"]) == (
        "active", "19:30", "5 mg", "failed"
    )  # fmt: skip


def test_a_remove_the_device_refused_leaves_the_reminder_active(service) -> None:
    add = pills()
    answer(service, ask(service, add), add, ok=True)
    remove = ReminderRemove(reminder_id="pills")
    answer(service, ask(service, remove), remove, ok=False, detail="busy")
    row = listed(service)["pills"]
    assert (row["state"], row["at"]) == ("active", "19:30")
    with pytest.raises(HouseholdError):  # it is still there: not added twice
        service.request(pills(), H, "carla")


def test_a_refused_add_undoes_the_change_made_after_it_too(service) -> None:
    add, change = pills(), ReminderChange(reminder_id="pills", at="21:00")
    add_id, change_id = ask(service, add), ask(service, change)
    answer(service, add_id, add, ok=False, detail="no room")
    assert listed(service)["pills"]["state"] == "failed"
    answer(service, change_id, change, ok=False, detail="no such reminder")
    assert listed(service)["pills"]["state"] == "failed"


def test_a_refused_change_keeps_a_later_change_that_went_through(service) -> None:
    add = pills(dose="5 mg")
    answer(service, ask(service, add), add, ok=True)
    first = ReminderChange(reminder_id="pills", at="21:00")
    second = ReminderChange(reminder_id="pills", dose="10 mg")
    first_id, second_id = ask(service, first), ask(service, second)
    answer(service, first_id, first, ok=False, detail="busy")
    answer(service, second_id, second, ok=True)
    row = listed(service)["pills"]
    assert (row["at"], row["dose"]) == ("19:30", "10 mg")

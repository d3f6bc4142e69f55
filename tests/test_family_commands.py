"""A caregiver's commands and the service's copy of the senior's reminders, without a
broker: what the device refuses is undone in the copy, what it never confirms fails after
`service.command_timeout_s`, and a late confirmation still counts. (The same over a real
Mosquitto: tests/e2e/test_family_notify.py.)"""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path

import pytest

from protocol import CommandDone, ReminderAdd, ReminderChange, ReminderRemove, Say, decode
from protocol.schema import to_dict
from services.family import households, reminders
from services.family.channels import Delivery
from services.family.config import ConfigError, config_from_dict
from services.family.households import Household, HouseholdError, Member
from services.family.outbox import Outbox
from services.family.reminders import NOT_CONFIRMED, Reminders
from services.family.store import Store
from tests.old_files import old_database

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


def commands_sent(channel: Recording) -> list:
    """The command messages sent to the device, in order."""
    out = []
    for d in channel.sent:
        message = decode(d.payload, None, topic=d.address)
        if message.kind == "command":
            out.append(message)
    return out


def age(service: Reminders, seconds: float) -> None:
    """Make every command look `seconds` older."""
    service.store.db.execute("UPDATE commands SET created = created - ?", (seconds,))


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


def test_commands_sent_again_go_in_the_order_they_were_asked_for(service, channel) -> None:
    """A device that comes online gets its unconfirmed commands again in one batch: an add
    before the change of it, or the change is refused ("no such reminder") and the
    caregiver's new time lost. (A batch of two went in the order of the message ids, a
    coin toss: eight tosses here.)"""
    for n in range(8):
        add = pills(reminder_id=f"pills-{n}", text=f"Pills {n}")  # not one dose (refused)
        change = ReminderChange(reminder_id=f"pills-{n}", at="21:00")
        asked = [ask(service, add), ask(service, change)]
        before = len(commands_sent(channel))
        assert service.outbox.send(service.resend(H, D)) == 2
        assert [m.id for m in commands_sent(channel)[before:]] == asked
        for command_id, body in zip(asked, (add, change), strict=True):
            answer(service, command_id, body, ok=True)


def test_a_change_waits_for_its_add_that_is_retried_after_failures(service, channel) -> None:
    """The broker was down: the add failed a few times and waits longer before each try
    than the change made later. The change does not go first (the device would refuse it
    and the caregiver's new time be lost): both go when the add may, in order."""
    down = True

    def send_many(deliveries):
        if down:
            return [ConnectionError("broker away")] * len(deliveries)
        channel.sent += deliveries
        return [None] * len(deliveries)

    channel.send_many = send_many
    add_id = ask(service, pills())
    change_id = ask(service, ReminderChange(reminder_id="pills", at="21:00"))
    db = service.store.db
    db.execute("UPDATE outbox SET claim_until = ? WHERE id = ?", (time.time() + 600, add_id))
    db.execute("UPDATE outbox SET claim_until = 0 WHERE id = ?", (change_id,))
    down = False
    assert service.outbox.flush() == 0  # the change alone is not sent
    assert service.outbox.send([change_id]) == 0  # nor sent at once
    db.execute("UPDATE outbox SET claim_until = 0 WHERE id = ?", (add_id,))  # the add's turn
    assert service.outbox.flush() == 2
    assert [m.id for m in commands_sent(channel)] == [add_id, change_id]


# --- the device lost its reminders ------------------------------------------------------------


def test_a_device_that_lost_its_reminders_is_sent_the_active_ones_again(service, channel) -> None:
    """As the copy holds them (a change included), not a removed one, not a one-off whose
    day has passed; once per notice, to the household's device only; nobody is told of
    each; what the device refuses is left for the caregiver to add again."""
    import datetime as dt

    passed = (dt.date.today() - dt.timedelta(days=2)).isoformat()
    coming = (dt.date.today() + dt.timedelta(days=2)).isoformat()
    bodies = [
        pills(dose="5 mg"),
        ReminderChange(reminder_id="pills", at="21:00", dose="10 mg"),
        ReminderAdd(reminder_id="walk", kind="other", text="Walk", at="10:00"),
        ReminderRemove(reminder_id="walk"),
        ReminderAdd(reminder_id="dentist", kind="appointment", text="Dentist", at="09:00",
                    date=passed),
        ReminderAdd(reminder_id="optician", kind="appointment", text="Optician", at="11:00",
                    date=coming),
    ]  # fmt: skip
    for body in bodies:
        answer(service, ask(service, body), body, ok=True)
    told = len(results(channel))
    before = len(commands_sent(channel))

    ids = service.restore(H, D, "notice-1")
    assert service.outbox.send(ids) == 2
    restored = commands_sent(channel)[before:]
    assert {m.type for m in restored} == {"command.reminder.add"}
    by_id = {m.body.reminder_id: m.body for m in restored}
    assert set(by_id) == {"pills", "optician"}
    pills_again = by_id["pills"]
    assert (pills_again.at, pills_again.dose, pills_again.text) == ("21:00", "10 mg", "Pills")
    assert all(m.device == D and m.household == H for m in restored)

    assert service.restore(H, D, "notice-1") == []  # the same notice handled again
    assert service.restore(H, "another-speaker", "notice-2") == []  # keeps no reminders
    assert len(results(channel)) == told  # no member is told of each restored add

    pills_id = next(m.id for m in restored if m.body.reminder_id == "pills")
    optician_id = next(m.id for m in restored if m.body.reminder_id == "optician")
    answer(service, pills_id, by_id["pills"], ok=True)
    answer(service, optician_id, by_id["optician"], ok=False, detail="no room")
    rows = listed(service)
    assert (rows["pills"]["state"], rows["pills"]["at"], rows["pills"]["command"]) == (
        "active", "21:00", "confirmed",
    )  # fmt: skip
    assert (rows["optician"]["state"], rows["optician"]["command_detail"]) == ("failed", "no room")
    assert rows["walk"]["state"] == "removed"
    assert len(results(channel)) == told


def test_a_new_kind_of_repeat_replaces_the_old_one_in_the_copy_as_on_the_device(
    service, channel
) -> None:
    """Every 8 hours changed to Mondays and Thursdays is Mondays and Thursdays (the copy
    kept both, and a restore made it every 8 hours again); a one-off changed to Tuesdays is
    restored after its day has passed; a one-off earlier today is not sent (the device
    would refuse it)."""
    import datetime as dt

    passed = (dt.date.today() - dt.timedelta(days=2)).isoformat()
    bodies = [
        pills(at="06:00", every_hours=8),
        ReminderChange(reminder_id="pills", days=["mon", "thu"]),
        ReminderAdd(reminder_id="physio", kind="appointment", text="Physio", at="10:00",
                    date=passed),
        ReminderChange(reminder_id="physio", days=["tue"]),
        ReminderAdd(reminder_id="early", kind="other", text="Early", at="00:00",
                    date=dt.date.today().isoformat()),
        ReminderAdd(reminder_id="early-hourly", kind="other", text="Hourly", at="00:00",
                    date=dt.date.today().isoformat(), every_hours=4),  # a one-off at 00:00
    ]  # fmt: skip
    for body in bodies:
        answer(service, ask(service, body), body, ok=True)
    rows = listed(service)
    assert (rows["pills"]["days"], rows["pills"].get("every_hours")) == (["mon", "thu"], None)
    assert (rows["physio"]["days"], rows["physio"].get("date")) == (["tue"], None)
    before = len(commands_sent(channel))
    service.outbox.send(service.restore(H, D, "notice-1"))
    by_id = {m.body.reminder_id: m.body for m in commands_sent(channel)[before:]}
    assert set(by_id) == {"pills", "physio"}
    assert (by_id["pills"].days, by_id["pills"].every_hours, by_id["pills"].at) == (
        ["mon", "thu"], None, "06:00",
    )  # fmt: skip
    assert (by_id["physio"].days, by_id["physio"].date) == (["tue"], None)


def test_copies_folded_before_are_rebuilt_as_on_the_device_once(tmp_path) -> None:
    """A file from before: its copy of the insulin holds every 8 hours and Mondays and
    Thursdays at once (the old fold); opened now, it is rebuilt from the commands."""
    path = tmp_path / "family.sqlite3"
    store = Store(path)
    households.add(store, HOUSEHOLD)
    service = Reminders(store, Outbox(store, {"mqtt": Recording()}, "w1"))
    change = ReminderChange(reminder_id="pills", days=["mon", "thu"])
    for body in (pills(at="06:00", every_hours=8), change):
        answer(service, ask(service, body), body, ok=True)
    old = {**to_dict(pills(at="06:00", every_hours=8)), "days": ["mon", "thu"]}
    with store.write() as db:
        db.execute("UPDATE reminders SET body = ?", (json.dumps(old),))
        db.execute("PRAGMA user_version = 0")
    store.close()

    store = Store(path)
    try:
        again = Reminders(store, Outbox(store, {"mqtt": Recording()}, "w1"))
        row = listed(again)["pills"]
        assert (row["days"], row.get("every_hours"), row["at"]) == (["mon", "thu"], None, "06:00")
        assert store.db.execute("PRAGMA user_version").fetchone()[0] == 1
    finally:
        store.close()


def test_a_change_on_its_way_when_the_device_lost_its_reminders_comes_back_with_them(
    service, channel
) -> None:
    """The pills moved to 21:00, not yet confirmed, when the device lost its reminders:
    the restored add carries 21:00; the change itself reaches an empty device and is
    refused; the copy shows what the device has, 21:00."""
    add = pills()
    answer(service, ask(service, add), add, ok=True)
    change = ReminderChange(reminder_id="pills", at="21:00")
    change_id = ask(service, change)
    before = len(commands_sent(channel))
    service.outbox.send(service.restore(H, D, "notice-1"))
    (restored,) = commands_sent(channel)[before:]
    assert restored.body.at == "21:00"
    answer(service, change_id, change, ok=False, detail="no such reminder on this device")
    answer(service, restored.id, restored.body, ok=True)
    row = listed(service)["pills"]
    assert (row["state"], row["at"]) == ("active", "21:00")


def test_restored_reminders_the_device_did_not_take_back_are_told_once(tmp_path) -> None:
    """One refused: told with it, in the transaction that failed it; two never confirmed:
    told together when they expire. Nothing more when the refusal comes again."""
    store = Store(tmp_path / "family.sqlite3")
    households.add(store, HOUSEHOLD)
    told: list[list[str]] = []

    def not_restored(db, rows) -> list[str]:
        assert db.in_transaction
        told.append([row["reminder_id"] for row in rows])
        return []

    service = Reminders(store, Outbox(store, {"mqtt": Recording()}, "w1"), not_restored)
    try:
        for name, at in (("a", "08:00"), ("b", "13:00"), ("c", "19:30")):
            body = pills(reminder_id=name, at=at)
            answer(service, ask(service, body), body, ok=True)
        service.restore(H, D, "notice-1")
        restores = service.store.db.execute(
            "SELECT id, reminder_id FROM commands WHERE requested_by = 'restore' ORDER BY rowid"
        ).fetchall()
        assert [r["reminder_id"] for r in restores] == ["a", "b", "c"]
        refused = CommandDone(command_id=restores[0]["id"], command=ReminderAdd.TYPE, ok=False,
                              detail="no room")  # fmt: skip
        service.done(refused, H)
        assert told == [["a"]]
        service.done(refused, H)  # the device's confirmation came twice
        assert told == [["a"]]
        age(service, 601.0)
        service.expire(600.0)
        assert told == [["a"], ["b", "c"]]
        assert {r["id"]: r["state"] for r in listed(service).values()} == {
            "a": "failed", "b": "failed", "c": "failed",
        }  # fmt: skip
    finally:
        store.close()


def test_a_failure_to_tell_the_family_does_not_hold_up_the_deadlines(tmp_path) -> None:
    store = Store(tmp_path / "family.sqlite3")
    households.add(store, HOUSEHOLD)

    def broken(db, rows) -> list[str]:
        db.execute("UPDATE commands SET state = 'sent'")  # undone with the failure
        raise HouseholdError("unknown_household", "removed meanwhile")

    service = Reminders(store, Outbox(store, {"mqtt": Recording()}, "w1"), broken)
    try:
        body = pills()
        answer(service, ask(service, body), body, ok=True)
        service.restore(H, D, "notice-1")
        say = ask(service, Say(text="Hello Mum"))
        age(service, 601.0)
        service.expire(600.0)
        states = dict(service.store.db.execute("SELECT type, state FROM commands").fetchall())
        assert states == {"command.reminder.add": "failed", "command.say": "failed"}, say
        assert service.expire(600.0) == []
    finally:
        store.close()


def test_the_same_reminder_is_not_set_up_twice(service) -> None:
    """Two caregivers (or one, twice, or after "set them up again") entering the same
    medicine at the same times would make the device ask for the dose twice."""
    answer(service, ask(service, pills(dose="5 mg", days=["mon", "thu"])), pills(), ok=True)
    twins = (
        pills(reminder_id="pills-2", days=["thu", "mon"]),
        pills(reminder_id="pills-3", text="PILLS ", days=["mon", "thu"], dose="5 MG"),
    )
    for twin in twins:
        with pytest.raises(HouseholdError) as refused:
            service.request(twin, H, "carla")
        assert refused.value.reason == "reminder_exists" and "'pills'" in str(refused.value)
    ask(service, pills(reminder_id="pills-4", dose="10 mg", days=["mon", "thu"]))  # another dose
    ask(service, pills(reminder_id="pills-5", at="08:00", days=["mon", "thu"]))  # another time
    assert {r["id"] for r in listed(service).values() if r["state"] == "active"} == {
        "pills", "pills-4", "pills-5",
    }  # fmt: skip


def test_a_change_that_would_make_two_reminders_for_one_dose_is_refused(service) -> None:
    """Moving Carla's aspirin from 10 to 9, where Anna's aspirin is: each would ask for the
    dose. Refused, and the copy keeps 10:00; another time still goes through."""
    anna = pills(reminder_id="anna-aspirin", text="Aspirin", at="09:00", medication="Aspirin")
    carla = pills(reminder_id="carla-aspirin", text="Aspirin", at="10:00", medication="aspirin")
    for body in (anna, carla):
        answer(service, ask(service, body), body, ok=True)
    with pytest.raises(HouseholdError) as refused:
        service.request(ReminderChange(reminder_id="carla-aspirin", at="09:00"), H, "carla")
    assert refused.value.reason == "reminder_exists" and "'anna-aspirin'" in str(refused.value)
    assert listed(service)["carla-aspirin"]["at"] == "10:00"
    ask(service, ReminderChange(reminder_id="carla-aspirin", at="11:00"))
    assert listed(service)["carla-aspirin"]["at"] == "11:00"


def test_a_reminder_the_senior_stopped_by_voice_is_not_restored(service, channel) -> None:
    add, change = pills(), ReminderChange(reminder_id="pills", at="20:00")
    answer(service, ask(service, add), add, ok=True)
    change_id = ask(service, change)  # on its way when Mum says "cancel my pills reminder"
    service.stopped_on_device(H, D, "event-1", "pills")
    service.stopped_on_device(H, D, "event-1", "pills")  # the event came twice
    row = listed(service)["pills"]
    assert (row["state"], row["command_type"]) == ("removed", "command.reminder.remove")
    answer(service, change_id, change, ok=False, detail="no such reminder on this device")
    assert listed(service)["pills"]["state"] == "removed"  # the replay keeps the removal
    assert service.restore(H, D, "notice-1") == []
    with pytest.raises(HouseholdError):  # it is gone: a change is refused, an add is not
        service.request(ReminderChange(reminder_id="pills", at="21:00"), H, "carla")
    ask(service, pills(at="08:00"))
    assert listed(service)["pills"]["state"] == "active"


# --- the device does not answer ---------------------------------------------------------------


def test_a_command_never_confirmed_fails_after_the_deadline(service, channel) -> None:
    add, say = pills(), Say(text="Hello Mum")
    ask(service, add)
    ask(service, say)
    assert service.outbox.send(service.expire(600.0)) == 0  # not yet
    assert [s for s, _ in results(channel)] == ["sent", "sent"]
    age(service, 601.0)
    assert service.outbox.send(service.expire(600.0)) == 2
    assert results(channel)[2:] == [("failed", NOT_CONFIRMED), ("failed", NOT_CONFIRMED)]
    row = listed(service)["pills"]
    assert (row["state"], row["command"]) == ("failed", "failed")
    states = service.store.db.execute("SELECT state, detail FROM commands").fetchall()
    assert [tuple(r) for r in states] == [("failed", NOT_CONFIRMED)] * 2
    assert service.expire(600.0) == []  # once


def test_a_confirmation_after_the_deadline_still_counts(service, channel) -> None:
    add = pills()
    command_id = ask(service, add)
    age(service, 601.0)
    service.outbox.send(service.expire(600.0))
    assert listed(service)["pills"]["state"] == "failed"
    answer(service, command_id, add, ok=True)  # the broker kept it for the device after all
    row = listed(service)["pills"]
    assert (row["state"], row["command"]) == ("active", "confirmed")
    assert [s for s, _ in results(channel)] == ["sent", "failed", "confirmed"]


def test_a_late_confirmation_comes_before_a_re_add_the_device_refused(service) -> None:
    first = pills()
    first_id = ask(service, first)
    age(service, 601.0)
    service.expire(600.0)
    second = pills(at="08:00")  # the caregiver tries again
    second_id = ask(service, second)
    answer(service, first_id, first, ok=True)  # the device got the first one late
    answer(service, second_id, second, ok=False, detail="reminder_exists")
    row = listed(service)["pills"]
    assert (row["state"], row["at"]) == ("active", "19:30")  # what the device has


def test_the_command_deadline_is_configured_and_checked() -> None:
    assert config_from_dict({}).service.command_timeout_s == 600.0
    assert config_from_dict({"service": {"command_timeout_s": 30}}).service.command_timeout_s == 30
    with pytest.raises(ConfigError, match="command_timeout_s"):
        config_from_dict({"service": {"command_timeout_s": 0}})


def test_the_dead_letter_interval_is_configured_checked_and_used(tmp_path: Path) -> None:
    from services.family.service import FamilyService

    assert config_from_dict({}).service.dead_letter_retry_s == 60.0
    with pytest.raises(ConfigError, match="dead_letter_retry_s"):
        config_from_dict({"service": {"dead_letter_retry_s": 0}})
    raw = {"service": {"dead_letter_retry_s": 5, "database": str(tmp_path / "f.sqlite3")}}
    service = FamilyService(config_from_dict(raw))
    try:
        assert service.mqtt.dead_letter_retry_s == 5.0
    finally:
        service.store.close()


def test_commands_from_before_the_undo_columns_still_work(tmp_path: Path) -> None:
    path = old_database(
        tmp_path / "old.sqlite3",
        "CREATE TABLE commands (id TEXT PRIMARY KEY, household TEXT NOT NULL, device TEXT NOT"
        " NULL, type TEXT NOT NULL, reminder_id TEXT, requested_by TEXT NOT NULL, request_id"
        " TEXT, state TEXT NOT NULL, created REAL NOT NULL, done_at REAL, detail TEXT)",
        ("INSERT INTO commands VALUES ('c1', 'h1', 'speaker', 'command.reminder.add', 'pills',"
         " 'cli', NULL, 'sent', ?, NULL, NULL)", (time.time() - 3600,)),
    )  # fmt: skip
    store = Store(path)
    try:
        service = Reminders(store, Outbox(store, {}, "w1"))
        assert service.expire(600.0) == []
        (row,) = store.db.execute("SELECT state, detail FROM commands")
        assert tuple(row) == ("failed", NOT_CONFIRMED)
    finally:
        store.close()

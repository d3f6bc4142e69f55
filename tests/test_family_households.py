"""Households, members and quiet hours; the service's config; its wording (no broker)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from services.family import households
from services.family.alerts import recipients
from services.family.config import ConfigError, config_from_dict, load_config
from services.family.households import Household, HouseholdError, Member
from services.family.store import Store
from services.family.texts import text

BERLIN = ZoneInfo("Europe/Berlin")


def at(hour: int, minute: int = 0, day: int = 23) -> float:
    return dt.datetime(2026, 11, day, hour, minute, tzinfo=BERLIN).timestamp()


def family() -> Household:
    return Household(
        id="h1",
        senior="Mum",
        devices=("speaker",),
        timezone="Europe/Berlin",
        members=(
            Member("mum", "Mum", role="senior"),
            Member("anna", "Anna", relation="daughter", contacts=("sms:+49151",)),
            Member("carla", "Carla", role="caregiver"),
        ),
    )


@pytest.mark.parametrize(
    ("quiet", "now", "until"),
    [
        ("22:00-07:00", at(23, 30), at(7, 0, day=24)),  # over midnight, before it
        ("22:00-07:00", at(3, 15), at(7, 0)),  # over midnight, after it
        ("22:00-07:00", at(7, 0), None),  # the end is not quiet any more
        ("22:00-07:00", at(21, 59), None),
        ("13:00-15:00", at(14, 0), at(15, 0)),  # a nap
        ("13:00-15:00", at(15, 30), None),
        ("08:00-08:00", at(8, 0), None),  # empty
    ],
)
def test_quiet_hours_end_when_they_say(quiet: str, now: float, until: float | None) -> None:
    member = Member("anna", "Anna", quiet=quiet)
    assert member.quiet_until(now, "Europe/Berlin") == until


def test_quiet_hours_are_the_households_local_time() -> None:
    member = Member("anna", "Anna", quiet="22:00-07:00")
    tokyo_night = dt.datetime(2026, 11, 23, 23, 0, tzinfo=ZoneInfo("Asia/Tokyo")).timestamp()
    assert member.quiet_until(tokyo_night, "Asia/Tokyo") is not None
    assert member.quiet_until(tokyo_night, "Europe/Berlin") is None  # 15:00 in Berlin


def test_who_hears_of_what() -> None:
    household = family()
    ids = {c: [m.id for m in recipients(household, c)] for c in ("emergency", "wellness")}
    assert ids == {"emergency": ["anna", "carla"], "wellness": ["anna"]}
    assert [m.id for m in recipients(household, "missed_medication")] == ["carla"]
    no_carer = Household("h2", "Dad", ("radio",), members=(Member("bo", "Bo"),))
    assert [m.id for m in recipients(no_carer, "missed_medication")] == ["bo"]  # next best
    assert household.member("anna").label == "your daughter"
    assert household.member("carla").label == "Carla"


def test_households_are_stored_and_checked(tmp_path: Path) -> None:
    store = Store(tmp_path / "family.sqlite3")
    households.add(store, family())
    assert households.get(store.db, "h1") == family()
    with pytest.raises(HouseholdError, match="exists already"):
        households.add(store, family())
    for n in range(5):
        households.add_member(store, "h1", Member(f"extra{n}", f"Extra {n}"))
    with pytest.raises(HouseholdError, match="at most 8"):
        households.add_member(store, "h1", Member("ninth", "Nine"))
    changed = households.change_member(store, "h1", "anna", quiet="22:00-07:00", language="de")
    assert households.require(store.db, "h1").member("anna") == changed
    households.remove_member(store, "h1", "extra0")
    with pytest.raises(HouseholdError) as info:
        households.remove_member(store, "h1", "extra0")
    assert info.value.reason == "not_a_member"
    with pytest.raises(HouseholdError) as info:
        households.require(store.db, "nowhere")
    assert info.value.reason == "unknown_household"
    households.remove(store, "h1")
    assert households.ids(store.db) == []
    assert store.db.execute("SELECT COUNT(*) FROM members").fetchone()[0] == 0  # cascaded


@pytest.mark.parametrize(
    ("member", "problem"),
    [
        (Member("a/b", "A"), "member id"),
        (Member("a", " "), "member name"),
        (Member("a", "A", role="boss"), "role"),
        (Member("a", "A", contacts=("email:a@b",)), "contact"),
        (Member("a", "A", contacts=("sms:call me",)), "contact"),
        (Member("a", "A", quiet="10pm-7am"), "quiet hours"),
        (Member("a", "A", language="xx"), "language"),
    ],
)
def test_bad_members_are_refused_with_the_field(member: Member, problem: str) -> None:
    with pytest.raises(HouseholdError, match=problem):
        member.check()


@pytest.mark.parametrize(
    ("changes", "problem"),
    [
        ({"id": "a b"}, "household id"),
        ({"devices": ()}, "device id"),
        ({"timezone": "Mars/Olympus"}, "timezone"),
        ({"emergency_number": "help"}, "emergency number"),
    ],
)
def test_bad_households_are_refused(changes: dict, problem: str) -> None:
    import dataclasses

    with pytest.raises(HouseholdError, match=problem):
        dataclasses.replace(family(), **changes).check()


def test_config_defaults_and_checks(tmp_path: Path) -> None:
    config = config_from_dict({"escalation": {"step_s": 5}, "mqtt": {"port": 8883}})
    assert config.escalation.step_s == 5.0 and config.mqtt.port == 8883
    assert config.medication.grace_s == 900.0 and config.service.group == "family-notify"
    bad = [
        ({"escalation": {"step": 5}}, "unknown key"),
        ({"mqtt": {"hots": "x"}}, "unknown key"),
        ({"escalation": {"step_s": "fast"}}, "must be a float"),
        ({"escalation": {"step_s": 0}}, "above 0"),
        ({"digest": {"at": "8pm"}}, "HH:MM"),
        ({"channels": {"sms": "https://sms.example"}}, "file:PATH"),
        ({"service": []}, "must be a table"),
    ]
    for raw, problem in bad:
        with pytest.raises(ConfigError, match=problem):
            config_from_dict(raw)
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "missing.toml")
    (tmp_path / "broken.toml").write_text("[mqtt\n")
    with pytest.raises(ConfigError, match="cannot be read"):
        load_config(tmp_path / "broken.toml")


def test_wording_is_in_the_members_language_and_falls_back_to_english() -> None:
    assert text("de", "acknowledged.calling", by="Anna", senior="Mum") == "Anna ruft Mum an."
    assert text("fr", "acknowledged.calling", by="Anna", senior="Mum") == "Anna is calling Mum."
    calm = text("en", "wellness.check_in", senior="Mum")
    assert calm.startswith("No emergency") and "URGENT" not in calm

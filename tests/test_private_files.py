"""Every SQLite store is the owner's only (it holds names, readings, messages), and so is a
state folder the project creates; a store found with wider permissions is tightened."""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from assistant.outbox import Outbox
from assistant.reminders import ReminderStore
from protocol import DuplicateFilter
from protocol.sqlite import open_db
from services.doctor_connect.store import Store as DoctorStore
from services.family.store import Store as FamilyStore
from services.mqtt_service import SharedDuplicateFilter

STORES: dict[str, Callable[[Path], object]] = {
    "device outbox": Outbox,
    "device reminders": ReminderStore,
    "device dedup": lambda path: DuplicateFilter(path=path),
    "family-notify": FamilyStore,
    "doctor-connect": DoctorStore,
    "service dedup": SharedDuplicateFilter,
}


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture(autouse=True)
def usual_umask() -> Iterator[None]:
    old = os.umask(0o022)  # what most accounts have: new files world-readable by default
    yield
    os.umask(old)


@pytest.mark.parametrize("name", sorted(STORES))
def test_a_new_store_and_its_folder_are_owner_only(tmp_path: Path, name: str) -> None:
    path = tmp_path / "state" / "senior-assistant" / "store.sqlite3"
    store = STORES[name](path)
    files = sorted(p for p in path.parent.iterdir())
    assert path in files
    assert {p.name: mode(p) for p in files} == {p.name: 0o600 for p in files}
    assert mode(path.parent) == 0o700
    store.close()  # type: ignore[attr-defined]


def test_a_store_found_readable_by_others_is_tightened(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite3"
    db = open_db(path)
    db.execute("CREATE TABLE t (x)")
    db.close()
    os.chmod(path, 0o644)
    db = open_db(path)
    db.execute("INSERT INTO t VALUES (1)")
    assert mode(path) == 0o600
    wal = path.with_name(path.name + "-wal")
    assert not wal.exists() or mode(wal) == 0o600
    db.close()

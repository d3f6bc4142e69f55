"""Opening the small SQLite stores both sides keep (outbox, ids already handled).

One way to open them so every store gets the same guarantees: the file is the owner's
only (it holds personal data), the journal is WAL (a reader such as `senior-assistant
status` never blocks the writer) and `synchronous=FULL`, so a commit is on disk when it
returns and survives a power cut, not only a crash.
"""

from __future__ import annotations

import logging
import math
import os
import sqlite3
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from protocol.store_merge import (
    create_like,
    made_anew,
    merge_into,
    replace_contents,
    same_rows,
    tables,
)

log = logging.getLogger(__name__)

# SQLite's primary result codes for a damaged file; a locked or unreachable one is no
# reason to move it aside (its data is fine).
_DAMAGED = {11: "SQLITE_CORRUPT", 26: "SQLITE_NOTADB"}
UNREADABLE = ".unreadable-"  # in the name of a damaged store moved aside
# ... and for a disk that refuses writes: read-only after an error, full, failing
_REFUSED = {8: "SQLITE_READONLY", 10: "SQLITE_IOERR", 13: "SQLITE_FULL"}
_CANTOPEN = 14
BUSY_TIMEOUT_MS = 10_000  # how long a store's connection waits for another's lock


def tighten(path: Path) -> None:
    """Make an existing store, and its -wal/-shm files, the owner's only (a file made by an
    older version, or copied in with other permissions)."""
    for each in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        try:
            if each.stat().st_mode & 0o077:
                os.chmod(each, 0o600)
        except FileNotFoundError:
            pass


def open_db(path: str | Path) -> sqlite3.Connection:
    """A connection in autocommit mode that may be used from several threads, provided the
    caller serialises its use (one lock per connection)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    # Create the file owner-only before SQLite touches it; SQLite gives its -wal and -shm
    # files the same permissions. Only when it does not exist yet: closing any descriptor of
    # the file drops every POSIX lock this process holds on it, and so the locks of its other
    # connections; another process then takes itself for the last one and deletes the WAL
    # under a writer's feet (its later commits are lost to every other reader).
    if not path.exists():
        os.close(os.open(path, os.O_CREAT | os.O_RDWR, 0o600))
    else:
        tighten(path)  # by path, not through a descriptor: see above
    db = sqlite3.connect(
        path, check_same_thread=False, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None
    )
    try:
        db.execute("PRAGMA journal_mode=WAL")  # the first read: "file is not a database"
        db.execute("PRAGMA synchronous=FULL")
    except sqlite3.Error:
        db.close()  # not left open on a file the caller may move aside
        raise
    return db


class DamagedStore(sqlite3.DatabaseError):
    """A store that SQLite's quick check finds damaged."""


def is_damaged(exc: sqlite3.Error) -> bool:
    """Whether `exc` says the file is damaged (corrupt, or no database at all)."""
    return isinstance(exc, DamagedStore) or _primary_code(exc) in _DAMAGED


def _primary_code(exc: sqlite3.Error) -> int | None:
    """SQLite's primary result code of `exc` (None: not one of SQLite's own errors)."""
    code = getattr(exc, "sqlite_errorcode", None)
    return None if code is None else code & 0xFF


def memory_db() -> sqlite3.Connection:
    """A store's connection held in memory, used as `open_db`'s are (autocommit, from
    several threads with the caller's lock)."""
    return sqlite3.connect(":memory:", check_same_thread=False, isolation_level=None)


_refusal_listeners: list[Callable[[Path], None]] = []


def listen_for_refusals(listener: Callable[[Path], None]) -> Callable[[], None]:
    """`listener(path)` is told of every write the disk refuses to a store that goes on in
    memory (the device tells the senior and the family: assistant/device.py). Returns
    what stops the listening. A listener may be called holding a store's lock: it must
    not write to a store itself."""
    _refusal_listeners.append(listener)

    def stop() -> None:
        if listener in _refusal_listeners:
            _refusal_listeners.remove(listener)

    return stop


def report_refusal(path: Path) -> None:
    for listener in list(_refusal_listeners):
        try:
            listener(path)
        except Exception:  # a listener's failure must not fail the store's write
            log.exception("a listener for refused writes failed")


def is_refused(exc: sqlite3.Error) -> bool:
    """Whether `exc` says the disk refused a write (not: locked by another process)."""
    return _primary_code(exc) in _REFUSED


T = TypeVar("T")


def in_transaction(db: sqlite3.Connection | CopiedWhenRefused, work: Callable[[], T]) -> T:
    """`work` in one BEGIN IMMEDIATE transaction (rolled back when it raises). When the
    disk refuses a write in it and the store goes on in memory (`CopiedWhenRefused`), the
    whole of `work` is done once more there: the caller (a caregiver's command, the
    reminders' clock) never fails on a refusal the store has taken over."""
    while True:
        on_disk = getattr(db, "in_memory", None) is False
        db.execute("BEGIN IMMEDIATE")
        try:
            result = work()
            db.execute("COMMIT")
            return result
        except BaseException as exc:
            db.execute("ROLLBACK")
            if not (on_disk and db.in_memory and isinstance(exc, sqlite3.OperationalError)):
                raise
            log.warning("a transaction refused by the disk is done again in memory")


# How often a store gone on in memory tries to go back to its file (`CopiedWhenRefused`),
# and how long it waits for another process's lock on it before trying again later.
BACK_TO_DISK_EVERY_S = 60.0
WRITE_BACK_WAIT_MS = 200


class CopiedWhenRefused:
    """A store's connection that goes on in a copy in memory once the disk refuses a write.

    A senior's reminders must keep coming when the disk is remounted read-only after an
    error, or fills: the first refused write copies the file into memory (ERROR logged)
    and the store carries on there. The statement refused runs again on the copy when it
    stood alone; one refused inside a transaction raises, with a transaction open on the
    copy for the caller's ROLLBACK, and the caller's next try runs on the copy
    (`in_transaction` makes that try at once).

    The disk may take writes again (space freed, a passing I/O error): every
    `retry_every_s`, between transactions, the copy is written back to the file in one
    transaction, and the store goes on there (WARNING logged), so what changed meanwhile
    survives a restart. Not while the disk still refuses, nor while another process holds
    the file (it is tried again later; the store's own callers must not wait on it). What
    another process changed in the file meanwhile (the reminders command beside the
    running device) is kept beside the copy's changes (protocol/store_merge.py); a file
    that cannot be merged (a table without a primary key) is kept as it is, the copy stays
    in memory (ERROR logged once), and a restart takes the file. A file removed meanwhile
    is made again from the copy. Everything else is the connection's own."""

    def __init__(
        self,
        db: sqlite3.Connection,
        path: Path,
        retry_every_s: float = BACK_TO_DISK_EVERY_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._db = db
        self.path = path
        self.in_memory = False
        self._retry_every_s = retry_every_s
        self._clock = clock
        self._next_try = 0.0
        self._base: sqlite3.Connection | None = None  # the file as it was copied
        self._copied_file: tuple[int, int] | None = None  # which file that was (`_file_id`)

    def execute(self, sql: str, parameters: Sequence[object] = ()) -> sqlite3.Cursor:
        if self.in_memory and not self._db.in_transaction and self._clock() >= self._next_try:
            self._back_to_disk()
        inside = self._db.in_transaction  # before: SQLite may roll back on the error
        try:
            return self._db.execute(sql, parameters)
        except sqlite3.OperationalError as exc:
            if self.in_memory or not is_refused(exc):
                raise
            self._copy_to_memory(exc)
            if inside:
                self._db.execute("BEGIN")
                raise
        return self._db.execute(sql, parameters)

    def _copy_to_memory(self, exc: sqlite3.Error) -> None:
        if self._db.in_transaction:
            self._db.rollback()
        memory = memory_db()
        self._db.backup(memory)
        self._base = memory_db()
        memory.backup(self._base)
        self._copied_file = _file_id(self.path)
        self._db.close()
        self._db, self.in_memory = memory, True
        self._next_try = self._clock() + self._retry_every_s
        report_refusal(self.path)
        log.error("the disk refuses writes to %s (%s): going on with a copy in memory; "
                  "what changes is lost if the device restarts before the disk takes "
                  "writes again", self.path.name, exc)  # fmt: skip

    def _back_to_disk(self) -> None:
        """Write the copy back to the file and go on there, or try again later. A write-back
        that fails leaves the file as it was (one transaction)."""
        self._next_try = self._clock() + self._retry_every_s
        # Removed, or made anew since the copy (by a command run meanwhile): its rows are
        # none the copy knew, so none of the copy's is taken for removed there.
        same_file = self._copied_file is not None and _file_id(self.path) == self._copied_file
        try:
            disk = open_db(self.path)
        except (sqlite3.Error, OSError) as exc:
            log.debug("%s still cannot be opened for writing: %s", self.path.name, exc)
            return
        try:
            disk.execute(f"PRAGMA busy_timeout = {WRITE_BACK_WAIT_MS}")
            disk.execute("BEGIN IMMEDIATE")
            assert self._base is not None
            if not tables(disk):
                create_like(disk, self._db)
            if same_file and made_anew(disk, self._base):
                same_file = False
            base = self._base if same_file else _empty_like(self._db)
            try:
                unchanged = same_rows(disk, base)  # nobody else wrote to it
                both_changed = None if unchanged else merge_into(disk, self._db, base)
            finally:
                if base is not self._base:
                    base.close()
            if unchanged:
                replace_contents(disk, self._db)
            elif both_changed is None:
                disk.execute("ROLLBACK")
                disk.close()
                self._changed_elsewhere()
                return
            elif both_changed:
                log.warning("%s: %d rows changed here and by another program meanwhile; "
                            "this one's kept", self.path.name, both_changed)  # fmt: skip
            disk.execute("COMMIT")
            disk.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        except sqlite3.Error as exc:
            disk.close()  # an open transaction is rolled back
            log.debug("%s not written back yet: %s", self.path.name, exc)
            return
        self._db.close()
        self._base.close()
        self._db, self.in_memory, self._base, self._copied_file = disk, False, None, None
        log.warning("the disk takes writes to %s again: what changed in memory is saved, "
                    "and the store goes on there", self.path.name)  # fmt: skip

    def _changed_elsewhere(self) -> None:
        """Another process changed the file since the copy, and the two cannot be merged:
        its change must not be overwritten (it was confirmed to whoever made it). Told
        once; not tried again."""
        self._next_try = math.inf
        log.error(
            "%s was changed by another program while this one went on in memory: not "
            "overwritten; what changed here since the disk refused is lost when the device "
            "restarts, and the restart takes the file",
            self.path.name,
        )

    def close(self) -> None:
        if self._base is not None:
            self._base.close()
        self._db.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._db, name)


def _empty_like(source: sqlite3.Connection) -> sqlite3.Connection:
    """A store in memory with `source`'s tables, and no rows."""
    empty = memory_db()
    create_like(empty, source)
    return empty


def _file_id(path: Path) -> tuple[int, int] | None:
    """The file at `path` (device and inode), None: none there."""
    try:
        found = path.stat()
    except OSError:
        return None
    return found.st_dev, found.st_ino


def open_or_set_aside(
    path: str | Path, prepare: Callable[[sqlite3.Connection], None]
) -> tuple[sqlite3.Connection, Path | None]:
    """Open the store at `path` and `prepare` it (`open_checked`).

    A damaged file (no database, or failing SQLite's quick check) must not keep the device
    from starting, and so from calling for help: it is moved aside as
    `<name>.unreadable-<unix time>` (with its -wal and -shm, if SQLite left them) for
    whoever looks into it and for the device to tell of (assistant/lost_state.py), named in
    an ERROR, and a new store is started. Returns the connection and where the damaged file
    went (None when there was none).

    A file the disk will not open or create (a failing disk, or one read-only at boot,
    where SQLite cannot make the WAL's -shm file) must not keep it from starting either:
    the store goes on in memory, from a copy of the file when it can still be read, else
    empty (`_in_memory`, an ERROR, `report_refusal`); the file itself is not touched. A
    locked file raises: another process has it, and its data is fine."""
    path = Path(path)
    try:
        return _open_else_in_memory(path, prepare), None
    except sqlite3.DatabaseError as exc:
        if not is_damaged(exc):
            raise
        return _set_aside(path, prepare, exc)


def _open_else_in_memory(
    path: Path, prepare: Callable[[sqlite3.Connection], None]
) -> sqlite3.Connection:
    """`open_checked`, or, when the disk will not open or create the file, `_in_memory`;
    a damaged or locked file raises."""
    try:
        return open_checked(path, prepare)
    except sqlite3.DatabaseError as exc:
        if not (is_refused(exc) or _primary_code(exc) == _CANTOPEN):
            raise
        return _in_memory(path, prepare, exc)
    except OSError as exc:  # its folder or the file cannot be made
        return _in_memory(path, prepare, exc)


def _set_aside(
    path: Path, prepare: Callable[[sqlite3.Connection], None], reason: sqlite3.Error
) -> tuple[sqlite3.Connection, Path | None]:
    aside = _aside_name(path)
    try:
        path.rename(aside)
        for suffix in ("-wal", "-shm"):
            wal = path.with_name(path.name + suffix)
            if wal.exists():
                wal.rename(aside.with_name(aside.name + suffix))
    except OSError as exc:  # the disk will not rename either
        return _in_memory(path, prepare, exc), None
    log.error("%s is damaged (%s): moved to %s and started afresh without what it held",
              path, reason, aside.name)  # fmt: skip
    return _open_else_in_memory(path, prepare), aside  # the new file: a full disk, say


def _in_memory(
    path: Path, prepare: Callable[[sqlite3.Connection], None], reason: Exception
) -> sqlite3.Connection:
    db = memory_db()
    copied = _copy_if_readable(path, db)
    prepare(db)
    held = "a copy of what it held" if copied else "nothing of what it held"
    log.error("%s cannot be opened (%s): going on in memory with %s; what changes is lost "
              "when the device restarts", path, reason, held)  # fmt: skip
    report_refusal(path)
    return db


def _copy_if_readable(path: Path, into: sqlite3.Connection) -> bool:
    """Copy a file that can still be read (read-only; else as immutable, without the
    locks a read-only disk cannot give) and passes the quick check into `into`."""
    if not path.is_file():
        return False
    for how in ("mode=ro", "immutable=1"):
        try:
            source = sqlite3.connect(f"{path.resolve().as_uri()}?{how}", uri=True)
        except sqlite3.Error:
            continue
        try:
            if [row[0] for row in source.execute("PRAGMA quick_check(3)")] != ["ok"]:
                return False
            source.backup(into)
            return True
        except sqlite3.Error:
            continue
        finally:
            source.close()
    return False


def _aside_name(path: Path) -> Path:
    stamp = int(time.time())
    aside = path.with_name(f"{path.name}{UNREADABLE}{stamp}")
    count = 1
    while aside.exists():  # a second one within the second
        aside = path.with_name(f"{path.name}{UNREADABLE}{stamp}.{count}")
        count += 1
    return aside


def open_checked(
    path: str | Path, prepare: Callable[[sqlite3.Connection], None]
) -> sqlite3.Connection:
    """`open_db`, SQLite's quick check (a damaged file raises `DamagedStore`, or SQLite's
    own error for one that is no database), then `prepare`."""
    db = open_db(path)
    try:
        verdict = [row[0] for row in db.execute("PRAGMA quick_check(3)")]
        if verdict != ["ok"]:
            raise DamagedStore("; ".join(str(v) for v in verdict))
        prepare(db)
    except sqlite3.Error:
        db.close()
        raise
    return db

"""Opening the small SQLite stores both sides keep (outbox, ids already handled).

One way to open them so every store gets the same guarantees: the file is the owner's
only (it holds personal data), the journal is WAL (a reader such as `senior-assistant
status` never blocks the writer) and `synchronous=FULL`, so a commit is on disk when it
returns and survives a power cut, not only a crash.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path


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
    db = sqlite3.connect(path, check_same_thread=False, timeout=10, isolation_level=None)
    try:
        db.execute("PRAGMA journal_mode=WAL")  # the first read: "file is not a database"
        db.execute("PRAGMA synchronous=FULL")
    except sqlite3.Error:
        db.close()  # not left open on a file the caller may move aside
        raise
    return db

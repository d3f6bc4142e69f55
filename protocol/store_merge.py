"""Writing a store's copy held in memory back into its file (protocol/sqlite.py,
`CopiedWhenRefused`), keeping what another process changed in the file meanwhile.

Three versions of every table: the file as it was when it was copied (`base`), the copy
as this process changed it (`mine`), and the file as it is now (`theirs`: the reminders
command beside the running device may have written to it once the disk took writes
again). Row by row, by primary key: a row this process left as it was takes theirs
(added, changed or removed there), any other takes mine. Where both changed one row, mine
is kept (for the reminders, the device's record of what was asked and answered: dropping
it could ask for a dose again), unless one side removed it: a reminder stopped stays
stopped (a medicine the doctor stopped must not come back). A file made anew since the
copy has an empty `base`: nothing in it is taken for removed.
"""

from __future__ import annotations

import sqlite3

Row = tuple[object, ...]


def tables(db: sqlite3.Connection) -> list[str]:
    return [
        name
        for (name,) in db.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
            " ORDER BY name"
        )
    ]


def same_rows(one: sqlite3.Connection, other: sqlite3.Connection) -> bool:
    """Whether both hold the same tables with the same rows (in any order)."""
    names = tables(one)
    if names != tables(other):
        return False
    return all(sorted(_rows(one, t)) == sorted(_rows(other, t)) for t in names)


def made_anew(file: sqlite3.Connection, base: sqlite3.Connection) -> bool:
    """Whether `file` looks made anew since `base` was copied from it: `base` had rows and
    `file` keeps none of them (its inode alone cannot tell: a new file often gets the
    number of one just removed)."""
    in_file = set(tables(file))
    had = kept = False
    for table in tables(base):
        rows = set(_rows(base, table))
        had = had or bool(rows)
        if table in in_file:
            kept = kept or bool(rows & set(_rows(file, table)))
    return had and not kept


def create_like(target: sqlite3.Connection, source: sqlite3.Connection) -> None:
    """`source`'s tables and indexes (and schema version) in the empty `target`."""
    for (sql,) in source.execute(
        "SELECT sql FROM sqlite_master WHERE sql IS NOT NULL AND name NOT LIKE 'sqlite_%'"
        " ORDER BY type = 'index'"
    ):
        target.execute(sql)
    (version,) = source.execute("PRAGMA user_version").fetchone()
    target.execute(f"PRAGMA user_version = {int(version)}")


def replace_contents(target: sqlite3.Connection, source: sqlite3.Connection) -> None:
    """Every table's rows in `target` replaced by `source`'s (the same schema)."""
    for table in tables(source):
        rows = source.execute(f'SELECT * FROM "{table}"').fetchall()
        target.execute(f'DELETE FROM "{table}"')
        if rows:
            marks = ", ".join("?" * len(rows[0]))
            target.executemany(f'INSERT INTO "{table}" VALUES ({marks})', rows)


def merge_into(
    target: sqlite3.Connection, mine: sqlite3.Connection, base: sqlite3.Connection
) -> int | None:
    """Make `target` (theirs) hold `mine`'s changes since `base` beside its own; the number
    of rows both changed (mine kept). None, and `target` untouched, when a table cannot be
    merged: no primary key, or other columns in `target` (then nothing is written)."""
    plans = []
    for table in tables(mine):
        columns = _columns(mine, table)
        keys = [name for name, pk in columns if pk]
        if not keys or _columns(target, table) != columns:
            return None
        plans.append((table, [name for name, _ in columns], keys))
    both_changed = 0
    for table, names, keys in plans:
        ours, before, theirs = (_by_key(db, table, names, keys) for db in (mine, base, target))
        where = " AND ".join(f'"{key}" IS ?' for key in keys)
        marks = ", ".join("?" * len(names))
        for key in ours.keys() | before.keys() | theirs.keys():
            kept, was, now = ours.get(key), before.get(key), theirs.get(key)
            conflict = kept != was and now != was and kept != now
            both_changed += conflict
            if kept == was:
                result = now
            elif conflict and (kept is None or now is None):
                result = None  # removed on one side, changed on the other: it stays removed
            else:
                result = kept
            if result != now:
                target.execute(f'DELETE FROM "{table}" WHERE {where}', key)
                if result is not None:
                    target.execute(f'INSERT INTO "{table}" VALUES ({marks})', result)
    return both_changed


def _rows(db: sqlite3.Connection, table: str) -> list[str]:
    """A table's rows, each as a comparable string."""
    return [repr(row) for row in db.execute(f'SELECT * FROM "{table}"')]


def _columns(db: sqlite3.Connection, table: str) -> list[tuple[str, int]]:
    """(name, position in the primary key, 0: none) of each column, in order."""
    return [(row[1], row[5]) for row in db.execute(f'PRAGMA table_info("{table}")')]


def _by_key(
    db: sqlite3.Connection, table: str, names: list[str], keys: list[str]
) -> dict[Row, Row]:
    index = [names.index(key) for key in keys]
    rows = db.execute(f'SELECT * FROM "{table}"').fetchall()
    return {tuple(row[i] for i in index): tuple(row) for row in rows}

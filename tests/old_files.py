"""State files as an older version left them: a schema before columns were added."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any


def old_database(path: Path, schema: str, *rows: tuple[str, tuple[Any, ...]]) -> Path:
    """A SQLite file at `path` with `schema` (one CREATE TABLE) and `rows` (an INSERT and
    its parameters each), committed and closed."""
    db = sqlite3.connect(path)
    try:
        db.execute(schema)
        for statement, parameters in rows:
            db.execute(statement, parameters)
        db.commit()
    finally:
        db.close()
    return path

"""`senior-assistant status`: the link's state, what waits in the outbox and how long the
oldest message has waited, read from the state file the running assistant writes.

It reads another process's SQLite file (WAL: it never blocks that process) and checks that
the process which wrote the state is still alive, so a device that crashed while connected
is not reported as connected.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from assistant.outbox import (
    LinkState,
    OutboxStats,
    open_state_db,
    read_link_state,
    read_rejections,
    read_stats,
    state_db_path,
)


@dataclass(frozen=True)
class Status:
    state_file: Path
    link: LinkState | None  # None: the link never ran with this state directory
    running: bool  # the process that last wrote the link state is alive
    outbox: OutboxStats
    rejections: dict[str, int]

    @property
    def state(self) -> str:
        """What the link is doing now: a stored state, "not running" or "never started"."""
        if self.link is None:
            return "never started"
        if self.link.state != "stopped" and not self.running:
            return "not running"
        return self.link.state


def read_status(state_dir: str | Path) -> Status:
    path = state_db_path(state_dir)
    if not path.exists():  # do not create a state file just by looking
        return Status(path, None, False, OutboxStats(0, 0, None), {})
    db = open_state_db(path)
    try:
        link = read_link_state(db)
        stats = read_stats(db)
        rejections = read_rejections(db)
    finally:
        db.close()
    running = link is not None and _alive(link.pid)
    return Status(path, link, running, stats, rejections)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: it exists
        return True
    return True


def as_dict(status: Status, now: float | None = None) -> dict[str, Any]:
    now = time.time() if now is None else now
    link = status.link
    return {
        "state": status.state,
        "broker": link.broker if link else None,
        "since": _iso(link.since) if link else None,
        "session_present": link.session_present if link else None,
        "last_error": link.last_error if link else None,
        "last_error_at": _iso(link.last_error_at) if link and link.last_error_at else None,
        "pid": link.pid if link else None,
        "queued": status.outbox.queued,
        "queued_alerts": status.outbox.alerts,
        "oldest_age_s": status.outbox.oldest_age_s(now),
        "rejected": status.rejections,
        "state_file": str(status.state_file),
    }


def render(status: Status, now: float | None = None) -> str:
    """A few lines for a person: link, outbox, refused messages."""
    now = time.time() if now is None else now
    link = status.link
    if link is None:
        lines = [f"link: never started (no state in {status.state_file.parent})"]
    else:
        line = f"link: {status.state}"
        if status.state == "not running":
            line += f" (was {link.state} when pid {link.pid} stopped)"
        line += f", broker {link.broker}, since {_iso(link.since)} ({_age(now - link.since)} ago)"
        if status.state == "connected" and link.session_present is not None:
            line += ", session " + ("kept" if link.session_present else "new")
        lines = [line]
        if link.last_error and link.last_error_at:
            ago = _age(now - link.last_error_at)
            lines.append(f"last error: {link.last_error} ({ago} ago)")
    stats = status.outbox
    if stats.queued == 0:
        lines.append("outbox: empty")
    else:
        alerts = (
            f" ({stats.alerts} alert{'s' if stats.alerts != 1 else ''})" if stats.alerts else ""
        )
        oldest = _age(stats.oldest_age_s(now) or 0.0)
        lines.append(f"outbox: {stats.queued} queued{alerts}, oldest {oldest} old")
    if status.rejections:
        counts = ", ".join(f"{reason} {n}" for reason, n in sorted(status.rejections.items()))
        lines.append(f"rejected incoming: {counts}")
    return "\n".join(lines)


def render_json(status: Status, now: float | None = None) -> str:
    return json.dumps(as_dict(status, now), indent=2)


def _iso(when: float) -> str:
    return dt.datetime.fromtimestamp(when, dt.UTC).isoformat(timespec="seconds")


def _age(seconds: float) -> str:
    seconds = max(0.0, seconds)
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 2 * 3600:
        return f"{seconds / 60:.0f} min"
    if seconds < 2 * 86400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"

"""Running the real `senior-assistant` command in a child process."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def run_cli(
    *args: str,
    env: dict[str, str] | None = None,
    timeout: float = 120,
    cwd: Path | None = None,
) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "assistant.cli", *args]
    return subprocess.run(
        command,
        env=env or dict(os.environ),
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


def turn_lines(stdout: str) -> dict[str, str]:
    """The last turn's `heard:`, `intent:` and `reply:` lines."""
    lines: dict[str, str] = {}
    for line in stdout.splitlines():
        key, _, value = line.partition(": ")
        if key in ("heard", "intent", "reply"):
            lines[key] = value
    return lines

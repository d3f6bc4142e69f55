"""The phone's position from gpsd, the Linux GPS daemon (`device.gpsd`, host:port).

gpsd owns the receiver (serial, USB or a modem's NMEA port) and speaks JSON over TCP: after
`?WATCH={"enable":true,"json":true}` it sends a `TPV` object at every fix. A thread keeps
the latest one with a position (mode 2 = 2D, 3 = 3D); `fix()` returns it while it is
fresher than `max_age_s`, else None (indoors, the receiver lost the sky a while ago). The
thread reconnects when gpsd restarts. Only the standard library is used.
"""

from __future__ import annotations

import json
import logging
import socket
import threading
import time

from devices.interfaces import DeviceError, Fix

log = logging.getLogger(__name__)

DEFAULT_ADDRESS = "127.0.0.1:2947"
WATCH = b'?WATCH={"enable":true,"json":true};\n'
MAX_AGE_S = 300.0  # an older position is not where the senior is now
RETRY_S = 2.0
_READ_TIMEOUT_S = 1.0
_MAX_LINE = 64 * 1024


def parse_address(address: str) -> tuple[str, int]:
    """ "host:port" → (host, port); DeviceError when it is not one."""
    host, _, port = address.strip().rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise DeviceError(f"gpsd address {address!r}: expected HOST:PORT, e.g. {DEFAULT_ADDRESS}")
    return host, int(port)


def fix_from_tpv(report: dict, now: float) -> Fix | None:
    """A gpsd TPV report as a Fix, or None when it has no position."""
    if report.get("class") != "TPV" or report.get("mode", 0) < 2:
        return None
    lat, lon = report.get("lat"), report.get("lon")
    if not isinstance(lat, int | float) or not isinstance(lon, int | float):
        return None
    errors = [report.get(k) for k in ("eph", "epx", "epy")]
    known = [e for e in errors if isinstance(e, int | float)]
    accuracy = float(report["eph"]) if isinstance(report.get("eph"), int | float) else None
    if accuracy is None and known:
        accuracy = float(max(known))
    return Fix(float(lat), float(lon), accuracy, now)


class GpsdLocation:
    def __init__(
        self, address: str = DEFAULT_ADDRESS, max_age_s: float = MAX_AGE_S, retry_s: float = RETRY_S
    ) -> None:
        self.host, self.port = parse_address(address)
        self.max_age_s = max_age_s
        self.retry_s = retry_s
        self._fix: Fix | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="gpsd", daemon=True)
        self._thread.start()

    def fix(self) -> Fix | None:
        with self._lock:
            fix = self._fix
        if fix is None or time.time() - fix.at > self.max_age_s:
            return None
        return fix

    def close(self) -> None:
        self._stop.set()
        self._thread.join(_READ_TIMEOUT_S + 2)

    def _run(self) -> None:
        warned = False
        while not self._stop.is_set():
            try:
                self._watch()
                warned = False
            except OSError as exc:
                if not warned:  # once per outage, not every retry
                    log.warning("no position from gpsd at %s:%d: %s", self.host, self.port, exc)
                    warned = True
            self._stop.wait(self.retry_s)

    def _watch(self) -> None:
        with socket.create_connection((self.host, self.port), timeout=5) as sock:
            sock.sendall(WATCH)
            sock.settimeout(_READ_TIMEOUT_S)
            log.info("reading positions from gpsd at %s:%d", self.host, self.port)
            buffer = b""
            while not self._stop.is_set():
                try:
                    data = sock.recv(4096)
                except TimeoutError:
                    continue
                if not data:
                    raise ConnectionError("gpsd closed the connection")
                buffer += data
                *lines, buffer = buffer.split(b"\n")
                if len(buffer) > _MAX_LINE:  # not gpsd: drop what cannot be a report
                    buffer = b""
                for line in lines:
                    self._report(line)

    def _report(self, line: bytes) -> None:
        try:
            report = json.loads(line)
        except ValueError:
            return
        fix = fix_from_tpv(report, time.time()) if isinstance(report, dict) else None
        if fix is not None:
            with self._lock:
                self._fix = fix
            log.debug("position fix (%.0f m)", fix.accuracy_m or -1)

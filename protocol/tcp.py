"""Socket settings both sides of the contract use on their MQTT connections."""

from __future__ import annotations

import contextlib
import socket
from typing import Any


def no_delay(client: Any, userdata: Any, sock: Any) -> None:
    """paho's `on_socket_open`: small packets leave at once. With Nagle's algorithm a PUBACK
    or a short publish waits for the TCP acknowledgement of the previous one (up to 40 ms a
    round: an alert and its acknowledgement are exactly such small packets)."""
    with contextlib.suppress(OSError, AttributeError):  # not a TCP socket (a websocket)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

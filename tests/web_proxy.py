"""A reverse proxy in front of the care console, as a deployment puts one (nginx, caddy):
it passes requests and streams answers (the live event stream too), and answers 502 Bad
Gateway with a page of its own, without the console's script, while the console is down.
It counts what it was asked for, so a test can see how often a page came back."""

from __future__ import annotations

import http.client
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from tests.broker import HOST

# hop-by-hop headers, not passed on
_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade"}
BAD_GATEWAY = b"<!doctype html><title>502 Bad Gateway</title><h1>502 Bad Gateway</h1>"


class ConsoleProxy:
    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.asked: Counter[tuple[str, int]] = Counter()  # (path without query, status)
        self._lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                proxy._pass(self)

            def do_POST(self) -> None:
                proxy._pass(self)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer((HOST, 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://{HOST}:{self._server.server_address[1]}/"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> ConsoleProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def count(self, path: str, status: int) -> int:
        with self._lock:
            return self.asked[(path, status)]

    def _pass(self, request: BaseHTTPRequestHandler) -> None:
        path = request.path.split("?")[0]
        length = int(request.headers.get("Content-Length") or 0)
        body = request.rfile.read(length) if length else None
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP}
        upstream = http.client.HTTPConnection(HOST, self.upstream_port, timeout=60)
        try:
            upstream.request(request.command, request.path, body=body, headers=headers)
            answer = upstream.getresponse()
        except OSError:
            self._note(path, 502)
            request.send_response(502)
            request.send_header("Content-Type", "text/html")
            request.send_header("Content-Length", str(len(BAD_GATEWAY)))
            request.send_header("Connection", "close")
            request.end_headers()
            request.wfile.write(BAD_GATEWAY)
            upstream.close()
            return
        self._note(path, answer.status)
        request.send_response(answer.status)
        for name, value in answer.getheaders():
            if name.lower() not in _HOP and name.lower() != "content-length":
                request.send_header(name, value)
        request.send_header("Connection", "close")
        request.end_headers()
        request.close_connection = True
        try:
            while chunk := answer.read1(65536):  # as it comes: the event stream too
                request.wfile.write(chunk)
                request.wfile.flush()
        except OSError:
            pass  # the browser or the console went away
        finally:
            upstream.close()

    def _note(self, path: str, status: int) -> None:
        with self._lock:
            self.asked[(path, status)] += 1

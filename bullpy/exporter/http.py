"""The exporter's small HTTP server (standard library): ``/metrics``, ``/health`` (and bull_exporter's
``/healthz``) and on-demand discovery (bull_exporter's ``POST /discover_queues``)."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST

log = logging.getLogger("bullpy.exporter")


class MetricsServer:
    """Serves metrics and health on ``host:port`` from a daemon thread (``port=0``: any free port).

    Args:
        render: the ``/metrics`` body; an exception makes the scrape fail with 503 and one line saying why.
        health: raises when the service is unhealthy (503), else returns (200).
        discover: for ``POST /discover_queues`` (and ``/discover``): looks for queues again, returns their names.
    """

    def __init__(self, render: Callable[[], bytes], health: Callable[[], object], *, host: str = "0.0.0.0",
                 port: int = 9538, discover: Callable[[], list[str]] | None = None) -> None:
        handler = _handler(render, health, discover)
        self.httpd = ThreadingHTTPServer((host, port), handler)
        self.httpd.daemon_threads = True
        self.host = host
        self.port = int(self.httpd.server_address[1])
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host = "127.0.0.1" if self.host in ("0.0.0.0", "") else self.host
        return f"http://{host}:{self.port}"

    def start(self) -> MetricsServer:
        """Serve from a daemon thread; returns at once."""
        if self._thread is None:
            self._thread = threading.Thread(target=self.httpd.serve_forever, name=f"bullpy-metrics-{self.port}",
                                            daemon=True)
            self._thread.start()
        return self

    def wait(self) -> None:
        """Block until the server is closed (Ctrl-C interrupts)."""
        while self._thread is not None and self._thread.is_alive():
            self._thread.join(0.5)

    def close(self) -> None:
        """Stop serving and free the port."""
        if self._thread is not None:
            self.httpd.shutdown()
            self._thread.join(timeout=5)
            self._thread = None
        self.httpd.server_close()

    def __enter__(self) -> MetricsServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _handler(render: Callable[[], bytes], health: Callable[[], object],
             discover: Callable[[], list[str]] | None) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "bullpy-exporter"

        def _send(self, status: int, body: bytes, content_type: str = "application/json") -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def _json(self, status: int, value: Any) -> None:
            self._send(status, (json.dumps(value) + "\n").encode())

        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0].rstrip("/") or "/"
            if path == "/metrics":
                try:
                    body = render()
                except Exception as exc:
                    log.warning("scrape failed: %s", exc)
                    self._send(503, f"scrape failed: {_line(exc)}\n".encode(), "text/plain; charset=utf-8")
                    return
                self._send(200, body, CONTENT_TYPE_LATEST)
            elif path in ("/health", "/healthz"):
                try:
                    health()
                except Exception as exc:
                    self._json(503, {"ok": False, "error": _line(exc)})
                    return
                self._json(200, {"ok": True})
            elif path == "/":
                links = "".join(f'<li><a href="{p}">{p}</a></li>' for p in ("/metrics", "/health"))
                self._send(200, f"<html><body><h1>bullpy exporter</h1><ul>{links}</ul></body></html>".encode(),
                           "text/html; charset=utf-8")
            else:
                self._json(404, {"ok": False, "error": f"no such path {path!r}"})

        do_HEAD = do_GET

        def do_POST(self) -> None:
            path = self.path.split("?", 1)[0].rstrip("/")
            if path not in ("/discover_queues", "/discover") or discover is None:
                self._json(404, {"ok": False, "error": f"no such path {path!r}"})
                return
            try:
                names = discover()
            except Exception as exc:
                self._json(503, {"ok": False, "error": _line(exc)})
                return
            self._json(200, {"ok": True, "queues": names})

        def log_message(self, format: str, *args: Any) -> None:
            log.debug("%s " + format, self.address_string(), *args)

    return Handler


def _line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__

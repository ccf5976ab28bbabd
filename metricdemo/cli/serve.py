"""`metrics serve`: a standalone exporter that serves /metrics from one process."""

from __future__ import annotations

import logging
import socket
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from django.core.handlers.wsgi import WSGIRequest
from django.core.management.base import CommandError
from django.db import close_old_connections

from metricdemo import views

help = "Serve /metrics from this process only, for example --addr 127.0.0.1:9464."

logger = logging.getLogger("metricdemo")


def add_arguments(parser: Any) -> None:
    """Add --addr."""
    parser.add_argument(
        "--addr",
        default="127.0.0.1:9464",
        help="host:port to listen on (default 127.0.0.1:9464; [::1]:9464 for IPv6).",
    )


def handle(command: Any, options: dict[str, Any]) -> None:
    """Serve until interrupted."""
    host, port = parse_addr(options["addr"])
    server_class = _ThreadingServer6 if ":" in host else _ThreadingServer
    try:
        server = make_server(
            host, port, application, server_class, handler_class=_QuietHandler
        )
    except OSError as exc:
        raise CommandError(f"Cannot listen on {options['addr']}: {exc}") from None
    command.stdout.write(f"Serving metrics on http://{options['addr']}/metrics")
    command.stdout.flush()
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


def parse_addr(addr: str) -> tuple[str, int]:
    """Split host:port (or [v6]:port) and check the port."""
    host, sep, port = addr.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise CommandError(
            f"--addr {addr!r} is not host:port, for example 127.0.0.1:9464."
        )
    host = host.strip("[]") or "127.0.0.1"
    return host, int(port)


def application(environ: dict, start_response: Any) -> list[bytes]:
    """Answer /metrics with the app's view and anything else with 404."""
    close_old_connections()
    try:
        if environ.get("PATH_INFO", "") not in ("/metrics", "/metrics/"):
            start_response("404 Not Found", [("Content-Type", "text/plain")])
            return [b"Only /metrics is served here.\n"]
        response = views.metrics(WSGIRequest(environ))
        status = f"{response.status_code} {response.reason_phrase}"
        start_response(status, list(response.items()))
        return [response.content]
    finally:
        close_old_connections()


class _ThreadingServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _ThreadingServer6(_ThreadingServer):
    address_family = socket.AF_INET6


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        logger.debug("metrics serve: " + format, *args)

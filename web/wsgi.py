"""Production WSGI serving with gunicorn (`ntpswf serve`), and `web.wsgi:app` for any other server."""

from __future__ import annotations

import contextlib
from typing import Any

from gunicorn.app.base import BaseApplication
from gunicorn.http.errors import LimitRequestLine
from gunicorn.workers.gthread import ThreadWorker

from web import create_app


class _Server(BaseApplication):  # type: ignore[misc]
    def __init__(self, options: dict[str, Any]) -> None:
        self.options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self) -> Any:
        # Each worker builds its own app (and connection pool) after the fork.
        return create_app()


#: The longest request line gunicorn reads (its own maximum); the app answers 414 above MAX_URL_CHARS itself.
LIMIT_REQUEST_LINE = 8190
_TOO_LONG = (b'{"errors":[{"message":"the address is too long: at most 4096 characters of path and query"}]}\n')


class JsonErrorsWorker(ThreadWorker):  # type: ignore[misc]
    """gunicorn's threaded worker, answering a request line too long even to read with the API's JSON error
    shape instead of gunicorn's HTML page (the path is unknown then: the API's shape is the useful one)."""

    def handle_error(self, req: Any, client: Any, addr: Any, exc: BaseException) -> None:
        if isinstance(exc, LimitRequestLine):
            head = (b"HTTP/1.1 414 URI Too Long\r\nContent-Type: application/json\r\nConnection: close\r\n"
                    b"Content-Length: %d\r\n\r\n" % len(_TOO_LONG))
            with contextlib.suppress(OSError):  # the client went away: nothing to tell it
                client.sendall(head + _TOO_LONG)
            return
        super().handle_error(req, client, addr, exc)


def serve(host: str, port: int, workers: int, threads: int) -> None:
    """Serve on host:port with `workers` processes of `threads` threads each."""
    _Server({
        "bind": f"{host}:{port}", "workers": max(1, workers), "threads": max(1, threads),
        "worker_class": "web.wsgi.JsonErrorsWorker", "accesslog": "-", "graceful_timeout": 20, "timeout": 60,
        "limit_request_line": LIMIT_REQUEST_LINE,
    }).run()


def __getattr__(name: str) -> Any:
    # `web.wsgi:app` builds the app only when a server asks for it.
    if name == "app":
        return create_app()
    raise AttributeError(name)

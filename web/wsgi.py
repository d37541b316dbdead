"""Production WSGI serving with gunicorn (`ntpswf serve`), and `web.wsgi:app` for any other server."""

from __future__ import annotations

from typing import Any

from gunicorn.app.base import BaseApplication

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


def serve(host: str, port: int, workers: int, threads: int) -> None:
    """Serve on host:port with `workers` processes of `threads` threads each."""
    _Server({
        "bind": f"{host}:{port}", "workers": max(1, workers), "threads": max(1, threads),
        "worker_class": "gthread", "accesslog": "-", "graceful_timeout": 20, "timeout": 60,
    }).run()


def __getattr__(name: str) -> Any:
    # `web.wsgi:app` builds the app only when a server asks for it.
    if name == "app":
        return create_app()
    raise AttributeError(name)

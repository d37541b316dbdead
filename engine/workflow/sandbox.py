"""Diagram code runs in sandbox processes that are killed and replaced when they overrun.

The in-process tracer of `engine.workflow.scripts` stops Python-level loops, but not one long C-level call
(``sorted`` of a big list, ``list.count`` over long strings), which holds the GIL and every other thread of the
web process with it. So every script, condition, timer expression and decision-table cell that could do
unbounded work runs here: in a pool of long-lived worker processes (fresh interpreters, started on first
need), each with an address-space limit (``setrlimit(RLIMIT_AS)``). The caller waits on a socket without
holding the GIL; at the deadline it kills the worker (SIGKILL: a C call cannot refuse it) and starts a new one
on the next call. Task instructions (Jinja templates) are rendered there too, with a limit on their length.

Helpers that need the database (``next_point``, ``person_exists``...) keep running in the caller: a script's
call to a helper is sent back over the pipe, run there, and its answer returned (a small RPC loop).

Expressions that can do no unbounded work (names, constants, reads, comparisons, and/or/not, + and -) stay
in-process (see `engine.workflow.scripts`): gateway conditions are the hot path, and their cost is bounded by the
size of the case data, which has its own limit.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import pickle
import resource
import signal
import socket
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Callable, Mapping
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

__all__ = ["SandboxError", "render_template", "run_in_sandbox", "shutdown"]

#: Idle workers kept per process (more are started while more calls run at once, and stopped after).
IDLE_WORKERS = 2
_PROJECT_ROOT = Path(__file__).resolve().parents[2]
#: Time to start a worker is not the code's: it is added to the deadline of a new worker's first call.
_START_SECONDS = 3.0
#: Pickling the answer back takes a moment too.
_GRACE_SECONDS = 0.2


class SandboxError(Exception):
    """The code was stopped (time or memory limit) or failed; the message says why, for the person."""


# --------------------------------------------------------------------------------------------------- worker


def _limit_memory(megabytes: int) -> None:
    """Cap the worker's address space: the fork server's own size plus `megabytes`."""
    try:
        with open("/proc/self/statm") as statm:
            current = int(statm.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError):
        current = 0
    limit = current + megabytes * 1024 * 1024
    _soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))


def _worker(conn: Connection, memory_mb: int) -> None:
    """Serve requests until the pipe closes: ("eval"|"exec", source, context, helper names, seconds)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent's Ctrl-C is the parent's to handle
    from engine.workflow import scripts

    _limit_memory(memory_mb)

    while True:
        try:
            request = conn.recv()
        except (EOFError, OSError):
            return
        mode, source, context, helper_names, seconds, max_chars = request

        def stub(name: str) -> Callable[..., Any]:
            def call(*args: Any, **kwargs: Any) -> Any:
                try:
                    message = pickle.dumps(("call", name, args, kwargs), protocol=pickle.HIGHEST_PROTOCOL)
                except Exception:
                    raise SandboxError(f"{name}() can be given data only (text, numbers, dates, lists and "
                                       "dictionaries), not functions") from None
                conn.send_bytes(message)
                status, value = conn.recv()
                if status == "raise":
                    raise SandboxError(value)
                return value
            call.__name__ = name
            return call

        helpers = {name: stub(name) for name in helper_names}
        try:
            if mode == "template":
                result = _render(source, context, seconds, max_chars)
            else:
                result = scripts.run_here(mode, source, context, helpers, seconds)
            payload = pickle.dumps(("ok", result), protocol=pickle.HIGHEST_PROTOCOL)
        except MemoryError:
            payload = pickle.dumps(("error", f"stopped: it needed more memory than the limit of {memory_mb} MB"))
        except scripts.ScriptError as exc:
            payload = pickle.dumps(("error", str(exc)))
        except SandboxError as exc:
            payload = pickle.dumps(("error", str(exc)))
        except Exception as exc:  # the script's own error (NameError, TypeError...): the caller reports it
            line = _script_line(exc)
            try:
                payload = pickle.dumps(("raise", (exc, line)))
            except Exception:
                payload = pickle.dumps(("raise", (RuntimeError(f"{type(exc).__name__}: {exc}"), line)))
        try:
            conn.send_bytes(payload)
        except MemoryError:
            conn.send_bytes(pickle.dumps(("error", f"stopped: it needed more memory than the limit of {memory_mb} MB")))


#: The context key under which a caller hands the names of the people the data names (username -> name) to
#: `render_template`; the `name` filter reads it. Diagram code cannot set it (names starting "_" are refused).
NAMES_KEY = "__people_names__"


def _render(source: str, context: dict[str, Any], seconds: float, max_chars: int) -> str:
    """Render a task's instructions (Jinja, sandboxed, autoescaped) within the time and length limits."""
    from jinja2.sandbox import SandboxedEnvironment

    from engine.workflow import scripts

    names = context.pop(NAMES_KEY, None)
    names = names if isinstance(names, dict) else {}
    environment = SandboxedEnvironment(autoescape=True)
    # `{{ employee | name }}`: the person's name where the data holds a username (the caller looked them up).
    environment.filters["name"] = lambda value: names.get(value, value) if isinstance(value, str) else value
    template = environment.from_string(source)

    def render() -> str:
        parts: list[str] = []
        length = 0
        for chunk in template.generate(**context):
            length += len(chunk)
            if length > max_chars:
                raise SandboxError(f"they would be longer than {max_chars:,} characters")
            parts.append(chunk)
        return "".join(parts)

    try:
        text: str = scripts.run_limited(render, seconds)
    except scripts.ScriptError as exc:
        raise SandboxError(str(exc)) from None
    return text


def _script_line(exc: BaseException) -> int | None:
    """The line of the script (the innermost '<string>' frame) where `exc` was raised."""
    line = None
    for frame in traceback.extract_tb(exc.__traceback__):
        if frame.filename == "<string>":
            line = frame.lineno
    return line


def _raise_at_line(exc: BaseException, line: int | None) -> None:
    """Raise the worker's exception here with a traceback frame at the script's line, as if it ran here:
    SpiffWorkflow reads the failing line of a script from the innermost '<string>' frame."""
    if not line:
        raise exc
    code = compile("\n" * (line - 1) + "raise exc", "<string>", "exec")
    exec(code, {"exc": exc, "__builtins__": {}})  # noqa: S102 - our own one-line re-raise


# --------------------------------------------------------------------------------------------------- pool


class _Worker:
    """One worker: `python -m engine.workflow.sandbox FD MEGABYTES`, talking over a socket pair.

    A fresh interpreter rather than multiprocessing: fork would copy a threaded web process with open database
    connections, and multiprocessing's spawn and forkserver re-import the caller's __main__ (gunicorn, pytest)."""

    def __init__(self, memory_mb: int) -> None:
        ours, theirs = socket.socketpair()
        with theirs:
            self.process = subprocess.Popen(  # noqa: S603 - our own module, no shell
                [sys.executable, "-m", "engine.workflow.sandbox", str(theirs.fileno()), str(memory_mb)],
                pass_fds=(theirs.fileno(),), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                cwd=_PROJECT_ROOT, close_fds=True)
        self.conn = Connection(ours.detach())
        self.memory_mb = memory_mb
        self.fresh = True

    def alive(self) -> bool:
        return self.process.poll() is None

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            self.process.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):  # SIGKILL is not refused
            self.process.wait(timeout=2)
        self.conn.close()


class _Pool:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._idle: list[_Worker] = []
        self._pid = os.getpid()

    def take(self, memory_mb: int) -> _Worker:
        with self._lock:
            if self._pid != os.getpid():  # forked (gunicorn): the parent's workers are not ours
                self._idle, self._pid = [], os.getpid()
            while self._idle:
                worker = self._idle.pop()
                if worker.alive() and worker.memory_mb == memory_mb:
                    return worker
                worker.kill()
        return _Worker(memory_mb)

    def give_back(self, worker: _Worker) -> None:
        with self._lock:
            if len(self._idle) < IDLE_WORKERS and self._pid == os.getpid():
                self._idle.append(worker)
                return
        worker.kill()

    def shutdown(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for worker in idle:
            worker.kill()


_POOL = _Pool()
atexit.register(_POOL.shutdown)


def shutdown() -> None:
    """Stop the idle workers (tests, a clean exit)."""
    _POOL.shutdown()


def render_template(source: str, context: dict[str, Any], seconds: float, memory_mb: int, max_chars: int,
                    names: Mapping[str, str] | None = None) -> str:
    """Task instructions rendered in a sandbox worker (Jinja's sandbox, autoescaped); SandboxError when stopped.
    `names` (username -> name) feeds the `name` filter."""
    context = {**context, NAMES_KEY: dict(names or {})}
    rendered: str = run_in_sandbox("template", source, context, {}, seconds, memory_mb, max_chars)
    return rendered


def run_in_sandbox(mode: str, source: str, context: dict[str, Any], helpers: Mapping[str, Callable[..., Any]],
                   seconds: float, memory_mb: int, max_chars: int = 0) -> Any:
    """Run `source` in a sandbox worker: eval's value, or exec's resulting globals (helpers left out).

    Raises SandboxError when it was stopped or could not run; the script's own exception (NameError...) is
    raised as it is."""
    try:
        request = pickle.dumps((mode, source, context, sorted(helpers), seconds, max_chars),
                               protocol=pickle.HIGHEST_PROTOCOL)
    except Exception as exc:
        raise SandboxError(f"the case data cannot be handed to the script: {exc}") from None
    worker = _POOL.take(memory_mb)
    # A new worker's start (a second or less) is not the code's time.
    deadline = time.monotonic() + seconds + (_START_SECONDS if worker.fresh else _GRACE_SECONDS)
    worker.fresh = False
    healthy = False
    try:
        worker.conn.send_bytes(request)
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not worker.conn.poll(remaining):
                raise SandboxError(f"stopped after the time limit of {seconds:g} s")
            try:
                message = pickle.loads(worker.conn.recv_bytes())  # noqa: S301 - our own worker's answer
            except (EOFError, OSError):
                raise SandboxError(f"stopped: it needed more memory than the limit of {memory_mb} MB, "
                                   "or its process ended") from None
            if message[0] == "call":
                _name, args, kwargs = message[1], message[2], message[3]
                try:
                    answer: tuple[str, Any] = ("ok", helpers[_name](*args, **kwargs))
                except Exception as exc:  # a helper's refusal reaches the script as an error
                    answer = ("raise", str(exc))
                try:
                    worker.conn.send(answer)
                except Exception as exc:  # an answer that does not pickle
                    worker.conn.send(("raise", f"{_name} gave an answer a script cannot use: {exc}"))
                continue
            status, value = message
            healthy = True
            if status == "ok":
                return value
            if status == "raise":
                _raise_at_line(*value)
            raise SandboxError(value)
    finally:
        if healthy:
            _POOL.give_back(worker)
        else:
            worker.kill()


if __name__ == "__main__":  # a worker: python -m engine.workflow.sandbox FD MEGABYTES
    _worker(Connection(int(sys.argv[1])), int(sys.argv[2]))

"""Restricted script environment for BPMN script tasks, gateway conditions and timer expressions.

SpiffWorkflow's default ``TaskDataEnvironment`` runs diagram code with plain ``exec``/``eval`` and full
builtins, so a diagram could read files or start processes; emptying ``__builtins__`` alone is escaped
through ``().__class__.__base__.__subclasses__()``.  This module compiles every script and expression
with RestrictedPython instead:

* attribute names starting with ``_`` (``__class__``, ``__subclasses__``, ``__globals__`` ...) and
  frame/code inspection attributes are refused at compile time, and every remaining attribute, item
  and iteration access goes through a guard;
* imports, ``try``/``with`` statements, classes, ``yield`` and a list of dangerous names (``open``,
  ``exec``, ``os`` ...) are refused at compile time, both at deploy time (:func:`check_code`) and at
  run time, with the same messages; generator expressions run as list comprehensions;
* only :data:`SAFE_BUILTIN_NAMES` plus the helpers given to :class:`RestrictedEnvironment` exist as
  names;
* a script or expression that runs longer than its time limit is stopped (see :func:`run_limited`), and code that
  could do unbounded work runs in a sandbox process killed at the limit (:mod:`engine.workflow.sandbox`);
* ``*``, ``**``, ``<<``, ``+``, ``range`` and ``sum`` are guarded so that one C-level operation
  cannot allocate gigabytes or run for minutes where the time limit cannot interrupt it.

String methods and format specs that pad or replace (``"x".ljust(10**8)``, ``f"{x:>100000000}"``,
``"%*d" % (10**8, 1)``, ``s.replace("", big)``) can still make one large allocation: they run in the sandbox
process, whose address-space limit stops them.
"""

from __future__ import annotations

import ast
import builtins
import functools
import operator
import re
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from datetime import date, datetime, timedelta
from decimal import Decimal
from types import CodeType, FrameType
from typing import Any, Literal, NamedTuple

from RestrictedPython.compile import compile_restricted_eval, compile_restricted_exec
from RestrictedPython.Guards import (
    full_write_guard,
    guarded_iter_unpack_sequence,
    guarded_unpack_sequence,
    safer_getattr_raise,
)
from RestrictedPython.PrintCollector import PrintCollector
from RestrictedPython.transformer import RestrictingNodeTransformer, copy_locations
from SpiffWorkflow.bpmn.script_engine import PythonScriptEngine
from SpiffWorkflow.bpmn.script_engine.python_environment import BasePythonScriptEngineEnvironment

from engine.workflow.script_data import scrub_data

__all__ = [
    "SAFE_BUILTIN_NAMES",
    "RestrictedEnvironment",
    "ScriptError",
    "check_code",
    "make_script_engine",
]

Mode = Literal["exec", "eval"]

# SpiffWorkflow's PythonScriptEngine looks for this file name in tracebacks to report the failing line.
_FILENAME = "<string>"

# Allocation bounds: far above anything a workflow script needs, far below what hurts the server.
MAX_SEQUENCE_LENGTH = 1_000_000
MAX_INT_BITS = 100_000


class ScriptError(Exception):
    """A script or expression was refused or stopped; the message says why."""


class _Timeout(BaseException):
    """Raised by the tracer.

    A BaseException, so that ``except Exception`` in a helper cannot swallow it; scripts cannot catch
    it either because ``try`` is refused at compile time.
    """


# --------------------------------------------------------------------------------------------------
# Names scripts may use

_PLAIN_BUILTINS = (
    "len", "min", "max", "round", "abs", "any", "all", "int", "float", "str", "bool",
    "list", "dict", "set", "tuple", "enumerate", "zip", "isinstance", "sorted",
    "reversed", "divmod", "chr", "ord", "repr",
)  # fmt: skip

# Names refused outright, at deploy time and at run time, even though most of them are simply absent
# from the builtins: an explicit message beats a NameError, and it stops task data that happens to
# use one of these names from making a dangerous-looking script pass.
REFUSED_NAMES = frozenset(
    {
        "open", "__import__", "exec", "eval", "compile", "globals", "locals", "vars", "getattr",
        "setattr", "delattr", "hasattr", "input", "breakpoint", "os", "sys", "subprocess",
        "importlib", "builtins", "__builtins__", "dir", "help", "exit", "quit", "super", "memoryview",
    }
)  # fmt: skip


def _check_length(length: int) -> None:
    """Refuse a sequence that would be longer than MAX_SEQUENCE_LENGTH."""
    if length > MAX_SEQUENCE_LENGTH:
        raise ScriptError(f"sequence of {length} items is too large (limit {MAX_SEQUENCE_LENGTH})")


def _check_bits(bits: int) -> None:
    """Refuse an integer result that would be wider than MAX_INT_BITS."""
    if bits > MAX_INT_BITS:
        raise ScriptError(f"integer result of about {bits} bits is too large (limit {MAX_INT_BITS})")


_SEQUENCES = (str, bytes, list, tuple)


def _guarded_add(a: Any, b: Any) -> Any:
    """``a + b``, refusing a concatenation longer than the sequence limit (doubling loops)."""
    if isinstance(a, _SEQUENCES) and isinstance(b, _SEQUENCES):
        _check_length(len(a) + len(b))
    return a + b


def _guarded_mult(a: Any, b: Any) -> Any:
    """``a * b``, refusing huge repetitions (``"x" * 10**10``) and huge integer products."""
    if isinstance(a, _SEQUENCES) and isinstance(b, int):
        _check_length(len(a) * b)
    elif isinstance(b, _SEQUENCES) and isinstance(a, int):
        _check_length(len(b) * a)
    elif isinstance(a, int) and isinstance(b, int):
        _check_bits(a.bit_length() + b.bit_length())
    return a * b


def _guarded_pow(a: Any, b: Any) -> Any:
    """``a ** b``, refusing integer powers such as ``10 ** 10 ** 10`` that would run for ages in C."""
    if isinstance(a, int) and isinstance(b, int) and b > 0 and a not in (-1, 0, 1):
        _check_bits(a.bit_length() * b)
    return a**b


def _guarded_lshift(a: Any, b: Any) -> Any:
    """``a << b``, refusing shifts that would build a gigantic integer."""
    if isinstance(a, int) and isinstance(b, int) and b > 0:
        _check_bits(a.bit_length() + b)
    return a << b


_BINOP_GUARDS: dict[type[ast.operator], str] = {
    ast.Add: "_add_",
    ast.Mult: "_mult_",
    ast.Pow: "_pow_",
    ast.LShift: "_lshift_",
}

_INPLACE_OPERATORS: dict[str, Callable[[Any, Any], Any]] = {
    "+=": _guarded_add,
    "-=": operator.isub,
    "*=": _guarded_mult,
    "/=": operator.itruediv,
    "//=": operator.ifloordiv,
    "%=": operator.imod,
    "**=": _guarded_pow,
    "<<=": _guarded_lshift,
    ">>=": operator.irshift,
    "|=": operator.ior,
    "^=": operator.ixor,
    "&=": operator.iand,
}


def _inplacevar(op: str, x: Any, y: Any) -> Any:
    """RestrictedPython's hook for ``x += y`` and friends on plain names."""
    try:
        fn = _INPLACE_OPERATORS[op]
    except KeyError:
        raise ScriptError(f"operator {op} is not allowed") from None
    return fn(x, y)


def _safe_range(*args: int) -> range:
    """``range`` whose length is bounded, so ``list(range(10**10))`` cannot exhaust memory."""
    r = range(*args)
    _check_length(len(r))
    return r


def _safe_sum(values: Iterable[Any], start: Any = 0) -> Any:
    """``sum`` of numbers only: summing lists is quadratic in C where the time limit cannot reach."""
    if not isinstance(start, int | float | Decimal | timedelta):
        raise ScriptError("sum() only adds numbers or timedeltas")
    return sum(values, start)


# RestrictedPython's getattr guard is untyped; give it a type once instead of ignoring every call.
_safer_getattr: Callable[[Any, str], Any] = safer_getattr_raise


def _guarded_getattr(obj: Any, name: str) -> Any:
    """Attribute access: RestrictedPython's checks, raising AttributeError for missing attributes."""
    if name == "mro":
        # type.mro() hands out base classes (e.g. BaseException) that scripts have no business with.
        raise ScriptError("attribute 'mro' is not allowed")
    try:
        return _safer_getattr(obj, name)
    except NotImplementedError as exc:  # str.format and string.Formatter: format-string attacks
        raise ScriptError(f"{exc}; use an f-string instead") from None


def _getitem(obj: Any, key: Any) -> Any:
    """Item access; task data is plain dicts and lists, so no further checks are needed."""
    return obj[key]


def _apply(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Calls that use ``*args`` or ``**kwargs``."""
    return fn(*args, **kwargs)


def _build_builtins() -> dict[str, Any]:
    """The ``__builtins__`` every script sees: safe names plus RestrictedPython's guard hooks."""
    names: dict[str, Any] = {name: getattr(builtins, name) for name in _PLAIN_BUILTINS}
    names.update(
        {
            "True": True,
            "False": False,
            "None": None,
            "range": _safe_range,
            "sum": _safe_sum,
            "datetime": datetime,
            "date": date,
            "timedelta": timedelta,
            "Decimal": Decimal,
        }
    )
    hooks: dict[str, Any] = {
        "_getattr_": _guarded_getattr,
        "_getitem_": _getitem,
        "_getiter_": iter,
        "_write_": full_write_guard,
        "_inplacevar_": _inplacevar,
        "_apply_": _apply,
        "_iter_unpack_sequence_": guarded_iter_unpack_sequence,
        "_unpack_sequence_": guarded_unpack_sequence,
        "_print_": PrintCollector,  # print() output is collected and dropped
        "_add_": _guarded_add,
        "_mult_": _guarded_mult,
        "_pow_": _guarded_pow,
        "_lshift_": _guarded_lshift,
    }
    return names | hooks


_BUILTINS: dict[str, Any] = _build_builtins()

#: Every name diagram code may call without defining it; `print` is RestrictedPython's (output collected, dropped).
SAFE_BUILTIN_NAMES: frozenset[str] = frozenset(
    {name for name in _BUILTINS if not name.startswith("_")} | {"print"})

# Code of the guard functions above: the tracer checks the deadline when they are called but does not
# trace their lines.
_UNTRACED_CODE = frozenset(
    fn.__code__
    for fn in (
        _guarded_add, _guarded_mult, _guarded_pow, _guarded_lshift, _inplacevar, _safe_range,
        _safe_sum, _guarded_getattr, _getitem, _apply, _check_length, _check_bits,
    )
)  # fmt: skip


# --------------------------------------------------------------------------------------------------
# Compilation


class _Policy(RestrictingNodeTransformer):
    """RestrictedPython's policy plus this project's refusals and allocation guards."""

    def _refuse(self, node: ast.AST, what: str) -> ast.AST:
        """Record a refusal but keep visiting, so one pass reports every problem."""
        self.error(node, what)
        return self.node_contents_visit(node)

    def visit_Import(self, node: ast.Import) -> ast.AST:
        """Refuse ``import x``: no module is safe to hand to a diagram."""
        return self._refuse(node, "imports are not allowed")

    def visit_ImportFrom(self, node: ast.ImportFrom) -> ast.AST:
        """Refuse ``from x import y``."""
        return self._refuse(node, "imports are not allowed")

    def visit_Try(self, node: ast.Try) -> ast.AST:
        """Refuse ``try``: ``except``/``finally`` could catch the time-limit stop and keep running."""
        return self._refuse(node, "try statements are not allowed")

    def visit_TryStar(self, node: ast.AST) -> ast.AST:
        """Refuse ``try``/``except*`` for the same reason."""
        return self._refuse(node, "try statements are not allowed")

    def visit_With(self, node: ast.With) -> ast.AST:
        """Refuse ``with``: ``__exit__`` would run after the time-limit stop, untraced."""
        return self._refuse(node, "with statements are not allowed")

    def visit_ClassDef(self, node: ast.ClassDef) -> ast.AST:
        """Refuse classes: their dunder methods would run inside C code that swallows exceptions."""
        return self._refuse(node, "class definitions are not allowed")

    def visit_Yield(self, node: ast.Yield) -> ast.AST:
        """Refuse generator functions (see visit_GeneratorExp)."""
        return self._refuse(node, "generators (yield) are not allowed")

    def visit_YieldFrom(self, node: ast.YieldFrom) -> ast.AST:
        """Refuse ``yield from`` as well."""
        return self._refuse(node, "generators (yield) are not allowed")

    def visit_GeneratorExp(self, node: ast.GeneratorExp) -> Any:
        """Run ``(x for x in xs)`` as ``[x for x in xs]``.

        A generator dropped half-consumed (``any(x for x in xs)``) is closed by the garbage collector;
        a time-limit stop raised in that close is swallowed as "unraisable" and switches tracing off
        for the rest of the script.  Lists have no such frame; iterables here are finite anyway.
        """
        visited = super().visit_GeneratorExp(node)
        if not isinstance(visited, ast.GeneratorExp):
            return visited
        eager = ast.ListComp(elt=visited.elt, generators=visited.generators)
        copy_locations(eager, visited)
        return eager

    def visit_Name(self, node: ast.Name) -> Any:
        """Refuse the names in REFUSED_NAMES with one clear message each."""
        if node.id in REFUSED_NAMES:
            self.error(node, f"name '{node.id}' is not allowed")
            return node
        return super().visit_Name(node)

    def visit_BinOp(self, node: ast.BinOp) -> Any:
        """Route ``+ * ** <<`` through the allocation guards in the builtins."""
        node = self.node_contents_visit(node)
        guard = _BINOP_GUARDS.get(type(node.op))
        if guard is None:
            return node
        call = ast.Call(func=ast.Name(guard, ast.Load()), args=[node.left, node.right], keywords=[])
        copy_locations(call, node)
        copy_locations(call.func, node)
        return call


class _Compiled(NamedTuple):
    code: CodeType | None
    problems: tuple[str, ...]


_RP_MESSAGE = re.compile(r"^Line (\d+|None): (.*)$", re.DOTALL)


def _reword(message: str) -> str:
    """Turn RestrictedPython's ``Line 3: Foo is bad.`` into this module's ``Foo is bad (line 3)``."""
    match = _RP_MESSAGE.match(message)
    if match is None:
        return message
    line, text = match.groups()
    text = text.rstrip(".")
    return text if line == "None" else f"{text} (line {line})"


@functools.lru_cache(maxsize=1024)
def _compile(source: str, mode: Mode) -> _Compiled:
    """Compile once per (source, mode): gateway conditions are evaluated constantly."""
    if mode == "eval":
        # Builtin eval() ignores surrounding blanks; BPMN editors often leave some around conditions.
        source = source.strip()
    try:
        ast.parse(source, _FILENAME, mode)
    except SyntaxError as exc:
        return _Compiled(None, (f"syntax error: {exc.msg} (line {exc.lineno})",))
    except ValueError as exc:  # e.g. NUL bytes in the source
        return _Compiled(None, (f"syntax error: {exc}",))
    compiler = compile_restricted_eval if mode == "eval" else compile_restricted_exec
    result = compiler(source, _FILENAME, policy=_Policy)
    problems = tuple(dict.fromkeys(_reword(e) for e in result.errors))  # dedupe, keep order
    if problems or result.code is None:
        return _Compiled(None, problems or ("could not compile",))
    return _Compiled(result.code, ())


def check_code(source: str, mode: Literal["exec", "eval"]) -> list[str]:
    """Deploy-time check of a script or expression: human-readable problems, ``[]`` when it is fine."""
    return list(_compile(source, mode).problems)


def _compiled_or_raise(source: str, mode: Mode) -> CodeType:
    """The compiled code, or ScriptError listing every problem."""
    compiled = _compile(source, mode)
    if compiled.code is None:
        kind = "expression" if mode == "eval" else "script"
        raise ScriptError(f"{kind} refused: " + "; ".join(compiled.problems))
    return compiled.code


# --------------------------------------------------------------------------------------------------
# Time limit


def _script_line(frame: FrameType | None) -> int | None:
    """Line of the innermost script frame on the stack, for the time-limit message."""
    while frame is not None:
        if frame.f_code.co_filename == _FILENAME:
            return frame.f_lineno
        frame = frame.f_back
    return None


def run_limited(run: Callable[[], Any], seconds: float) -> Any:
    """Call ``run`` with a wall-clock limit enforced by a ``sys.settrace`` tracer.

    Why a tracer: it works on whichever thread runs the workflow (web workers included), whereas
    SIGALRM only works on the main thread and a watchdog thread cannot kill the worker.  The tracer
    sees every call, line and (in the script's own frames) every opcode, and raises once the deadline
    has passed; opcode events are needed because ``while True: pass`` produces no line events.

    Cost: one ``time.monotonic()`` per event, roughly 20x slower than plain Python for the script's
    own code (about 0.35 s for 100,000 ``t += i`` iterations): irrelevant for workflow scripts, and
    microseconds for a gateway condition.  Python helpers are traced per line, guards not at all.

    Limits: it cannot interrupt a single long C-level call, hence the allocation guards.  CPython
    switches tracing off once a tracer raises, so nothing of the script's may run after the stop:
    hence no ``try``/``with`` (a handler or ``finally`` would run untraced), no classes (dunder
    methods run inside C code that swallows exceptions) and no generators (a stop raised while the
    garbage collector closes one is swallowed as "unraisable").  Helpers should likewise return data,
    not generators.  A tracer installed before (a debugger, coverage) is suspended while the script
    runs and restored afterwards.
    """
    deadline = time.monotonic() + seconds

    def tracer(frame: FrameType, event: str, arg: Any) -> Callable[..., Any] | None:
        if time.monotonic() > deadline:
            raise _Timeout(_script_line(frame))
        if event == "call" and frame.f_code in _UNTRACED_CODE:
            return None  # our own guards: bounded work, tracing them would only slow scripts down
        if event == "call" and frame.f_code.co_filename == _FILENAME:
            # Line events alone miss `while True: pass`: it compiles to a jump onto itself, which
            # CPython does not report as a new line.  Opcode events on the script's own frames do.
            frame.f_trace_opcodes = True
        return tracer

    previous = sys.gettrace()
    sys.settrace(tracer)
    try:
        return run()
    except _Timeout as stop:
        line = stop.args[0] if stop.args else None
        where = f" (line {line})" if line else ""
        raise ScriptError(f"stopped after the time limit of {seconds:g} s{where}") from None
    finally:
        sys.settrace(previous)


# --------------------------------------------------------------------------------------------------
# Where code runs: in-process when it can do no unbounded work, else in a sandbox process (engine.workflow.sandbox)

_BOUNDED_NODES = (
    ast.Expression, ast.Module, ast.Expr, ast.Assign, ast.AugAssign, ast.If, ast.Pass, ast.Delete,
    ast.Name, ast.Load, ast.Store, ast.Del, ast.Constant, ast.Attribute, ast.Subscript, ast.Slice,
    ast.Compare, ast.BoolOp, ast.And, ast.Or, ast.UnaryOp, ast.Not, ast.USub, ast.UAdd, ast.IfExp,
    ast.Tuple, ast.List, ast.Dict, ast.BinOp, ast.Add, ast.Sub,
    ast.Eq, ast.NotEq, ast.Lt, ast.LtE, ast.Gt, ast.GtE, ast.Is, ast.IsNot, ast.In, ast.NotIn,
)  # fmt: skip


@functools.lru_cache(maxsize=2048)
def is_bounded(source: str, mode: Mode) -> bool:
    """True when the code can do no unbounded work: no calls, loops, comprehensions, functions, ``*``, ``%``...

    Its cost is then bounded by the size of the data it reads (which has a limit), so it may run in-process."""
    try:
        tree = ast.parse(source.strip() if mode == "eval" else source, _FILENAME, mode)
    except (SyntaxError, ValueError):
        return False
    return all(isinstance(node, _BOUNDED_NODES) for node in ast.walk(tree))


def run_here(mode: Mode, source: str, context: dict[str, Any], helpers: Mapping[str, Callable[..., Any]],
             seconds: float) -> Any:
    """Run restricted code in this process (the sandbox worker calls this): eval's value, or exec's globals.

    For exec, the answer is the task data afterwards without helpers, machinery and anything that would not
    serialize (see RestrictedEnvironment._scrub)."""
    code = _compiled_or_raise(source, mode)
    if mode == "eval":
        scope: dict[str, Any] = {**helpers, **context, "__builtins__": _BUILTINS}
        return run_limited(lambda: eval(code, scope), seconds)  # noqa: S307 - restricted code
    scope = {**context, **helpers, "__builtins__": _BUILTINS}
    run_limited(lambda: exec(code, scope), seconds)  # noqa: S102 - restricted code
    scrub_data(scope, set(helpers))
    return scope


# --------------------------------------------------------------------------------------------------
# The environment


class RestrictedEnvironment(BasePythonScriptEngineEnvironment):  # type: ignore[misc]
    """SpiffWorkflow script environment that runs diagram code under RestrictedPython with time and memory limits.

    Code that can do no unbounded work (`is_bounded`) runs in-process under the tracer's time limit; anything
    else runs in a sandbox process (`engine.workflow.sandbox`) that is killed at the limit, whatever it is doing."""

    def __init__(
        self,
        helpers: Mapping[str, Callable[..., Any]] | None = None,
        *,
        time_limit_seconds: float = 2.0,
        memory_mb: int = 512,
        sandbox: bool = True,
    ) -> None:
        """Make ``helpers`` callable by name from scripts and expressions."""
        helpers = dict(helpers or {})
        for name in helpers:
            if not name.isidentifier() or name.startswith("_") or name in REFUSED_NAMES:
                raise ValueError(f"helper name {name!r} cannot be used from scripts")
        if time_limit_seconds <= 0:
            raise ValueError("time_limit_seconds must be positive")
        super().__init__(helpers)
        self.helpers: dict[str, Callable[..., Any]] = helpers
        self.time_limit_seconds = time_limit_seconds
        self.memory_mb = memory_mb
        self.sandbox = sandbox

    def _in_sandbox(self, source: str, mode: Mode) -> bool:
        return self.sandbox and not is_bounded(source, mode)

    def _sandboxed(self, mode: Mode, source: str, context: dict[str, Any],
                   external: Mapping[str, Any]) -> Any:
        from engine.workflow.sandbox import SandboxError, run_in_sandbox

        helpers = {**self.helpers, **{k: v for k, v in external.items() if callable(v)}}
        data = {k: v for k, v in external.items() if not callable(v)}
        try:
            return run_in_sandbox(mode, source, {**data, **context}, helpers, self.time_limit_seconds,
                                  self.memory_mb)
        except SandboxError as exc:
            raise ScriptError(str(exc)) from None

    def evaluate(
        self, expression: str, context: dict[str, Any], external_context: Mapping[str, Any] | None = None
    ) -> Any:
        """Evaluate an expression against task data; the task data is not modified."""
        code = _compiled_or_raise(expression, "eval")
        if self._in_sandbox(expression, "eval"):
            return self._sandboxed("eval", expression, context, external_context or {})
        # Same precedence as TaskDataEnvironment: helpers < external context < task data.
        scope: dict[str, Any] = {**self.helpers, **(external_context or {}), **context}
        scope["__builtins__"] = _BUILTINS
        return run_limited(lambda: eval(code, scope), self.time_limit_seconds)  # noqa: S307 - restricted code

    def execute(self, script: str, context: dict[str, Any], external_context: Mapping[str, Any] | None = None) -> bool:
        """Run a script with the task data as its globals, then scrub the task data."""
        external = dict(external_context or {})
        self._check_for_overwrite(context, external)
        code = _compiled_or_raise(script, "exec")
        if self._in_sandbox(script, "exec"):
            result = self._sandboxed("exec", script, context, external)
            context.clear()
            context.update(result)
            self._scrub(context, external)
            return True
        context.update(self.helpers)
        context.update(external)
        context["__builtins__"] = _BUILTINS
        try:
            run_limited(lambda: exec(code, context), self.time_limit_seconds)  # noqa: S102 - restricted code
        finally:
            self._scrub(context, external)
        return True

    def _check_for_overwrite(self, context: Mapping[str, Any], external: Mapping[str, Any]) -> None:
        """Fail clearly when task data shadows a helper (as TaskDataEnvironment does)."""
        clashes = sorted(set(context) & (set(self.helpers) | set(external)))
        if clashes:
            raise ValueError(
                "task data overwrites predefined function(s); rename these variables or fields: " + ", ".join(clashes)
            )

    def _scrub(self, context: dict[str, Any], external: Mapping[str, Any]) -> None:
        """Remove helpers, machinery and anything that would not serialize from the task data."""
        scrub_data(context, set(self.helpers) | set(external))


def make_script_engine(
    helpers: Mapping[str, Callable[..., Any]] | None = None, *, time_limit_seconds: float = 2.0,
    memory_mb: int = 512, sandbox: bool = True,
) -> PythonScriptEngine:
    """A SpiffWorkflow script engine that runs every script and expression restricted and bounded."""
    return PythonScriptEngine(environment=RestrictedEnvironment(
        helpers, time_limit_seconds=time_limit_seconds, memory_mb=memory_mb, sandbox=sandbox))

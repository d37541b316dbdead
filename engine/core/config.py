"""Settings read from the environment (prefix NTPSWF_), shared by the web app, the CLI and the scheduler."""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def _default_database_url() -> str:
    instance = Path(os.environ.get("NTPSWF_INSTANCE_PATH", PROJECT_ROOT / "instance"))
    instance.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{instance / 'ntpswf.sqlite3'}"


_TRUE = {"1", "true", "yes", "on"}


@dataclass(frozen=True)
class Settings:
    """Configuration of one deployment; every field has an `NTPSWF_` variable of the same name (upper case)."""

    database_url: str = field(default_factory=_default_database_url)
    timezone: str = "Australia/Darwin"
    smtp_url: str | None = None
    timer_poll_seconds: float = 1.0
    forms_dir: Path = PROJECT_ROOT / "forms"
    processes_dir: Path = PROJECT_ROOT / "processes"
    demo_mode: bool = False
    #: The policy packages to load, comma-separated: a short name is engine/policies/<name>/, a dotted one a module
    #: declaring PACKAGE (docs/architecture.md, "Adding a policy").
    policies: str = "pay_progression,secondment"
    mail_from: str = "ntps-workflows@localhost"
    # --- security (docs/security.md) ---
    #: The address people use; when it is https, cookies are Secure and answers carry HSTS.
    public_url: str | None = None
    #: A web session ends after this many minutes without a request, and after this many hours whatever happens.
    session_idle_minutes: int = 30
    session_absolute_hours: int = 12
    #: Wall-clock limit of one script, condition, timer expression or decision-table cell, and the memory
    #: its sandbox process may use.
    script_time_limit_seconds: float = 2.0
    script_memory_mb: int = 512
    #: Wall-clock limit of rendering one task's instructions, and the most characters they may render to.
    template_time_limit_seconds: float = 1.0
    template_output_chars: int = 200_000
    #: The most a case's data (as stored JSON) and one task's submitted data may weigh.
    case_data_limit_bytes: int = 1_000_000
    task_data_limit_bytes: int = 256_000
    #: A case's workflow is compacted (finished tasks taken out into history rows: engine.workflow.compaction)
    #: when a save finds more tasks in it than this, so a step's cost stays bounded however old the case; a short
    #: case never pays for it. 0 compacts on every save (the tests do, to prove it changes nothing).
    compact_above_tasks: int = 40
    #: How many running cases' workflows a process keeps in memory after saving them, so the next step of one of
    #: them here skips restoring it (engine.workflow.live: used only when the row holds exactly what was saved).
    #: 0 keeps none.
    live_cases: int = 64

    @property
    def policy_packages(self) -> tuple[str, ...]:
        """The names `policies` lists, in order."""
        return tuple(name.strip() for name in self.policies.split(",") if name.strip())

    @property
    def https(self) -> bool:
        """True when people reach the service over https (cookies Secure, HSTS sent)."""
        return bool(self.public_url) and str(self.public_url).lower().startswith("https://")

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> Settings:
        """Build settings from NTPSWF_* environment variables, falling back to the defaults.

        A value that does not read as the field's type is refused naming the variable."""
        env = dict(os.environ if environ is None else environ)
        kwargs: dict[str, Any] = {}
        for spec in dataclasses.fields(cls):
            raw = env.get(f"NTPSWF_{spec.name.upper()}")
            if not raw:
                continue
            kind = str(spec.type)
            try:
                if kind == "bool":
                    kwargs[spec.name] = raw.strip().lower() in _TRUE
                elif kind == "int":
                    kwargs[spec.name] = int(raw)
                elif kind == "float":
                    kwargs[spec.name] = float(raw)
                elif kind == "Path":
                    kwargs[spec.name] = Path(raw)
                else:
                    kwargs[spec.name] = raw
            except ValueError:
                raise ValueError(f"NTPSWF_{spec.name.upper()}={raw!r} is not a valid {kind}") from None
        return cls(**kwargs)

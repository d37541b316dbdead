"""Settings read from the environment (prefix NTPSWF_), shared by the web app, the CLI and the scheduler."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def _default_database_url() -> str:
    instance = Path(os.environ.get("NTPSWF_INSTANCE_PATH", PROJECT_ROOT / "instance"))
    instance.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{instance / 'ntpswf.sqlite3'}"


@dataclass(frozen=True)
class Settings:
    """Configuration of one deployment; every field has an `NTPSWF_` variable of the same name."""

    database_url: str = field(default_factory=_default_database_url)
    timezone: str = "Australia/Darwin"
    smtp_url: str | None = None
    timer_poll_seconds: float = 1.0
    forms_dir: Path = PROJECT_ROOT / "forms"
    processes_dir: Path = PROJECT_ROOT / "processes"
    demo_mode: bool = False
    mail_from: str = "ntps-workflows@localhost"

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> Settings:
        """Build settings from NTPSWF_* environment variables, falling back to the defaults."""
        env = dict(os.environ if environ is None else environ)
        kwargs: dict[str, object] = {}
        if env.get("NTPSWF_DATABASE_URL"):
            kwargs["database_url"] = env["NTPSWF_DATABASE_URL"]
        if env.get("NTPSWF_TIMEZONE"):
            kwargs["timezone"] = env["NTPSWF_TIMEZONE"]
        if env.get("NTPSWF_SMTP_URL"):
            kwargs["smtp_url"] = env["NTPSWF_SMTP_URL"]
        if env.get("NTPSWF_TIMER_POLL_SECONDS"):
            kwargs["timer_poll_seconds"] = float(env["NTPSWF_TIMER_POLL_SECONDS"])
        if env.get("NTPSWF_FORMS_DIR"):
            kwargs["forms_dir"] = Path(env["NTPSWF_FORMS_DIR"])
        if env.get("NTPSWF_DEMO_MODE"):
            kwargs["demo_mode"] = env["NTPSWF_DEMO_MODE"].lower() in {"1", "true", "yes", "on"}
        if env.get("NTPSWF_MAIL_FROM"):
            kwargs["mail_from"] = env["NTPSWF_MAIL_FROM"]
        return cls(**kwargs)  # type: ignore[arg-type]

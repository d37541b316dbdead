"""Every table: the core's, the people's, the workflow engine's and each policy package's models, imported so
that `Base.metadata` holds them all (Alembic's autogenerate check, `create_all` in tests and benchmarks).

A policy package's tables live in `engine/policies/<name>/models.py`; this finds them by walking the folder, so
adding a policy adds its tables here without an edit."""

from __future__ import annotations

import importlib
import pkgutil

import engine.policies
from engine.core.models import Base
from engine.people import models as _people  # noqa: F401 - registers the tables
from engine.workflow import dmn_models as _dmn  # noqa: F401 - registers the tables
from engine.workflow import models as _workflow  # noqa: F401 - registers the tables

for _package in pkgutil.iter_modules(engine.policies.__path__):
    if _package.ispkg and importlib.util.find_spec(f"engine.policies.{_package.name}.models") is not None:
        importlib.import_module(f"engine.policies.{_package.name}.models")

__all__ = ["Base"]

"""The hooks of the secondment package's processes, filled by the decorators in its modules and declared in its
PACKAGE (engine/policies/secondment/package.py)."""

from __future__ import annotations

from engine.workflow.hooks import HookSet

HOOKS = HookSet()

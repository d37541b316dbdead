"""The hooks of the pay_progression package's processes, filled by the decorators in its modules and declared in its
PACKAGE (engine/policies/pay_progression/package.py)."""

from __future__ import annotations

from engine.workflow.hooks import HookSet

HOOKS = HookSet()

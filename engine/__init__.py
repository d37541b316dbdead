"""Everything that runs processes: definitions, runtime, timers, assignment, scripts, policy (no Flask)."""

"""The scenario file format (issue 20): one YAML or JSON file per scenario, checked against
scenarios/scenario.schema.json; a bad file is refused with an error naming the file and the step.

A scenario names the clauses it proves, the people and records it needs (`setup`), how its case starts (`start`),
then ordered `steps` (move the clock, fire due timers, complete a task as a person, expect a task, expect a
refusal, make a record a policy declares), and the `outcome` the case must come to. The runner is
engine.workflow.scenarios; the library lives in scenarios/<policy>/<process>/.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError, best_match

from engine.core.config import PROJECT_ROOT

#: The library of scenarios, one folder per policy and process, and the schema every file is checked against.
SCENARIOS_DIR = PROJECT_ROOT / "scenarios"
SCHEMA_PATH = SCENARIOS_DIR / "scenario.schema.json"
#: The kinds of step, as a step names them (its one key beside an optional `note`).
STEP_KINDS = ("at", "fire_timers", "start", "complete", "expect_task", "expect", "expect_notice", "record",
              "people_recorded")
SUFFIXES = (".yaml", ".yml", ".json")


class ScenarioFormatError(ValueError):
    """A scenario file that cannot be run: names the file, where in it (`steps[3] (complete)`), and what is wrong."""

    def __init__(self, file: str, where: str, message: str) -> None:
        super().__init__(f"{file}: {where}: {message}" if where else f"{file}: {message}")
        self.file = file
        self.where = where
        self.message = message


@dataclass(frozen=True)
class Scenario:
    """A checked scenario: its name, the clauses it proves and its parts as the file gives them (dates as text)."""

    name: str
    clauses: tuple[str, ...]
    start: dict[str, Any]
    steps: tuple[dict[str, Any], ...] = ()
    setup: dict[str, Any] = field(default_factory=dict)
    outcome: dict[str, Any] | None = None
    description: str = ""
    file: str | None = None  #: where it was read from (None: made in memory, as the studio's lab may)

    @property
    def process(self) -> str:
        """The process key its case starts."""
        return str(self.start["process"])


@cache
def _validator() -> Draft202012Validator:
    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def step_kind(step: Any) -> str:
    """The kind of a step (its one key beside `note`), or '?'."""
    kinds = [k for k in STEP_KINDS if isinstance(step, dict) and k in step]
    return kinds[0] if len(kinds) == 1 else "?"


def where_in(document: Any, path: Iterable[Any]) -> str:
    """A place in a scenario as people read it: `steps[3] (complete make_submission) data.decision`."""
    parts = list(path)
    if len(parts) >= 2 and parts[0] == "steps" and isinstance(parts[1], int):
        steps = document.get("steps") if isinstance(document, dict) else None
        step = steps[parts[1]] if isinstance(steps, list) and parts[1] < len(steps) else None
        kind = step_kind(step)
        label = f"steps[{parts[1]}] ({kind}"
        body = step.get(kind) if isinstance(step, dict) else None
        if isinstance(body, dict) and isinstance(body.get("task"), str):
            label += f" {body['task']}"
        label += ")"
        rest = ".".join(str(p) for p in parts[3 if parts[2:3] == [kind] else 2:])
        return f"{label} {rest}".strip()
    return ".".join(str(p) for p in parts) or "(the whole file)"


WHEN = "a date (YYYY-MM-DD) or a date and time (YYYY-MM-DDTHH:MM[:SS], UTC unless it ends with Z or +HH:MM)"


def _message(error: ValidationError) -> str:
    if error.validator == "oneOf" and list(error.path)[:1] == ["steps"]:
        found = [k for k in STEP_KINDS if isinstance(error.instance, dict) and k in error.instance]
        return (f"a step has exactly one of: {', '.join(STEP_KINDS)} (and may have a note)"
                + (f"; this one has {', '.join(found)}" if found else ""))
    if error.validator == "pattern" and error.schema.get("pattern", "").startswith("^\\d{4}"):
        return f"{error.instance!r} is not {WHEN}"
    message = str(error.message)
    if error.validator == "additionalProperties":
        return message.replace("Additional properties are not allowed", "unknown field")
    return message


def plain(value: Any) -> Any:
    """YAML's dates and times as ISO text, so a scenario means the same read from YAML or JSON."""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


def parse_scenario(document: Any, file: str = "<scenario>") -> Scenario:
    """Check a scenario's document (as loaded from YAML or JSON) and return it; ScenarioFormatError when bad."""
    document = plain(document)
    if not isinstance(document, dict):
        raise ScenarioFormatError(file, "", "a scenario is a mapping with name, clauses, start, steps and outcome")
    error = best_match(_validator().iter_errors(document))
    if error is not None:
        raise ScenarioFormatError(file, where_in(document, error.absolute_path), _message(error))
    for path, value in _dates(document):
        try:
            datetime.fromisoformat(value)
        except ValueError as exc:
            raise ScenarioFormatError(file, where_in(document, path), f"{value!r} is not {WHEN}: {exc}") from exc
    return Scenario(
        name=document["name"], clauses=tuple(document["clauses"]), start=document["start"],
        steps=tuple(document.get("steps", [])), setup=document.get("setup", {}), outcome=document.get("outcome"),
        description=document.get("description", ""), file=file,
    )


def _dates(document: dict[str, Any]) -> list[tuple[list[Any], str]]:
    """Every date or time the runner reads (the schema checked their shape, not that the day exists)."""
    found: list[tuple[list[Any], str]] = []
    if isinstance(document["start"].get("at"), str):
        found.append((["start", "at"], document["start"]["at"]))
    for index, step in enumerate(document.get("steps", [])):
        kind = step_kind(step)
        body = step.get(kind)
        if kind == "at":
            found.append((["steps", index], body))
        elif isinstance(body, dict):
            found += [(["steps", index, kind, key], body[key]) for key in ("at", "due")
                      if isinstance(body.get(key), str)]
    return found


def parse_text(text: str, file: str = "<scenario>") -> Scenario:
    """A scenario from YAML or JSON text (JSON is YAML too)."""
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark is not None else ""
        raise ScenarioFormatError(file, where, f"not valid YAML or JSON: {getattr(exc, 'problem', exc)}") from exc
    return parse_scenario(document, file)


def load_scenario(path: Path) -> Scenario:
    """Read and check one scenario file."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ScenarioFormatError(str(path), "", f"cannot be read: {exc}") from exc
    return parse_text(text, _shown(path))


def _shown(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(PROJECT_ROOT))
    except ValueError:
        return str(path)


def scenario_files(root: Path = SCENARIOS_DIR, process: str | None = None) -> list[Path]:
    """Every scenario file under `root` (scenarios/<policy>/<process>/*.yaml), of one process when given."""
    found = sorted(p for p in root.rglob("*") if p.is_file() and p.suffix in SUFFIXES and p != SCHEMA_PATH)
    return [p for p in found if process is None or p.parent.name == process]

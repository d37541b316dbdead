"""The one place a policy plugs into the engine: each policy package declares one `ProcessPackage`, and the
registry loads the packages the `policies` setting lists.

The core asks the registry, never a policy module, whatever depends on the process: the hooks that run in a
step's transaction, the script helpers a diagram may call, how a lane resolves, which data field names the person
a case is about, who oversees its cases and whether they are private to the subject's agency. A process no package
claims (a diagram made elsewhere) gets the generic behaviour: the core lanes and helpers, subject `employee`.

Loading fails closed: a listed package that cannot be imported, or does not declare `PACKAGE`, stops the app
with `PolicyLoadError`, rather than letting its processes start without their checks.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session

from engine.core.config import Settings
from engine.people.models import Person
from engine.workflow.hooks import Hooks, HookSet

if TYPE_CHECKING:
    from engine.workflow.runtime import Runtime

#: (session, case data, the case's subject or None) -> the person a lane of the package's processes resolves to
LaneResolver = Callable[[Session, Mapping[str, Any], Person | None], Person | None]
#: (session or None at deploy time, settings) -> name -> function, the script helpers the package's diagrams call
HelperFactory = Callable[[Session | None, Settings], Mapping[str, Callable[..., Any]]]
#: (runtime) -> lines telling what was loaded: the package's part of `ntpswf demo`
DemoLoader = Callable[["Runtime"], Iterator[str]]


@dataclass
class PeopleOutcome:
    """What a package did when people records were saved (web, API, CSV import, command line)."""

    message: str = ""  #: a sentence for the page or the command's output ("" when nothing happened)
    cases: dict[str, int] = field(default_factory=dict)  #: username -> the case started for them
    api_field: str | None = None  #: the field of the API's person answer that carries that case


#: (runtime, login or None, actor, usernames saved or moved into another classification) -> what the package did
PeopleRecorded = Callable[["Runtime", Any, str, Sequence[str]], PeopleOutcome]

#: (runtime, login acting, the scenario's current case or None, the step's data) -> anything: a record or an action a
#: scenario file names beside its task steps (Determination 19: `leave`, `appoint`), run by engine.workflow.scenarios
ScenarioAction = Callable[["Runtime", Any, int | None, Mapping[str, Any]], Any]

#: Where a case's subject is named when its package does not say: the generic start data (`employee`).
SUBJECT_FIELDS = ("employee",)
#: The package a short name in the `policies` setting stands for.
PACKAGE_MODULE = "engine.policies.{name}.package"


class PolicyLoadError(RuntimeError):
    """A listed policy package could not be loaded: the app must not run without its checks."""


@dataclass(frozen=True)
class ProcessPackage:
    """What one policy adds to the engine. Every field but `name` and `processes` is optional."""

    name: str  #: the folder name under engine/policies, processes/, forms/, web/policies/, templates/
    title: str  #: as people name it ("Pay progression (Determination 19 of 2011)")
    processes: frozenset[str]  #: the process keys (BPMN process ids) the package owns
    hooks: HookSet = field(default_factory=HookSet)  #: code run inside a step's transaction, per process key
    helpers: HelperFactory | None = None  #: script helpers offered to the package's own processes only
    lanes: Mapping[str, LaneResolver] = field(default_factory=dict)  #: lanes beyond the core's, by name
    notice_lanes: frozenset[str] = frozenset()  #: lanes a diagram's notice() may address, beyond the core's
    #: process key -> the data fields naming the case's subject, first given wins (default: `employee`)
    subject_fields: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    overseen_by: Mapping[str, str] = field(default_factory=dict)  #: process key -> role that sees every case
    agency_private: frozenset[str] = frozenset()  #: processes HR of another agency neither sees nor works
    self_started: frozenset[str] = frozenset()  #: processes a person may start about themselves
    clause_label: Callable[[str], str | None] | None = None  #: 'D19-7' -> 'Determination 19, cl. 7' (else None)
    people_recorded: PeopleRecorded | None = None  #: run after people records are saved (D19-3.3: new starters)
    demo: DemoLoader | None = None  #: loads the package's demo data (after the shared people and diagrams)
    scenario_actions: Mapping[str, ScenarioAction] = field(default_factory=dict)  #: records a scenario may make
    web: str | None = None  #: the module of the package's Flask blueprint (`bp`), loaded by the web app


@dataclass
class Registry:
    """The loaded packages, and the answers the core asks of them."""

    packages: dict[str, ProcessPackage] = field(default_factory=dict)
    _by_process: dict[str, ProcessPackage] = field(default_factory=dict)

    def add(self, package: ProcessPackage) -> None:
        """Register a package (again: nothing changes). Two packages may not claim one process key."""
        if self.packages.get(package.name) is package:
            return
        for key in package.processes:
            owner = self._by_process.get(key)
            if owner is not None and owner.name != package.name:
                raise PolicyLoadError(f"the process {key!r} is claimed by both {owner.name} and {package.name}")
        self.packages[package.name] = package
        for key in package.processes:
            self._by_process[key] = package

    def discard(self, name: str) -> None:
        """Forget a package (tests that register one of their own)."""
        package = self.packages.pop(name, None)
        for key in package.processes if package is not None else ():
            self._by_process.pop(key, None)

    def load(self, names: Iterable[str]) -> None:
        """Import and register each listed package: a short name is `engine.policies.<name>.package`, a dotted one
        a module path; the module declares `PACKAGE`."""
        for name in names:
            module_name = name if "." in name else PACKAGE_MODULE.format(name=name)
            try:
                module = importlib.import_module(module_name)
                package = module.PACKAGE
            except Exception as exc:
                raise PolicyLoadError(
                    f"the policy package {name!r} ({module_name}) could not be loaded, so its processes' checks are "
                    f"missing; the service does not run without them: {exc!r}") from exc
            if not isinstance(package, ProcessPackage):
                raise PolicyLoadError(f"{module_name}.PACKAGE is not a ProcessPackage")
            self.add(package)

    def package_of(self, process_key: str | None) -> ProcessPackage | None:
        """The package that owns a process key, or None (a diagram no policy claims)."""
        return self._by_process.get(process_key) if process_key else None

    def hooks_for(self, process_key: str) -> Hooks:
        """The hooks of a process key (empty when no package registers any)."""
        package = self._by_process.get(process_key)
        return package.hooks.of(process_key) if package is not None else Hooks()

    def helpers(self, process_key: str | None, session: Session | None, settings: Settings
                ) -> dict[str, Callable[..., Any]]:
        """The helpers the package owning `process_key` adds for its diagrams (none for other processes)."""
        package = self.package_of(process_key)
        if package is None or package.helpers is None:
            return {}
        return dict(package.helpers(session, settings))

    def lane_resolver(self, process_key: str | None, lane: str) -> LaneResolver | None:
        """How a package lane resolves for this process (any loaded package's lane for an unclaimed process)."""
        package = self.package_of(process_key)
        if package is not None:
            return package.lanes.get(lane)
        for other in self.packages.values():
            if lane in other.lanes:
                return other.lanes[lane]
        return None

    def lanes(self) -> frozenset[str]:
        """Every lane a loaded package adds."""
        return frozenset(lane for p in self.packages.values() for lane in p.lanes)

    def notice_lanes(self) -> frozenset[str]:
        """Every lane a loaded package lets notices address."""
        return frozenset(lane for p in self.packages.values() for lane in p.notice_lanes)

    def subject_name(self, process_key: str | None, data: Mapping[str, Any]) -> Any:
        """The username of the person a case is about, from the data fields its package names (`employee` unless
        the package says otherwise), or None."""
        package = self.package_of(process_key)
        fields = package.subject_fields.get(process_key or "", SUBJECT_FIELDS) if package else SUBJECT_FIELDS
        return next((data[name] for name in fields if data.get(name)), None)

    def overseen_by(self, role: str) -> frozenset[str]:
        """The processes whose every case a role oversees (OCPE: the placement register)."""
        return frozenset(key for p in self.packages.values() for key, r in p.overseen_by.items() if r == role)

    def overseeing_roles(self) -> frozenset[str]:
        """Every role that oversees some process."""
        return frozenset(r for p in self.packages.values() for r in p.overseen_by.values())

    def agency_private(self) -> frozenset[str]:
        """Processes private to the subject's agency (HR of another agency neither sees nor works them)."""
        return frozenset(key for p in self.packages.values() for key in p.agency_private)

    def self_started(self, process_key: str) -> bool:
        """True when a person may start this process about themselves."""
        package = self.package_of(process_key)
        return package is not None and process_key in package.self_started

    def people_recorded(self, runtime: Runtime, user: Any, actor: str, usernames: Sequence[str]
                        ) -> list[PeopleOutcome]:
        """Tell every package that these people's records were saved; what each did (after the records commit)."""
        return [p.people_recorded(runtime, user, actor, usernames) for p in list(self.packages.values())
                if p.people_recorded is not None]

    def scenario_action(self, name: str) -> ScenarioAction | None:
        """The loaded package's scenario action of this name (a leave record), or None."""
        return next((p.scenario_actions[name] for p in self.packages.values() if name in p.scenario_actions), None)

    def clause_label(self, clause: str) -> str:
        """A clause id as people read it ('D19-7' -> 'Determination 19, cl. 7'), else the id itself."""
        for package in self.packages.values():
            label = package.clause_label(clause) if package.clause_label is not None else None
            if label:
                return label
        return clause


#: The process-wide registry: packages are code, loaded once per process, like the modules that declare them.
REGISTRY = Registry()


def load_policies(settings: Settings) -> Registry:
    """Load the packages `settings.policies` lists (idempotent) and return the registry."""
    REGISTRY.load(settings.policy_packages)
    return REGISTRY


def for_display(session: Session, instance: Any, data: Any) -> Any:
    """Case data as people should see it, after the process's display hooks (never stored)."""
    return display_data(session, instance.process_key, instance.id, data)


def display_data(session: Session, process_key: str, instance_id: int, data: Any) -> Any:
    """for_display of a case known by its process key and id."""
    for fn in REGISTRY.hooks_for(process_key).display:
        data = fn(session, instance_id, data)
    return data

"""Deployed definitions: a checked bundle stored as a new version of each process it holds (a content hash
makes an unchanged deploy a no-op), the newest versions, and the parsed specs cached per version."""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from collections.abc import Mapping
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from engine.core.clock import CLOCK
from engine.core.errors import Invalid
from engine.core.models import AuditEvent
from engine.people.groups import group_names
from engine.workflow.assignment import lanes_with_groups
from engine.workflow.bundles import BPMN_NS, Bundle, Deployed, ParsedProcess, safe_xml
from engine.workflow.models import ProcessDefinition
from engine.workflow.parsing import parse_bundle

log = logging.getLogger(__name__)


# --------------------------------------------------------------------------- deployment


def content_hash(sources: Mapping[str, str], forms: Mapping[str, Any]) -> str:
    """A stable hash of what a version runs: its sources and the forms it uses."""
    canonical = json.dumps({"sources": dict(sources), "forms": dict(forms)}, sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def with_deployed_callees(session: Session, bundle: Bundle) -> Bundle:
    """The bundle with the processes its call activities name but do not hold, from their newest deployed version
    (its files and forms; the callee's own callees come with them). A caller deployed after its callee, in another
    upload, then resolves, and its version keeps the callee's files: what it calls never changes under it."""
    defined: set[str] = set()
    called: dict[str, str] = {}  # called process id -> the call activity naming it
    for name, text in bundle.sources.items():
        root = safe_xml(name, text)
        defined |= {str(p.get("id")) for p in root.iter(f"{{{BPMN_NS}}}process") if p.get("id")}
        for call in root.iter(f"{{{BPMN_NS}}}callActivity"):
            if call.get("calledElement"):
                called.setdefault(str(call.get("calledElement")), str(call.get("id")))
    for key in sorted(set(called) - defined):
        latest = latest_definition(session, key)
        if latest is None:
            continue  # parse_bundle names the call activity and the process it cannot find
        for filename, text in (latest.sources or {}).items():
            bundle.sources.setdefault(filename, text)
        for filename, form in (latest.forms or {}).items():
            bundle.forms.setdefault(filename, form)
    return bundle


def deploy(session: Session, bundle: Bundle, actor: str, reason: str | None = None) -> list[Deployed]:
    """Validate the bundle and add a version for each executable process whose content changed.

    A version keeps only the files its process is built from, so editing one diagram of a folder does
    not make new versions of the others. Call activities resolve within the bundle, else against the newest
    deployed version of the process they call. Each new version is audited (kind "deployed", no case).
    """
    with lanes_with_groups(group_names(session)):  # a lane may name a work group an administrator keeps
        parsed = parse_bundle(with_deployed_callees(session, bundle))
    results: list[Deployed] = []
    now = CLOCK.now()
    for proc in parsed:
        sources = {name: bundle.sources[name] for name in proc.files}
        digest = content_hash(sources, proc.forms)
        latest = latest_definition(session, proc.key)
        if latest is not None and latest.content_hash == digest:
            results.append(Deployed(proc.key, latest.version, created=False))
            continue
        version = (latest.version + 1) if latest is not None else 1
        row = ProcessDefinition(
            key=proc.key, version=version, name=proc.name, sources=sources, forms=proc.forms,
            content_hash=digest, executable=True, deployed_at=now, deployed_by=actor,
        )
        session.add(row)
        session.flush()
        detail: dict[str, Any] = {"process": proc.key, "version": version, "definition_id": row.id,
                                  "files": sorted(sources), "forms": sorted(proc.forms), "content_hash": digest}
        if reason:
            detail["reason"] = reason
        session.add(AuditEvent(instance_id=None, at=now, actor=actor, kind="deployed", detail=detail))
        SPECS.put(row, proc)
        results.append(Deployed(proc.key, version, created=True))
    return results


def latest_definition(session: Session, key: str) -> ProcessDefinition | None:
    """The newest version of a process key, or None."""
    return session.scalars(
        select(ProcessDefinition).where(ProcessDefinition.key == key)
        .order_by(ProcessDefinition.version.desc()).limit(1)
    ).first()


def list_latest(session: Session) -> list[ProcessDefinition]:
    """The newest version of every deployed process."""
    newest = (select(ProcessDefinition.key, func.max(ProcessDefinition.version).label("v"))
              .group_by(ProcessDefinition.key).subquery())
    return list(session.scalars(
        select(ProcessDefinition).join(newest, (ProcessDefinition.key == newest.c.key)
                                       & (ProcessDefinition.version == newest.c.v))
        .order_by(ProcessDefinition.key)
    ))


# --------------------------------------------------------------------------- spec cache


class SpecCache:
    """Parsed specs by definition id: each version is parsed once per process."""

    # Keyed by (process key, content hash), not row id: a rolled-back deployment's id can be reused.

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._specs: dict[tuple[str, str], ParsedProcess] = {}

    def put(self, definition: ProcessDefinition, parsed: ParsedProcess) -> None:
        """Remember a freshly parsed version."""
        with self._lock:
            self._specs[(definition.key, definition.content_hash)] = parsed

    def get(self, definition: ProcessDefinition) -> ParsedProcess:
        """The parsed spec of a stored version, parsing its sources on first use."""
        with self._lock:
            cached = self._specs.get((definition.key, definition.content_hash))
        if cached is not None:
            return cached
        bundle = Bundle(sources=dict(definition.sources), forms=dict(definition.forms))
        for proc in parse_bundle(bundle, strict=False):
            if proc.key == definition.key:
                self.put(definition, proc)
                return proc
        raise Invalid(f"stored definition {definition.key} v{definition.version} has no such process")

    def clear(self) -> None:
        """Forget everything (tests)."""
        with self._lock:
            self._specs.clear()


SPECS = SpecCache()

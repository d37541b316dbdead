"""Decision tables edited in the studio: a process's DMN files opened from its newest version, saved as drafts
(checked on every save, kept whatever their problems), deployed with the process's diagram as its next version,
and compared with what runs, cell by cell.

Who may do this is the studio's rule (versions.require_owner: process owners and administrators). A deployment
from here is the newest version's files and forms, with the process's saved diagram draft (if any) and every saved
table draft in place of the files they edit; it goes through definitions.deploy, so every cell is compile-checked
(dmn.decision_problems) and the deployment is audited.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.core.audit import audit
from engine.core.clock import CLOCK
from engine.core.db import Database
from engine.core.errors import Conflict, Invalid, NotFound, Problem
from engine.people.groups import group_names
from engine.people.models import User
from engine.workflow.assignment import lanes_with_groups
from engine.workflow.bundles import MAX_SOURCE_BYTES, Bundle, Deployed, read_bundle
from engine.workflow.definitions import content_hash, deploy, latest_definition, with_deployed_callees
from engine.workflow.dmn import TableDiff, compare_sources, read_tables
from engine.workflow.dmn_models import DecisionTableDraft
from engine.workflow.models import ProcessDraft
from engine.workflow.parsing import validate_bundle
from engine.workflow.versions import definition, main_file, require_owner


@dataclass(frozen=True)
class TableFile:
    """One DMN file of a process as the studio opens it: the draft's text if there is one, else the newest
    version's."""

    key: str
    filename: str
    xml: str
    base_version: int  # the version the draft was started from (a later one may have been deployed since)
    draft: bool
    saved_at: str | None = None
    saved_by: str | None = None


def _drafts(session: Session, key: str) -> dict[str, DecisionTableDraft]:
    return {d.filename: d for d in session.scalars(
        select(DecisionTableDraft).where(DecisionTableDraft.process_key == key))}


def table_files(session: Session, user: User, key: str) -> list[TableFile]:
    """Every DMN file of a process's newest version, each with its draft when one is saved."""
    require_owner(user)
    base = definition(session, key)
    drafts = _drafts(session, key)
    found: list[TableFile] = []
    for name in sorted(n for n in base.sources if n.lower().endswith(".dmn")):
        draft = drafts.get(name)
        if draft is not None:
            found.append(TableFile(key, name, draft.xml, draft.base_version or base.version, True,
                                   draft.updated_at.isoformat(),
                                   draft.updated_by))
        else:
            found.append(TableFile(key, name, str(base.sources[name]), base.version, False))
    return found


def open_table(session: Session, user: User, key: str, filename: str) -> TableFile:
    """One DMN file of a process (its draft if saved), or NotFound."""
    for table in table_files(session, user, key):
        if table.filename == filename:
            return table
    raise NotFound(f"process '{key}' has no decision table file '{filename}'")


def _draft_sources(session: Session, key: str, edits: dict[str, str]) -> Bundle:
    """What a deployment from the tables page holds: the newest version's files and forms, the process's diagram
    draft, the saved table drafts, then `edits` (filename -> DMN text) on top."""
    base = definition(session, key)
    files: dict[str, Any] = dict(base.sources)
    files.update({name: json.dumps(schema) for name, schema in base.forms.items()})
    diagram = session.scalars(select(ProcessDraft).where(ProcessDraft.process_key == key)).first()
    if diagram is not None:  # the modeler's saved diagram replaces the version's main file, as it deploys it
        files.pop(main_file(base), None)
        files[diagram.filename] = diagram.xml
        files.update({name: json.dumps(schema) for name, schema in diagram.forms.items()})
    files.update({name: d.xml for name, d in _drafts(session, key).items()})
    files.update(edits)
    return read_bundle(files, None)


def draft_bundle(session: Session, key: str) -> Bundle:
    """What deploying the process from the tables page would deploy now (what the scenario lab tries)."""
    return _draft_sources(session, key, {})


def bundle_hash(bundle: Bundle) -> str:
    """A hash of a bundle's files and forms: the same drafts give the same hash."""
    return content_hash(bundle.sources, bundle.forms)


def _checked_text(session: Session, key: str, filename: Any, xml: Any) -> tuple[str, str]:
    """The file name (one of the process's DMN files) and the text, readable as decision tables; else Invalid."""
    base = definition(session, key)
    if not isinstance(filename, str) or filename not in base.sources or not filename.lower().endswith(".dmn"):
        raise Invalid("no such table", [Problem(f"process '{key}' has no decision table file of that name",
                                                field="filename")])
    if not isinstance(xml, str) or not xml.strip():
        raise Invalid("no table", [Problem("the decision table is empty", field="xml")])
    if len(xml.encode()) > MAX_SOURCE_BYTES:
        raise Invalid("table too large", [Problem(
            f"the decision table is larger than {MAX_SOURCE_BYTES // 1024} KiB", field="xml")])
    if not read_tables(filename, xml):  # hostile or not DMN: Invalid naming the file
        raise Invalid("no decision table", [Problem("the file holds no decision table", element=filename)])
    return filename, xml


def check_table(db: Database, user: User, key: str, filename: Any, xml: Any) -> list[Problem]:
    """Every problem a deployment with this table (and the other drafts) would have; nothing is stored."""
    require_owner(user)
    with db.read() as session:
        try:
            filename, xml = _checked_text(session, key, filename, xml)
            bundle = with_deployed_callees(session, _draft_sources(session, key, {filename: xml}))
        except Invalid as exc:
            return exc.problems
        groups = group_names(session)
    with lanes_with_groups(groups):
        return validate_bundle(bundle)


def draft_problems(db: Database, user: User, key: str) -> list[Problem]:
    """Every problem deploying the process's drafts as they stand would meet (each naming its cell); nothing is
    stored."""
    require_owner(user)
    with db.read() as session:
        try:
            bundle = with_deployed_callees(session, _draft_sources(session, key, {}))
        except Invalid as exc:
            return exc.problems
        groups = group_names(session)
    with lanes_with_groups(groups):
        return validate_bundle(bundle)


def save_table(db: Database, user: User, key: str, filename: Any, xml: Any) -> tuple[TableFile, list[Problem]]:
    """Keep an edited table as a draft of the process (the last save wins) and say what a deployment would
    refuse; a table that is not readable DMN (or hostile XML) is refused and nothing is kept."""
    require_owner(user)
    with db.unit_of_work() as uow:
        filename, xml = _checked_text(uow.session, key, filename, xml)
        base = latest_definition(uow.session, key)
        row = _drafts(uow.session, key).get(filename)
        if row is None:
            row = DecisionTableDraft(process_key=key, filename=filename)
            uow.session.add(row)
        row.xml, row.base_version = xml, base.version if base else None
        row.updated_at, row.updated_by = CLOCK.now(), user.username
        uow.commit()
        saved = TableFile(key, filename, xml, row.base_version or 0, True, row.updated_at.isoformat(),
                          user.username)
    return saved, check_table(db, user, key, filename, xml)


def discard_table(db: Database, user: User, key: str, filename: str) -> bool:
    """Forget the draft of one table; True when there was one."""
    require_owner(user)
    with db.unit_of_work() as uow:
        row = _drafts(uow.session, key).get(filename)
        if row is None:
            return False
        uow.session.delete(row)
        uow.commit()
        return True


def deploy_tables(db: Database, user: User, key: str, expected_hash: str | None = None,
                  confirmed: dict[str, Any] | None = None) -> list[Deployed]:
    """Deploy the process with its edited tables (and its diagram draft) as a new version; the drafts deployed
    are cleared. Every cell is checked first: a problem refuses the deployment (Invalid names the cell).

    `expected_hash`: the drafts as the scenario lab tried them (bundle_hash); drafts saved since are refused
    (Conflict). `confirmed`: an owner's confirmation to deploy despite failing or changed scenarios (the
    scenarios, the reason), audited with the deployment in its transaction."""
    require_owner(user)
    with db.unit_of_work() as uow:
        if not _drafts(uow.session, key):
            raise Invalid("nothing to deploy", [Problem("no decision table of this process has a saved draft",
                                                        field="filename")])
        bundle = _draft_sources(uow.session, key, {})
        if expected_hash is not None and bundle_hash(bundle) != expected_hash:
            raise Conflict("the drafts changed after they were tried: try them again before deploying")
        results = deploy(uow.session, bundle, user.username,
                         reason="deployed from the studio with edited decision tables")
        if confirmed is not None:
            audit(uow.session, None, user.username, "deployed_despite_scenarios", process=key,
                  versions=[{"process": r.key, "version": r.version} for r in results], **confirmed)
        for row in _drafts(uow.session, key).values():
            uow.session.delete(row)
        for diagram in uow.session.scalars(select(ProcessDraft).where(ProcessDraft.process_key == key)):
            uow.session.delete(diagram)
        uow.commit()
    return results


def compare_versions(session: Session, user: User, key: str, old: int, new: int) -> dict[str, list[TableDiff]]:
    """The decision tables of two deployed versions of a process, cell by cell."""
    require_owner(user)
    return compare_sources(dict(definition(session, key, old).sources), dict(definition(session, key, new).sources))


def compare_drafts(session: Session, user: User, key: str) -> dict[str, list[TableDiff]]:
    """The saved table drafts against the newest version's tables (what runs), cell by cell."""
    require_owner(user)
    live = {n: str(t) for n, t in definition(session, key).sources.items()}
    drafted = {**live, **{n: d.xml for n, d in _drafts(session, key).items() if n in live}}
    return compare_sources(live, drafted)

"""Decision tables (issue 20): every cell of a table is compiled at deploy and a refusal names the table, the rule and
the column as a process owner sees them; tables are read as untrusted XML; two versions compare cell by cell; a
table edited as a draft deploys with its process as a new version (workflow.dmn, workflow.dmn_drafts)."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from engine.core.errors import Forbidden, Invalid
from engine.people.models import User
from engine.workflow import dmn_drafts
from engine.workflow.bundles import read_bundle
from engine.workflow.definitions import deploy
from engine.workflow.dmn import compare_sources, compare_table, read_tables
from engine.workflow.runtime import Runtime

ROOT = Path(__file__).parents[2]
ELIGIBILITY = (ROOT / "processes" / "pay_progression" / "d19_eligibility.dmn").read_text(encoding="utf-8")
TABLE = "table 'Eligibility for pay progression in this cycle' (d19_eligibility)"
RULE8_CELL = '<inputEntry id="d19_eligibility_rule8_in8"><text>&lt; facts["months_required"]</text>'


def broken(old: str, new: str, text: str = ELIGIBILITY) -> str:
    assert old in text
    return text.replace(old, new)


def _deploy_with(runtime: Runtime, table: str) -> list[str]:
    """Deploy processes/ with d19_eligibility.dmn replaced; the messages of the refusal (none when it deploys)."""
    files = {p.name: p.read_bytes() for p in (ROOT / "processes").glob("*/*") if p.suffix in (".bpmn", ".dmn")}
    files["d19_eligibility.dmn"] = table.encode()
    try:
        with runtime.db.unit_of_work() as uow:
            deploy(uow.session, read_bundle(files, ROOT / "forms"), "test")
    except Invalid as exc:
        return [p.message for p in exc.problems]
    return []


def test_d19_the_shipped_tables_deploy(runtime: Runtime) -> None:
    assert _deploy_with(runtime, ELIGIBILITY) == []


def test_d19_a_broken_input_cell_refuses_the_deploy_naming_table_rule_and_column(runtime: Runtime) -> None:
    found = _deploy_with(runtime, broken(RULE8_CELL, RULE8_CELL.replace('"]</text>', '"</text>')))
    assert len(found) == 1, found
    assert found[0].startswith(f"{TABLE}, rule 8 (d19_eligibility_rule8), input 'Months in this cycle' "
                               "(d19_eligibility_in8): invalid expression"), found[0]


def test_d19_a_cell_in_feel_not_python_is_refused_naming_its_cell(runtime: Runtime) -> None:
    found = _deploy_with(runtime, broken(RULE8_CELL, RULE8_CELL.replace('&lt; facts["months_required"]', "[1..12]")))
    assert found and found[0].startswith(f"{TABLE}, rule 8 (d19_eligibility_rule8), input 'Months in this cycle'")


def test_d19_a_broken_output_cell_and_input_expression_are_named(runtime: Runtime) -> None:
    cell = '<outputEntry id="d19_eligibility_rule4_out2"><text>"D19-5"</text>'
    [message] = _deploy_with(runtime, broken(cell, cell.replace('"D19-5"', 'rule.__class__')))
    assert message.startswith(f"{TABLE}, rule 4 (d19_eligibility_rule4), output 'Rule' (d19_eligibility_out2): "
                              "invalid expression 'rule.__class__'"), message
    [message] = _deploy_with(runtime, broken(cell, cell.replace('"D19-5"', '"D19-5" +')))  # SpiffWorkflow's own refusal
    assert message.startswith(f"{TABLE}, rule 4 (d19_eligibility_rule4), output 'Rule' (d19_eligibility_out2): "), \
        message
    expression = '<text>facts["cycle_months"]</text>'
    [message] = _deploy_with(runtime, broken(expression, '<text>facts["cycle_months"</text>'))
    assert message.startswith(f"{TABLE}, input 'Months in this cycle' (d19_eligibility_in8): invalid expression")


def test_tables_are_read_as_untrusted_xml() -> None:
    hostile = '<?xml version="1.0"?><!DOCTYPE d [<!ENTITY x "y">]><definitions>&x;</definitions>'
    with pytest.raises(Invalid, match="refused"):
        read_tables("d.dmn", hostile)
    with pytest.raises(Invalid, match="not a DMN file"):
        read_tables("d.dmn", '<definitions xmlns="http://www.omg.org/spec/BPMN/20100524/MODEL"/>')
    [table] = read_tables("d19_eligibility.dmn", ELIGIBILITY)
    assert table.hit_policy == "FIRST" and len(table.rules) == 10 and len(table.columns) == 12
    assert table.rules[7].cells["d19_eligibility_in8"] == '< facts["months_required"]'


def test_two_versions_of_a_table_compare_cell_by_cell() -> None:
    rule2 = ELIGIBILITY[ELIGIBILITY.index('<rule id="d19_eligibility_rule2">'):
                        ELIGIBILITY.index('<rule id="d19_eligibility_rule3">')]
    new = broken(RULE8_CELL, RULE8_CELL.replace('&lt; facts["months_required"]', "&lt; 6"))
    new = new.replace(rule2, "")  # rule 2 removed
    new = new.replace("</decisionTable>", rule2.replace("rule2", "rule11") + "</decisionTable>")  # added at the end
    [old_table], [new_table] = read_tables("d.dmn", ELIGIBILITY), read_tables("d.dmn", new)
    diff = compare_table(old_table, new_table)
    assert diff.status == "changed"
    assert [r.id for r in diff.added] == ["d19_eligibility_rule11"]
    assert [r.id for r in diff.removed] == ["d19_eligibility_rule2"]
    changed = {c.rule.id: c for c in diff.changed}
    assert [(c.column, c.old, c.new) for c in changed["d19_eligibility_rule8"].cells] == [
        ("input 'Months in this cycle' (d19_eligibility_in8)", '< facts["months_required"]', "< 6")]
    assert changed["d19_eligibility_rule8"].old_number == 8 and changed["d19_eligibility_rule8"].rule.number == 7
    assert changed["d19_eligibility_rule3"].cells == []  # moved up one row, unchanged
    same = compare_sources({"d.dmn": ELIGIBILITY}, {"d.dmn": ELIGIBILITY})
    assert [d.status for d in same["d.dmn"]] == ["unchanged"]


def _user(runtime: Runtime, username: str) -> User:
    with runtime.db.read() as s:
        user = s.scalars(select(User).where(User.username == username)).one()
        _ = user.person
        s.expunge(user)
        return user


def test_d19_a_table_draft_deploys_with_its_process_as_a_new_version(org: Runtime) -> None:
    owner, employee = _user(org, "owner"), _user(org, "employee")
    with org.db.read() as s:
        before = dmn_drafts.open_table(s, owner, "pay_progression", "d19_eligibility.dmn")
        with pytest.raises(Forbidden):
            dmn_drafts.open_table(s, employee, "pay_progression", "d19_eligibility.dmn")
    assert not before.draft
    bad = broken(RULE8_CELL, RULE8_CELL.replace('"]</text>', '"</text>'), before.xml)
    saved, problems = dmn_drafts.save_table(org.db, owner, "pay_progression", "d19_eligibility.dmn", bad)
    assert saved.draft and any("rule 8 (d19_eligibility_rule8), input 'Months in this cycle'" in p.message
                               for p in problems)
    with pytest.raises(Invalid):
        dmn_drafts.deploy_tables(org.db, owner, "pay_progression")
    good = broken(RULE8_CELL, RULE8_CELL.replace('&lt; facts["months_required"]', "&lt; 6"), before.xml)
    _, problems = dmn_drafts.save_table(org.db, owner, "pay_progression", "d19_eligibility.dmn", good)
    assert problems == []
    with org.db.read() as s:
        [diff] = dmn_drafts.compare_drafts(s, owner, "pay_progression")["d19_eligibility.dmn"]
    with pytest.raises(Forbidden):
        dmn_drafts.deploy_tables(org.db, employee, "pay_progression")
    results = {r.key: r for r in dmn_drafts.deploy_tables(org.db, owner, "pay_progression")}
    assert results["pay_progression"].created and results["pay_progression"].version == before.base_version + 1
    with org.db.read() as s:
        after = dmn_drafts.open_table(s, owner, "pay_progression", "d19_eligibility.dmn")
        versions = dmn_drafts.compare_versions(s, owner, "pay_progression", before.base_version, after.base_version)
    assert not after.draft and after.xml == good
    assert [c.new for c in versions["d19_eligibility.dmn"][0].changed[0].cells] == ["< 6"]
    assert diff.status == "changed"

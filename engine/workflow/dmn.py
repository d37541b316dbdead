"""Decision tables (DMN): read as untrusted XML, every cell compile-checked as SpiffWorkflow's DMN engine runs it,
each problem naming the table, the rule and the column as a process owner sees them, and two versions of a table
compared cell by cell.

SpiffWorkflow 3.2 evaluates a table with its script engine: an input expression and each output entry are Python
expressions; an input entry is turned into one (see validation.dmn_cell_problems). Its parser reads a table only
when a business rule task is built and refuses only unparsable output entries; the rest fails when a rule is
evaluated on a real case. `decision_problems` runs at deploy (parsing.parse_bundle) on the tables as SpiffWorkflow
parsed them, so what is checked is what runs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from lxml import etree
from SpiffWorkflow.bpmn.parser.ValidationException import ValidationException

from engine.core.errors import Invalid, Problem
from engine.workflow.bundles import is_dmn, safe_xml
from engine.workflow.code_checks import code_problems
from engine.workflow.validation import dmn_cell_problems, parser_problem

# --------------------------------------------------------------------------- how a table, rule and column are named


def _shown(text: str, limit: int = 80) -> str:
    """`text` quoted for a message, cut short if long (a cell or an expression can be large)."""
    return repr(text) if len(text) <= limit else repr(text[:limit]) + "..."


def table_named(decision_id: str, name: str | None) -> str:
    """"table 'Eligibility' (d19_eligibility)": the name process owners see, and the id the XML holds."""
    return f"table {_shown(name)} ({decision_id})" if name and name != decision_id else f"table '{decision_id}'"


def rule_named(number: int | None, rule_id: str | None) -> str:
    """"rule 3 (d19_eligibility_rule3)": its row number, counted from 1 as the editor shows it, and its id."""
    if number is None:
        return f"rule '{rule_id}'"
    return f"rule {number} ({rule_id})" if rule_id else f"rule {number}"


def column_named(kind: str, column_id: str | None, label: str | None, name: str | None = None) -> str:
    """"input 'Months in this cycle' (d19_eligibility_in8)": the column's label (or name), and its id."""
    shown = label or name
    return f"{kind} {_shown(shown)} ({column_id})" if shown else f"{kind} '{column_id}'"


# --------------------------------------------------------------------------- deploy-time checks


def decision_problems(decision: Any) -> list[Problem]:
    """Every input expression, input entry and output entry of a decision as SpiffWorkflow parsed it, compiled as
    its engine runs them (restricted, like scripts). Each problem names the table, the rule (number and id) and
    the column (label and id), and is reported against the DMN element (the input, or the cell)."""
    problems: list[Problem] = []
    table_name = table_named(decision.id, getattr(decision, "name", None))
    for table in getattr(decision, "decisionTables", []):
        broken: set[int] = set()  # inputs whose own expression is refused: their cells would only repeat it
        for column in table.inputs:
            if column.expression:
                where = f"{table_name}, {column_named('input', column.id, column.label, column.name)}"
                found = code_problems(f"{where}: invalid expression {_shown(column.expression)}",
                                      column.expression, "eval")
                if found:
                    broken.add(id(column))
                problems.extend(Problem(m, element=column.id) for m in found)
        for rule in table.rules:
            problems.extend(_rule_problems(table_name, rule, broken))
    return problems


def _rule_problems(table_name: str, rule: Any, broken: set[int]) -> list[Problem]:
    problems: list[Problem] = []
    rule_name = rule_named(getattr(rule, "row_number", None) or None, rule.id)
    for entry in rule.inputEntries:
        if id(entry.input) in broken:
            continue
        column = entry.input
        where = f"{table_name}, {rule_name}, {column_named('input', column.id, column.label, column.name)}"
        for cell in entry.lhs:
            if cell is not None:
                problems.extend(Problem(m, element=entry.id)
                                for m in dmn_cell_problems(where, column.expression, cell))
    for entry in rule.outputEntries:
        text = getattr(entry, "text", None)
        if text:
            column = entry.output
            where = f"{table_name}, {rule_name}, {column_named('output', column.id, column.label, column.name)}"
            problems.extend(Problem(m, element=entry.id)
                            for m in code_problems(f"{where}: invalid expression {_shown(text)}", text, "eval"))
    return problems


def dmn_parse_problem(exc: ValidationException, filename: str, root: etree._Element) -> Problem:
    """SpiffWorkflow's DMN parse error; its refusal of an output entry worded as decision_problems words it."""
    entry = next((n for n in root.iter() if isinstance(n.tag, str) and exc.id and n.get("id") == exc.id), None)
    rule = entry.getparent() if entry is not None else None
    table = rule.getparent() if rule is not None else None
    decision = table.getparent() if table is not None else None
    text = next((c.text for c in entry if isinstance(c.tag, str) and c.tag.endswith("text")), None) \
        if entry is not None else None
    if entry is None or rule is None or table is None or decision is None or not str(entry.tag).endswith(
            "outputEntry") or not text:
        return parser_problem(exc, filename, root)
    position = [c for c in rule if isinstance(c.tag, str) and c.tag.endswith("outputEntry")].index(entry)
    outputs = [c for c in table if _local(c) == "output"]
    output = outputs[position] if position < len(outputs) else None
    number = [c for c in table if _local(c) == "rule"].index(rule) + 1
    column = column_named("output", output.get("id") if output is not None else None,
                          output.get("label") if output is not None else None,
                          output.get("name") if output is not None else None)
    where = f"{table_named(str(decision.get('id')), decision.get('name'))}, {rule_named(number, rule.get('id'))}, " \
            f"{column}"
    found = code_problems(f"{where}: invalid expression {_shown(text)}", text, "eval")
    return Problem(found[0] if found else f"{where}: invalid expression {_shown(text)}", element=exc.id)


# --------------------------------------------------------------------------- reading tables (for the studio)


@dataclass(frozen=True)
class Column:
    """One input or output column: its id, label (or name) and, for an input, its expression."""

    id: str
    kind: str  # "input" | "output"
    label: str
    expression: str = ""

    @property
    def named(self) -> str:
        return column_named(self.kind, self.id, self.label)


@dataclass(frozen=True)
class Rule:
    """One row: its id, number (from 1), description, and the text of each cell by column id."""

    id: str
    number: int
    description: str
    cells: dict[str, str]


@dataclass(frozen=True)
class Table:
    """One decision with its table, as the XML holds it."""

    id: str
    name: str
    hit_policy: str
    columns: list[Column]
    rules: list[Rule]

    @property
    def named(self) -> str:
        return table_named(self.id, self.name)


def _local(node: Any) -> str:
    return etree.QName(node).localname if isinstance(node.tag, str) else ""


def _child_text(node: etree._Element, name: str) -> str:
    child = next((c for c in node if _local(c) == name), None)
    return (child.text or "") if child is not None else ""


def _read_rule(node: etree._Element, number: int, columns: list[Column]) -> Rule:
    inputs = [c for c in columns if c.kind == "input"]
    outputs = [c for c in columns if c.kind == "output"]
    cells: dict[str, str] = {}
    entries = {"inputEntry": (inputs, 0), "outputEntry": (outputs, 0)}
    for child in node:
        kind = _local(child)
        if kind in entries:
            of, index = entries[kind]
            key = of[index].id if index < len(of) else f"{kind}-{index + 1}"
            cells[key] = _child_text(child, "text")
            entries[kind] = (of, index + 1)
    return Rule(str(node.get("id") or f"rule-{number}"), number, _child_text(node, "description"), cells)


def read_tables(filename: str, text: str) -> list[Table]:
    """The decision tables of a DMN file, read as untrusted XML (no DTDs or entities, bounded size and depth)."""
    root = safe_xml(filename, text)
    if not is_dmn(root):
        raise Invalid(f"{filename}: not a DMN file", [Problem("the file is not a DMN document", element=filename)])
    tables: list[Table] = []
    for decision in (n for n in root if _local(n) == "decision"):
        for node in (n for n in decision if _local(n) == "decisionTable"):
            columns: list[Column] = []
            for child in node:
                if _local(child) == "input":
                    expression = next((_child_text(e, "text") for e in child if _local(e) == "inputExpression"), "")
                    columns.append(Column(str(child.get("id")), "input", child.get("label") or child.get("name")
                                          or "", expression))
                elif _local(child) == "output":
                    columns.append(Column(str(child.get("id")), "output", child.get("label") or child.get("name")
                                          or ""))
            rules = [_read_rule(r, n, columns) for n, r in enumerate((r for r in node if _local(r) == "rule"), 1)]
            tables.append(Table(str(decision.get("id")), decision.get("name") or "",
                                (node.get("hitPolicy") or "UNIQUE").upper(), columns, rules))
    return tables


# --------------------------------------------------------------------------- comparing two versions of a table


@dataclass(frozen=True)
class CellChange:
    """One cell of a rule that differs: its column, the text before and after."""

    column: str  # as column_named words it
    old: str
    new: str


@dataclass(frozen=True)
class RuleChange:
    """A rule in both versions (same id) whose cells, description or place changed."""

    rule: Rule  # the new one
    old_number: int
    cells: list[CellChange]
    description: tuple[str, str] | None = None


@dataclass
class TableDiff:
    """What changed in one decision table between two versions."""

    id: str
    name: str
    status: str  # "changed" | "unchanged" | "added" | "removed"
    columns: list[Column]  # the new version's (the old one's when removed)
    added: list[Rule] = field(default_factory=list)
    removed: list[Rule] = field(default_factory=list)
    changed: list[RuleChange] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # hit policy, columns added or removed, rules reordered


def _rule_change(old: Rule, new: Rule, columns: dict[str, Column]) -> RuleChange | None:
    cells = [CellChange(columns[c].named if c in columns else c, old.cells.get(c, ""), new.cells.get(c, ""))
             for c in list(dict.fromkeys([*new.cells, *old.cells])) if old.cells.get(c, "") != new.cells.get(c, "")]
    description = (old.description, new.description) if old.description != new.description else None
    if not cells and description is None and old.number == new.number:
        return None
    return RuleChange(new, old.number, cells, description)


def compare_table(old: Table, new: Table) -> TableDiff:
    """Rules matched by id: added, removed, and changed with the cells that differ."""
    diff = TableDiff(new.id, new.name, "unchanged", new.columns)
    if old.hit_policy != new.hit_policy:
        diff.notes.append(f"hit policy {old.hit_policy} -> {new.hit_policy}")
    old_cols, new_cols = {c.id: c for c in old.columns}, {c.id: c for c in new.columns}
    diff.notes += [f"column added: {c.named}" for k, c in new_cols.items() if k not in old_cols]
    diff.notes += [f"column removed: {c.named}" for k, c in old_cols.items() if k not in new_cols]
    diff.notes += [f"{c.named} renamed from {_shown(old_cols[k].label)}" for k, c in new_cols.items()
                   if k in old_cols and old_cols[k].label != c.label]
    diff.notes += [f"{c.named}: expression {_shown(old_cols[k].expression)} -> {_shown(c.expression)}"
                   for k, c in new_cols.items() if k in old_cols and old_cols[k].expression != c.expression]
    old_rules, new_rules = {r.id: r for r in old.rules}, {r.id: r for r in new.rules}
    diff.added = [r for r in new.rules if r.id not in old_rules]
    diff.removed = [r for r in old.rules if r.id not in new_rules]
    both = {**old_cols, **new_cols}
    diff.changed = [c for r in new.rules if r.id in old_rules
                    if (c := _rule_change(old_rules[r.id], r, both)) is not None]
    if diff.notes or diff.added or diff.removed or diff.changed or old.name != new.name:
        diff.status = "changed"
    return diff


def compare_sources(old: dict[str, str], new: dict[str, str]) -> dict[str, list[TableDiff]]:
    """Every DMN file of two versions (filename -> text), table by table; a file or table only on one side is
    added or removed."""
    result: dict[str, list[TableDiff]] = {}
    for filename in sorted({n for n in (*old, *new) if n.lower().endswith(".dmn")}):
        before = {t.id: t for t in read_tables(filename, old[filename])} if filename in old else {}
        after = {t.id: t for t in read_tables(filename, new[filename])} if filename in new else {}
        diffs: list[TableDiff] = []
        for ident in dict.fromkeys([*after, *before]):
            if ident not in before:
                diffs.append(TableDiff(ident, after[ident].name, "added", after[ident].columns,
                                       added=list(after[ident].rules)))
            elif ident not in after:
                diffs.append(TableDiff(ident, before[ident].name, "removed", before[ident].columns,
                                       removed=list(before[ident].rules)))
            else:
                diffs.append(compare_table(before[ident], after[ident]))
        result[filename] = diffs
    return result

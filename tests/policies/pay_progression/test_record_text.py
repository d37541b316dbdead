"""Issue 19: the personnel-file record shows labels, never Python structures or internal codes."""

from __future__ import annotations

from engine.policies.pay_progression.record import OUTCOMES, _item_text


def test_a_list_of_objects_reads_by_its_forms_titles() -> None:
    schema = {"type": "object", "properties": {
        "risk": {"type": "string", "title": "Risk"},
        "likelihood": {"type": "string", "title": "Likelihood",
                       "oneOf": [{"const": "low", "title": "Low"}, {"const": "high", "title": "High"}]},
        "treatment_plan": {"type": "string"}}}
    text = _item_text(schema, {"risk": "Travel to remote sites", "likelihood": "high", "treatment_plan": "Buddy",
                               "empty": ""})
    assert text == "Risk: Travel to remote sites, Likelihood: High, treatment plan: Buddy"
    assert "{" not in text and "'" not in text


def test_every_outcome_a_diagram_sets_has_words() -> None:
    import re
    from pathlib import Path

    from engine.core.config import PROJECT_ROOT

    codes = set()
    for bpmn in Path(PROJECT_ROOT, "processes").glob("*/*.bpmn"):
        codes |= set(re.findall(r'outcome = "([a-z_]+)"', bpmn.read_text()))
        codes |= set(re.findall(r'else "([a-z_]+)"', bpmn.read_text())) & {"completed"}
    assert codes and codes <= set(OUTCOMES), sorted(codes - set(OUTCOMES))

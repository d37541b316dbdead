"""Tests for web.formrender: JSON Schema form rendering, post parsing and validation."""

from __future__ import annotations

import datetime as dt
from html.parser import HTMLParser
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from markupsafe import Markup
from werkzeug.datastructures import MultiDict

from web.formrender import check_schema, parse_form, render_form, validate

# ---------------------------------------------------------------- helpers


class Page(HTMLParser):
    """Parses rendered fields: elements, label texts, and what a browser would submit."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.elements: list[tuple[str, dict[str, str | None]]] = []
        self.labels: dict[str, str] = {}
        self.legends: list[str] = []
        self.text = ""
        self._label: str | None = None
        self._legend: str | None = None
        self._textarea: dict[str, str | None] | None = None
        self._select: dict[str, Any] | None = None
        self.submitted: list[tuple[str, str]] = []
        self.feed(str(html))
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        self.elements.append((tag, a))
        if tag == "label":
            self._label = a.get("for") or ""
            self.labels[self._label] = ""
        elif tag == "legend":
            self._legend = ""
        elif tag == "textarea":
            self._textarea = {**a, "_text": ""}
        elif tag == "select":
            self._select = {"attrs": a, "options": []}
        elif tag == "option" and self._select is not None:
            self._select["options"].append(a)
        elif tag == "input" and a.get("name") and "disabled" not in a:
            kind = a.get("type", "text")
            if kind not in ("checkbox", "radio") or "checked" in a:
                default = "on" if kind in ("checkbox", "radio") else ""
                self.submitted.append((a["name"] or "", a.get("value") or default))

    def handle_endtag(self, tag: str) -> None:
        if tag == "label":
            self._label = None
        elif tag == "legend" and self._legend is not None:
            self.legends.append(self._legend)
            self._legend = None
        elif tag == "textarea" and self._textarea is not None:
            t = self._textarea
            if t.get("name") and "disabled" not in t:
                self.submitted.append((t["name"] or "", (t["_text"] or "").removeprefix("\n")))
            self._textarea = None
        elif tag == "select" and self._select is not None:
            attrs, options = self._select["attrs"], self._select["options"]
            chosen = [o for o in options if "selected" in o] or options[:1]
            if attrs.get("name") and "disabled" not in attrs and chosen:
                self.submitted.append((attrs["name"], chosen[0].get("value") or ""))
            self._select = None

    def handle_data(self, data: str) -> None:
        self.text += data
        if self._label is not None:
            self.labels[self._label] += data
        if self._legend is not None:
            self._legend += data
        if self._textarea is not None:
            self._textarea["_text"] = (self._textarea["_text"] or "") + data

    def find(self, tag: str, **want: str) -> list[dict[str, str | None]]:
        return [a for t, a in self.elements if t == tag and all(a.get(k) == v for k, v in want.items())]

    def one(self, tag: str, **want: str) -> dict[str, str | None]:
        found = self.find(tag, **want)
        assert len(found) == 1, (tag, want, self.elements)
        return found[0]

    def form(self) -> MultiDict[str, str]:
        return MultiDict(self.submitted)


def assert_labelled(page: Page) -> None:
    """Every visible control has an id and a <label for> pointing at it."""
    for tag, attrs in page.elements:
        if tag in ("input", "select", "textarea") and attrs.get("type") != "hidden":
            assert attrs.get("id"), (tag, attrs)
            assert attrs["id"] in page.labels, (tag, attrs, page.labels)
            assert page.labels[attrs["id"]].strip()


def page_of(
    schema: dict[str, Any],
    ui: dict[str, Any] | None = None,
    data: Any = None,
    errors: dict[str, list[str]] | None = None,
    **kw: Any,
) -> Page:
    html = render_form(schema, ui, data, errors, **kw)
    assert isinstance(html, Markup)
    page = Page(html)
    assert_labelled(page)
    return page


def obj(**props: Any) -> dict[str, Any]:
    return {"type": "object", "properties": props}


def posted(*pairs: tuple[str, str]) -> MultiDict[str, str]:
    return MultiDict(list(pairs))


# ---------------------------------------------------------------- widgets


def test_text_input_has_label_for_id_and_name() -> None:
    page = page_of(
        obj(first_name={"type": "string", "minLength": 2, "maxLength": 20}), None, {"first_name": "Al"}
    )
    inp = page.one("input", name="first_name")
    assert inp["type"] == "text" and inp["id"] == "f-first_name" and inp["value"] == "Al"
    assert inp["minlength"] == "2" and inp["maxlength"] == "20"
    assert page.labels["f-first_name"].strip() == "First name"  # humanised property name


def test_date_and_email_formats() -> None:
    page = page_of(
        obj(start={"type": "string", "format": "date"}, mail={"type": "string", "format": "email"}),
        None,
        {"start": "2024-07-01"},
    )
    assert page.one("input", name="start")["type"] == "date"
    assert page.one("input", name="start")["value"] == "2024-07-01"
    assert page.one("input", name="mail")["type"] == "email"


def test_textarea_rows_default_and_option() -> None:
    schema = obj(a={"type": "string"}, b={"type": "string"})
    ui = {"a": {"ui:widget": "textarea"}, "b": {"ui:widget": "textarea", "ui:options": {"rows": 9}}}
    page = page_of(schema, ui, {"a": "line1\nline2"})
    assert page.one("textarea", name="a")["rows"] == "5"
    assert page.one("textarea", name="b")["rows"] == "9"
    assert "line1\nline2" in page.text


def test_enum_select_with_choose_option() -> None:
    page = page_of(obj(dept={"type": "string", "enum": ["Finance", "HR"]}), None, {"dept": "HR"})
    sel = page.one("select", name="dept")
    assert sel["id"] == "f-dept"
    values = [o.get("value") for o in page.find("option")]
    assert values == ["", "Finance", "HR"]
    assert "— choose —" in page.text
    assert "selected" in page.one("option", value="HR")
    assert "selected" not in page.one("option", value="Finance")


def test_enum_select_without_choose_option_when_default() -> None:
    page = page_of(obj(dept={"type": "string", "enum": ["Finance", "HR"], "default": "HR"}))
    assert [o.get("value") for o in page.find("option")] == ["Finance", "HR"]
    assert "selected" in page.one("option", value="HR")


def test_enum_radios_in_fieldset_with_legend() -> None:
    schema = {**obj(dept={"type": "string", "title": "Department", "enum": ["A", "B"]}), "required": ["dept"]}
    page = page_of(schema, {"dept": {"ui:widget": "radio"}}, {"dept": "B"})
    radios = page.find("input", type="radio")
    assert [r["value"] for r in radios] == ["A", "B"]
    assert all(r["name"] == "dept" and "required" in r for r in radios)
    assert "checked" in radios[1] and "checked" not in radios[0]
    assert page.one("fieldset", id="f-dept")
    assert page.legends[0].startswith("Department") and "(required)" in page.legends[0]


def test_oneof_const_titles_and_enum_names() -> None:
    schema = obj(
        rec={
            "type": "string",
            "oneOf": [
                {"const": "approve", "title": "Approve"},
                {"const": "not_approve", "title": "Do not approve"},
            ],
        },
        size={"type": "string", "enum": ["s", "l"], "enumNames": ["Small", "Large"]},
    )
    page = page_of(schema, {"rec": {"ui:widget": "radio"}})
    assert page.labels["f-rec-opt-1"] == "Do not approve"
    assert [r["value"] for r in page.find("input", type="radio")] == ["approve", "not_approve"]
    assert "Small" in page.text and "Large" in page.text
    assert page.one("option", value="l")


def test_boolean_checkbox_and_yes_no_radios() -> None:
    schema = obj(agree={"type": "boolean", "title": "I agree"}, ok={"type": "boolean"})
    page = page_of(schema, {"ok": {"ui:widget": "radio"}}, {"agree": True, "ok": False})
    box = page.one("input", name="agree")
    assert box["type"] == "checkbox" and box["value"] == "true" and "checked" in box
    assert page.labels["f-agree"].strip() == "I agree"
    radios = page.find("input", name="ok")
    assert [(r["value"], "checked" in r) for r in radios] == [("true", False), ("false", True)]
    assert "Yes" in page.text and "No" in page.text


def test_numbers() -> None:
    page = page_of(
        obj(n={"type": "integer", "minimum": 1, "maximum": 9}, x={"type": "number"}), None, {"n": 3}
    )
    n, x = page.one("input", name="n"), page.one("input", name="x")
    assert n["type"] == "number" and n["value"] == "3" and n["min"] == "1" and n["max"] == "9"
    assert "step" not in n
    assert x["type"] == "number" and x["step"] == "any"


def test_checkbox_group_for_unique_enum_array() -> None:
    schema = {
        **obj(
            days={
                "type": "array",
                "title": "Days",
                "uniqueItems": True,
                "minItems": 1,
                "items": {"type": "string", "enum": ["mon", "tue", "wed"]},
            }
        ),
        "required": ["days"],
    }
    page = page_of(schema, {"days": {"ui:widget": "checkboxes"}}, {"days": ["tue"]})
    boxes = page.find("input", type="checkbox")
    assert [(b["value"], "checked" in b) for b in boxes] == [("mon", False), ("tue", True), ("wed", False)]
    assert all(b["name"] == "days" and "required" not in b for b in boxes)  # HTML would demand all boxes
    assert page.one("fieldset", id="f-days") and "(required)" in page.legends[0]


def test_nested_object_fieldset_and_dotted_names() -> None:
    schema = obj(recommendation=obj(reason={"type": "string", "title": "Reason"}))
    schema["properties"]["recommendation"]["title"] = "Recommendation"
    page = page_of(schema, None, {"recommendation": {"reason": "fine"}})
    assert page.one("fieldset", id="f-recommendation")
    assert page.legends == ["Recommendation"]
    inp = page.one("input", name="recommendation.reason")
    assert inp["id"] == "f-recommendation-reason" and inp["value"] == "fine"


def test_array_of_objects_renders_items_plus_blank() -> None:
    schema = obj(
        criteria={
            "type": "array",
            "title": "Criteria",
            "items": obj(text={"type": "string"}, met={"type": "boolean"}),
        }
    )
    page = page_of(schema, None, {"criteria": [{"text": "one", "met": True}]})
    assert page.one("input", name="criteria.0.text")["value"] == "one"
    assert page.one("input", name="criteria.0.text")["id"] == "f-criteria-0-text"
    assert page.one("input", name="criteria.1.text")["value"] == ""
    assert "Criteria 1" in page.legends and "Criteria 2" in page.legends


def test_hidden_and_unknown_types() -> None:
    schema = obj(
        token={"type": "string"}, weird={"type": "frobnicate"}, notype={}, multi={"type": ["null", "integer"]}
    )
    page = page_of(schema, {"token": {"ui:widget": "hidden"}}, {"token": "abc", "weird": 5})
    hidden = page.one("input", name="token")
    assert hidden["type"] == "hidden" and hidden["value"] == "abc"
    assert page.one("input", name="weird")["type"] == "text"
    assert page.one("input", name="notype")["type"] == "text"
    assert page.one("input", name="multi")["type"] == "number"


def test_titles_help_and_placeholder() -> None:
    schema = obj(a={"type": "string", "title": "Schema title", "description": "From schema"})
    ui = {"a": {"ui:title": "UI title", "ui:help": "Extra help", "ui:placeholder": "e.g. 42"}}
    page = page_of(schema, ui)
    inp = page.one("input", name="a")
    assert page.labels["f-a"].strip() == "UI title"
    assert inp["aria-describedby"] == "f-a-help" and inp["placeholder"] == "e.g. 42"
    assert page.one("p", id="f-a-help")["class"] == "help"
    assert "From schema" in page.text and "Extra help" in page.text
    # ui:description overrides description
    page = page_of(schema, {"a": {"ui:description": "UI desc"}})
    assert "UI desc" in page.text and "From schema" not in page.text


def test_top_level_title_and_description_not_rendered() -> None:
    schema = {**obj(a={"type": "string"}), "title": "Form Title", "description": "Form description"}
    html = render_form(schema, None, None)
    assert "Form Title" not in html and "Form description" not in html
    assert "<form" not in html and "submit" not in html


def test_required_attribute_and_visible_text() -> None:
    schema = {**obj(a={"type": "string"}, b={"type": "string"}), "required": ["a"]}
    page = page_of(schema)
    assert "required" in page.one("input", name="a") and "(required)" in page.labels["f-a"]
    assert "required" not in page.one("input", name="b") and "(required)" not in page.labels["f-b"]


def test_children_of_optional_object_are_not_html_required() -> None:
    schema = obj(extra={**obj(x={"type": "string"}), "required": ["x"]})
    assert "required" not in page_of(schema).one("input", name="extra.x")
    schema["required"] = ["extra"]
    assert "required" in page_of(schema).one("input", name="extra.x")


# ---------------------------------------------------------------- defaults, order, readonly


def test_values_from_data_else_default() -> None:
    schema = obj(a={"type": "string", "default": "dflt"}, b={"type": "string", "default": "dflt"})
    page = page_of(schema, None, {"a": "given"})
    assert page.one("input", name="a")["value"] == "given"
    assert page.one("input", name="b")["value"] == "dflt"


def test_ui_order_and_wildcard() -> None:
    schema = obj(a={"type": "string"}, b={"type": "string"}, c={"type": "string"}, d={"type": "string"})

    def names(ui: dict[str, Any]) -> list[str | None]:
        return [a["name"] for a in page_of(schema, ui).find("input")]

    assert names({}) == ["a", "b", "c", "d"]
    assert names({"ui:order": ["c", "a", "b", "d"]}) == ["c", "a", "b", "d"]
    assert names({"ui:order": ["d", "*", "a"]}) == ["d", "b", "c", "a"]
    assert names({"ui:order": ["c", "nonexistent"]}) == ["c", "a", "b", "d"]
    nested = obj(o=obj(x={"type": "string"}, y={"type": "string"}))
    page = page_of(nested, {"o": {"ui:order": ["y", "x"]}})
    assert [a["name"] for a in page.find("input")] == ["o.y", "o.x"]


def test_readonly_schema_and_ui_fields() -> None:
    schema = obj(
        a={"type": "string", "readOnly": True}, b={"type": "string"}, c={"type": "string", "enum": ["x", "y"]}
    )
    ui = {"b": {"ui:readonly": True}, "c": {"ui:readonly": True}}
    page = page_of(schema, ui, {"a": "1", "b": "2", "c": "x"})
    assert "readonly" in page.one("input", name="a") and "readonly" in page.one("input", name="b")
    assert "disabled" in page.one("select", name="c")


def test_readonly_form_displays_values_labelled() -> None:
    schema = {
        **obj(
            name={"type": "string"},
            dept={"type": "string", "oneOf": [{"const": "hr", "title": "Human Resources"}]},
            ok={"type": "boolean"},
            days={
                "type": "array",
                "uniqueItems": True,
                "items": {"enum": ["mon", "tue"], "enumNames": ["Mon", "Tue"]},
            },
            notes={"type": "string"},
        ),
        "required": ["name"],
    }
    data = {"name": "Ann", "dept": "hr", "ok": True, "days": ["mon", "tue"], "notes": "n"}
    page = page_of(schema, {"notes": {"ui:widget": "textarea"}}, data, readonly=True)
    for name, shown in [("name", "Ann"), ("dept", "Human Resources"), ("ok", "Yes"), ("days", "Mon, Tue")]:
        inp = page.one("input", name=name)
        assert inp["value"] == shown and "readonly" in inp and "required" not in inp
    assert "readonly" in page.one("textarea", name="notes")
    assert "(required)" not in page.text
    assert not page.find("select")


# ---------------------------------------------------------------- escaping

EVIL = '<script>alert("x")</script>'


def test_hostile_strings_are_escaped() -> None:
    schema = obj(
        a={"type": "string", "title": EVIL, "description": EVIL, "default": EVIL},
        b={"type": "string", "enum": [EVIL, "ok"], "title": EVIL},
        c={"type": "string", "oneOf": [{"const": EVIL, "title": EVIL}]},
        d={"type": "string"},
        e={"type": "array", "uniqueItems": True, "items": {"enum": [EVIL]}},
    )
    schema["properties"][EVIL] = {"type": "string", "title": "x"}
    ui = {
        "c": {"ui:widget": "radio"},
        "d": {"ui:widget": "textarea", "ui:help": EVIL, "ui:placeholder": EVIL},
    }
    data = {"b": EVIL, "d": EVIL + "</textarea>", "e": [EVIL], EVIL: EVIL}
    for readonly in (False, True):
        html = render_form(schema, ui, data, {"d": [EVIL], "": [EVIL], "zz": [EVIL]}, readonly=readonly)
        assert "<script" not in html and "</textarea></textarea>" not in html
        assert '"x")' not in html  # quotes are escaped too, so attributes cannot be broken out of
        page = Page(html)
        assert EVIL in page.text  # ...but the text survives intact for the reader
        assert page.find("input", value=EVIL) or readonly


# ---------------------------------------------------------------- errors in the page


def test_field_errors_tied_with_aria() -> None:
    schema = obj(
        a={"type": "string", "description": "help"},
        b={"type": "string", "enum": ["x"]},
        c={"type": "string", "enum": ["x", "y"]},
    )
    errors = {"a": ["Must be at least 10 characters."], "b": ["Bad."], "c": ["Pick one."]}
    page = page_of(schema, {"c": {"ui:widget": "radio"}}, None, errors)
    a = page.one("input", name="a")
    assert a["aria-invalid"] == "true" and a["aria-describedby"] == "f-a-help f-a-error"
    assert page.one("p", id="f-a-error") and "Must be at least 10 characters." in page.text
    b = page.one("select", name="b")
    assert b["aria-invalid"] == "true" and b["aria-describedby"] == "f-b-error"
    assert all(
        r["aria-invalid"] == "true" and r["aria-describedby"] == "f-c-error"
        for r in page.find("input", type="radio")
    )
    assert not page.find("div", role="alert")


def test_form_level_and_orphan_errors_go_to_alert_box() -> None:
    schema = obj(a={"type": "string"})
    html = render_form(schema, None, None, {"": ["Something is wrong."], "ghost": ["Lost message."]})
    page = Page(html)
    alert = page.one("div", role="alert")
    assert alert is not None
    assert html.index('role="alert"') < html.index('name="a"')
    assert "Something is wrong." in page.text and "ghost: Lost message." in page.text
    assert "aria-invalid" not in page.one("input", name="a")


def test_nested_object_error_under_legend() -> None:
    schema = obj(o=obj(x={"type": "string"}))
    page = page_of(schema, None, None, {"o": ["Object problem."], "o.x": ["X problem."]})
    assert page.one("p", id="f-o-error") and page.one("p", id="f-o-x-error")


# ---------------------------------------------------------------- parsing


def test_parse_types_trim_and_omit_empty() -> None:
    schema = obj(
        s={"type": "string"},
        blank={"type": "string"},
        n={"type": "integer"},
        x={"type": "number"},
        b={"type": "boolean"},
        unticked={"type": "boolean"},
        d={"type": "string", "format": "date"},
    )
    form = posted(
        ("s", "  hi  "), ("blank", "   "), ("n", "42"), ("x", "2.5"), ("b", "true"), ("d", "2024-02-29")
    )
    assert parse_form(schema, form) == {
        "s": "hi",
        "n": 42,
        "x": 2.5,
        "b": True,
        "unticked": False,
        "d": "2024-02-29",
    }


def test_parse_numbers_edge_cases() -> None:
    schema = obj(n={"type": "integer"}, x={"type": "number"})
    assert parse_form(schema, posted(("n", "3.0"), ("x", "1e3"))) == {"n": 3, "x": 1000.0}
    assert parse_form(schema, posted(("n", "-7"), ("x", "-.5"))) == {"n": -7, "x": -0.5}
    for junk in ("abc", "nan", "inf", "1_000", "1" * 5000, "١٢"):
        data = parse_form(schema, posted(("n", junk), ("x", junk)))
        assert data == {"n": junk, "x": junk}
        assert validate(schema, data) == {"n": ["Must be a number."], "x": ["Must be a number."]}
    assert validate(schema, parse_form(schema, posted(("n", "2.5")))) == {"n": ["Must be a whole number."]}


def test_parse_ignores_unknown_and_readonly_fields() -> None:
    schema = obj(
        a={"type": "string"},
        locked={"type": "string", "readOnly": True},
        o={**obj(x={"type": "string"}), "readOnly": True},
    )
    form = posted(
        ("a", "1"),
        ("locked", "tampered"),
        ("o.x", "tampered"),
        ("evil", "x"),
        ("a.b", "y"),
        ("__proto__", "z"),
    )
    assert parse_form(schema, form) == {"a": "1"}


def test_parse_choices_and_checkbox_group() -> None:
    schema = obj(
        dept={"type": "string", "enum": ["HR", "IT"]},
        level={"type": "integer", "enum": [1, 2, 3]},
        days={
            "type": "array",
            "uniqueItems": True,
            "items": {"type": "string", "enum": ["mon", "tue", "wed"]},
        },
        none={"type": "array", "uniqueItems": True, "items": {"type": "string", "enum": ["a"]}},
    )
    form = posted(("dept", "IT"), ("level", "2"), ("days", "wed"), ("days", "mon"), ("days", "bogus"))
    assert parse_form(schema, form) == {"dept": "IT", "level": 2, "days": ["mon", "wed"]}
    bad = parse_form(schema, posted(("dept", "Sales")))
    assert bad == {"dept": "Sales"}
    assert validate(schema, bad) == {"dept": ["Must be one of: HR, IT."]}


def test_parse_required_empty_checkbox_group_keeps_empty_list() -> None:
    schema = {
        **obj(
            days={
                "type": "array",
                "minItems": 1,
                "uniqueItems": True,
                "items": {"type": "string", "enum": ["mon"]},
            }
        ),
        "required": ["days"],
    }
    data = parse_form(schema, posted())
    assert data == {"days": []}
    assert validate(schema, data) == {"days": ["Choose at least 1."]}


def test_parse_nested_objects_and_arrays() -> None:
    schema = obj(
        recommendation={
            **obj(recommend={"type": "string"}, reason={"type": "string"}),
            "required": ["recommend"],
        },
        optional=obj(x={"type": "string"}, flag={"type": "boolean"}),
        criteria={"type": "array", "items": obj(text={"type": "string"}, met={"type": "boolean"})},
        tags={"type": "array", "items": {"type": "string"}},
    )
    form = posted(
        ("recommendation.recommend", "approve"),
        ("recommendation.reason", ""),
        ("optional.x", ""),
        ("criteria.0.text", "a"),
        ("criteria.0.met", "true"),
        ("criteria.1.text", "b"),
        ("criteria.2.text", ""),
        ("tags.0", "x"),
        ("tags.1", " "),
        ("tags.2", "y"),
    )
    assert parse_form(schema, form) == {
        "recommendation": {"recommend": "approve"},
        "criteria": [{"text": "a", "met": True}, {"text": "b", "met": False}],
        "tags": ["x", "y"],
    }


def test_parse_normalises_newlines() -> None:
    assert parse_form(obj(t={"type": "string"}), posted(("t", "a\r\nb\r\n"))) == {"t": "a\nb"}


def test_parse_accepts_any_getlist_container() -> None:
    class Minimal:
        def __init__(self, data: dict[str, list[str]]) -> None:
            self.data = data

        def getlist(self, key: str) -> list[str]:
            return self.data.get(key, [])

        def __contains__(self, key: object) -> bool:
            return key in self.data

    assert parse_form(obj(a={"type": "integer"}), Minimal({"a": ["5"]})) == {"a": 5}


# ---------------------------------------------------------------- round trips


ROUND_TRIP_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["name", "start"],
    "properties": {
        "name": {"type": "string", "title": "Name"},
        "start": {"type": "string", "format": "date"},
        "email": {"type": "string", "format": "email"},
        "notes": {"type": "string"},
        "count": {"type": "integer"},
        "ratio": {"type": "number"},
        "agree": {"type": "boolean"},
        "yesno": {"type": "boolean"},
        "dept": {"type": "string", "enum": ["Finance", "HR", "IT"]},
        "rec": {"type": "string", "oneOf": [{"const": "a", "title": "A"}, {"const": "b", "title": "B"}]},
        "days": {
            "type": "array",
            "uniqueItems": True,
            "items": {"type": "string", "enum": ["mon", "tue", "wed"]},
        },
        "secret": {"type": "string"},
        "manager": {
            "type": "object",
            "title": "Manager",
            "properties": {"name": {"type": "string"}, "grade": {"type": "integer", "enum": [1, 2, 3]}},
        },
        "criteria": {"type": "array", "items": obj(text={"type": "string"}, met={"type": "boolean"})},
    },
}
ROUND_TRIP_UI: dict[str, Any] = {
    "notes": {"ui:widget": "textarea"},
    "yesno": {"ui:widget": "radio"},
    "rec": {"ui:widget": "radio"},
    "days": {"ui:widget": "checkboxes"},
    "secret": {"ui:widget": "hidden"},
}


def test_round_trip_render_submit_parse() -> None:
    data = {
        "name": 'Ann <Lee> & "co"',
        "start": "2024-07-01",
        "email": "ann@example.org",
        "notes": "line 1\nline 2",
        "count": 3,
        "ratio": 0.25,
        "agree": True,
        "yesno": False,
        "dept": "HR",
        "rec": "b",
        "days": ["mon", "wed"],
        "secret": "s3",
        "manager": {"name": "Bo", "grade": 2},
        "criteria": [{"text": "one", "met": True}, {"text": "two", "met": False}],
    }
    page = page_of(ROUND_TRIP_SCHEMA, ROUND_TRIP_UI, data)
    parsed = parse_form(ROUND_TRIP_SCHEMA, page.form())
    assert parsed == data
    assert validate(ROUND_TRIP_SCHEMA, parsed) == {}


def test_round_trip_empty_form() -> None:
    page = page_of(ROUND_TRIP_SCHEMA, ROUND_TRIP_UI, None)
    parsed = parse_form(ROUND_TRIP_SCHEMA, page.form())
    assert parsed == {"agree": False, "yesno": False}
    assert validate(ROUND_TRIP_SCHEMA, parsed) == {
        "name": ["This field is required."],
        "start": ["This field is required."],
    }


clean_text = st.text(
    st.characters(codec="utf-8", exclude_categories=("Cc", "Cs", "Zs", "Zl", "Zp")), min_size=1, max_size=20
)


@settings(max_examples=60, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.fixed_dictionaries(
        {"name": clean_text, "start": st.dates(dt.date(1900, 1, 1), dt.date(2100, 1, 1)).map(str)},
        optional={
            "notes": clean_text,
            "count": st.integers(-(10**12), 10**12),
            "ratio": st.floats(allow_nan=False, allow_infinity=False, width=32).filter(
                lambda f: not f.is_integer()
            ),
            "dept": st.sampled_from(["Finance", "HR", "IT"]),
            "rec": st.sampled_from(["a", "b"]),
            "days": st.lists(st.sampled_from(["mon", "tue", "wed"]), min_size=1, unique=True).map(
                lambda d: sorted(d, key=["mon", "tue", "wed"].index)
            ),
            "manager": st.fixed_dictionaries({"name": clean_text}),
        },
    )
)
def test_round_trip_property(data: dict[str, Any]) -> None:
    data = {**data, "agree": False, "yesno": True}
    page = Page(render_form(ROUND_TRIP_SCHEMA, ROUND_TRIP_UI, data))
    assert parse_form(ROUND_TRIP_SCHEMA, page.form()) == data


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.text(max_size=5)
    | st.sampled_from(
        [
            "object",
            "string",
            "array",
            "boolean",
            "integer",
            "number",
            "radio",
            "textarea",
            "hidden",
            "checkboxes",
            "date",
            "*",
        ]
    ),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(
            st.sampled_from(
                [
                    "type",
                    "properties",
                    "items",
                    "enum",
                    "oneOf",
                    "title",
                    "default",
                    "required",
                    "readOnly",
                    "ui:widget",
                    "ui:order",
                    "ui:options",
                    "rows",
                    "minItems",
                    "maxItems",
                    "then",
                    "allOf",
                    "dependencies",
                    "const",
                    "a",
                    "b",
                    "enumNames",
                    "format",
                ]
            ),
            inner,
            max_size=4,
        )
    ),
    max_leaves=20,
)


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.dictionaries(st.sampled_from(["properties", "required", "allOf", "then"]), json_values),
    st.dictionaries(st.text(max_size=3), json_values),
    st.dictionaries(st.text(max_size=3), json_values),
    st.booleans(),
)
def test_junk_schemas_never_crash(
    schema: dict[str, Any], ui: dict[str, Any], data: dict[str, Any], readonly: bool
) -> None:
    html = render_form(schema, ui, data, readonly=readonly)
    parse_form(schema, Page(html).form())


# ---------------------------------------------------------------- validation


def test_validate_required_and_human_messages() -> None:
    schema = {
        "type": "object",
        "required": ["name", "dept"],
        "properties": {
            "name": {"type": "string", "minLength": 10},
            "dept": {"type": "string", "enum": ["a", "b"]},
            "short": {"type": "string", "maxLength": 2},
            "n": {"type": "integer", "minimum": 1, "maximum": 5},
        },
    }
    assert validate(schema, {}) == {"name": ["This field is required."], "dept": ["This field is required."]}
    errors = validate(schema, {"name": "abc", "dept": "c", "short": "abc", "n": 9})
    assert errors == {
        "name": ["Must be at least 10 characters."],
        "dept": ["Must be one of: a, b."],
        "short": ["Must be at most 2 characters."],
        "n": ["Must be at most 5."],
    }
    assert validate(schema, {"name": "abcdefghijk", "dept": "a"}) == {}


def test_validate_dates_strictly() -> None:
    schema = obj(d={"type": "string", "format": "date"})
    assert validate(schema, {"d": "2024-02-29"}) == {}
    for bad in (
        "2023-02-29",
        "2024-13-01",
        "2024-1-5",
        "01/02/2024",
        "2024-01-01T00:00",
        "\uff12\uff10\uff12\uff14-01-01",
        "tomorrow",
    ):
        assert validate(schema, {"d": bad}) == {"d": ["Must be a date (YYYY-MM-DD)."]}, bad


def test_validate_email_format() -> None:
    schema = obj(e={"type": "string", "format": "email"})
    assert validate(schema, {"e": "a@b.org"}) == {}
    assert validate(schema, {"e": "nope"}) == {"e": ["Must be a valid email."]}


PROGRESSION: dict[str, Any] = {
    "type": "object",
    "required": ["recommendation"],
    "properties": {
        "recommendation": {
            "type": "object",
            "title": "Recommendation",
            "required": ["recommend"],
            "properties": {
                "recommend": {"type": "string", "enum": ["approve", "not_approve"]},
            },
            "if": {"properties": {"recommend": {"const": "not_approve"}}, "required": ["recommend"]},
            "then": {
                "required": ["reason"],
                "properties": {"reason": {"type": "string", "title": "Reason", "minLength": 10}},
            },
        }
    },
}


def test_conditional_required_reason_lands_on_field() -> None:
    page = page_of(
        PROGRESSION,
        {"recommendation": {"recommend": {"ui:widget": "radio"}, "reason": {"ui:widget": "textarea"}}},
    )
    reason = page.one("textarea", name="recommendation.reason")
    assert "required" not in reason  # only the server decides, the browser cannot know
    assert "required" in page.find("input", type="radio")[0]

    data = parse_form(
        PROGRESSION, posted(("recommendation.recommend", "not_approve"), ("recommendation.reason", "   "))
    )
    assert data == {"recommendation": {"recommend": "not_approve"}}
    errors = validate(PROGRESSION, data)
    assert errors == {"recommendation.reason": ["This field is required."]}
    html = render_form(PROGRESSION, None, data, errors)
    reason_page = Page(html)
    assert reason_page.one("input", name="recommendation.reason")["aria-invalid"] == "true"
    assert not reason_page.find("div", role="alert")

    assert validate(PROGRESSION, {"recommendation": {"recommend": "not_approve", "reason": "short"}}) == {
        "recommendation.reason": ["Must be at least 10 characters."]
    }
    assert validate(PROGRESSION, {"recommendation": {"recommend": "approve"}}) == {}


def test_top_level_if_then_and_dependencies() -> None:
    schema = {
        "type": "object",
        "properties": {"recommend": {"type": "string"}, "card": {"type": "string"}},
        "if": {"properties": {"recommend": {"const": "no"}}, "required": ["recommend"]},
        "then": {"required": ["reason"], "properties": {"reason": {"type": "string"}}},
        "dependencies": {"card": {"properties": {"billing": {"type": "string"}}, "required": ["billing"]}},
        "dependentRequired": {"card": ["expiry"]},
    }
    page = page_of(schema)
    assert {a["name"] for a in page.find("input")} == {"recommend", "card", "reason", "billing"}
    assert validate(schema, {"recommend": "no"}) == {"reason": ["This field is required."]}
    assert validate(schema, {"card": "x"}) == {
        "billing": ["This field is required."],
        "expiry": ["This field is required."],
    }


def test_validate_array_item_paths_and_oneof_consts() -> None:
    schema = obj(
        criteria={
            "type": "array",
            "items": {**obj(text={"type": "string", "minLength": 3}), "required": ["text"]},
        },
        rec={"oneOf": [{"const": "a", "title": "Yes"}, {"const": "b", "title": "No"}]},
    )
    errors = validate(schema, {"criteria": [{"text": "long enough"}, {"text": "x"}, {}], "rec": "z"})
    assert errors == {
        "criteria.1.text": ["Must be at least 3 characters."],
        "criteria.2.text": ["This field is required."],
        "rec": ["Must be one of: Yes, No."],
    }


def test_validate_honours_declared_draft() -> None:
    draft4 = {
        "$schema": "http://json-schema.org/draft-04/schema#",
        **obj(n={"type": "integer", "maximum": 5, "exclusiveMaximum": True}),
    }
    assert validate(draft4, {"n": 5}) != {}
    assert validate(draft4, {"n": 4}) == {}


def test_validate_broken_schema_reports_instead_of_crashing() -> None:
    errors = validate({"type": "strin"}, {})
    assert list(errors) == [""] and errors[""][0].startswith("The form definition is invalid")


def test_check_schema() -> None:
    assert check_schema(PROGRESSION) == []
    assert check_schema(ROUND_TRIP_SCHEMA) == []
    problems = check_schema({"type": "strin"})
    assert len(problems) == 1 and "strin" in problems[0] and "type" in problems[0]
    nested = check_schema(obj(a={"type": "string", "minLength": -1}))
    assert len(nested) == 1 and nested[0].startswith("properties/a/minLength")
    assert check_schema([]) != []  # type: ignore[arg-type]


# ---------------------------------------------------------------- SpiffArena samples

SPIFF_SCHEMA: dict[str, Any] = {
    "title": "Simple form",
    "description": "A simple form example.",
    "type": "object",
    "required": ["name"],
    "properties": {
        "name": {"type": "string", "title": "Name", "default": "World"},
        "department": {"type": "string", "title": "Department", "enum": ["Finance", "HR", "IT"]},
    },
}
SPIFF_UI: dict[str, Any] = {
    "name": {"ui:title": "Name", "ui:description": "(Your name)"},
    "department": {"ui:title": "Department", "ui:description": "(Your department)"},
    "ui:order": ["name", "department"],
}


@pytest.mark.parametrize("ui", [SPIFF_UI, None])
def test_spiffarena_simple_form(ui: dict[str, Any] | None) -> None:
    page = page_of(SPIFF_SCHEMA, ui)
    assert "Name" in page.labels["f-name"] and "(required)" in page.labels["f-name"]
    assert page.one("input", name="name")["value"] == "World"
    assert [o["value"] for o in page.find("option")] == ["", "Finance", "HR", "IT"]
    assert "Finance" in page.text and "HR" in page.text and "IT" in page.text
    if ui:
        assert "(Your name)" in page.text and "(Your department)" in page.text
    assert check_schema(SPIFF_SCHEMA) == []
    assert validate(SPIFF_SCHEMA, parse_form(SPIFF_SCHEMA, page.form())) == {}
    assert validate(SPIFF_SCHEMA, parse_form(SPIFF_SCHEMA, posted(("department", "IT")))) == {
        "name": ["This field is required."]
    }


def test_choices_are_labelled_as_rjsf_labels_them_never_with_codes() -> None:
    """Issue 19: the renderer read `enum` first and showed 'approve / refuse', 'non_binary', '25_34'."""
    schema = {"type": "object", "properties": {
        "approve": {"type": "string", "enum": ["approve", "refuse"],
                    "oneOf": [{"const": "approve", "title": "Approve progression"},
                              {"const": "refuse", "title": "Do not approve"}]},
        "age": {"type": "string", "enum": ["25_34", "35_44"]},
        "groups": {"type": "array", "uniqueItems": True, "items": {"type": "string", "enum": ["non_binary", "woman"]}},
        "plain": {"type": "string", "oneOf": [{"const": "a", "title": "Alpha"}, {"const": "b"}]},
    }}
    ui = {"approve": {"ui:widget": "radio"}, "age": {"ui:enumNames": ["25 to 34", "35 to 44"]},
          "groups": {"ui:enumNames": ["Non-binary", "Woman"]}}
    html = str(render_form(schema, ui, {}))
    for label in ("Approve progression</label>", "Do not approve</label>", ">25 to 34</option>",
                  ">35 to 44</option>", "Non-binary</label>", "Woman</label>", ">Alpha</option>", ">b</option>"):
        assert label in html, label
    for code in (">approve<", ">refuse<", ">25_34<", ">non_binary<"):
        assert code not in html, code
    shown = str(render_form(schema, ui, {"approve": "refuse", "age": "25_34", "groups": ["woman"]}, readonly=True))
    assert "Do not approve" in shown and "25 to 34" in shown and "Woman" in shown

"""Server-side JSON Schema forms: accessible no-JS rendering, post parsing, validation.

Supports the subset of the react-jsonschema-form "UI schema" that SpiffArena uses.
Every string coming from a schema or from data is escaped through markupsafe.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from typing import Any, Protocol

from markupsafe import Markup, escape

from engine.workflow.forms import JSON, Choices, check_schema, validate
from engine.workflow.forms import as_dict as _dict
from engine.workflow.forms import as_list as _list
from engine.workflow.forms import choices as _choices
from engine.workflow.forms import show as _show

__all__ = ["FormData", "RenderedForm", "check_schema", "parse_form", "render_form", "validate"]

_MISSING: Any = object()  # sentinel: "nothing to put in the parsed output"
_MAX_ITEMS = 200  # cap when probing posted array items, so a hostile post stays cheap
_NUMBER_RE = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?", re.ASCII)
_TRUE = {"true", "on", "1", "yes"}
_INPUT_TYPES = {"date": "date", "email": "email", "password": "password", "updown": "number"}


class FormData(Protocol):
    """What parse_form needs from a posted form (werkzeug's MultiDict fits)."""

    def getlist(self, key: str) -> list[str]: ...

    def __contains__(self, key: object) -> bool: ...


# ---------------------------------------------------------------- schema helpers


def _type(schema: JSON) -> str:
    """The single JSON type to render for; inferred when "type" is absent or a list."""
    declared = schema.get("type")
    if isinstance(declared, list):
        declared = next((t for t in declared if t != "null"), None)
    if isinstance(declared, str):
        return declared
    if "properties" in schema:
        return "object"
    first = next(iter(_choices(schema) or []), ("", ""))[0]
    kinds = {bool: "boolean", int: "integer", float: "number", dict: "object"}
    return kinds.get(type(first), "array" if "items" in schema else "string")


def _branches(schema: JSON) -> Iterable[JSON]:
    """Subschemas whose properties can apply: allOf, if/then/else, dependencies."""
    yield from map(_dict, _list(schema.get("allOf")))
    yield from (_dict(schema.get("then")), _dict(schema.get("else")))
    for key in ("dependencies", "dependentSchemas"):
        for dep in map(_dict, _dict(schema.get(key)).values()):
            yield dep
            yield from map(_dict, _list(dep.get("oneOf")))  # RJSF "dependencies + oneOf" pattern


def _merge(base: JSON, extra: JSON) -> JSON:
    """A branch's view of a property only adds to the base; its "required" is conditional."""
    merged = {k: v for k, v in extra.items() if k != "required"} | base
    if isinstance(base.get("properties"), dict) and isinstance(extra.get("properties"), dict):
        merged["properties"] = extra["properties"] | base["properties"]
    return merged


def _properties(schema: JSON) -> dict[str, JSON]:
    """Union of properties, so conditionally required fields exist in the no-JS form."""
    props = {k: _dict(v) for k, v in _dict(schema.get("properties")).items()}
    for branch in filter(None, _branches(schema)):  # skip absent (empty) branches
        for name, sub in _properties(branch).items():
            props[name] = _merge(props.get(name, {}), sub)
    return props


def _required(schema: JSON) -> set[str]:
    """Unconditionally required names (allOf counts; if/then and dependencies do not)."""
    names = {n for n in _list(schema.get("required")) if isinstance(n, str)}
    for sub in _list(schema.get("allOf")):
        names |= _required(_dict(sub))
    return names


def _ordered(names: list[str], order: object) -> list[str]:
    """Apply ui:order; "*" stands for every unlisted property, else they go last."""
    order = list(dict.fromkeys(n for n in _list(order) if isinstance(n, str) and (n in names or n == "*")))
    if "*" not in order:
        order.append("*")
    star = order.index("*")
    rest = [n for n in names if n not in order]
    return [n for n in order[:star] + rest + order[star + 1 :] if n != "*"]


def _humanise(name: str) -> str:
    words = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", name).replace("_", " ").replace("-", " ")
    words = " ".join(words.split()).lower()
    return words[:1].upper() + words[1:]


def _checkbox_array(schema: JSON, ui_names: object = None) -> Choices | None:
    """Choices when an array is a set of enum values (rendered as a checkbox group)."""
    return _choices(_dict(schema.get("items")), ui_names) if _type(schema) == "array" else None


# ---------------------------------------------------------------- rendering


def _tag(name: str, attrs: Mapping[str, object], body: object = None) -> Markup:
    """An element; attribute True is bare, None/False are left out; body is escaped."""
    html = Markup("<{}").format(name)
    for key, val in attrs.items():
        if val is True:
            html += Markup(" {}").format(key)
        elif val is not None and val is not False:
            html += Markup(' {}="{}"').format(key, val)
    html += Markup(">")
    return html if body is None else html + escape(body) + Markup("</{}>").format(name)


class _Field:
    """One field being rendered: its path, schema, ui options, value and messages."""

    def __init__(self, form: _Renderer, path: str, schema: JSON, ui: JSON, value: Any, required: bool,
                 readonly: bool) -> None:
        self.path, self.schema, self.ui, self.value = path, schema, ui, value
        self.display = form.readonly  # whole form shown as a read-only record
        self.readonly = readonly or any(map(bool, (schema.get("readOnly"), ui.get("ui:readonly"),
                                                   ui.get("ui:disabled"))))
        self.required = required and not (self.readonly or self.display)
        self.errors = form.errors.get(path, [])
        self.widget = str(ui.get("ui:widget", ""))
        self.id = "f-" + re.sub(r"[^A-Za-z0-9_-]", "_", path.replace(".", "-"))
        self.title = str(ui.get("ui:title") or schema.get("title") or _humanise(path.rsplit(".", 1)[-1]))
        if self.widget != "hidden":  # errors of a hidden field go to the top box instead
            form.shown.add(path)
            form.anchors[path] = (self.id, self.title)
        texts = (ui.get("ui:description") or schema.get("description"), ui.get("ui:help"))
        self.help = [str(t) for t in texts if t]

    def aria(self) -> dict[str, object]:
        ids = [self.id + "-help"] * bool(self.help) + [self.id + "-error"] * bool(self.errors)
        return {"aria-describedby": " ".join(ids) or None, "aria-invalid": "true" if self.errors else None}

    def label_text(self) -> Markup:
        mark = Markup(' <span class="required">(required)</span>') if self.required else ""
        return escape(self.title) + mark

    def notes(self) -> Markup:
        """Help text then error messages, each with the id that aria-describedby uses."""
        out = Markup("")
        if self.help:
            spans = Markup(" ").join(_tag("span", {}, t) for t in self.help)
            out += _tag("p", {"class": "help", "id": self.id + "-help"}, spans)
        if self.errors:
            lines = Markup("<br>").join(escape(e) for e in self.errors)
            hidden = Markup('<span class="visually-hidden">Error: </span>')
            out += _tag("p", {"class": "error", "id": self.id + "-error"}) + hidden + lines + Markup("</p>")
        return out

    def wrap(self, control: Markup, cls: str = "field") -> Markup:
        label = _tag("label", {"for": self.id}, self.label_text())
        parts = control + label + self.notes() if cls == "field checkbox" else label + self.notes() + control
        return _tag("div", {"class": cls + " has-error" * bool(self.errors)}, parts)

    def group(self, body: Markup, cls: str = "field group") -> Markup:
        legend = _tag("legend", {}, self.label_text())
        cls += " has-error" * bool(self.errors)
        # GOV.UK: a group's hint and error are read with its legend (aria-describedby on the fieldset)
        attrs = {"class": cls, "id": self.id, "aria-describedby": self.aria()["aria-describedby"]}
        return _tag("fieldset", attrs, legend + self.notes() + body)


class _Renderer:
    def __init__(self, errors: dict[str, list[str]], readonly: bool) -> None:
        self.errors, self.readonly = errors, readonly
        self.shown: set[str] = set()
        #: field path -> (the id a link to it points at, its title), in the order the fields are on the page
        self.anchors: dict[str, tuple[str, str]] = {}

    def object_body(self, schema: JSON, ui: JSON, data: object, prefix: str, required: bool,
                    readonly: bool) -> Markup:
        props, values, must = _properties(schema), _dict(data), _required(schema)
        out = Markup("")
        for name in _ordered(list(props), ui.get("ui:order")):
            value = values.get(name, props[name].get("default"))
            out += self.field(prefix + name, props[name], _dict(ui.get(name)), value,
                              required and name in must, readonly)
        return out

    def field(self, path: str, schema: JSON, ui: JSON, value: Any, required: bool, readonly: bool) -> Markup:
        f = _Field(self, path, schema, ui, value, required, readonly)
        kind = _type(schema)
        if f.widget == "hidden":
            return _tag("input", {"type": "hidden", "id": f.id, "name": path, "value": _show(value)})
        if kind == "object":
            body = self.object_body(schema, ui, value, path + ".", f.required, f.readonly)
            return f.group(body, "object")
        if _checkbox_array(schema) is not None:
            return self.checkboxes(f)
        if kind == "array":
            return self.array(f)
        if kind == "boolean":
            return self.boolean(f)
        return self.scalar(f, kind)

    def scalar(self, f: _Field, kind: str) -> Markup:
        choices = _choices(f.schema, f.ui.get("ui:enumNames"))
        if f.display:
            shown = {_show(v): t for v, t in choices or []}.get(_show(f.value))
            return self.text_like(f, shown if shown is not None else _show(f.value))
        if choices is not None:
            return self.radios(f, choices) if f.widget == "radio" else self.select(f, choices)
        if f.widget == "textarea":
            return self.text_like(f, _show(f.value))
        fmt = str(f.schema.get("format", ""))
        attrs: dict[str, object] = {"type": _INPUT_TYPES.get(f.widget) or _INPUT_TYPES.get(fmt) or "text"}
        if kind in ("integer", "number"):
            attrs = {"type": "number", "step": "any" if kind == "number" else None,
                     "min": f.schema.get("minimum"), "max": f.schema.get("maximum")}
        attrs |= {"id": f.id, "name": f.path, "value": _show(f.value), "minlength": f.schema.get("minLength"),
                  "maxlength": f.schema.get("maxLength"), "placeholder": f.ui.get("ui:placeholder"),
                  "required": f.required, "readonly": f.readonly, **f.aria()}
        return f.wrap(_tag("input", attrs))

    def text_like(self, f: _Field, text: str) -> Markup:
        """A textarea or, in display mode, a read-only text box (both still labelled)."""
        attrs = {"id": f.id, "name": f.path, "required": f.required, "readonly": f.readonly or f.display,
                 **f.aria()}
        if f.widget != "textarea":
            return f.wrap(_tag("input", {"type": "text", "value": text, **attrs}))
        rows = _dict(f.ui.get("ui:options")).get("rows", 5)
        attrs |= {"rows": rows, "placeholder": f.ui.get("ui:placeholder"),
                  "minlength": f.schema.get("minLength"), "maxlength": f.schema.get("maxLength")}
        return f.wrap(_tag("textarea", attrs, text))

    def select(self, f: _Field, choices: Choices) -> Markup:
        current = None if f.value is None else _show(f.value)
        # without a default, an empty first option stops the browser silently picking one
        opts = Markup("") if "default" in f.schema else _tag("option", {"value": ""}, "— choose —")
        for value, title in choices:
            opts += _tag("option", {"value": _show(value), "selected": _show(value) == current}, title)
        attrs = {"id": f.id, "name": f.path, "required": f.required, "disabled": f.readonly, **f.aria()}
        return f.wrap(_tag("select", attrs, opts))

    def options(self, f: _Field, kind: str, choices: Choices, checked: set[str]) -> Markup:
        """Radio buttons or checkboxes, each labelled, inside a fieldset with a legend."""
        out = Markup("")
        if choices and f.path in self.anchors:  # a link to the group lands on its first choice (GOV.UK)
            self.anchors[f.path] = (f"{f.id}-opt-0", f.title)
        for i, (value, title) in enumerate(choices):
            oid = f"{f.id}-opt-{i}"
            # a required checkbox would demand every box: minItems is checked server-side
            box = _tag("input", {"type": kind, "id": oid, "name": f.path, "value": _show(value),
                                 "checked": _show(value) in checked, "disabled": f.readonly or f.display,
                                 "required": f.required and kind == "radio", **f.aria()})
            out += _tag("div", {"class": "option"}, box + _tag("label", {"for": oid}, title))
        return f.group(out)

    def radios(self, f: _Field, choices: Choices) -> Markup:
        return self.options(f, "radio", choices, set() if f.value is None else {_show(f.value)})

    def checkboxes(self, f: _Field) -> Markup:
        items_ui = _dict(f.ui.get("items"))
        choices = _checkbox_array(f.schema, f.ui.get("ui:enumNames") or items_ui.get("ui:enumNames")) or []
        chosen = {_show(v) for v in _list(f.value)}
        if f.display:
            return self.text_like(f, ", ".join(t for v, t in choices if _show(v) in chosen))
        return self.options(f, "checkbox", choices, chosen)

    def boolean(self, f: _Field) -> Markup:
        if f.display:
            return self.text_like(f, "Yes" if f.value is True else "No")
        if f.widget == "radio":
            return self.radios(f, [(True, "Yes"), (False, "No")])
        f.required = False  # a required boolean is satisfied by False: never force a tick
        box = _tag("input", {"type": "checkbox", "id": f.id, "name": f.path, "value": "true",
                             "checked": f.value is True, "disabled": f.readonly, **f.aria()})
        return f.wrap(box, "field checkbox")

    def array(self, f: _Field) -> Markup:
        """Existing items plus one blank one to add (there is no JS to add rows)."""
        items, item_ui, values = _dict(f.schema.get("items")), _dict(f.ui.get("items")), _list(f.value)
        editable = not (f.readonly or f.display)
        limit, least = f.schema.get("maxItems"), f.schema.get("minItems")
        count = len(values) + (editable and not (isinstance(limit, int) and len(values) >= limit))
        count = max(count, least if editable and isinstance(least, int) else 0)
        base = item_ui.get("ui:title") or items.get("title") or f.title
        out = Markup("")
        for i in range(count):
            value = values[i] if i < len(values) else items.get("default")
            ui = {**item_ui, "ui:title": f"{base} {i + 1}"}
            out += self.field(f"{f.path}.{i}", items, ui, value, f.required and i < len(values), f.readonly)
        return f.group(out, "array")


class RenderedForm(Markup):
    """A form's fields as safe HTML; as text it is what it always was: the fields, after a box of the errors that
    have no field on the form. A task page shows `summary` at its top and `fields` in its form instead."""

    #: GOV.UK's error summary: "There is a problem", every error linked to its field (form-level ones first);
    #: empty without errors
    summary: Markup
    #: the fields alone, each with its own errors beside it (the summary lists the rest)
    fields: Markup


def render_form(schema: dict[str, Any], ui_schema: dict[str, Any] | None, data: dict[str, Any] | None,
                errors: dict[str, list[str]] | None = None, *, readonly: bool = False) -> RenderedForm:
    """Render the fields of a form (no <form>, submit button or CSRF token) as safe HTML."""
    errors = errors or {}
    renderer = _Renderer(errors, readonly)
    body = renderer.object_body(schema, ui_schema or {}, data or {}, "", True, False)
    # form-level errors, plus any whose field is not on the form, must still be visible
    top = list(errors.get("", []))
    top += [f"{p}: {m}" for p, ms in errors.items() if p and p not in renderer.shown for m in ms]
    box = Markup("")
    if top:
        items = Markup("").join(_tag("li", {}, m) for m in top)
        box = _tag("div", {"class": "form-errors", "role": "alert"}, _tag("ul", {}, items))
    out = RenderedForm(box + body)
    out.summary, out.fields = error_summary(errors, renderer.anchors), body
    return out


def error_summary(errors: Mapping[str, list[str]], anchors: Mapping[str, tuple[str, str]]) -> Markup:
    """GOV.UK's error summary for the top of a page: each error a link to its field (`anchors`: field path -> (id,
    title), in page order), errors of the whole form first and those of fields not on the page last, unlinked."""
    lines = [_tag("li", {}, m) for m in errors.get("", [])]
    for path, (anchor, title) in anchors.items():
        lines += [_tag("li", {}, _tag("a", {"href": f"#{anchor}"}, f"{title}: {m}")) for m in errors.get(path, [])]
    lines += [_tag("li", {}, f"{p}: {m}") for p, ms in errors.items() if p and p not in anchors for m in ms]
    if not lines:
        return Markup("")
    title = _tag("h2", {"id": "error-summary-title"}, "There is a problem")
    alert = _tag("div", {"role": "alert"}, title + _tag("ul", {}, Markup("").join(lines)))
    attrs = {"class": "error-summary", "aria-labelledby": "error-summary-title", "tabindex": "-1", "autofocus": True}
    return _tag("div", attrs, alert)


# ---------------------------------------------------------------- parsing


def _posted(schema: JSON, form: FormData, path: str) -> bool:
    """Whether anything under path was posted (used to find how many array items came)."""
    if _type(schema) == "object":
        return any(_posted(s, form, f"{path}.{n}") for n, s in _properties(schema).items())
    if _type(schema) == "array" and _checkbox_array(schema) is None:
        return _posted(_dict(schema.get("items")), form, f"{path}.0")
    return path in form


def _empty(value: Any) -> bool:
    # an object holding nothing but unticked boxes carries no user input
    blank_object = isinstance(value, dict) and all(v is False for v in value.values())
    return value is _MISSING or value == [] or blank_object


def _parse_number(text: str, kind: str) -> Any:
    # anything odd stays a string so validation reports "Must be a number." on the field;
    # the length cap keeps int() away from huge digit strings (and Python's limit on them)
    if len(text) > 40 or not _NUMBER_RE.fullmatch(text):
        return text
    if text.lstrip("+-").isdigit():
        return int(text)
    number = float(text)
    if not math.isfinite(number):
        return text
    return int(number) if kind == "integer" and number.is_integer() else number


def _parse_scalar(schema: JSON, form: FormData, path: str) -> Any:
    kind = _type(schema)
    if kind == "boolean":  # an unticked checkbox posts nothing: that means False
        return (form.getlist(path) or [""])[-1].strip().lower() in _TRUE
    text = (form.getlist(path) or [""])[0].replace("\r\n", "\n").strip()
    if not text:
        return _MISSING  # so "required" reports a missing value
    choices = _choices(schema)
    if choices is not None:
        return next((v for v, _ in choices if _show(v) == text), text)
    return _parse_number(text, kind) if kind in ("integer", "number") else text


def _parse_field(schema: JSON, form: FormData, path: str, required: bool) -> Any:
    if schema.get("readOnly"):
        return _MISSING  # never trust a read-only value coming back from the browser
    kind = _type(schema)
    if kind == "object":
        value: Any = _parse_object(schema, form, path + ".")
    elif (choices := _checkbox_array(schema)) is not None:
        posted = [p.strip() for p in form.getlist(path)]
        value = [v for v, _ in choices if _show(v) in posted]
    elif kind == "array":
        items, value = _dict(schema.get("items")), []
        for i in range(_MAX_ITEMS):
            if not _posted(items, form, f"{path}.{i}"):
                break
            item = _parse_field(items, form, f"{path}.{i}", True)
            if not _empty(item):  # the blank "add another" row
                value.append(item)
    else:
        value = _parse_scalar(schema, form, path)
    return _MISSING if not required and _empty(value) else value


def _parse_object(schema: JSON, form: FormData, prefix: str) -> JSON:
    must, out = _required(schema), {}
    for name, sub in _properties(schema).items():  # only schema names: posts can't add keys
        value = _parse_field(sub, form, prefix + name, name in must)
        if value is not _MISSING:
            out[name] = value
    return out


def parse_form(schema: dict[str, Any], form: FormData) -> dict[str, Any]:
    """Turn posted fields (e.g. a werkzeug MultiDict) into JSON typed per the schema."""
    return _parse_object(schema, form, "")

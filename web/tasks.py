"""The task inbox and the task form."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from markdown_it import MarkdownIt
from markupsafe import Markup

from engine.core.errors import Invalid
from engine.workflow import queries
from engine.workflow.sandbox import SandboxError
from engine.workflow.sandbox import render_template as render_template_limited
from web import services
from web.auth import current_user, login_required
from web.formrender import parse_form, render_form

bp = Blueprint("tasks", __name__)
def render_instructions(text: str | None, data: dict[str, Any], names: dict[str, str] | None = None) -> Markup:
    """A task's instructions with {{ placeholders }} filled from the case data, escaped.

    Instructions are written by process owners and may cite case data with {{ }}: they are rendered in a
    sandbox process (Jinja's sandbox, autoescape) within a time and a length limit (engine.workflow.sandbox)."""
    if not text:
        return Markup("")
    rendered = text
    if "{" in text:
        settings = services().settings
        try:
            rendered = render_template_limited(text, data, settings.template_time_limit_seconds,
                                               settings.script_memory_mb, settings.template_output_chars, names)
        except SandboxError as exc:
            return Markup('<p class="alert" role="alert">{}</p>').format(
                f"These instructions could not be shown: {exc}. Tell the process owner; the task itself can be "
                "done as usual.")
        except Exception:  # a bad template must not hide the task; show the text as written
            rendered = text
    # Markdown (CommonMark, markdown-it-py) with raw HTML off: headings, emphasis, lists and links render;
    # any tag in the text or the data shows as text. The data's values arrive entity-escaped from Jinja.
    return Markup(_MARKDOWN.render(rendered))  # noqa: S704 - markdown-it escapes all text; raw HTML is off


#: CommonMark without raw HTML; single line breaks kept (instructions are written line by line).
_MARKDOWN = MarkdownIt("commonmark", {"html": False, "breaks": True, "linkify": False})


@bp.get("/")
@login_required
def inbox() -> ResponseReturnValue:
    """Open tasks for the logged-in person and their groups."""
    after = request.args.get("after", type=int)
    with services().db.read() as s:
        items, next_cursor = queries.inbox(s, current_user(), after=after)
        awaiting = queries.awaiting_appointment(s, current_user())
    return render_template("inbox.html", items=items, next_cursor=next_cursor, awaiting=awaiting)


def _task_page(task_id: int, data: dict[str, Any] | None, errors: dict[str, list[str]] | None,
               status: int = 200) -> ResponseReturnValue:
    with services().db.read() as s:
        task, workable = queries.get_task(s, current_user(), task_id)
        case = queries.task_data(s, task)
        form = queries.task_form(s, task, case)
        info = queries.task_dict(task)
        info["blocked"] = None if workable else queries.blocked_reason(s, current_user(), task)
        names = queries.names_in(s, case) if task.instructions and "name" in task.instructions else {}
    instructions = render_instructions(task.instructions, case, names)
    fields = None
    if form["schema"]:
        fields = render_form(form["schema"], form["ui_schema"], data if data is not None else form["data"], errors,
                             readonly=not workable)
    return render_template("task.html", task=info, workable=workable, fields=fields, schema=form["schema"],
                           instructions=instructions, errors=errors or {}), status


@bp.get("/tasks/<int:task_id>")
@login_required
def show(task_id: int) -> ResponseReturnValue:
    """The task's page: instructions, the clause it applies, and its form."""
    return _task_page(task_id, None, None)


@bp.post("/tasks/<int:task_id>")
@login_required
def complete(task_id: int) -> ResponseReturnValue:
    """Validate and submit the form; on errors show it again with each error under its field."""
    with services().db.read() as s:
        task, _workable = queries.get_task(s, current_user(), task_id)
        schema = queries.task_form(s, task)["schema"]
    data = parse_form(schema, request.form) if schema else {}
    try:
        instance_id = services().runtime.complete_task(current_user(), task_id, data)
    except Invalid as exc:
        errors: dict[str, list[str]] = {}
        for p in exc.problems:
            errors.setdefault(p.field or "", []).append(p.message)
        return _task_page(task_id, data, errors, status=422)
    flash("Done. The case has moved on.")
    return redirect(url_for("cases.show", instance_id=instance_id))

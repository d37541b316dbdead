"""Issue 16: every web route, every method, anonymous and logged in, with hostile path, query, form and JSON
values: no server error. The route list is read from the app and the field names from the source and from the
pages themselves, so a new route or field is fuzzed without anyone remembering.

Two passes per login. First every path argument of every rule gets each hostile value (ids past every bound,
path traversal, NUL, bad UTF-8, a direction override, long text). Then every rule, at an address that exists
(case 1, the pay progression process, the employee), gets each hostile value in every field name at once, in
the query string and (when it takes one) in the form, and JSON bodies nested 50,000 deep or full of 31-digit
numbers. A NUL is sent once per blueprint: the app refuses it before any view runs, so in every request it
would hide everything else. A rule refused at the door (login, token, role) is not asked again.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from werkzeug.routing.converters import NumberConverter
from werkzeug.test import TestResponse

from engine.people.models import User
from engine.workflow.runtime import Runtime
from tests.web.api_helpers import start_case

WEB = Path(__file__).resolve().parents[2] / "web"
#: Path values by converter: negative, past PostgreSQL's integer and SQLite's 64 bits, and text that paths
#: should never trust.
INTS = ("-1", "2147483648", "9" * 40)
TEXTS = ("..%2F..%2Fetc%2Fpasswd", "%00", quote("\u202eevil<script>'\""), "x" * 600, "%ff%fe")
#: Each value goes into every field name at once: numbers no column holds (either way), a date before any
#: policy's, a float past any, text with a direction override (600 characters in a form: longer than any column).
VALUES = {"31 digits": "9" * 31, "-31 digits": "-" + "9" * 31, "year 1": "0001-01-01", "1e309": "1e309",
          "text": "\u202e../..//é<script>'\"" + "x" * 40}
LONG_TEXT = "\u202e" + "é" * 600
NUL = "a\x00b"
#: The longest query string sent (below the app's 4096, which answers 414 before any view runs).
QUERY_CHARS = 3_000
#: Routes that end the walker's session; and the demo's files.
SKIPPED = {"auth.logout", "static"}
#: An address that exists, by argument name (ids are 1, but for the login signed out by auth.sign_out_everywhere).
BASE = {"key": "pay_progression", "username": "employee", "classification": "SPPO1", "version": "1"}
NOT_FIELDS = {"csrf_token", "viewport"}
FIELD = re.compile(r"\bname=\"([^\"{}]+)\"")


def _source_names() -> set[str]:
    """Every query and form field name the views and templates read or show."""
    names: set[str] = set()
    for path in [*WEB.glob("*.py"), *WEB.glob("templates/**/*.html")]:
        text = path.read_text(encoding="utf-8")
        names.update(re.findall(r"(?:args|form|values)\.(?:get|getlist)\(\"([^\"]+)\"", text))
        names.update(re.findall(r"(?:args|form)\[\"([^\"]+)\"\]", text))
        names.update(FIELD.findall(text))
    return names - NOT_FIELDS


def _query(names: set[str], value: str) -> str:
    """`value` in every name, as many names as fit in QUERY_CHARS."""
    query = ""
    for name in sorted(names):
        pair = urlencode({name: value})
        if len(query) + len(pair) + 1 > QUERY_CHARS:
            break
        query = f"{query}&{pair}" if query else pair
    return query


def _url(rule: Any, values: dict[str, str]) -> str:
    url = str(rule.rule)
    for name, value in values.items():
        url = re.sub(rf"<(?:[^:<>]+:)?{name}>", value, url)
    return url


def _rules(app: Flask) -> list[tuple[Any, str]]:
    """(rule, method) of every rule; GETs first (their pages name the fields the POSTs then get)."""
    pairs = [(rule, method) for rule in app.url_map.iter_rules() if rule.endpoint not in SKIPPED
             for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"})]
    return sorted(pairs, key=lambda pair: pair[1] != "GET")


def _refused_at_the_door(answer: TestResponse) -> bool:
    """Refused before the view reads any input (login required, no token, not this role): the other hostile
    values would be refused the same way."""
    return answer.status_code in (401, 403) or (
        answer.status_code == 302 and (answer.location or "").startswith("/login"))


@pytest.fixture
def fuzz_app(app: Flask, app_org: Runtime) -> Flask:
    start_case(app_org)  # a case with an open task, so that ids 1 exist
    app.config["PROPAGATE_EXCEPTIONS"] = False  # a server error is a 500 answer here, as in production
    return app


@pytest.mark.parametrize("login", [None, "employee", "admin"])
def test_sec_every_route_with_hostile_values_answers_without_a_server_error(fuzz_app: Flask, login: str | None) -> None:
    client: FlaskClient = fuzz_app.test_client()
    if login:
        assert client.post("/login", data={"username": login, "password": "demo-pass-2026"}).status_code == 302
    runtime: Runtime = fuzz_app.extensions["ntpswf"].runtime
    with runtime.db.read() as s:  # a login that is not the walker's: signing it out everywhere is harmless
        base = {**BASE, "user_id": str(s.scalars(select(User.id).where(User.username == "engineer")).one())}
    failures: list[tuple[str, str, str, str, int]] = []
    names = _source_names()

    def check(endpoint: str, method: str, what: str, target: str, **kwargs: Any) -> TestResponse:
        answer = client.open(target, method=method, **kwargs)
        if answer.status_code >= 500 and answer.status_code != 503:
            failures.append((endpoint, method, what, target[:150], answer.status_code))
        if method == "GET" and answer.mimetype == "text/html":  # the fields of the page are fuzzed from now on
            names.update(n for n in FIELD.findall(answer.get_data(as_text=True)) if n not in NOT_FIELDS)
        return answer

    for rule, method in _rules(fuzz_app):
        for name, converter in rule._converters.items():
            for value in INTS if isinstance(converter, NumberConverter) else TEXTS:
                url = _url(rule, {**{n: base.get(n, "1") for n in rule.arguments}, name: value})
                check(rule.endpoint, method, "path", url)
    queries = {label: _query(names, value) for label, value in VALUES.items()}
    nul_sent: set[tuple[str, str]] = set()
    for rule, method in _rules(fuzz_app):
        url = _url(rule, {n: base.get(n, "1") for n in rule.arguments})
        takes_body = method != "GET"
        tries = [(label, f"{url}?{queries[label]}",
                  {"data": dict.fromkeys(names, LONG_TEXT if label == "text" else value)} if takes_body else {})
                 for label, value in VALUES.items()]
        if takes_body:
            tries += [("JSON: deep", url, {"data": "[" * 50_000 + "]" * 50_000, "content_type": "application/json"}),
                      ("JSON: 31 digits", url, {"json": {**dict.fromkeys(names, 10**31),
                                                         "data": dict.fromkeys(names, 10**31)}})]
        if (blueprint := rule.endpoint.split(".")[0], method) not in nul_sent:
            nul_sent.add((blueprint, method))
            tries.append(("NUL", f"{url}?next=a%00b", {"data": {"username": NUL}} if takes_body else {}))
        for what, target, kwargs in tries:
            if _refused_at_the_door(check(rule.endpoint, method, what, target, **kwargs)):
                break
    if login:
        assert client.get("/account/password").status_code == 200, "the walk logged itself out: less was fuzzed"
    assert not failures, "\n".join(map(str, failures))

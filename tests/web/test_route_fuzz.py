"""Issue 16: every web route, every method, anonymous and logged in, with hostile path, query, form and JSON
values: no server error. The route list is read from the app and the field names from the source and from the
pages themselves, so a new route or field is fuzzed without anyone remembering.

Two passes per login: every path argument of every rule gets each hostile value (ids past every bound, path
traversal, NUL, bad UTF-8, a direction override, long text); then every rule, at an address that exists (case 1,
the pay progression process, the employee), gets each hostile query string, and each hostile form and JSON body
when it takes one. Each hostile query or form puts one value in every field name: a number of 31 digits, one of
-31 digits, dates out of every range, a float past any, long text with a direction override; a NUL alone has a
variant of its own, because the app refuses a NUL before any view runs (and would hide the rest).
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

from engine.models import User
from engine.runtime import Runtime
from tests.web.api_helpers import start_case

WEB = Path(__file__).resolve().parents[2] / "web"
#: Path values by converter: ids past every bound (PostgreSQL integer, SQLite's 64 bits), zero, negative, and
#: text that paths should never trust.
INTS = ("0", "-1", "2147483648", "9223372036854775808", "18446744073709551616", "9" * 40)
TEXTS = ("..%2F..%2Fetc%2Fpasswd", "..", "%00", quote("\u202eevil"), "x" * 600, quote("é'\"<script>"), "%ff%fe",
         "%c0%af")
#: Each hostile value goes into every field name at once (one query string, one form per value).
VALUES = {
    "31 digits": "9" * 31,
    "-31 digits": "-" + "9" * 31,
    "year 1": "0001-01-01",
    "year 9999": "9999-12-31",
    "float past any": "1e309",
    "text": "\u202e../..//é<script>'\"" + "x" * 40,
}
#: Longer than any column (String(500) at most): PostgreSQL refuses what is too long for its column.
LONG_FORM_TEXT = "\u202e" + "é" * 600  # forms have no address limit: long text goes in a form only
#: The longest query string a variant sends (below the app's 4096, which answers 414 before any view runs).
QUERY_CHARS = 3_000
NUL = "a\x00b"
#: Routes that end the walker's session; and the demo's files.
SKIPPED = {"auth.logout", "static"}
#: An address that exists, by argument name (ids are 1, but for the login signed out by auth.sign_out_everywhere).
BASE = {"key": "pay_progression", "username": "employee", "classification": "SPPO1", "version": "1"}
NOT_FIELDS = {"csrf_token", "viewport"}


def _source_names() -> set[str]:
    """Every query and form field name the views and templates read or show."""
    names: set[str] = set()
    for path in [*WEB.glob("*.py"), *WEB.glob("templates/**/*.html")]:
        text = path.read_text(encoding="utf-8")
        names.update(re.findall(r"(?:args|form|values)\.(?:get|getlist)\(\"([^\"]+)\"", text))
        names.update(re.findall(r"(?:args|form)\[\"([^\"]+)\"\]", text))
        names.update(re.findall(r"\bname=\"([^\"{}]+)\"", text))
    return names - NOT_FIELDS


def _queries(names: set[str], value: str) -> list[str]:
    """Query strings with `value` in every name, split so that none is longer than QUERY_CHARS."""
    out, current = [], ""
    for name in sorted(names):
        pair = urlencode({name: value})
        if current and len(current) + len(pair) + 1 > QUERY_CHARS:
            out.append(current)
            current = ""
        current = f"{current}&{pair}" if current else pair
    return [*out, current]


def _url(rule: Any, values: dict[str, str]) -> str:
    url = str(rule.rule)
    for name, value in values.items():
        url = re.sub(rf"<(?:[^:<>]+:)?{name}>", value, url)
    return url


def _path_cases(app: Flask, base: dict[str, str]) -> list[tuple[str, str, str]]:
    """(endpoint, method, url) with each hostile value in each path argument, the others at `base`."""
    out = []
    for rule in app.url_map.iter_rules():
        if rule.endpoint in SKIPPED or not rule.arguments:
            continue
        methods = sorted((rule.methods or set()) - {"HEAD", "OPTIONS"})
        for name, converter in rule._converters.items():
            for value in INTS if isinstance(converter, NumberConverter) else TEXTS:
                url = _url(rule, {**{n: base.get(n, "1") for n in rule.arguments}, name: value})
                out += [(rule.endpoint, method, url) for method in methods]
    return out


def _base_cases(app: Flask, base: dict[str, str]) -> list[tuple[str, str, str]]:
    """(endpoint, method, url) of every rule at an address that exists; GETs first (their pages name fields)."""
    out = []
    for rule in app.url_map.iter_rules():
        if rule.endpoint in SKIPPED:
            continue
        url = _url(rule, {n: base.get(n, "1") for n in rule.arguments})
        out += [(rule.endpoint, method, url) for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"})]
    return sorted(out, key=lambda case: case[1] != "GET")


@pytest.fixture
def fuzz_app(app: Flask, app_org: Runtime) -> Flask:
    start_case(app_org)  # a case with an open task, so that ids 1 exist
    app.config["PROPAGATE_EXCEPTIONS"] = False  # a server error is a 500 answer here, as in production
    return app


def _refused_at_the_door(answer: TestResponse) -> bool:
    """Refused before the view reads any input (login required, no token, not this role): the other hostile
    values would be refused the same way."""
    return answer.status_code in (401, 403) or (
        answer.status_code == 302 and (answer.location or "").startswith("/login"))


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
            names.update(n for n in re.findall(r"\bname=\"([^\"{}]+)\"", answer.get_data(as_text=True))
                         if n not in NOT_FIELDS)
        return answer

    for endpoint, method, url in _path_cases(fuzz_app, base):
        check(endpoint, method, "path", url)
    queries = {label: _queries(names, value) for label, value in VALUES.items()}
    queries["NUL"] = [urlencode({"next": NUL, "q": "x"})]
    for endpoint, method, url in _base_cases(fuzz_app, base):
        tries: list[tuple[str, str, dict[str, Any]]]
        if method == "GET":
            tries = [(f"query: {label}", f"{url}?{query}", {}) for label, chunks in queries.items() for query in chunks]
        else:  # each hostile value in the query and in the form at once; then long text, NUL, and JSON bodies
            tries = [(f"query and form: {label}", f"{url}?{queries[label][0]}", {"data": dict.fromkeys(names, value)})
                     for label, value in VALUES.items()]
            tries += [("form: long text", url, {"data": dict.fromkeys(names, LONG_FORM_TEXT)}),
                      ("query and form: NUL", f"{url}?{queries['NUL'][0]}", {"data": {"username": NUL}}),
                      ("JSON: deep", url, {"data": "[" * 50_000 + "]" * 50_000, "content_type": "application/json"}),
                      ("JSON: 31 digits", url, {"json": {**dict.fromkeys(names, 10**31),
                                                         "data": dict.fromkeys(names, 10**31)}})]
        for what, target, kwargs in tries:
            if _refused_at_the_door(check(endpoint, method, what, target, **kwargs)):
                break
    if login:
        assert client.get("/account/password").status_code == 200, "the walk logged itself out: less was fuzzed"
    assert not failures, "\n".join(map(str, failures))

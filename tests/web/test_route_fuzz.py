"""Issue 16: every web route, every method, anonymous and logged in, with hostile path and query values:
no server error. The route list is read from the app, so a new route is fuzzed without anyone remembering."""

from __future__ import annotations

import re
from urllib.parse import quote

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.routing.converters import NumberConverter

from engine.runtime import Runtime
from tests.web.api_helpers import start_case

#: Path values by converter: ids past any table, zero, and text that paths should never trust.
INTS = ("0", "2147483648", "18446744073709551616", "9" * 40)
TEXTS = ("..%2F..%2Fetc%2Fpasswd", "%00", quote("\u202eevil"), "x" * 600, quote("é'\"<script>"), "%ff%fe")
#: One hostile query string: numbers out of every range, dates out of range, NUL, bad UTF-8, long values.
QUERY = ("?limit=-1&offset=99999999999999999999&cursor=%ff&status=%00&from=0001-01-01&to=9999-12-31"
         "&id=1e309&days=nan&next=//evil.example&version=-5&q=" + "x" * 1500)
FORM = {"days": "1e309", "role": ["admin", "\u202e"], "username": "\x00", "password": "x" * 2000,
        "instance": "18446744073709551616", "from": "-1", "to": "9" * 30, "scope": "all", "csv": "a,b\n\x00"}
#: Routes that end the session or change it for the rest of the walk.
SKIPPED = {"auth.logout", "static"}


def _urls(app: Flask) -> list[tuple[str, str, str]]:
    """(endpoint, method, url) for every rule, with every hostile value of each of its arguments."""
    out = []
    for rule in app.url_map.iter_rules():
        if rule.endpoint in SKIPPED:
            continue
        methods = sorted((rule.methods or set()) - {"HEAD", "OPTIONS"})
        converters = rule._converters
        if not converters:
            candidates = [rule.rule]
        else:
            candidates = []
            for name, converter in converters.items():
                values = INTS if isinstance(converter, NumberConverter) else TEXTS
                for value in values:
                    url = rule.rule
                    for other in converters:
                        url = re.sub(rf"<(?:[^:<>]+:)?{other}>", value if other == name else "1", url)
                    candidates.append(url)
        out += [(rule.endpoint, method, url) for method in methods for url in candidates]
    return out


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
    failures = []
    for endpoint, method, url in _urls(fuzz_app):
        for target in (url, url + QUERY):
            kwargs = {"data": FORM} if method in ("POST", "PUT", "PATCH") else {}
            answer = client.open(target, method=method, **kwargs)
            if answer.status_code >= 500 and answer.status_code != 503:
                failures.append((endpoint, method, target[:120], answer.status_code))
    assert not failures, failures

"""Every route as every role and as a visitor, checked against the permission table; CSRF on
every form; the security headers. New routes are covered by iterating the app's URL map."""

from __future__ import annotations

import pytest
from flask import Flask

from campaigns.models import ROLES
from tests.web.conftest import Console, seed_domain, signed_in
from web.permissions import API_PREFIX, PERMISSIONS, PUBLIC, allow, may

# Sent last: signing out ends the session the other requests use.
LAST = ("auth.logout",)


def routes(app: Flask) -> list[tuple[str, str, str]]:
    """(endpoint, method, url) for every route, with sample values for its arguments."""
    samples = seed_domain(app)
    found = []
    for rule in app.url_map.iter_rules():
        missing = [a for a in rule.arguments if a not in samples]
        assert not missing, f"{rule.rule}: add a sample value for {missing} to seed_domain"
        with app.test_request_context():
            from flask import url_for

            url = url_for(rule.endpoint, **{a: samples[a] for a in rule.arguments})
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            found.append((rule.endpoint, method, url))
    return sorted(found, key=lambda r: (r[0] in LAST, r[0], r[1]))


def permission(app: Flask, endpoint: str) -> str:
    if endpoint == "static":
        return PUBLIC
    return app.view_functions[endpoint].permission  # type: ignore[no-any-return]


def send(console: Console, method: str, url: str):  # type: ignore[no-untyped-def]
    if method == "GET":
        return console.get(url)
    if method == "POST":
        return console.post(url, {})
    if console.token is None:
        console.get("/auth/login")
    return console.client.open(url, method=method, data={"csrf_token": console.token})


def is_api(url: str) -> bool:
    return url.startswith(API_PREFIX) or url.endswith(".json")


def is_sign_in_redirect(response) -> bool:  # type: ignore[no-untyped-def]
    return response.status_code == 302 and response.location.startswith("/auth/login")


def test_every_view_names_a_known_permission(app: Flask) -> None:
    for endpoint, view in app.view_functions.items():
        if endpoint == "static":
            continue
        name = getattr(view, "permission", None)
        assert name == PUBLIC or name in PERMISSIONS, f"{endpoint} names no permission"


def test_every_permission_is_for_known_roles_and_admins_hold_them_all() -> None:
    for name, roles in PERMISSIONS.items():
        assert roles <= set(ROLES), name
        assert "admin" in roles, name


@pytest.mark.parametrize("role", [None, *ROLES])
def test_each_route_refuses_exactly_the_roles_the_table_refuses(
    app: Flask, role: str | None
) -> None:
    console = Console(app.test_client()) if role is None else signed_in(app, role)
    checked = 0
    for endpoint, method, url in routes(app):
        needed = permission(app, endpoint)
        response = send(console, method, url)
        where = f"{method} {url} as {role or 'a visitor'} (needs {needed})"
        if needed == PUBLIC:
            assert response.status_code not in (401, 403), where
        elif role is None:
            if is_api(url):
                assert response.status_code == 401, where
            else:
                assert is_sign_in_redirect(response), where
        elif may(role, needed):
            assert response.status_code not in (401, 403), where
            # Signing out sends one to the sign-in page; nothing else may.
            assert is_sign_in_redirect(response) == (endpoint in LAST), where
            assert response.status_code < 500, where
        else:
            assert response.status_code == 403, where
        checked += 1
    assert checked >= 30


def test_a_view_that_names_no_permission_is_refused_even_to_an_admin(app: Flask) -> None:
    app.add_url_rule("/forgotten", "forgotten", lambda: "open")
    admin = signed_in(app, "admin")
    assert admin.get("/forgotten").status_code == 403


def test_the_decorator_refuses_a_permission_missing_from_the_table() -> None:
    with pytest.raises(KeyError, match="unknown permission"):
        allow("campaigns.delete_everything")


def test_every_form_is_refused_without_its_csrf_token(app: Flask) -> None:
    admin = signed_in(app, "admin")
    writes = [(e, m, u) for e, m, u in routes(app) if m != "GET"]
    assert len(writes) >= 15
    for endpoint, method, url in writes:
        response = admin.client.open(url, method=method, data={})
        assert response.status_code == 400, f"{endpoint}: {response.status_code}"
        if url.startswith(API_PREFIX):
            # The API with the console's session cookie: CSRF as for a form, in JSON.
            assert response.get_json()["error"]["code"] == "csrf", endpoint
        else:
            assert "security token" in response.get_data(as_text=True), endpoint


def test_a_forged_token_is_refused_too(app: Flask) -> None:
    admin = signed_in(app, "admin")
    admin.token = "forged"
    assert admin.post("/dnc/add", {"number": "+12125550123"}).status_code == 400


def test_pages_carry_the_security_headers(app: Flask) -> None:
    admin = signed_in(app, "admin")
    for url in ("/auth/login", "/campaigns/", "/static/console.css"):
        response = admin.get(url)
        headers = response.headers
        policy = headers["Content-Security-Policy"]
        assert "script-src 'self'" in policy and "'unsafe-inline'" not in policy, url
        assert "frame-ancestors 'none'" in policy and "object-src 'none'" in policy
        assert headers["X-Content-Type-Options"] == "nosniff"
        assert headers["X-Frame-Options"] == "DENY"
        assert headers["Referrer-Policy"] == "same-origin"
    assert admin.get("/campaigns/").headers["Cache-Control"] == "no-store"


def test_pages_have_no_inline_script_or_style(app: Flask) -> None:
    samples = seed_domain(app)
    admin = signed_in(app, "admin")
    for url in (
        "/dashboard/",
        "/campaigns/new",
        f"/campaigns/{samples['campaign_id']}",
        f"/imports/{samples['import_id']}",
        "/dnc/",
        "/users/",
        "/trunks/",
        "/desk/",
        "/desk/phone",
        "/agent-groups/",
        f"/agent-groups/{samples['group_id']}",
        f"/campaigns/{samples['campaign_id']}/caller-ids/",
    ):
        page = admin.get(url).get_data(as_text=True)
        assert "<script>" not in page and "style=" not in page and " on" + "click=" not in page, url
        # console.js, and a live page's own script: files of the package, nothing inline.
        scripts = page.count("<script ")
        assert scripts == page.count('<script src="/static/') and scripts <= 2, url
        assert 'src="/static/console.js"' in page, url


def test_the_session_cookie_is_httponly_samesite_and_secure_when_configured(
    tmp_path,
    password_hash,
    monkeypatch,  # type: ignore[no-untyped-def]
) -> None:
    from tests.web.conftest import console_app

    app = console_app(tmp_path, password_hash, monkeypatch, SESSION_COOKIE_SECURE=True)
    console = Console(app.test_client())
    response = console.login("manager")
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" in cookie

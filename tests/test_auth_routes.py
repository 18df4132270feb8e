"""The cookie routes (web.auth_routes): login nonce, deep links, the ticket route, same-site logout."""

from __future__ import annotations

import asyncio
from http.cookies import SimpleCookie
from urllib.parse import quote

from sqlalchemy import select
from starlette.requests import Request

from exporthub import auth, sessions, tickets
from exporthub.models import LoginSession
from tests._auth_helpers import NONCE, _logouts, _uid
from web import auth_routes


def _request(method: str, path: str, query: str = "", cookies: dict[str, str] | None = None,
             headers: dict[str, str] | None = None) -> Request:
    raw = [(b"host", b"testserver")]
    if cookies:
        raw.append((b"cookie", "; ".join(f"{k}={v}" for k, v in cookies.items()).encode()))
    for key, value in (headers or {}).items():
        raw.append((key.lower().encode(), value.encode()))
    scope = {
        "type": "http",
        "method": method,
        "path": path,
        "query_string": query.encode(),
        "headers": raw,
        "scheme": "http",
        "server": ("testserver", 80),
        "root_path": "",
    }
    return Request(scope)


def _set_cookie(response) -> SimpleCookie:
    jar = SimpleCookie()
    for name, value in response.raw_headers:
        if name == b"set-cookie":
            jar.load(value.decode())
    return jar


SAME_ORIGIN = {"sec-fetch-site": "same-origin", "origin": "http://testserver"}


def test_begin_sets_a_login_nonce_and_remembers_only_download_links(demo_hub):
    response = auth_routes.begin(_request("GET", "/auth/session/begin"))
    assert response.status_code == 303 and response.headers["location"] == "/?nonce=set"
    jar = _set_cookie(response)
    nonce = jar[tickets.NONCE_COOKIE]
    assert tickets.is_nonce(nonce.value) and nonce["httponly"] and nonce["samesite"] == "lax"
    assert auth_routes.NEXT_COOKIE not in jar
    # An existing nonce is kept (the form may be open in another tab).
    again = auth_routes.begin(_request("GET", "/auth/session/begin", cookies={tickets.NONCE_COOKIE: nonce.value}))
    assert tickets.NONCE_COOKIE not in _set_cookie(again)
    link = "/download/1.2.3." + "A" * 43
    carried = auth_routes.begin(_request("GET", "/auth/session/begin", f"next={link}"))
    assert carried.headers["location"] == "/?auth=login-required&nonce=set"
    remembered = _set_cookie(carried)[auth_routes.NEXT_COOKIE]
    assert remembered.value == link and remembered["path"] == auth_routes.LOGIN_PATH
    for elsewhere in ("https://evil.example/", "//evil.example", "/adminx", "/download/../x", "javascript:alert(1)",
                      "/job?job=<script>", "/statistics/../x"):
        odd = auth_routes.begin(_request("GET", "/auth/session/begin", f"next={quote(elsewhere)}"))
        assert auth_routes.NEXT_COOKIE not in _set_cookie(odd), elsewhere
        assert odd.headers["location"] == "/?nonce=set"


def test_begin_brings_a_deep_link_back_to_its_page_for_the_login_form(demo_hub):
    for page in ("/statistics", "/job?job=7", "/exports?project=demo-open"):
        response = auth_routes.begin(_request("GET", "/auth/session/begin", f"auth=idle&next={quote(page)}"))
        sep = "&" if "?" in page else "?"
        assert response.headers["location"] == f"{page}{sep}auth=idle&nonce=set"
        assert auth_routes.NEXT_COOKIE not in _set_cookie(response)  # the form carries the page on


def test_ticket_route_goes_on_to_the_page_a_deep_link_named_and_nowhere_else(demo_hub):
    db, _s = demo_hub.db, demo_hub.settings
    for target, expected in (("/job?job=7", "/job?job=7"), ("/statistics", "/statistics"),
                             ("//evil.example", "/"), ("https://evil.example/", "/")):
        ticket = tickets.issue(db, _uid(demo_hub, "analyst"), NONCE)
        response = auth_routes.start_session(_request("GET", "/auth/session", f"ticket={ticket}&next={quote(target)}",
                                                      cookies={tickets.NONCE_COOKIE: NONCE}))
        assert response.headers["location"] == expected, target
        assert auth.SESSION_COOKIE in _set_cookie(response)


def test_ticket_route_sets_the_session_cookie_only_with_the_browsers_nonce(demo_hub):
    db, s = demo_hub.db, demo_hub.settings
    ticket = tickets.issue(db, _uid(demo_hub, "analyst"), NONCE)
    # Placed on another page: the victim's browser has no (or another) nonce, and keeps its own session.
    victim = sessions.start(db, s, _uid(demo_hub, "viewer"))
    planted = auth_routes.start_session(_request("GET", "/auth/session", f"ticket={ticket}",
                                                 cookies={auth.SESSION_COOKIE: victim}))
    assert planted.headers["location"] == "/?auth=expired-ticket"
    assert auth.SESSION_COOKIE not in _set_cookie(planted)
    assert sessions.validate(db, s, victim).username == "viewer"
    link = "/download/1.2.3." + "A" * 43
    response = auth_routes.start_session(_request(
        "GET", "/auth/session", f"ticket={ticket}",
        cookies={tickets.NONCE_COOKIE: NONCE, auth_routes.NEXT_COOKIE: link}, headers={"user-agent": "Chromium/1"}))
    assert response.status_code == 303 and response.headers["location"] == link  # on to the download
    assert response.headers["cache-control"] == "no-store"
    raw = [v.decode() for k, v in response.raw_headers if k == b"set-cookie"]
    session_header = next(h for h in raw if h.startswith(auth.SESSION_COOKIE))
    assert "HttpOnly" in session_header and "SameSite=lax" in session_header and "Path=/" in session_header
    assert f"Max-Age={auth.SESSION_MAX_AGE_SECONDS}" in session_header
    jar = _set_cookie(response)
    assert sessions.validate(db, s, jar[auth.SESSION_COOKIE].value).username == "analyst"
    assert jar[tickets.NONCE_COOKIE].value == "" and jar[auth_routes.NEXT_COOKIE].value == ""  # used up
    with db.read() as session:
        assert session.scalars(select(LoginSession).where(LoginSession.user_agent == "Chromium/1")).one()
    again = auth_routes.start_session(_request("GET", "/auth/session", f"ticket={ticket}",
                                               cookies={tickets.NONCE_COOKIE: NONCE}))
    assert again.headers["location"] == "/?auth=expired-ticket"


def test_logout_is_a_same_site_post_that_ends_the_session(demo_hub):
    db, s = demo_hub.db, demo_hub.settings
    cookie = sessions.start(db, s, _uid(demo_hub, "viewer"))
    # A cross-site form, a request without Origin or Sec-Fetch-Site, a foreign Origin: refused, session kept.
    for headers in ({"sec-fetch-site": "cross-site", "origin": "https://evil.example"}, {},
                    {"origin": "https://evil.example"}, {"origin": "null"}, {"sec-fetch-site": "same-site"}):
        refused = auth_routes.end_session(_request("POST", "/auth/session/end", cookies={auth.SESSION_COOKIE: cookie},
                                                   headers=headers))
        assert refused.status_code == 403 and auth.SESSION_COOKIE not in _set_cookie(refused), headers
    assert sessions.validate(db, s, cookie).username == "viewer"
    ended = auth_routes.end_session(_request("POST", "/auth/session/end", "reason=idle",
                                             cookies={auth.SESSION_COOKIE: cookie}, headers=SAME_ORIGIN))
    assert ended.status_code == 303 and ended.headers["location"] == "/auth/session/begin?auth=idle"
    cleared = _set_cookie(ended)[auth.SESSION_COOKIE]
    assert cleared.value == "" and cleared["max-age"] == "0"
    assert sessions.validate(db, s, cookie) is None and _logouts(demo_hub) == [("viewer", "idle")]
    # An older browser without Sec-Fetch-Site, but with this site's Origin, may log out too.
    other = sessions.start(db, s, _uid(demo_hub, "analyst"))
    auth_routes.end_session(_request("POST", "/auth/session/end", cookies={auth.SESSION_COOKIE: other},
                                     headers={"origin": "http://testserver"}))
    assert sessions.validate(db, s, other) is None
    # Only known reasons are passed on; nothing from the request decides where the browser goes.
    odd = auth_routes.end_session(_request("POST", "/auth/session/end", "reason=https://evil.example",
                                           headers=SAME_ORIGIN))
    assert odd.headers["location"] == "/auth/session/begin?auth=signed-out"
    assert len(_logouts(demo_hub)) == 2


def test_server_mounts_the_auth_routes_before_streamlit_and_logout_refuses_get():
    from starlette.applications import Starlette

    import server

    paths = {getattr(r, "path", None): r for r in server.ROUTES}
    assert {"/healthz", auth_routes.BEGIN_PATH, auth_routes.LOGIN_PATH, auth_routes.LOGOUT_PATH} <= set(paths)
    sent: list[dict] = []

    async def receive() -> dict:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict) -> None:
        sent.append(message)

    scope = {**_request("GET", auth_routes.LOGOUT_PATH, cookies={auth.SESSION_COOKIE: "x"}).scope,
             "http_version": "1.1", "raw_path": auth_routes.LOGOUT_PATH.encode()}
    asyncio.run(Starlette(routes=auth_routes.ROUTES)(scope, receive, send))
    assert sent[0]["status"] == 405  # a cross-site link (GET) can never log anybody out

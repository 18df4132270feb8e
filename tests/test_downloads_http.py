"""``/download/{token}`` through real HTTP requests to a running ``streamlit run server.py``."""

from __future__ import annotations

import hashlib
import http.client
import shutil
import time
from pathlib import Path
from urllib.parse import quote, unquote

import pytest
from sqlalchemy import delete, select

from exporters import REGISTRY
from exporthub import api_tokens, auth, links, sessions, tickets
from exporthub.accounts import cli_actor
from exporthub.dispatch import RecordingDispatcher
from exporthub.links import make_token
from exporthub.models import ApiToken, File, Membership, User, utcnow
from tests._download_server import (
    Server,
    assert_refused,
    assert_safe_headers,
    server,  # noqa: F401 - the fixture is used by name
)

# ----------------------------------------------------------------------------- downloads


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
def test_download_bytes_match_the_recorded_sha256(server, fmt):
    f = server.export("analyst", fmt)
    before = len(server.audit())
    status, headers, body = server.get(server.link(f.id, "analyst"), user="analyst")
    assert status == 200
    assert hashlib.sha256(body).hexdigest() == f.sha256 and len(body) == f.size
    assert headers["Content-Length"] == str(f.size)
    assert headers["Content-Type"].split(";")[0] == f.content_type
    assert headers["Content-Disposition"] == f"attachment; filename=\"{f.name}\"; filename*=UTF-8''{f.name}"
    assert "Content-Encoding" not in headers
    assert_safe_headers(headers)
    with server.db.read() as s:
        assert s.get(File, f.id).download_count == 1
    assert server.audit()[before:] == [("ok", "analyst", f"file:{f.id}", None)]
    if fmt == "xlsx":  # and it is a real workbook
        from python_calamine import CalamineWorkbook

        assert "Scans" in CalamineWorkbook.from_filelike(__import__("io").BytesIO(body)).sheet_names


def test_gzip_is_not_applied_to_files(server):
    f = server.export("analyst", "csv")
    status, headers, body = server.get(server.link(f.id, "analyst"), user="analyst",
                                       headers={"Accept-Encoding": "gzip"})
    assert status == 200 and "Content-Encoding" not in headers
    assert headers["Content-Length"] == str(f.size) and hashlib.sha256(body).hexdigest() == f.sha256


def test_head_is_not_a_download(server):
    f = server.export("manager", "csv", project="demo-closed")
    before = len(server.audit())
    status, headers, _ = server.get(server.link(f.id, "manager"), user="manager", method="HEAD")
    assert status == 405 and headers["Allow"] == "GET"
    assert len(server.audit()) == before


# ----------------------------------------------------------------------------- refusals


def test_tampered_and_expired_links_are_refused(server):
    f = server.export("analyst", "csv")
    good = server.link(f.id, "analyst")
    assert_refused(server, good[:-1] + ("A" if good[-1] != "A" else "B"), 403, user="analyst")
    assert_refused(server, good.replace(f"/download/{f.id}.", f"/download/{f.id + 1}.", 1), 403, user="analyst")
    assert_refused(server, "/download/not.a.token.at-all", 403, user="analyst")
    # Encoded traversal does not even reach the route (Streamlit's path security answers 400).
    status, _, body = server.get("/download/..%2F..%2Fsecret.key")
    assert status in (400, 403) and server.settings.resolved_secret_key().encode() not in body
    expired = links.ROUTE_PREFIX + make_token(server.settings, f.id, server.user_id("analyst"), int(time.time()) - 1)
    assert_refused(server, expired, 403, user="analyst")
    assert [e[0] for e in server.audit()[-4:]] == ["refused"] * 4
    with server.db.read() as s:
        assert s.get(File, f.id).download_count == 0


def test_removed_file_is_refused(server):
    from exporthub.jobs import JobService

    f = server.export("manager", "csv")
    path = server.link(f.id, "manager")
    assert server.get(path, user="manager")[0] == 200
    JobService(server.db, server.settings, RecordingDispatcher(), registry=REGISTRY).remove("manager", f.job_id)
    assert_refused(server, path, 404, user="manager")
    assert server.audit()[-1][:3] == ("refused", "manager", f"file:{f.id}")


def test_revoked_membership_and_deactivated_user_are_refused(server):
    f = server.export("analyst", "csv")
    analyst, viewer = server.link(f.id, "analyst"), server.link(f.id, "viewer")
    assert server.get(analyst, user="analyst")[0] == 200 and server.get(viewer, user="viewer")[0] == 200
    with server.db.write() as s:
        membership = s.scalar(select(Membership).where(Membership.user_id == server.user_id("analyst")))
        saved = (membership.user_id, membership.project_id, membership.role)
        s.delete(membership)
        s.get(User, server.user_id("viewer")).active = False
    try:
        assert_refused(server, analyst, 404, user="analyst")  # like a file that does not exist
        assert_refused(server, viewer, 403, user="viewer")
        assert [e[3] for e in server.audit()[-2:]] == ["no exports.view on the project",
                                                       "user is deactivated or deleted"]
    finally:
        with server.db.write() as s:
            s.add(Membership(user_id=saved[0], project_id=saved[1], role=saved[2]))
            s.get(User, server.user_id("viewer")).active = True
    assert server.get(analyst, user="analyst")[0] == 200


def test_rotated_secret_refuses_every_old_link(server):
    f = server.export("analyst", "csv")
    path = server.link(f.id, "analyst")
    key_file = server.settings.data_dir / "secret.key"
    old = key_file.read_text()
    key_file.write_text("rotated-" + "s" * 40)
    try:
        assert_refused(server, path, 403, user="analyst")
        assert server.audit()[-1][3] == "bad signature"
        fresh = server.link(f.id, "analyst")  # signed with the new secret
        assert server.get(fresh, user="analyst")[0] == 200
    finally:
        key_file.write_text(old)
    assert server.get(path, user="analyst")[0] == 200


def test_another_users_session_cookie_is_refused(server):
    f = server.export("analyst", "csv")
    path = server.link(f.id, "analyst")
    assert_refused(server, path, 403, user="manager")
    assert server.audit()[-1][3] == "link used by another user (manager, session)"
    assert server.get(path, user="analyst")[0] == 200
    # A cookie that is no valid session is no session: the link asks for a login.
    assert_refused(server, path, 401, cookie=f"{sessions.SESSION_COOKIE}=forged.cookie")


# ----------------------------------------------------------------------------- names, paths, size


def _copy_as(server: Server, f: File, *, name: str, storage_key: str | None = None) -> int:
    src = server.settings.files_dir / f.storage_key
    key = storage_key or str(Path(f.storage_key).parent / f"copy-{time.time_ns()}.csv")
    if storage_key is None:
        shutil.copy2(src, server.settings.files_dir / key)
    st = (server.settings.files_dir / key).stat() if storage_key is None else src.stat()
    with server.db.write() as s:
        row = File(job_id=f.job_id, project_id=f.project_id, export_type=f.export_type, name=name,
                   content_type="text/csv\r\nX-Evil: 1", size=st.st_size, sha256=f.sha256, storage_key=key,
                   mtime_ns=st.st_mtime_ns, created_at=utcnow(), download_count=0)
        s.add(row)
        s.flush()
        return row.id


def test_odd_file_names_cannot_break_the_headers(server):
    f = server.export("analyst", "csv")
    name = 'Ré"sumé\r\nX-Evil: 1; ../../etc\\passwd\x00 李娜 =1+1.csv'
    file_id = _copy_as(server, f, name=name)
    status, headers, body = server.get(server.link(file_id, "analyst"), user="analyst")
    assert status == 200 and hashlib.sha256(body).hexdigest() == f.sha256
    assert "X-Evil" not in headers and headers["Content-Type"] == "application/octet-stream"
    disposition = headers["Content-Disposition"]
    assert "\r" not in disposition and "\n" not in disposition and disposition.isascii()
    fallback = disposition.split('filename="', 1)[1].split('"', 1)[0]
    assert fallback == "ResumeX-Evil: 1 .._.._etc_passwd  =1+1.csv"
    encoded = disposition.split("filename*=UTF-8''", 1)[1]
    assert unquote(encoded) == 'Ré"suméX-Evil: 1; .._.._etc_passwd 李娜 =1+1.csv'


@pytest.mark.parametrize("key", ["../secret.key", "/etc/passwd", "demo-open/../../secret.key"])
def test_storage_keys_outside_the_files_folder_are_not_served(server, key):
    f = server.export("analyst", "csv")
    file_id = _copy_as(server, f, name="x.csv", storage_key=key)
    assert_refused(server, server.link(file_id, "analyst"), 404, user="analyst")
    assert "outside the files folder" in server.audit()[-1][3] or "unusable" in server.audit()[-1][3]


def test_large_file_is_streamed_not_loaded(server):
    """A 256 MiB file goes out without the server's peak memory growing by anything like its size."""
    f = server.export("analyst", "csv")
    size = 256 * 1024 * 1024
    key = str(Path(f.storage_key).parent / "big.bin")
    path = server.settings.files_dir / key
    with open(path, "wb") as fh:
        fh.truncate(size)  # sparse: costs no disk
    digest = hashlib.sha256()
    zeros = bytes(1 << 20)
    for _ in range(size >> 20):
        digest.update(zeros)
    st = path.stat()
    with server.db.write() as s:
        row = File(job_id=f.job_id, project_id=f.project_id, export_type=f.export_type, name="big.bin",
                   content_type="application/octet-stream", size=size, sha256=digest.hexdigest(),
                   storage_key=key, mtime_ns=st.st_mtime_ns, created_at=utcnow(), download_count=0)
        s.add(row)
        s.flush()
        file_id = row.id
    before = server.peak_rss_kib()
    conn = http.client.HTTPConnection("127.0.0.1", server.base_port, timeout=120)
    conn.request("GET", server.link(file_id, "analyst"),
                 headers={"Cookie": f"{sessions.SESSION_COOKIE}={server.session('analyst')}"})
    resp = conn.getresponse()
    got, received = hashlib.sha256(), 0
    while chunk := resp.read(1 << 20):
        got.update(chunk)
        received += len(chunk)
    conn.close()
    assert resp.status == 200 and resp.headers["Content-Length"] == str(size)
    assert received == size and got.hexdigest() == digest.hexdigest()
    growth_mib = (server.peak_rss_kib() - before) / 1024
    print(f"server peak RSS grew by {growth_mib:.1f} MiB while sending 256 MiB")
    assert growth_mib < 64, f"server peak memory grew by {growth_mib:.0f} MiB for a 256 MiB file"
    path.unlink()
    with server.db.write() as s:
        s.execute(delete(File).where(File.id == file_id))



# ----------------------------------------------------------------------------- links bound to their user


def _cookies(headers: http.client.HTTPMessage) -> dict[str, str]:
    from http.cookies import SimpleCookie

    jar = SimpleCookie()
    for value in headers.get_all("Set-Cookie") or []:
        jar.load(value)
    return {name: morsel.value for name, morsel in jar.items()}


def test_a_link_without_its_users_session_or_token_is_refused_to_scripts(server):
    f = server.export("analyst", "csv")
    path = server.link(f.id, "analyst")
    status, headers, body = server.get(path)
    assert status == 401 and headers["WWW-Authenticate"] == 'Bearer realm="exporthub"'
    assert body.decode().strip() == links.PUBLIC_MESSAGES[401]
    assert server.audit()[-1] == ("refused", "analyst", f"file:{f.id}",
                                  "no login session or API token: asked to log in")
    with server.db.read() as s:
        assert s.get(File, f.id).download_count == 0


def test_a_forwarded_link_opened_in_a_browser_logs_in_as_its_user_then_downloads(server):
    f = server.export("analyst", "csv")
    path = server.link(f.id, "analyst")
    status, headers, _ = server.get(path, headers={"Accept": "text/html,application/xhtml+xml",
                                                   "Sec-Fetch-Mode": "navigate"})
    assert status == 303 and headers["Location"] == f"/auth/session/begin?next={quote(path, safe='')}"
    status, headers, _ = server.get(headers["Location"])
    assert status == 303 and headers["Location"] == "/?auth=login-required&nonce=set"
    jar = _cookies(headers)
    nonce, remembered = jar[tickets.NONCE_COOKIE], jar["exporthub_next"]
    assert remembered == path
    # The login form checks the password and hands this browser a ticket bound to its nonce.
    user = auth.authenticate(server.db, server.settings, "analyst", "demo")
    ticket = tickets.issue(server.db, user.id, nonce)
    status, headers, _ = server.get(f"/auth/session?ticket={ticket}",
                                    cookie=f"{tickets.NONCE_COOKIE}={nonce}; exporthub_next={remembered}")
    assert status == 303 and headers["Location"] == path
    session = _cookies(headers)[sessions.SESSION_COOKIE]
    status, headers, body = server.get(path, cookie=f"{sessions.SESSION_COOKIE}={session}")
    assert status == 200 and hashlib.sha256(body).hexdigest() == f.sha256
    assert server.audit()[-1][:3] == ("ok", "analyst", f"file:{f.id}")


def test_the_link_opened_by_another_user_stays_refused_and_audited(server):
    f = server.export("analyst", "csv")
    path = server.link(f.id, "analyst")
    browser = {"Accept": "text/html", "Sec-Fetch-Mode": "navigate"}
    assert_refused(server, path, 403, user="manager", headers=browser)  # logged in as someone else: no detour
    assert server.audit()[-1][1:] == ("analyst", f"file:{f.id}", "link used by another user (manager, session)")


def test_scripts_download_with_an_api_token_of_the_links_user(server):
    f = server.export("analyst", "csv")
    path = server.link(f.id, "analyst")
    _view, mine = api_tokens.create(server.db, cli_actor(), "analyst", "nightly sync")
    theirs_view, theirs = api_tokens.create(server.db, cli_actor(), "manager", "reports")
    with server.db.read() as s:  # only the hash is stored
        assert mine not in {t.token_hash for t in s.scalars(select(ApiToken))}
    status, _, body = server.get(path, headers={"Authorization": f"Bearer {mine}"})
    assert status == 200 and hashlib.sha256(body).hexdigest() == f.sha256
    assert server.audit()[-1] == ("ok", "analyst", f"file:{f.id}", "via token")
    # Another user's token is refused and audited; so is a revoked or made-up one, whatever the cookie.
    assert_refused(server, path, 403, headers={"Authorization": f"Bearer {theirs}"})
    assert server.audit()[-1][3] == "link used by another user (manager, token)"
    api_tokens.revoke(server.db, cli_actor(), theirs_view.id)
    manager_session = f"{sessions.SESSION_COOKIE}={server.session('analyst')}"
    for bad in (theirs, "eh_" + "x" * 43, "garbage"):
        assert_refused(server, path, 401, cookie=manager_session, headers={"Authorization": f"Bearer {bad}"})
        assert server.audit()[-1][3] == "invalid, revoked or expired API token"


def test_logout_route_takes_only_a_same_site_post(server):
    cookie = server.session("viewer")
    status, _, _ = server.get("/auth/session/end", cookie=f"{sessions.SESSION_COOKIE}={cookie}")
    assert status == 405  # a cross-site link or image cannot log anyone out
    status, _, _ = server.get("/auth/session/end", method="POST", cookie=f"{sessions.SESSION_COOKIE}={cookie}",
                              headers={"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"})
    assert status == 403 and sessions.validate(server.db, server.settings, cookie).username == "viewer"
    status, headers, _ = server.get("/auth/session/end?reason=signed-out", method="POST",
                                    cookie=f"{sessions.SESSION_COOKIE}={cookie}",
                                    headers={"Origin": f"http://127.0.0.1:{server.base_port}",
                                             "Sec-Fetch-Site": "same-origin"})
    assert status == 303 and headers["Location"] == "/auth/session/begin?auth=signed-out"
    assert _cookies(headers)[sessions.SESSION_COOKIE] == ""
    assert sessions.validate(server.db, server.settings, cookie) is None

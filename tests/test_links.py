"""Download links: signing, bucketed expiry, and every check made again on each use."""

from __future__ import annotations

import hashlib
import json
import os
import time
from datetime import UTC, datetime

import pytest
from sqlalchemy import delete, select

from cli import main
from exporthub import links
from exporthub.errors import FileNotAvailable, NotFound
from exporthub.links import LinkRefused, Requester, download_path, make_token, parse_token, resolve_download
from exporthub.models import AuditEvent, File, Membership, Project, User, utcnow
from exporthub.settings import reload_settings


def export_file(hub, user: str = "analyst", fmt: str = "csv") -> File:
    """Run a small export and return its one recorded file row."""
    job = hub.service().start(user, "demo-open", "scans", {"format": fmt})
    hub.run(job.id)
    with hub.db.read() as s:
        return s.scalars(select(File).where(File.job_id == job.id, File.name.endswith(f".{fmt}"))).one()


def user_id(hub, username: str) -> int:
    with hub.db.read() as s:
        return s.scalar(select(User.id).where(User.username == username))


def token_for(hub, file_id: int, username: str, ttl: int = 600) -> str:
    return make_token(hub.settings, file_id, user_id(hub, username), int(time.time()) + ttl)


def events(hub, action: str = "download") -> list[tuple[str, str | None, str | None, str | None]]:
    with hub.db.read() as s:
        rows = s.scalars(select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id))
        return [(e.outcome, e.actor, e.target, e.detail) for e in rows]


def sha256_of(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def owner(hub, token: str, settings=None) -> Requester:
    """The link's own user, as a logged-in browser session (the normal way a link is used)."""
    try:
        claims = parse_token(settings or hub.settings, token)
    except LinkRefused:
        return Requester("analyst", "session")
    with hub.db.read() as s:
        user = s.get(User, claims.user_id)
    return Requester(user.username if user else "nobody", "session")


def download(hub, token: str, *, settings=None, requester: Requester | None = None, now: float | None = None):
    settings = settings or hub.settings
    return resolve_download(hub.db, settings, token, requester=requester or owner(hub, token, settings), now=now)


def refused(hub, token: str, *, session: str | None = None) -> LinkRefused:
    with pytest.raises(LinkRefused) as info:
        download(hub, token, requester=Requester(session, "session") if session else None)
    assert info.value.message in links.PUBLIC_MESSAGES.values()  # nothing specific leaks out
    return info.value


@pytest.fixture
def exported(demo_hub):
    return demo_hub, export_file(demo_hub)


# ----------------------------------------------------------------------------- tokens


def test_token_round_trip_grants_the_recorded_file_and_counts_it(exported):
    hub, f = exported
    token = token_for(hub, f.id, "analyst")
    grant = download(hub, token)
    assert grant.file_id == f.id and grant.filename == f.name and grant.size == f.size
    assert grant.content_type == "text/csv"
    assert grant.storage_key == f.storage_key
    assert sha256_of(hub.settings.files_dir / grant.storage_key) == f.sha256
    download(hub, token, requester=Requester("analyst", "session"))  # own session: fine
    with hub.db.read() as s:
        assert s.get(File, f.id).download_count == 2
    assert events(hub) == [("ok", "analyst", f"file:{f.id}", None)] * 2


def test_token_is_compact_url_safe_and_canonical(exported):
    hub, f = exported
    token = token_for(hub, f.id, "analyst")
    assert len(token) < 80 and all(c.isalnum() or c in "._-" for c in token)
    claims = parse_token(hub.settings, token)
    assert (claims.file_id, claims.user_id) == (f.id, user_id(hub, "analyst"))
    first, rest = token.split(".", 1)
    with pytest.raises(LinkRefused):
        parse_token(hub.settings, f"0{first}.{rest}")  # same numbers, another spelling


def test_bucketed_link_is_stable_within_a_period_and_lives_between_ttl_and_twice_ttl(hub):
    ttl = 900
    base = 1_800_000_000  # a multiple of 900
    seen = set()
    for offset in (0, 1, 450, 899):
        path = download_path(hub.settings, 5, 7, now=base + offset, ttl=ttl)
        claims = parse_token(hub.settings, path.removeprefix("/download/"))
        assert ttl < claims.expires_at - (base + offset) <= 2 * ttl
        seen.add(path)
    assert len(seen) == 1  # one link for the whole period: the UI can rerun without new links
    assert download_path(hub.settings, 5, 7, now=base + 900, ttl=ttl) not in seen
    # The default TTL comes from the settings; download_url adds the public base.
    path = download_path(hub.settings, 5, 7, now=base)
    assert parse_token(hub.settings, path.split("/")[-1]).expires_at == base + 2 * hub.settings.link_ttl_seconds
    assert links.download_url(hub.settings, 5, 7, now=base) == hub.settings.public_url + path


# ----------------------------------------------------------------------------- refusals


def test_tampered_links_are_refused_and_audited(exported):
    hub, f = exported
    token = token_for(hub, f.id, "analyst")
    file_part, user_part, exp_part, sig = token.split(".")
    other = user_id(hub, "manager")
    forged = [
        f"{f.id + 1}.{user_part}.{exp_part}.{sig}",  # another file
        f"{file_part}.{other}.{exp_part}.{sig}",  # another user
        f"{file_part}.{user_part}.{int(exp_part) + 3600}.{sig}",  # a longer life
        f"{file_part}.{user_part}.{exp_part}.{sig[:-1]}{'A' if sig[-1] != 'A' else 'B'}",  # a bit of the MAC
        token[:-1],
        token + "A",
        "",
    ]
    for bad in forged:
        assert refused(hub, bad).status == 403
    log = events(hub)
    assert len(log) == len(forged) and {e[0] for e in log} == {"refused"}
    assert {e[3] for e in log} == {"bad signature", "malformed token"}
    with hub.db.read() as s:
        assert s.get(File, f.id).download_count == 0


def test_expired_link_is_refused(exported):
    hub, f = exported
    expires = int(time.time()) + 5
    token = make_token(hub.settings, f.id, user_id(hub, "analyst"), expires)
    assert download(hub, token, now=expires - 1)
    with pytest.raises(LinkRefused) as info:
        download(hub, token, now=expires)
    assert (info.value.status, info.value.reason) == (403, "link expired")


def test_link_to_removed_file_is_refused(exported):
    hub, f = exported
    token = token_for(hub, f.id, "manager")
    hub.service().remove("manager", f.job_id)
    err = refused(hub, token)
    assert (err.status, err.reason) == (404, "file removed")


def test_revoked_membership_refuses_the_link_at_once(exported):
    hub, f = exported
    token = token_for(hub, f.id, "analyst")
    download(hub, token)
    with hub.db.write() as s:
        s.execute(delete(Membership).where(Membership.user_id == user_id(hub, "analyst")))
    err = refused(hub, token)
    # The same answer as for a file that does not exist: nobody learns which files exist elsewhere.
    assert (err.status, err.reason) == (404, "no exports.view on the project")
    assert err.message == refused(hub, token_for(hub, 99_999, "analyst")).message


@pytest.mark.parametrize("change", ["deactivate", "delete"])
def test_deactivated_or_deleted_user_is_refused(exported, change):
    hub, f = exported
    token = token_for(hub, f.id, "viewer")
    with hub.db.write() as s:
        user = s.get(User, user_id(hub, "viewer"))
        if change == "deactivate":
            user.active = False
        else:
            user.deleted_at = utcnow()
    assert refused(hub, token).status == 403


def test_rotated_secret_refuses_old_links(exported, monkeypatch):
    hub, f = exported
    token = token_for(hub, f.id, "analyst")
    (hub.settings.data_dir / "secret.key").write_text("a-brand-new-secret-of-enough-length")
    assert refused(hub, token).reason == "bad signature"
    # A configured secret replaces the embedded one the same way.
    monkeypatch.setenv("EXPORTHUB_SECRET_KEY", "x" * 40)
    settings = reload_settings()
    fresh = make_token(settings, f.id, user_id(hub, "analyst"), int(time.time()) + 60)
    assert download(hub, fresh, settings=settings).file_id == f.id
    monkeypatch.setenv("EXPORTHUB_SECRET_KEY", "y" * 40)
    with pytest.raises(LinkRefused):
        download(hub, fresh, settings=reload_settings())


def test_link_inside_another_users_session_is_refused(exported):
    hub, f = exported
    token = token_for(hub, f.id, "analyst")
    err = refused(hub, token, session="manager")
    assert err.status == 403 and "another user" in err.reason
    assert download(hub, token, requester=Requester("analyst", "session"))


def test_unknown_user_or_file(exported):
    hub, f = exported
    assert refused(hub, make_token(hub.settings, f.id, 99_999, int(time.time()) + 60)).status == 403
    assert refused(hub, token_for(hub, 99_999, "analyst")).status == 404


# ----------------------------------------------------------------------------- the file on disk


def test_changed_file_is_refused_but_a_touched_one_is_rehashed_and_served(exported):
    hub, f = exported
    path = hub.settings.files_dir / f.storage_key
    token = token_for(hub, f.id, "analyst")
    # Same bytes, new mtime (a restore, a copy): re-hashed, served, and the new mtime remembered.
    os.utime(path, ns=(f.mtime_ns + 5_000_000_000, f.mtime_ns + 5_000_000_000))
    grant = download(hub, token)
    assert grant.mtime_ns == f.mtime_ns + 5_000_000_000
    with hub.db.read() as s:
        assert s.get(File, f.id).mtime_ns == grant.mtime_ns
    # Same size, other bytes.
    data = bytearray(path.read_bytes())
    data[-2] ^= 0x01
    path.write_bytes(bytes(data))
    assert refused(hub, token).reason == "file changed in the store (sha256 differs)"
    # Other size: refused without hashing.
    path.write_bytes(bytes(data) + b"x")
    assert refused(hub, token).reason.startswith("file changed in the store (size")
    path.unlink()
    assert refused(hub, token).reason == "file missing in the store"


def _file_row(hub, f: File, **changes) -> int:
    with hub.db.write() as s:
        row = File(job_id=f.job_id, project_id=f.project_id, export_type=f.export_type, name=f.name,
                   content_type=f.content_type, size=f.size, sha256=f.sha256, storage_key=f.storage_key,
                   mtime_ns=f.mtime_ns, created_at=utcnow(), download_count=0)
        for key, value in changes.items():
            setattr(row, key, value)
        s.add(row)
        s.flush()
        return row.id


@pytest.mark.parametrize("key", ["../secret.txt", "../../../../etc/passwd", "/etc/passwd", "demo-open/../../secret.txt",
                                 "a\x00b", "", ".", "demo-open/scans/link-out"])
def test_storage_keys_cannot_leave_the_files_folder(exported, key):
    hub, f = exported
    secret = hub.settings.data_dir / "secret.txt"
    secret.write_bytes(b"top secret")
    link = hub.settings.files_dir / "demo-open" / "scans" / "link-out"
    if not link.exists():
        link.symlink_to(secret)
    digest = hashlib.sha256(b"top secret").hexdigest()
    st = secret.stat()
    row = _file_row(hub, f, storage_key=key, size=st.st_size, sha256=digest, mtime_ns=st.st_mtime_ns)
    err = refused(hub, token_for(hub, row, "analyst"))
    assert err.status == 404


# ----------------------------------------------------------------------------- issuing links


def test_issue_link_checks_the_user_and_audits_refusals_only(exported):
    hub, f = exported
    link = links.issue_link(hub.db, hub.settings, f.id, "viewer", ttl=120, now=1_900_000_000.2)
    assert link.expires_at == datetime.fromtimestamp(1_900_000_121, UTC)
    assert link.url == hub.settings.public_url + link.path and link.filename == f.name
    assert events(hub, "link") == []
    with pytest.raises(FileNotAvailable) as not_permitted:
        links.issue_link(hub.db, hub.settings, f.id, "outsider")
    with pytest.raises(FileNotAvailable) as missing:
        links.issue_link(hub.db, hub.settings, f.id + 100, "viewer")
    # One answer for a file the user may not see and one that does not exist.
    assert not_permitted.value.message == f"File {f.id} not found or not permitted"
    assert missing.value.message == f"File {f.id + 100} not found or not permitted"
    with pytest.raises(NotFound):
        links.issue_link(hub.db, hub.settings, f.id, "nobody")
    with pytest.raises(ValueError):
        links.issue_link(hub.db, hub.settings, f.id, "viewer", ttl=0)
    assert [e[0] for e in events(hub, "link")] == ["refused"] * 3
    # Without a TTL the UI's bucketed expiry applies.
    bucketed = links.issue_link(hub.db, hub.settings, f.id, "viewer", now=1_900_000_000)
    assert bucketed.expires_at.timestamp() % hub.settings.link_ttl_seconds == 0


def test_cli_link_prints_a_working_link_and_refuses_with_exit_2(exported, capsys):
    hub, f = exported
    assert main(["link", str(f.id), "--user", "analyst", "--ttl", "60", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)["link"]
    assert out["file_id"] == f.id and out["user"] == "analyst" and out["filename"] == f.name
    assert out["url"].startswith(hub.settings.public_url + "/download/")
    expires = datetime.fromisoformat(out["expires_at"].replace("Z", "+00:00"))
    assert 55 <= (expires - datetime.now(UTC)).total_seconds() <= 62
    token = out["path"].removeprefix("/download/")
    assert download(hub, token).file_id == f.id
    assert main(["link", str(f.id), "--user", "analyst"]) == 0
    assert capsys.readouterr().out.strip().startswith("http")
    assert main(["link", str(f.id), "--user", "outsider"]) == 2
    assert "not found or not permitted" in capsys.readouterr().err
    with pytest.raises(SystemExit) as info:
        main(["link", str(f.id), "--user", "analyst", "--ttl", "-5"])
    assert info.value.code == 2


def test_project_of_the_file_decides_permission(exported):
    """The analyst may view demo-open only; a file of demo-closed is refused even with a valid token."""
    hub, f = exported
    job = hub.service().start("manager", "demo-closed", "scans", {"format": "csv"})
    hub.run(job.id)
    with hub.db.read() as s:
        closed_file = s.scalars(select(File).where(File.job_id == job.id, File.name.endswith(".csv"))).one()
        assert s.get(Project, closed_file.project_id).slug == "demo-closed"
    assert refused(hub, token_for(hub, closed_file.id, "analyst")).status == 404
    assert download(hub, token_for(hub, closed_file.id, "manager"))

"""Scripts' access to files: ``exporthub tokens create|list|revoke`` (tokens stored as sha256 only) and
``exporthub download FILE_ID --user U [-o PATH]``, with the same checks, count and audit as a link."""

from __future__ import annotations

import hashlib
import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from cli import main
from exporthub import api_tokens
from exporthub.accounts import AccountService, SystemActor
from exporthub.errors import InvalidTransition, NotFound, PermissionDenied
from exporthub.models import ApiToken, AuditEvent, File
from tests.test_links import export_file

SYSTEM = SystemActor("pytest")


def _events(hub, action: str) -> list[tuple[str, str | None, str | None]]:
    with hub.db.read() as s:
        return [(e.outcome, e.actor, e.detail) for e in
                s.scalars(select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id))]


def test_tokens_are_shown_once_stored_hashed_listed_and_revoked(demo_hub, capsys):
    assert main(["tokens", "create", "--user", "analyst", "--name", "nightly sync", "--json"]) == 0
    made = json.loads(capsys.readouterr().out)["token"]
    secret = made["secret"]
    assert secret.startswith("eh_") and made["user"] == "analyst" and made["active"]
    with demo_hub.db.read() as s:
        row = s.scalars(select(ApiToken)).one()
    assert row.token_hash == hashlib.sha256(secret.encode()).hexdigest() and secret not in row.token_hash
    assert api_tokens.authenticate(demo_hub.db, secret).username == "analyst"
    assert main(["tokens", "list", "--json"]) == 0
    (listed,) = json.loads(capsys.readouterr().out)["tokens"]
    assert "secret" not in listed and listed["id"] == made["id"] and listed["last_used_at"] is not None
    assert main(["tokens", "revoke", str(made["id"])]) == 0
    assert api_tokens.authenticate(demo_hub.db, secret) is None
    assert main(["tokens", "revoke", str(made["id"])]) == 2
    assert "revoked already" in capsys.readouterr().err
    assert [e[0] for e in _events(demo_hub, "token-create")] == ["ok"]
    assert [e[0] for e in _events(demo_hub, "token-revoke")] == ["ok", "refused"]


def test_token_refusals_and_who_may_manage_them(demo_hub):
    with pytest.raises(NotFound):
        api_tokens.create(demo_hub.db, SYSTEM, "nobody", "x")
    with pytest.raises(InvalidTransition):  # field staff never log in, so hold no token
        api_tokens.create(demo_hub.db, SYSTEM, "staff01", "x")
    with pytest.raises(PermissionDenied):
        api_tokens.create(demo_hub.db, "analyst", "analyst", "my own")  # only admins and the operator
    view, secret = api_tokens.create(demo_hub.db, "admin", "viewer", "report bot", ttl_days=1)
    assert view.expires_at is not None and api_tokens.authenticate(demo_hub.db, secret).username == "viewer"
    # Deactivation revokes for good: reactivating does not bring the token back.
    accounts = AccountService(demo_hub.db)
    accounts.set_active("admin", "viewer", False)
    accounts.set_active("admin", "viewer", True)
    assert api_tokens.authenticate(demo_hub.db, secret) is None


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(header=st.one_of(st.none(), st.text(max_size=120), st.just("Bearer "), st.just("bearer eh_" + "A" * 43),
                        st.builds(lambda s: f"Bearer {s}", st.text(max_size=80))))
def test_any_authorization_header_is_a_live_token_or_nobody(demo_hub, header):
    assert api_tokens.authenticate(demo_hub.db, api_tokens.bearer_token(header)) is None


def test_download_saves_the_file_as_the_user_may(demo_hub, tmp_path, capsys):
    f = export_file(demo_hub)
    target = tmp_path / "out.csv"
    assert main(["download", str(f.id), "--user", "viewer", "-o", str(target), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)["download"]
    assert out["path"] == str(target) and hashlib.sha256(target.read_bytes()).hexdigest() == f.sha256
    assert _events(demo_hub, "download")[-1] == ("ok", "viewer", "via cli")
    with demo_hub.db.read() as s:
        assert s.get(File, f.id).download_count == 1
    # An existing file is kept unless --force; a folder gets the file's own name.
    assert main(["download", str(f.id), "--user", "viewer", "-o", str(target)]) == 2
    assert "exists already" in capsys.readouterr().err
    assert main(["download", str(f.id), "--user", "viewer", "-o", str(tmp_path)]) == 0
    assert (tmp_path / f.name).read_bytes() == target.read_bytes()
    assert main(["download", str(f.id), "--user", "viewer", "-o", str(target), "--force"]) == 0
    assert not list(tmp_path.glob(".download-*"))  # no half file left behind


def test_download_gives_one_answer_for_missing_and_not_permitted(demo_hub, tmp_path, capsys):
    f = export_file(demo_hub)
    assert main(["download", str(f.id), "--user", "outsider", "-o", str(tmp_path / "a")]) == 2
    hidden = capsys.readouterr().err.strip()
    assert main(["download", str(f.id + 1000), "--user", "outsider", "-o", str(tmp_path / "b")]) == 2
    missing = capsys.readouterr().err.strip()
    assert hidden.replace(str(f.id), "N") == missing.replace(str(f.id + 1000), "N") == \
        "error: File N not found or not permitted"
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()
    assert [e[2] for e in _events(demo_hub, "download")[-2:]] == ["no exports.view on the project", "unknown file"]

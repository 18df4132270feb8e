"""The backup export and ``exporthub restore``: checksums, a faithful round trip, and refusals."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import shutil
import zipfile
from pathlib import Path

import duckdb
import pytest
from sqlalchemy import func, select

from cli import main
from exporthub.db import Database
from exporthub.errors import PermissionDenied
from exporthub.lake.catalog import project_slugs
from exporthub.models import AuditEvent, ExportSession, Job, Membership, Project, User
from exporthub.passwords import hash_password
from exporthub.restore import BackupCorrupted, RestoreRefused, restore_backup
from exporthub.states import JobStatus
from tests._lake import lake_files, lake_sql


def run_backup(hub, *, user: str = "manager", slug: str = "demo-open") -> Path:
    service = hub.service()
    job = service.start(user, slug, "backup", {})
    assert hub.run(job.id) is JobStatus.COMPLETED, service.get(user, job.id).error
    (f,) = service.get(user, job.id).files
    return f.path


def lake_figures(settings, slug: str) -> dict[str, tuple]:
    """Counts and sums per table, and scans per username-free user id, read straight from parquet."""
    con = duckdb.connect()
    return {
        "zones": con.execute(
            f"SELECT count(*), sum(expected_items) FROM {lake_sql(settings, slug, 'zones')}"
        ).fetchone(),
        "zone_sessions": con.execute(
            f"SELECT count(*), sum(epoch(ended_at - started_at)) FROM {lake_sql(settings, slug, 'zone_sessions')}"
        ).fetchone(),
        "scans": con.execute(
            f"SELECT count(*), sum(quantity), sum(scan_id) FROM {lake_sql(settings, slug, 'scans')} "
            "WHERE NOT deleted"
        ).fetchone(),
        "costs": con.execute(
            f"SELECT count(*), round(sum(amount), 2) FROM {lake_sql(settings, slug, 'costs')}"
        ).fetchone(),
    }


def scans_by_username(settings, db, slug: str) -> dict[str, int]:
    with db.read() as s:
        names = {uid: name for uid, name in s.execute(select(User.id, User.username))}
    rows = (
        duckdb.connect()
        .execute(
            f"SELECT user_id, count(*) FROM {lake_sql(settings, slug, 'scans')} GROUP BY 1"
        )
        .fetchall()
    )
    return {names[uid]: n for uid, n in rows}


def test_backup_holds_the_lake_and_metadata_with_checksums(demo_hub):
    zip_path = run_backup(demo_hub)
    assert zip_path.name.startswith("backup_export_") and zip_path.suffix == ".zip"
    with zipfile.ZipFile(zip_path) as archive:
        manifest = json.loads(archive.read("manifest.json"))
        names = set(archive.namelist())
        assert names == {e["name"] for e in manifest["entries"]} | {"manifest.json"}
        for entry in manifest["entries"]:
            data = archive.read(entry["name"])
            assert hashlib.sha256(data).hexdigest() == entry["sha256"] and len(data) == entry["size"]
        # Each table's data files of the snapshot, byte for byte (the demo writes one file per table).
        entries = sorted(n for n in names if n.startswith("lake/"))
        assert entries == [f"lake/{t}/part-00000.parquet" for t in ("costs", "scans", "zone_sessions", "zones")]
        for table in ("costs", "scans", "zone_sessions", "zones"):
            (source,) = lake_files(demo_hub.settings, "demo-open", table)
            assert archive.read(f"lake/{table}/part-00000.parquet") == Path(source).read_bytes()
        members = json.loads(archive.read("metadata/memberships.json"))
        users = json.loads(archive.read("metadata/users.json"))
        project = json.loads(archive.read("metadata/project.json"))
        jobs = [json.loads(line) for line in archive.read("metadata/jobs.jsonl").splitlines()]
    assert {(m["username"], m["role"]) for m in members} == {
        ("manager", "manager"),
        ("analyst", "analyst"),
        ("viewer", "viewer"),
    }
    assert project["slug"] == "demo-open" and project["timezone"] == "Europe/Berlin"
    assert all("password" not in key for u in users for key in u)
    assert (
        manifest["lake_rows"]["scans"]
        == duckdb.connect().execute(
            f"SELECT count(*) FROM {lake_sql(demo_hub.settings, 'demo-open', 'scans')}").fetchone()[0]
    )
    assert [j["export_type"] for j in jobs] == ["backup"] and jobs[0]["status"] == "running"


def test_restore_round_trips_on_the_same_instance(demo_hub, capsys):
    service = demo_hub.service()
    scans = service.start("manager", "demo-open", "scans", {"format": "parquet"})
    assert demo_hub.run(scans.id) is JobStatus.COMPLETED
    zip_path = run_backup(demo_hub)
    rc = main(["restore", str(zip_path), "--project", "copy-open", "--user", "admin", "--json"])
    report = json.loads(capsys.readouterr().out)["restore"]
    assert rc == 0 and report["project"] == "copy-open" and report["unknown_usernames"] == []
    assert report["created_users"] == [] and report["remapped_user_ids"] is False
    s_ = demo_hub.settings
    assert lake_figures(s_, "copy-open") == lake_figures(s_, "demo-open")
    assert scans_by_username(s_, demo_hub.db, "copy-open") == scans_by_username(s_, demo_hub.db, "demo-open")
    with demo_hub.db.read() as s:
        new = s.scalar(select(Project).where(Project.slug == "copy-open"))
        roles = set(
            s.execute(
                select(User.username, Membership.role).join(Membership).where(Membership.project_id == new.id)
            ).all()
        )
        jobs = s.scalars(select(Job).where(Job.project_id == new.id)).all()
        sessions = s.scalars(select(ExportSession).where(ExportSession.project_id == new.id)).all()
        original = s.scalars(select(ExportSession).where(ExportSession.job_id == scans.id)).all()
        audit = s.scalars(select(AuditEvent).where(AuditEvent.action == "restore")).all()
    assert new.timezone == "Europe/Berlin" and new.status == "open"
    assert roles == {("manager", "manager"), ("analyst", "analyst"), ("viewer", "viewer")}
    # The finished scans job comes back hidden, with its export sessions; the running backup job does not.
    assert [(j.export_type, j.status, j.removed_at is not None) for j in jobs] == [
        ("scans", "completed", True)
    ]
    assert sorted((e.zone_id, e.watermark_scan_id, e.scan_count) for e in sessions) == sorted(
        (e.zone_id, e.watermark_scan_id, e.scan_count) for e in original
    )
    assert [(a.outcome, a.actor, a.project) for a in audit] == [("ok", "admin", "copy-open")]
    # The restored project works: an incremental scans export there finds nothing new.
    job = service.start("manager", "copy-open", "scans", {"format": "csv", "onlyNewSinceLastExport": True})
    assert demo_hub.run(job.id) is JobStatus.COMPLETED
    (csv,) = [f.path for f in service.get("manager", job.id).files if f.name.endswith(".csv")]
    assert duckdb.connect().execute(f"SELECT count(*) FROM read_csv('{csv}')").fetchone()[0] == 0


def test_restore_into_another_instance_maps_users_by_username(demo_hub, tmp_path):
    zip_path = run_backup(demo_hub, user="admin", slug="demo-closed")
    other_settings = dataclasses.replace(
        demo_hub.settings, data_dir=tmp_path / "other", database_url=f"sqlite:///{tmp_path / 'other.db'}",
        lake_url=(tmp_path / "other" / "lake").as_uri(),
    )
    other = Database(other_settings.database_url)
    other.migrate()
    with other.write() as s:  # a different numbering: two users before anyone from the demo
        for name in ("root", "zz-first", "manager"):
            s.add(
                User(
                    username=name,
                    display_name=name,
                    password_hash=hash_password("x"),
                    active=True,
                    is_admin=name == "root",
                    hourly_rate=0.0,
                )
            )
    try:
        report = restore_backup(other, other_settings, zip_path, project_slug="moved", actor="root")
        assert report.remapped_user_ids and report.created_users and report.unknown_usernames == []
        assert report.memberships == [("manager", "manager")]
        # Same numbers per person, although every user id changed.
        assert scans_by_username(other_settings, other, "moved") == scans_by_username(
            demo_hub.settings, demo_hub.db, "demo-closed"
        )
        assert lake_figures(other_settings, "moved") == lake_figures(demo_hub.settings, "demo-closed")
        with other.read() as s:
            staff = s.scalars(select(User).where(User.username.like("staff%"))).all()
        assert staff and all(u.password_hash is None and not u.is_admin for u in staff)
        # A member unknown to the target is reported, not created.
        with other.write() as s:
            s.execute(Membership.__table__.delete())
            s.execute(User.__table__.delete().where(User.username == "manager"))
        again = restore_backup(other, other_settings, zip_path, project_slug="moved-2", actor="root")
        assert again.unknown_usernames == ["manager"] and again.memberships == []
        assert again.reassigned_jobs == 0 and not again.created_users
    finally:
        other.dispose()


def flip_byte(zip_path: Path, entry: str, target: Path) -> Path:
    shutil.copy(zip_path, target)
    with zipfile.ZipFile(target) as archive:
        info = archive.getinfo(entry)
    with open(target, "r+b") as fh:
        fh.seek(
            info.header_offset + 30 + len(info.filename.encode()) + len(info.extra) + info.compress_size // 2
        )
        byte = fh.read(1)
        fh.seek(-1, 1)
        fh.write(bytes([byte[0] ^ 0x55]))
    return target


def edit_manifest(zip_path: Path, target: Path) -> Path:
    with zipfile.ZipFile(zip_path) as src, zipfile.ZipFile(target, "w") as dst:
        for info in src.infolist():
            data = src.read(info.filename)
            if info.filename == "manifest.json":
                manifest = json.loads(data)
                manifest["entries"][0]["sha256"] = "0" * 64
                data = json.dumps(manifest).encode()
            dst.writestr(info, data)
    return target


def counts(hub) -> tuple[int, int, int, int]:
    with hub.db.read() as s:
        return tuple(
            int(s.scalar(select(func.count()).select_from(m))) for m in (Project, User, Job, Membership)
        )


@pytest.mark.parametrize("damage", ["scans", "metadata", "manifest"])
def test_a_corrupted_backup_is_refused_and_creates_nothing(demo_hub, tmp_path, capsys, damage):
    zip_path = run_backup(demo_hub)
    with zipfile.ZipFile(zip_path) as archive:
        scans_entry = next(n for n in archive.namelist() if n.startswith("lake/scans/"))
    if damage == "scans":
        bad = flip_byte(zip_path, scans_entry, tmp_path / "bad.zip")
    elif damage == "metadata":
        bad = flip_byte(zip_path, "metadata/jobs.jsonl", tmp_path / "bad.zip")
    else:
        bad = edit_manifest(zip_path, tmp_path / "bad.zip")
    before = counts(demo_hub)
    lake_before = sorted(p.name for p in demo_hub.settings.lake_dir.iterdir())
    namespaces_before = project_slugs(demo_hub.settings)
    rc = main(["restore", str(bad), "--project", "broken", "--user", "admin"])
    err = capsys.readouterr().err
    assert rc == 2 and "Backup is corrupted, nothing was restored" in err
    assert "entry " in err and ("lake/" in err or "metadata/" in err)
    assert counts(demo_hub) == before
    assert sorted(p.name for p in demo_hub.settings.lake_dir.iterdir()) == lake_before
    assert project_slugs(demo_hub.settings) == namespaces_before
    with demo_hub.db.read() as s:
        (event,) = s.scalars(select(AuditEvent).where(AuditEvent.action == "restore")).all()
    assert event.outcome == "refused" and "corrupted" in event.detail
    with pytest.raises(BackupCorrupted):
        restore_backup(demo_hub.db, demo_hub.settings, bad, project_slug="broken", actor="admin")


def test_refusals_not_an_admin_taken_slug_not_a_backup(demo_hub, tmp_path, capsys):
    zip_path = run_backup(demo_hub)
    assert main(["restore", str(zip_path), "--project", "x1", "--user", "manager"]) == 2
    assert "only a global admin" in capsys.readouterr().err
    with pytest.raises(PermissionDenied):
        restore_backup(demo_hub.db, demo_hub.settings, zip_path, project_slug="x1", actor="analyst")
    assert main(["restore", str(zip_path), "--project", "demo-closed", "--user", "admin"]) == 2
    assert "Project already exists: demo-closed" in capsys.readouterr().err
    with pytest.raises(RestoreRefused, match="Invalid project slug"):
        restore_backup(demo_hub.db, demo_hub.settings, zip_path, project_slug="../evil", actor="admin")
    junk = tmp_path / "junk.zip"
    junk.write_bytes(b"not a zip at all")
    assert main(["restore", str(junk), "--project", "x2", "--user", "admin"]) == 2
    assert "not a readable zip archive" in capsys.readouterr().err
    assert not (demo_hub.settings.lake_dir / "x1").exists() and "x1" not in project_slugs(demo_hub.settings)


@pytest.mark.parametrize(
    ("slug", "user", "code"),
    [
        ("demo-open", "analyst", 0),
        ("demo-closed", "manager", 0),
        ("demo-open", "viewer", 2),
    ],
)
def test_cli_inline_backup_as_each_role_allows(demo_hub, capsys, slug, user, code):
    rc = main(["export", "backup", "--project", slug, "--user", user, "--inline", "--json"])
    out, err = capsys.readouterr()
    assert rc == code
    if code == 0:
        (f,) = json.loads(out)["job"]["files"]
        assert f["content_type"] == "application/zip"
        with zipfile.ZipFile(f["path"]) as archive:
            assert archive.testzip() is None and "manifest.json" in archive.namelist()
    else:  # with --json a refusal is JSON on stdout
        assert json.loads(out)["error"]["message"] == "Permission denied" and err == ""


def test_a_project_without_data_round_trips(hub):
    with hub.db.write() as s:
        s.add(User(username="root", display_name="Root", password_hash=hash_password("x"), is_admin=True))
        s.add(Project(slug="empty", name="Empty", timezone="Asia/Tokyo", status="closed"))
    zip_path = run_backup(hub, user="root", slug="empty")
    report = restore_backup(hub.db, hub.settings, zip_path, project_slug="empty-copy", actor="root")
    assert report.lake_files == 0 and set(report.lake_rows.values()) == {0}
    assert lake_files(hub.settings, "empty-copy", "scans") == []
    with hub.db.read() as s:
        copy = s.scalar(select(Project).where(Project.slug == "empty-copy"))
    assert (copy.timezone, copy.status, copy.name) == ("Asia/Tokyo", "closed", "Empty")

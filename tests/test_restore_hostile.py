"""Crafted backups: a manifest only proves an entry was not altered after the zip was made, so these
archives carry matching checksums. Every value an import would refuse, and every size over a limit,
is a clean refusal with one audit event that creates nothing (no project, user, job or lake folder)."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from exporthub.errors import BackupInvalid, InvalidValue
from exporthub.models import AuditEvent, Job, Membership, Project, User
from exporthub.restore import restore_backup
from exporthub.validation import validate_username
from tests.exporters.test_backup import run_backup

_backups: dict[str, Path] = {}


def backup_of(hub, tmp_path_factory) -> Path:
    """One real backup of demo-open per test session (the demo instance is the same in every copy)."""
    if "demo-open" not in _backups:
        made = run_backup(hub)
        keep = tmp_path_factory.mktemp("backups") / made.name
        keep.write_bytes(made.read_bytes())
        _backups["demo-open"] = keep
    return _backups["demo-open"]


def repack(src: Path, dst: Path, *, edit: dict[str, Callable[[bytes], bytes | None]] | None = None,
           add: dict[str, bytes] | None = None) -> Path:
    """A copy of a backup with entries changed (``None`` drops one) and added, under a manifest that
    matches: what an attacker with a text editor and sha256sum makes."""
    edit, add = edit or {}, add or {}
    with zipfile.ZipFile(src) as archive:
        manifest = json.loads(archive.read("manifest.json"))
        entries: dict[str, bytes] = {}
        for info in archive.infolist():
            if info.filename == "manifest.json":
                continue
            data = archive.read(info)
            if info.filename in edit:
                data = edit[info.filename](data)
            if data is not None:
                entries[info.filename] = data
    entries.update(add)
    manifest["entries"] = [{"name": n, "size": len(d), "sha256": hashlib.sha256(d).hexdigest()}
                           for n, d in entries.items()]
    with zipfile.ZipFile(dst, "w", zipfile.ZIP_DEFLATED) as out:
        for name, data in entries.items():
            out.writestr(name, data)
        out.writestr("manifest.json", json.dumps(manifest))
    return dst


def json_edit(change: Callable[[Any], None]) -> Callable[[bytes], bytes]:
    def run(data: bytes) -> bytes:
        value = json.loads(data)
        change(value)
        return json.dumps(value).encode()

    return run


def jsonl_edit(change: Callable[[list[dict[str, Any]]], None]) -> Callable[[bytes], bytes]:
    def run(data: bytes) -> bytes:
        rows = [json.loads(line) for line in data.splitlines() if line.strip()]
        change(rows)
        return "".join(json.dumps(r) + "\n" for r in rows).encode()

    return run


def state(hub) -> tuple:
    with hub.db.read() as s:
        counts = tuple(int(s.scalar(select(func.count()).select_from(m))) for m in (Project, User, Job, Membership))
    return counts, sorted(p.name for p in hub.settings.lake_dir.iterdir())


def restore_events(hub) -> list[tuple[str, str | None]]:
    with hub.db.read() as s:
        return [(e.outcome, e.detail) for e in s.scalars(select(AuditEvent).where(AuditEvent.action == "restore"))]


def assert_refused(hub, path: Path, expected: str, settings_=None) -> str:
    before = state(hub)
    with pytest.raises(BackupInvalid) as info:
        restore_backup(hub.db, settings_ or hub.settings, path, project_slug="crafted", actor="admin")
    assert expected in info.value.message, info.value.message
    assert state(hub) == before  # nothing created, nothing left in the lake folder
    events = restore_events(hub)
    assert events[-1] == ("refused", info.value.message) and len(events) == 1
    return info.value.message


def _user(name: str) -> Callable[[list[dict[str, Any]]], None]:
    def change(users: list[dict[str, Any]]) -> None:
        users[0]["username"] = name

    return change


def _first_job(key: str, value: Any) -> Callable[[list[dict[str, Any]]], None]:
    def change(rows: list[dict[str, Any]]) -> None:
        rows[0][key] = value

    return change


CASES = {
    "timezone": ("metadata/project.json", json_edit(lambda p: p.update(timezone="Mars/Olympus_Mons")),
                 "Unknown timezone 'Mars/Olympus_Mons'"),
    "status": ("metadata/project.json", json_edit(lambda p: p.update(status="bogus-status")),
               "unknown project status 'bogus-status'"),
    "project name": ("metadata/project.json", json_edit(lambda p: p.update(name="x" * 201)),
                     "name must be printable text of 1 to 200 characters"),
    "source slug": ("metadata/project.json", json_edit(lambda p: p.update(slug="../../etc")), "Invalid project slug"),
    "html username": ("metadata/users.json", json_edit(_user("<img src=x onerror=alert(1)>")), "Invalid username"),
    "long username": ("metadata/users.json", json_edit(_user("a" * 65)), "1 to 64 characters"),
    "cli username": ("metadata/users.json", json_edit(_user("cli:root")), "Invalid username 'cli:root'"),
    "membership role": ("metadata/memberships.json", json_edit(lambda m: m[0].update(role="superuser")),
                        "Unknown role 'superuser'"),
    "membership user": ("metadata/memberships.json", json_edit(lambda m: m[0].update(username="cli:admin")),
                        "Invalid username 'cli:admin'"),
    "job status": ("metadata/jobs.jsonl", jsonl_edit(_first_job("status", "bogus-status")),
                   "unknown job status 'bogus-status'"),
    "job owner": ("metadata/jobs.jsonl", jsonl_edit(_first_job("username", "cli:root")), "Invalid username"),
    "job time": ("metadata/jobs.jsonl", jsonl_edit(_first_job("created_at", "yesterday")),
                 "created_at must be an ISO 8601 time"),
    "session numbers": ("metadata/export_sessions.jsonl", jsonl_edit(_first_job("scan_count", "many")),
                        "scan_count must be a whole number"),
    "not json": ("metadata/users.json", lambda _d: b"{not json", "metadata/users.json is not valid JSON"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_a_value_an_import_would_refuse_is_refused(demo_hub, tmp_path, tmp_path_factory, case):
    entry, change, expected = CASES[case]
    src = backup_of(demo_hub, tmp_path_factory)
    if entry == "metadata/export_sessions.jsonl":  # the demo backup has none: give it one to spoil
        with zipfile.ZipFile(src) as archive:
            job_id = json.loads(archive.read("metadata/jobs.jsonl").splitlines()[0])["id"]
        row = {"job_id": job_id, "export_type": "scans", "zone_id": 1, "watermark_scan_id": 5, "scan_count": 5,
               "created_at": "2026-11-20T10:00:00Z"}
        src = repack(src, tmp_path / "with-session.zip",
                     edit={entry: lambda _d: (json.dumps(row) + "\n").encode()})
    assert_refused(demo_hub, repack(src, tmp_path / "crafted.zip", edit={entry: change}), expected)


def _scans_entry(path: Path) -> str:
    with zipfile.ZipFile(path) as archive:
        return next(n for n in archive.namelist() if n.startswith("lake/scans/"))


def _retyped(data: bytes) -> bytes:
    table = pq.read_table(io.BytesIO(data))
    i = table.schema.get_field_index("quantity")
    table = table.set_column(i, pa.field("quantity", pa.string()), table["quantity"].cast(pa.string()))
    out = io.BytesIO()
    pq.write_table(table, out)
    return out.getvalue()


def _without_device(data: bytes) -> bytes:
    out = io.BytesIO()
    pq.write_table(pq.read_table(io.BytesIO(data)).drop(["device"]), out)
    return out.getvalue()


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (_retyped, "does not have the scans table's schema; unexpected columns or types: quantity: string"),
        (lambda _d: b"PAR1 this is not parquet", "is not a readable Parquet file"),
        (_without_device, "missing columns: device"),
    ],
    ids=["wrong type", "not parquet", "missing column"],
)
def test_a_lake_file_of_the_wrong_schema_is_refused(demo_hub, tmp_path, tmp_path_factory, change, expected):
    src = backup_of(demo_hub, tmp_path_factory)
    crafted = repack(src, tmp_path / "crafted.zip", edit={_scans_entry(src): change})
    assert_refused(demo_hub, crafted, expected)


def test_sizes_are_refused_from_the_zip_directory_before_anything_is_unpacked(demo_hub, tmp_path, tmp_path_factory):
    src = backup_of(demo_hub, tmp_path_factory)
    # A 2 MB project.json (it is read into memory whole): over its fixed limit.
    padded = repack(src, tmp_path / "padded.zip", edit={
        "metadata/project.json": json_edit(lambda p: p.update(padding=" " * (2 * 1024**2)))})
    assert_refused(demo_hub, padded, "entry 'metadata/project.json' unpacks to 2.0 MB; allowed: at most 1.0 MB")
    # An entry no backup has: allowed none, whatever its checksum.
    extra = repack(src, tmp_path / "extra.zip", add={"lake/scans/part-zz.parquet.exe": b"MZ" * 10})
    message = assert_refused_any(demo_hub, extra)
    assert "not a backup entry" in message or "unexpected entry name" in message
    # Lake files and the whole archive against the configured limits.
    scans = _scans_entry(src)
    with zipfile.ZipFile(src) as archive:
        size = archive.getinfo(scans).file_size
    tight = dataclasses.replace(demo_hub.settings, restore_max_entry_bytes=size - 1)
    assert_refused_again(demo_hub, src, tight, f"entry '{scans}' unpacks to")
    total = dataclasses.replace(demo_hub.settings, restore_max_total_bytes=1000)
    assert_refused_again(demo_hub, src, total, "EXPORTHUB_RESTORE_MAX_TOTAL_BYTES")


def test_a_zip_bomb_is_refused_without_being_inflated(demo_hub, tmp_path, tmp_path_factory, monkeypatch):
    """512 MB of zeros compress to about 0.5 MB; the refusal must come from the directory alone: the
    bomb's member is never opened (every read of a member goes through ``ZipFile.open``)."""
    src = backup_of(demo_hub, tmp_path_factory)
    bomb = tmp_path / "bomb.zip"
    with zipfile.ZipFile(src) as archive, zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as out:
        for info in archive.infolist():
            out.writestr(info, archive.read(info))
        with out.open(zipfile.ZipInfo("metadata/jobs.jsonl.big"), "w", force_zip64=True) as fh:
            chunk = bytes(1 << 20)
            for _ in range(512):
                fh.write(chunk)
    opened: list[str] = []
    real_open = zipfile.ZipFile.open

    def recording_open(self, name, *args, **kwargs):
        opened.append(name.filename if isinstance(name, zipfile.ZipInfo) else name)
        return real_open(self, name, *args, **kwargs)

    monkeypatch.setattr(zipfile.ZipFile, "open", recording_open)
    message = assert_refused_any(demo_hub, bomb)
    assert "unpacks to 512.0 MB; allowed: none" in message
    assert "metadata/jobs.jsonl.big" not in opened, opened


def assert_refused_any(hub, path: Path) -> str:
    with pytest.raises(BackupInvalid) as info:
        restore_backup(hub.db, hub.settings, path, project_slug="crafted", actor="admin")
    assert restore_events(hub)[-1] == ("refused", info.value.message)
    return info.value.message


def assert_refused_again(hub, path: Path, settings_, expected: str) -> None:
    before = state(hub)
    with pytest.raises(BackupInvalid, match=expected.replace("(", r"\(").replace(")", r"\)")):
        restore_backup(hub.db, settings_, path, project_slug="crafted", actor="admin")
    assert state(hub) == before and restore_events(hub)[-1][0] == "refused"


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=st.one_of(st.text(max_size=80), st.from_regex(r"\A[A-Za-z0-9][A-Za-z0-9._@-]{0,70}\Z")))
def test_any_username_in_a_backup_is_restored_as_is_only_if_users_add_would_take_it(
        demo_hub, tmp_path_factory, name):
    src = backup_of(demo_hub, tmp_path_factory)
    folder = tmp_path_factory.mktemp("crafted")
    with zipfile.ZipFile(src) as archive:
        users = json.loads(archive.read("metadata/users.json"))
    # The first person in the lake gets the drawn name (and is new to this instance).
    index = next(i for i, u in enumerate(users) if u["in_lake"])

    def rename(value: list[dict[str, Any]]) -> None:
        value[index]["username"] = name

    crafted = repack(src, folder / "crafted.zip", edit={"metadata/users.json": json_edit(rename)})
    others = {u["username"] for i, u in enumerate(users) if i != index}
    try:
        validate_username(name)
        valid = name not in others  # two people of one backup under one name: refused too
    except InvalidValue:
        valid = False
    slug = f"crafted-{len(restore_events(demo_hub)) + 1}"
    with demo_hub.db.read() as s:
        taken = s.scalar(select(User.id).where(User.username == name)) is not None
    try:
        report = restore_backup(demo_hub.db, demo_hub.settings, crafted, project_slug=slug, actor="admin")
    except BackupInvalid as exc:
        assert not valid, (name, exc.message)
        assert restore_events(demo_hub)[-1] == ("refused", exc.message)
        with demo_hub.db.read() as s:
            assert s.scalar(select(Project.id).where(Project.slug == slug)) is None
        return
    assert valid, name
    assert taken or name in report.created_users

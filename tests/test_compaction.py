"""Lake maintenance: compaction keeps the rows, readers never see a partial state, and snapshot
expiry never takes files that a running job or an incremental export still needs."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
from sqlalchemy import select, update

from exporthub import lake
from exporthub.accounts import SystemActor
from exporthub.compaction import compact
from exporthub.importer import ImportFile, import_files
from exporthub.lake.catalog import load_table
from exporthub.lake.maintenance import ORPHAN_AGE, maintain_project
from exporthub.models import AuditEvent, Job
from exporthub.states import JobStatus

SLUG = "demo-open"
SYSTEM = SystemActor("pytest")
LATER = datetime.now(UTC) + timedelta(hours=3)  # every snapshot made in a test is "old" by then


def aggregates(snap: lake.LakeSnapshot) -> dict[str, tuple]:  # type: ignore[type-arg]
    """Counts and sums per table, read independently from the snapshot's explicit file lists."""
    sql = {
        "scans": "count(*), count(DISTINCT scan_id), sum(scan_id), sum(quantity), min(scanned_at), "
        "max(scanned_at), sum(CASE WHEN deleted THEN 1 ELSE 0 END), count(DISTINCT barcode)",
        "zones": "count(*), sum(zone_id), count(DISTINCT code)",
        "zone_sessions": "count(*), sum(session_id), sum(epoch(ended_at))",
        "costs": "count(*), round(sum(amount), 2), round(sum(hours), 4)",
    }
    return {
        t: duckdb.sql(f"SELECT {q} FROM read_parquet({list(snap.files[t])!r})").fetchall()[0]
        for t, q in sql.items()
    }


def extra_scans(hub, folder: Path, round_no: int, rows: int) -> Path:  # type: ignore[no-untyped-def]
    """A small scans file for an existing session, written by hand."""
    files = list(lake.snapshot(hub.settings, SLUG).files["zone_sessions"])
    sid, zone, user = duckdb.sql(
        f"SELECT session_id, zone_id, user_id FROM read_parquet({files!r}) "
        "WHERE NOT deleted ORDER BY session_id LIMIT 1"
    ).fetchall()[0]
    lines = ["zone_id,session_id,user_id,barcode,quantity,scanned_at,device"]
    lines += [
        f"{zone},{sid},{user},R{round_no}-{i:04d},1,2026-11-19T10:{i % 60:02d}:00+01:00,DEV-X"
        for i in range(rows)
    ]
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"extra-{round_no}.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def fragment(hub, folder: Path, imports: int = 4, rows: int = 20, start: int = 100) -> int:  # type: ignore[no-untyped-def]
    """Append ``imports`` small scans files (one commit each); returns the number of scans files."""
    for round_no in range(start, start + imports):
        import_files(hub.db, hub.settings, SYSTEM, SLUG, "scans",
                     [ImportFile.from_path(extra_scans(hub, folder, round_no, rows))])
    return len(lake.snapshot(hub.settings, SLUG).files["scans"])


def snapshot_ids(hub) -> list[int]:  # type: ignore[no-untyped-def]
    table = load_table(hub.settings, SLUG, "scans")
    assert table is not None
    return [s.snapshot_id for s in table.metadata.snapshots]


def test_compaction_keeps_counts_and_sums_and_a_snapshot_taken_before_still_reads(demo_hub, tmp_path):
    hub = demo_hub
    assert fragment(hub, tmp_path) == 5
    before = lake.snapshot(hub.settings, SLUG)
    expected = aggregates(before)
    report = compact(hub.db, hub.settings, SYSTEM, SLUG)
    scans = next(t for t in report.tables if t.table == "scans")
    assert (scans.files_before, scans.files_after, scans.rows_rewritten) == (5, 1, expected["scans"][0])
    after = lake.snapshot(hub.settings, SLUG)
    assert len(after.files["scans"]) == 1 and after.files["scans"][0] not in before.files["scans"]
    assert aggregates(after) == expected
    # The compaction is a "replace" snapshot: the rows did not change.
    table = load_table(hub.settings, SLUG, "scans")
    assert table is not None and table.current_snapshot().summary.operation.value == "replace"
    # Recent snapshots are kept, so a reader that took one before still reads its own files.
    assert aggregates(before) == expected
    ids = duckdb.sql(f"SELECT scan_id FROM read_parquet('{after.files['scans'][0]}')").fetchall()
    assert [i for (i,) in ids] == sorted(i for (i,) in ids)
    # A second run finds nothing to merge and commits nothing.
    again = compact(hub.db, hub.settings, SYSTEM, SLUG)
    assert all(t.files_before == t.files_after for t in again.tables)
    assert lake.snapshot(hub.settings, SLUG).ids == after.ids
    with hub.db.read() as s:
        actions = [(e.action, e.outcome, e.actor)
                   for e in s.scalars(select(AuditEvent).where(AuditEvent.action == "compact"))]
    assert actions == [("compact", "ok", "cli:pytest")] * 2


def test_expiry_keeps_what_a_running_job_reads_and_deletes_the_rest(demo_hub, tmp_path):
    hub = demo_hub
    fragment(hub, tmp_path)
    running = lake.snapshot(hub.settings, SLUG)  # what a long export took when it started
    expected = aggregates(running)
    job = hub.service().start("analyst", SLUG, "users", {})
    with hub.db.write() as s:
        s.execute(update(Job).where(Job.id == job.id).values(status=str(JobStatus.RUNNING),
                                                              lake_snapshot=running.ids))
    fragment(hub, tmp_path, imports=2, start=200)
    maintain_project(hub.db, hub.settings, SLUG, now=LATER)
    assert aggregates(running) == expected  # its files are all still there
    assert running.ids["scans"] in snapshot_ids(hub)

    with hub.db.write() as s:
        s.execute(update(Job).where(Job.id == job.id).values(status=str(JobStatus.COMPLETED)))
    current = lake.snapshot(hub.settings, SLUG)
    report = maintain_project(hub.db, hub.settings, SLUG, now=LATER)
    assert report.snapshots_expired > 0 and report.files_deleted > 0
    assert snapshot_ids(hub) == [current.ids["scans"]]  # only the current one is left
    assert not any(Path(p).exists() for p in running.files["scans"])  # merged away, then deleted
    assert aggregates(lake.snapshot(hub.settings, SLUG)) == aggregates(current)


def test_orphan_files_go_only_when_old(demo_hub):
    hub = demo_hub
    data = Path(lake.snapshot(hub.settings, SLUG).files["scans"][0]).parent
    stray = data / "00000-9-orphan.parquet"
    stray.write_bytes(b"left by a writer that died before its commit")
    maintain_project(hub.db, hub.settings, SLUG)
    assert stray.exists()  # it could be an import about to commit
    maintain_project(hub.db, hub.settings, SLUG, now=datetime.now(UTC) + ORPHAN_AGE + timedelta(minutes=1))
    assert not stray.exists()
    con, _ = lake.open_project(hub.settings, SLUG)
    assert con.execute("SELECT count(*) FROM scans").fetchall()[0][0] > 0


def test_readers_never_see_a_partial_state_during_appends_and_compactions(demo_hub, tmp_path):
    hub = demo_hub
    base = aggregates(lake.snapshot(hub.settings, SLUG))["scans"][0]
    rounds, per_round = 4, 25
    valid = {base + i * per_round for i in range(rounds + 1)}
    seen: set[int] = set()
    errors: list[BaseException] = []
    stop = threading.Event()

    def reader() -> None:
        try:
            while not stop.is_set():
                con, _snap = lake.open_project(hub.settings, SLUG)
                try:
                    seen.add(con.execute("SELECT count(*) FROM scans").fetchall()[0][0])
                finally:
                    con.close()
        except BaseException as exc:  # noqa: BLE001 - handed to the test thread
            errors.append(exc)

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        for round_no in range(1, rounds + 1):
            import_files(hub.db, hub.settings, SYSTEM, SLUG, "scans",
                         [ImportFile.from_path(extra_scans(hub, tmp_path, round_no, per_round))])
            compact(hub.db, hub.settings, SYSTEM, SLUG)
    finally:
        stop.set()
        thread.join()
    assert not errors, errors
    assert seen and seen <= valid, sorted(seen - valid)
    assert len(lake.snapshot(hub.settings, SLUG).files["scans"]) == 1
    assert aggregates(lake.snapshot(hub.settings, SLUG))["scans"][0] == base + rounds * per_round

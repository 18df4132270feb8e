"""Compaction: same data in fewer files, no partial state for readers, old snapshots keep working
until no running job can need them, and the purge that follows."""

from __future__ import annotations

import json
import threading
from datetime import timedelta
from pathlib import Path

import duckdb
import pytest
from sqlalchemy import select

from exporthub import lake
from exporthub.accounts import SystemActor
from exporthub.compaction import compact, purge_retired
from exporthub.importer import ImportFile, import_files
from exporthub.models import AuditEvent, Job, utcnow

SLUG = "demo-open"
SYSTEM = SystemActor("pytest")


def aggregates(files: dict[str, tuple[str, ...]] | lake.LakeSnapshot) -> dict[str, tuple]:  # type: ignore[type-arg]
    """Counts and sums per table, read independently from an explicit list of parquet files."""
    listing = files.files if isinstance(files, lake.LakeSnapshot) else files
    sql = {
        "scans": "count(*), count(DISTINCT scan_id), sum(scan_id), sum(quantity), min(scanned_at), "
        "max(scanned_at), sum(CASE WHEN deleted THEN 1 ELSE 0 END), count(DISTINCT barcode)",
        "zones": "count(*), sum(zone_id), count(DISTINCT code)",
        "zone_sessions": "count(*), sum(session_id), sum(epoch(ended_at))",
        "costs": "count(*), round(sum(amount), 2), round(sum(hours), 4)",
    }
    return {
        t: duckdb.sql(f"SELECT {q} FROM read_parquet({list(listing[t])!r})").fetchall()[0]
        for t, q in sql.items()
    }


def on_disk(hub, table: str = "scans") -> list[Path]:  # type: ignore[no-untyped-def]
    return sorted((hub.settings.lake_dir / SLUG / table).glob("part-*.parquet"))


def fragment(hub, folder: Path, imports: int = 4, rows: int = 20) -> int:  # type: ignore[no-untyped-def]
    """Append ``imports`` small scans files (one part each); returns the number of scans parts."""
    for round_no in range(100, 100 + imports):
        import_files(
            hub.db,
            hub.settings,
            SYSTEM,
            SLUG,
            "scans",
            [ImportFile.from_path(_extra_scans(hub, folder, round_no, rows))],
        )
    return len(lake.list_parts(hub.settings, SLUG, "scans"))


def test_compaction_keeps_counts_and_sums_and_a_snapshot_taken_before_still_reads(demo_hub, tmp_path):
    hub = demo_hub
    assert fragment(hub, tmp_path) == 5
    before = lake.snapshot(hub.settings, SLUG)
    expected = aggregates(before)
    report = compact(hub.db, hub.settings, SYSTEM, SLUG)
    scans = next(t for t in report.tables if t.table == "scans")
    assert (scans.parts_before, scans.parts_after, scans.rows) == (5, 1, expected["scans"][0])
    after = lake.snapshot(hub.settings, SLUG)
    assert len(after.files["scans"]) == 1 and after.files["scans"][0] not in before.files["scans"]
    assert aggregates(after) == expected
    # The old files are still on disk, hidden from new readers; the old snapshot reads them.
    assert len(on_disk(hub)) == 6
    assert aggregates(before) == expected
    con = duckdb.connect()
    before.register(con)
    assert con.sql("SELECT count(*), sum(quantity) FROM scans").fetchall()[0] == (
        expected["scans"][0],
        expected["scans"][3],
    )
    # The merged part is sorted by scan id.
    ids = duckdb.sql(f"SELECT scan_id FROM read_parquet('{after.files['scans'][0]}')").fetchall()
    assert [i for (i,) in ids] == sorted(i for (i,) in ids)
    # A second run finds nothing to merge.
    again = compact(hub.db, hub.settings, SYSTEM, SLUG)
    assert all(t.parts_before == t.parts_after for t in again.tables)
    assert lake.snapshot(hub.settings, SLUG) == after
    with hub.db.read() as s:
        actions = [
            (e.action, e.outcome, e.actor)
            for e in s.scalars(select(AuditEvent).where(AuditEvent.action == "compact"))
        ]
    assert actions == [("compact", "ok", "cli:pytest")] * 2


def test_old_parts_are_purged_only_after_the_grace_period_and_the_jobs_that_may_read_them(demo_hub, tmp_path):
    hub = demo_hub
    assert fragment(hub, tmp_path) == 5
    service = hub.service()
    job = service.start("analyst", SLUG, "scans", {"format": "csv"})
    with hub.db.write() as s:  # a long export that started before the compaction and still runs
        row = s.get(Job, job.id)
        row.status, row.started_at, row.heartbeat_at = "running", utcnow() - timedelta(minutes=5), utcnow()
    before = lake.snapshot(hub.settings, SLUG)
    expected = aggregates(before)
    compact(hub.db, hub.settings, SYSTEM, SLUG)
    assert purge_retired(hub.db, hub.settings, SLUG) == 0  # inside the grace period
    assert purge_retired(hub.db, hub.settings, SLUG, grace=timedelta(0)) == 0  # the job may still read them
    assert aggregates(before) == expected
    with hub.db.write() as s:
        row = s.get(Job, job.id)
        row.status, row.finished_at = "completed", utcnow()
    # A job that started after the compaction does not hold the old files back.
    later = service.start("analyst", SLUG, "users", {})
    with hub.db.write() as s:
        row = s.get(Job, later.id)
        row.status, row.started_at = "running", utcnow() + timedelta(seconds=1)
    assert purge_retired(hub.db, hub.settings, SLUG, grace=timedelta(0)) == 5
    assert len(on_disk(hub)) == 1
    assert aggregates(lake.snapshot(hub.settings, SLUG)) == expected
    with pytest.raises(duckdb.IOException):
        aggregates(before)  # now gone: nobody could still be reading them


def test_a_sidecar_hides_nothing_until_its_part_is_in_place(demo_hub, tmp_path):
    """The write order that makes the swap atomic: sidecar first, then the part's one rename."""
    hub = demo_hub
    fragment(hub, tmp_path, imports=2)
    folder = hub.settings.lake_dir / SLUG / "scans"
    parts = lake.list_parts(hub.settings, SLUG, "scans")
    merged = folder / "part-99999999999999999999-merged.parquet"
    body = {"replaces": [p.name for p in parts], "retired_at": "2026-01-01T00:00:00+00:00"}
    lake.replaces_path(merged).write_text(json.dumps(body))
    assert (
        lake.list_parts(hub.settings, SLUG, "scans") == parts
    )  # a sidecar without its part counts for nothing
    merged.write_bytes(parts[0].read_bytes())
    assert lake.list_parts(hub.settings, SLUG, "scans") == [merged]


def _extra_scans(hub, folder: Path, round_no: int, rows: int) -> Path:  # type: ignore[no-untyped-def]
    """A small scans file for an existing session, written by hand."""
    files = [str(p) for p in lake.list_parts(hub.settings, SLUG, "zone_sessions")]
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


def test_readers_never_see_a_partial_state_during_appends_and_compactions(demo_hub, tmp_path):
    hub = demo_hub
    base = aggregates(lake.snapshot(hub.settings, SLUG))["scans"][0]
    rounds, per_round = 4, 25
    valid = {base + i * per_round for i in range(rounds + 1)}
    seen: set[int] = set()
    errors: list[BaseException] = []
    stop = threading.Event()

    def reader() -> None:
        con = duckdb.connect()
        try:
            while not stop.is_set():
                con2, snap = lake.open_project(hub.settings, SLUG)
                try:
                    seen.add(con2.execute("SELECT count(*) FROM scans").fetchall()[0][0])
                finally:
                    con2.close()
        except BaseException as exc:  # noqa: BLE001 - handed to the test thread
            errors.append(exc)
        finally:
            con.close()

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        for round_no in range(1, rounds + 1):
            import_files(
                hub.db,
                hub.settings,
                SYSTEM,
                SLUG,
                "scans",
                [ImportFile.from_path(_extra_scans(hub, tmp_path, round_no, per_round))],
            )
            compact(hub.db, hub.settings, SYSTEM, SLUG)
    finally:
        stop.set()
        thread.join()
    assert not errors
    assert seen and seen <= valid, sorted(seen - valid)
    assert len(lake.list_parts(hub.settings, SLUG, "scans")) == 1
    assert aggregates(lake.snapshot(hub.settings, SLUG))["scans"][0] == base + rounds * per_round


def test_chained_compactions_list_everything_they_supersede_so_any_purge_order_is_safe(demo_hub, tmp_path):
    hub = demo_hub
    fragment(hub, tmp_path)
    compact(hub.db, hub.settings, SYSTEM, SLUG)
    (first,) = lake.list_parts(hub.settings, SLUG, "scans")
    import_files(
        hub.db,
        hub.settings,
        SYSTEM,
        SLUG,
        "scans",
        [ImportFile.from_path(_extra_scans(hub, tmp_path, 1, 10))],
    )
    expected = aggregates(lake.snapshot(hub.settings, SLUG))
    compact(hub.db, hub.settings, SYSTEM, SLUG)
    (second,) = lake.list_parts(hub.settings, SLUG, "scans")
    superseded = lake.read_replaces(second)
    assert superseded is not None and first.name in superseded.names
    assert len(superseded.names) == 5 + 2  # the first merge's five, the first merge and the import
    # Delete the first merge before what it superseded: nothing old may show through.
    first.unlink()
    assert lake.list_parts(hub.settings, SLUG, "scans") == [second]
    assert purge_retired(hub.db, hub.settings, SLUG, grace=timedelta(0)) == 6
    assert on_disk(hub) == [second]
    assert aggregates(lake.snapshot(hub.settings, SLUG)) == expected

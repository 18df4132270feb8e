"""The CLI contract that scripts and cron rely on: names, JSON shapes and exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cli import main
from exporthub import lake
from tests._lake import lake_sql


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


JOB_KEYS = {"id", "export_type", "project", "user", "status", "progress", "warnings", "error", "created_at",
            "started_at", "finished_at", "run_at", "variables", "parent_id", "cancel_requested",
            "export_session_count", "export_sessions_reset", "removed", "files"}


def test_export_inline_prints_the_job_object(demo_hub, capsys):
    code, out, _ = run(capsys, "export", "scans", "--project", "demo-open", "--user", "analyst", "--inline",
                       "--var", "format=parquet", "--json")
    assert code == 0
    job = json.loads(out)["job"]
    assert set(job) == JOB_KEYS
    assert job["status"] == "completed" and job["progress"] == 100 and isinstance(job["id"], int)
    assert job["created_at"].endswith("Z") and job["finished_at"].endswith("Z")
    (f,) = job["files"]
    assert set(f) == {"id", "name", "path", "size", "sha256", "content_type"}
    assert f["path"].startswith("/") and f["name"].endswith(".parquet")


def test_job_adds_log_and_children(demo_hub, capsys):
    run(capsys, "export", "scans", "--project", "demo-open", "--user", "analyst", "--inline", "--json")
    code, out, _ = run(capsys, "job", "1", "--user", "analyst", "--json")
    job = json.loads(out)["job"]
    assert code == 0 and set(job) == JOB_KEYS | {"log", "children", "lake_snapshot"}
    assert {"time", "level", "message"} == set(job["log"][0]) and job["children"] == []
    # The data cut-off: the Iceberg snapshot the export read, per lake table.
    assert job["lake_snapshot"] == lake.current_ids(demo_hub.settings, "demo-open")


def test_jobs_lists_newest_first(demo_hub, capsys):
    for fmt in ("csv", "parquet"):
        run(capsys, "export", "scans", "--project", "demo-open", "--user", "analyst", "--inline", "--var",
            f"format={fmt}")
    code, out, _ = run(capsys, "jobs", "--project", "demo-open", "--user", "viewer", "--json")
    jobs = json.loads(out)["jobs"]
    assert code == 0 and [j["id"] for j in jobs] == [2, 1]


def test_export_without_mode_enqueues_and_returns(demo_hub, capsys, monkeypatch):
    import cli

    queued: list[int] = []

    class FakeQueue:
        def enqueue(self, job_id, *, eta=None):
            queued.append(job_id)

    monkeypatch.setattr(cli.EDGES, "queue", FakeQueue)
    code, out, _ = run(capsys, "export", "scans", "--project", "demo-open", "--user", "analyst", "--json")
    assert code == 0 and json.loads(out)["job"]["status"] == "ready" and queued == [1]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (("export", "scans", "--project", "demo-open", "--user", "viewer", "--inline"), "Permission denied"),
        (("export", "scans", "--project", "demo-closed", "--user", "analyst", "--inline"), "Permission denied"),
        (("export", "scans", "--project", "demo-open", "--user", "analyst", "--inline", "--var", "format=doc"),
         "Invalid variable 'format'"),
        (("export", "scans", "--project", "demo-open", "--user", "analyst", "--inline", "--var", "oops"),
         "KEY=VALUE"),
        (("export", "nope", "--project", "demo-open", "--user", "analyst", "--inline"), "Unknown export type"),
        (("export", "scans", "--project", "nope", "--user", "analyst", "--inline"), "Unknown project"),
        (("export", "scans", "--project", "demo-open", "--user", "nobody", "--inline"), "Unknown user"),
        (("job", "999", "--user", "analyst"), "Job 999 not found or not permitted"),
        (("cancel", "999", "--user", "analyst"), "Job 999 not found or not permitted"),
    ],
)
def test_refusals_exit_2_with_message_on_stderr(demo_hub, capsys, argv, message):
    code, out, err = run(capsys, *argv)
    assert code == 2 and message in err and out == ""


def test_already_running_exits_2(demo_hub, capsys, monkeypatch):
    import cli

    monkeypatch.setattr(cli.EDGES, "queue", lambda: type("Q", (), {"enqueue": lambda *a, **k: None})())
    assert run(capsys, "export", "scans", "--project", "demo-open", "--user", "analyst")[0] == 0
    code, _, err = run(capsys, "export", "scans", "--project", "demo-open", "--user", "analyst")
    assert code == 2 and "Export job already running" in err


def test_cancel_remove_reset_round(demo_hub, capsys):
    run(capsys, "export", "scans", "--project", "demo-open", "--user", "manager", "--inline")
    assert run(capsys, "reset-sessions", "1", "--user", "manager")[0] == 0
    code, _, err = run(capsys, "reset-sessions", "1", "--user", "manager")
    assert code == 2 and "already reset" in err
    assert run(capsys, "cancel", "1", "--user", "manager")[0] == 2  # completed: too late
    assert run(capsys, "remove", "1", "--user", "analyst")[0] == 2  # analyst may not remove
    assert run(capsys, "remove", "1", "--user", "manager")[0] == 0


def test_reset_sessions_of_a_removed_job_exits_0_and_says_they_were_released(demo_hub, capsys):
    run(capsys, "export", "scans", "--project", "demo-open", "--user", "manager", "--inline")
    assert run(capsys, "remove", "1", "--user", "manager")[0] == 0
    code, out, _ = run(capsys, "reset-sessions", "1", "--user", "manager", "--json")
    assert code == 0
    assert json.loads(out)["job"]["export_sessions_reset"] is True


def test_inline_job_that_fails_exits_1(demo_hub, capsys, monkeypatch):
    from exporters import scans

    def boom(self, ctx):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(scans.ScansExporter, "run", boom)
    code, out, _ = run(capsys, "export", "scans", "--project", "demo-open", "--user", "analyst", "--inline",
                       "--json")
    job = json.loads(out)["job"]
    assert code == 1 and job["status"] == "failed"
    plain, detail = job["error"].split("\n", 1)  # a sentence for every user, the detail for admins
    assert plain.startswith("The export stopped on an unexpected problem") and detail == "RuntimeError: disk on fire"


def test_a_damaged_data_file_fails_the_job_in_plain_words_not_a_traceback(demo_hub, capsys):
    # Validation opens only the zones table (issue 15's lighter job start), so a damaged scans file is
    # found when the run reads it: the job fails, its first error line is plain and has no server path.
    from tests._lake import lake_files

    for path in lake_files(demo_hub.settings, "demo-open", "scans"):
        Path(path.removeprefix("file://")).write_bytes(b"not parquet")
    code, out, err = run(capsys, "export", "scans", "--project", "demo-open", "--user", "analyst", "--inline",
                         "--json")
    assert code == 1 and "Traceback" not in out + err
    job = json.loads(out)["job"]
    assert job["status"] == "failed" and job["files"] == []
    plain = job["error"].splitlines()[0]
    assert "scans data of project demo-open" in plain and "damaged" in plain
    assert str(demo_hub.settings.data_dir) not in plain  # no server path in what users read


def test_scheduled_export_waits(demo_hub, capsys, monkeypatch):
    import cli

    monkeypatch.setattr(cli.EDGES, "queue", lambda: type("Q", (), {"enqueue": lambda *a, **k: None})())
    code, out, _ = run(capsys, "export", "scans", "--project", "demo-open", "--user", "analyst", "--at",
                       "2099-01-01T08:00:00+01:00", "--json")
    assert code == 0 and json.loads(out)["job"]["status"] == "waiting"
    assert run(capsys, "export", "scans", "--project", "demo-open", "--user", "analyst", "--inline", "--at",
               "2099-01-01T08:00:00")[0] == 2


def test_demo_is_deterministic_for_seed_and_anchor(hub, capsys):
    import duckdb

    def digest() -> str:
        source = lake_sql(hub.settings, "demo-open", "scans")
        return duckdb.connect().execute(
            f"SELECT md5(string_agg(scan_id || barcode || scanned_at, ',' ORDER BY scan_id)) FROM {source}"
        ).fetchone()[0]

    assert run(capsys, "demo", "--scans", "3000", "--seed", "5", "--anchor", "2026-06-30")[0] == 0
    first = digest()
    code, out, _ = run(capsys, "demo", "--scans", "3000", "--seed", "5", "--anchor", "2026-06-30")
    assert code == 0 and "exists already" in out
    assert run(capsys, "demo", "--scans", "3000", "--seed", "5", "--anchor", "2026-06-30", "--force")[0] == 0
    assert digest() == first
    assert run(capsys, "demo", "--scans", "3000", "--seed", "6", "--anchor", "2026-06-30", "--force")[0] == 0
    assert digest() != first


def test_at_without_an_offset_is_the_projects_local_time(demo_hub, capsys, monkeypatch):
    import cli

    monkeypatch.setattr(cli.EDGES, "queue", lambda: type("Q", (), {"enqueue": lambda *a, **k: None})())
    code, out, _ = run(capsys, "export", "scans", "--project", "demo-open", "--user", "analyst", "--at",
                       "2099-07-01T08:00", "--json")
    # demo-open is in Europe/Berlin: 08:00 local in summer is 06:00 UTC.
    assert code == 0 and json.loads(out)["job"]["run_at"] == "2099-07-01T06:00:00Z"


def test_types_lists_every_visible_type_with_its_variables(hub, capsys):
    code, out, _ = run(capsys, "types", "--json")
    types = {t["export_type"]: t for t in json.loads(out)["types"]}
    assert code == 0 and "explore" not in types
    assert {"scans", "users", "zones", "sessions", "cost", "statistics", "backup", "publish"} <= set(types)
    assert types["publish"]["needs_closed_project"] and not types["scans"]["needs_closed_project"]
    fmt = next(v for v in types["scans"]["variables"] if v["key"] == "format")
    assert fmt == {"key": "format", "title": "Format", "kind": "choice", "default": "csv",
                   "options": ["csv", "xlsx", "parquet"]}
    zones = next(v for v in types["scans"]["variables"] if v["key"] == "zones")
    assert zones["kind"] == "choices" and "zone codes" in zones["options"]
    code, text, _ = run(capsys, "types")
    assert code == 0 and "onlyNewSinceLastExport: boolean" in text


def test_unknown_type_and_variable_name_the_valid_ones(demo_hub, capsys):
    code, _, err = run(capsys, "export", "scan", "--project", "demo-open", "--user", "analyst", "--inline")
    assert code == 2 and "Unknown export type: scan" in err and "scans, users, zones" in err
    code, _, err = run(capsys, "export", "scans", "--project", "demo-open", "--user", "analyst", "--inline",
                       "--var", "fromat=xlsx")
    assert code == 2 and "'fromat'" in err and "format" in err.split("variables are:")[1]


def test_refusals_with_json_are_json_on_stdout(demo_hub, capsys):
    code, out, err = run(capsys, "export", "scans", "--project", "demo-open", "--user", "viewer", "--json")
    assert code == 2 and err == ""
    assert json.loads(out) == {"error": {"code": "permission_denied", "message": "Permission denied"}}
    code, out, _ = run(capsys, "job", "999", "--user", "analyst", "--json")
    assert code == 2 and json.loads(out)["error"]["code"] == "job_not_found"



def test_every_option_of_every_command_says_what_it_does():
    import argparse

    from exporthub.cli import build_parser

    missing = []

    def walk(parser: argparse.ArgumentParser, path: str) -> None:
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    walk(sub, f"{path} {name}")
            elif not isinstance(action, argparse._HelpAction) and not action.help:
                missing.append(f"{path} {'/'.join(action.option_strings) or action.dest}")

    walk(build_parser(), "exporthub")
    assert missing == []

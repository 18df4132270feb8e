"""The ``exporthub`` command line: the UI's twin for scripts, cron and operators.

Exit codes: 0 done; 1 a job that ran (``--inline`` / ``--wait``) failed, was cancelled or timed out;
2 the request was refused, with the message on stderr. ``--user`` names the acting user without a
password: whoever can run this can read the data folder anyway, and every rule still applies.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import deque
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any

from exporthub.errors import ExporthubError
from exporthub.settings import Settings, SettingsError, get_settings
from exporthub.states import FINISHED_STATUSES, JobStatus

# Only what parsing the command line needs is imported up front: `exporthub --help` and a mistyped
# option should not pay for SQLAlchemy, DuckDB and pyarrow. Each command imports what it uses.
if TYPE_CHECKING:
    from exporthub.db import Database
    from exporthub.dispatch import Dispatcher
    from exporthub.views import JobView


def get_database(settings: Settings) -> Database:
    """The process's metadata database (imported on first use; see the note on imports above)."""
    from exporthub.db import get_database as _get_database

    return _get_database(settings)

EXIT_OK, EXIT_JOB_FAILED, EXIT_REFUSED = 0, 1, 2

# Command groups that live in their own modules; each exposes ``register(subparsers)`` which adds
# sub-commands whose ``func(args, settings) -> int`` follows the exit codes above.
EXTRA_COMMAND_MODULES: tuple[str, ...] = ("exporthub.cli_links", "exporthub.cli_backup", "exporthub.cli_admin",
                                          "exporthub.cli_data")


class InlineDispatcher:
    """Runs queued jobs in this process, in order: children first, then their parent."""

    def __init__(self) -> None:
        self.queue: deque[int] = deque()

    def enqueue(self, job_id: int, *, eta: datetime | None = None) -> None:
        self.queue.append(job_id)

    def drain(self, db: Database, settings: Settings) -> None:
        from exporthub.runner import run_job

        while self.queue:
            run_job(db, settings, self.queue.popleft(), dispatcher=self)


def queue_dispatcher() -> Dispatcher:
    """The Huey-backed dispatcher. Imported here, at the edge, so the domain never imports Huey."""
    import importlib

    return importlib.import_module("worker").HueyDispatcher()  # type: ignore[no-any-return]


def _service(settings: Settings, dispatcher: Dispatcher) -> Any:
    from exporthub.jobs import JobService

    return JobService(get_database(settings), settings, dispatcher)


def _print_job(job: JobView, *, as_json: bool, with_log: bool = False) -> None:
    if as_json:
        print(json.dumps({"job": job.to_json(with_log=with_log)}, ensure_ascii=False))
        return
    print(f"job {job.id}  {job.type}  {job.project}  {job.status}  {job.progress}%  by {job.user}")
    if job.error:
        print(f"  error: {job.error}")
    for w in job.warnings:
        print(f"  warning: {w}")
    for f in job.files:
        print(f"  file {f.id}: {f.path}  ({f.size:,} bytes)")
    for entry in job.log if with_log else ():
        print(f"  {entry.time:%Y-%m-%d %H:%M:%S} {entry.level:<7} {entry.message}")
    for child in job.children:
        print(f"  child job {child.id}  {child.type}  {child.status}")


def _parse_vars(pairs: Sequence[str]) -> dict[str, str]:
    result: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ExporthubError(f"--var expects KEY=VALUE, got {pair!r}")
        result[key.strip()] = value
    return result


def _parse_at(text: str | None) -> datetime | None:
    if text is None:
        return None
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise ExporthubError(f"--at expects an ISO date and time, got {text!r}") from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


# ---------------------------------------------------------------------- commands


def cmd_demo(args: argparse.Namespace, settings: Settings) -> int:
    from exporthub.demo import DEMO_PASSWORD, create_demo

    anchor = date.fromisoformat(args.anchor) if args.anchor else None
    summary = create_demo(get_database(settings), settings, scans=args.scans, seed=args.seed, anchor=anchor,
                          force=args.force)
    if not summary.created:
        print("The demo data exists already; use --force to make it again.")
        return EXIT_OK
    for slug, scans in summary.projects.items():
        print(f"{slug}: {scans:,} scans")
    print(f"Demo data made in {summary.seconds:.1f} s under {settings.data_dir}")
    print(f"WARNING: every demo user (admin, manager, analyst, viewer, outsider) has the password "
          f"'{DEMO_PASSWORD}'. Never expose a demo instance.", file=sys.stderr)
    return EXIT_OK


def cmd_export(args: argparse.Namespace, settings: Settings) -> int:
    if args.inline and args.at:
        raise ExporthubError("--inline cannot run a job scheduled with --at; leave it to the worker")
    inline = InlineDispatcher() if args.inline else None
    service = _service(settings, inline or queue_dispatcher())
    job = service.start(args.user, args.project, args.type, _parse_vars(args.var), run_at=_parse_at(args.at))
    if inline is not None:
        inline.drain(service.db, settings)
        job = service.get(args.user, job.id)
    elif args.wait:
        job = _wait(lambda: service.get(args.user, job.id), args.timeout)
    _print_job(job, as_json=args.json)
    if (inline is not None or args.wait) and job.status is not JobStatus.COMPLETED:
        if job.status not in FINISHED_STATUSES:
            print(f"Timed out after {args.timeout} s; job {job.id} is still {job.status}", file=sys.stderr)
        return EXIT_JOB_FAILED
    return EXIT_OK


def _wait(fetch: Callable[[], JobView], timeout: float) -> JobView:
    deadline = time.monotonic() + timeout
    job = fetch()
    while job.status not in FINISHED_STATUSES and time.monotonic() < deadline:
        time.sleep(0.2)
        job = fetch()
    return job


def cmd_jobs(args: argparse.Namespace, settings: Settings) -> int:
    jobs = _service(settings, queue_dispatcher()).list(args.user, args.project, limit=args.limit)
    if args.json:
        print(json.dumps({"jobs": [j.to_json() for j in jobs]}, ensure_ascii=False))
    else:
        for job in jobs:
            _print_job(job, as_json=False)
    return EXIT_OK


def cmd_job(args: argparse.Namespace, settings: Settings) -> int:
    _print_job(_service(settings, queue_dispatcher()).get(args.user, args.job_id), as_json=args.json, with_log=True)
    return EXIT_OK


def _simple(action: str) -> Callable[[argparse.Namespace, Settings], int]:
    def run(args: argparse.Namespace, settings: Settings) -> int:
        service = _service(settings, queue_dispatcher())
        job = getattr(service, action)(args.user, args.job_id)
        _print_job(job, as_json=args.json)
        return EXIT_OK

    return run


def cmd_worker(args: argparse.Namespace, settings: Settings) -> int:
    import importlib
    import logging

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    get_database(settings)
    importlib.import_module("worker").run_consumer(settings)
    return EXIT_OK


def cmd_up(args: argparse.Namespace, settings: Settings) -> int:
    from exporthub.launcher import up

    return up(settings, port=args.port, demo_scans=args.demo_scans)


def cmd_cleanup(args: argparse.Namespace, settings: Settings) -> int:
    from exporthub.retention import cleanup

    result = cleanup(get_database(settings), settings, actor=args.user)
    out = {"jobs": result.jobs, "files": result.files, "orphans": result.orphans}
    print(json.dumps(out) if args.json else f"removed {len(result.jobs)} jobs, {result.files} files, "
          f"{result.orphans} orphaned temporary files")
    return EXIT_OK


# ---------------------------------------------------------------------- parser


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="exporthub", description="Exporthub: reports and exports hub")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("demo", help="make the demo projects, users and data")
    p.add_argument("--scans", type=int, default=200_000)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--anchor", help="last day of the 60 days of data (YYYY-MM-DD; default today)")
    p.add_argument("--force", action="store_true")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("export", help="start an export job")
    p.add_argument("type")
    p.add_argument("--project", required=True)
    p.add_argument("--user", required=True)
    p.add_argument("--var", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--at", help="schedule for this ISO date and time (default UTC)")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--inline", action="store_true", help="run in this process, no worker needed")
    mode.add_argument("--wait", action="store_true", help="wait for a worker to finish the job")
    p.add_argument("--timeout", type=float, default=600.0)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("jobs", help="list a project's jobs, newest first")
    p.add_argument("--project", required=True)
    p.add_argument("--user", required=True)
    p.add_argument("--limit", type=int, default=50)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_jobs)

    p = sub.add_parser("job", help="one job with its log, files and children")
    p.add_argument("job_id", type=int)
    p.add_argument("--user", required=True)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_job)

    for name, action, help_text in (
        ("cancel", "cancel", "cancel a waiting, queued or running job"),
        ("remove", "remove", "delete a finished job's files and hide it"),
        ("reset-sessions", "reset_export_sessions", "reset the export sessions a job recorded"),
        ("retry", "retry", "start a failed or cancelled job again"),
    ):
        p = sub.add_parser(name, help=help_text)
        p.add_argument("job_id", type=int)
        p.add_argument("--user", required=True)
        p.add_argument("--json", action="store_true")
        p.set_defaults(func=_simple(action))

    p = sub.add_parser("worker", help="run the background worker")
    p.set_defaults(func=cmd_worker)

    p = sub.add_parser("up", help="start the web app and a worker (makes the demo on first run)")
    p.add_argument("--port", type=int, default=8501)
    p.add_argument("--demo-scans", type=int, default=200_000)
    p.set_defaults(func=cmd_up)

    p = sub.add_parser("cleanup", help="apply retention now")
    p.add_argument("--user", default=None, help="recorded as the actor in the audit trail")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_cleanup)

    import importlib

    for module in EXTRA_COMMAND_MODULES:
        importlib.import_module(module).register(sub)
    return parser


def _unusable_argument(argv: Sequence[str]) -> str | None:
    """The first argument that is not storable text: undecodable bytes (Python hands them over as lone
    surrogates) or NUL. Either would reach the database (a name, the audit trail) and fail there."""
    for arg in argv:
        try:
            arg.encode("utf-8")
        except UnicodeEncodeError:
            return arg
        if "\x00" in arg:
            return arg
    return None


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    bad = _unusable_argument(argv)
    if bad is not None:
        print(f"error: arguments must be UTF-8 text without NUL; got {bad!r}", file=sys.stderr)
        return EXIT_REFUSED
    args = build_parser().parse_args(argv)
    try:
        settings = get_settings()
        return int(args.func(args, settings))
    except (ExporthubError, SettingsError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_REFUSED


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

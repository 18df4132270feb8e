"""The ``exporthub`` command line: the UI's twin for scripts, cron and operators.

Exit codes: 0 done; 1 a job that ran (``--inline`` / ``--wait``) failed, was cancelled or timed out;
2 the request was refused, with the message on stderr. ``--user`` names the acting user without a
password: whoever can run this can read the data folder anyway, and every rule still applies.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from collections import deque
from collections.abc import Callable, Sequence
from datetime import date, datetime
from typing import TYPE_CHECKING, Protocol

from exporthub.errors import ExporthubError
from exporthub.settings import Settings, get_settings
from exporthub.states import FINISHED_STATUSES, JobStatus

# Only what parsing the command line needs is imported up front: `exporthub --help` and a mistyped
# option should not pay for SQLAlchemy, DuckDB and pyarrow. Each command imports what it uses.
if TYPE_CHECKING:
    from exporthub.db import Database
    from exporthub.dispatch import Dispatcher
    from exporthub.jobs import JobService
    from exporthub.plugins import ExporterRegistry
    from exporthub.views import JobView


class QueueDispatcher(Protocol):
    """The queue's dispatcher as the CLI uses it: hand a job over, and count what waits."""

    def enqueue(self, job_id: int, *, eta: datetime | None = None) -> None: ...

    def pending(self) -> int: ...


class Edges(Protocol):
    """What the domain's commands get from the edge that starts them (the top-level ``cli`` module):
    the exporter registry, the queue and the worker. The domain never imports either itself."""

    def registry(self) -> ExporterRegistry: ...

    def queue(self) -> QueueDispatcher: ...

    def run_worker(self, settings: Settings) -> None: ...


def edges_of(args: argparse.Namespace) -> Edges:
    """The edges :func:`main` was given, for a command."""
    edges: Edges = args.edges
    return edges


def get_database(settings: Settings) -> Database:
    """The process's metadata database (imported on first use; see the note on imports above)."""
    from exporthub.db import get_database as _get_database

    return _get_database(settings)

EXIT_OK, EXIT_JOB_FAILED, EXIT_REFUSED = 0, 1, 2



class InlineDispatcher:
    """Runs queued jobs in this process, in order: children first, then their parent."""

    def __init__(self, registry: ExporterRegistry) -> None:
        self.registry = registry
        self.queue: deque[int] = deque()

    def enqueue(self, job_id: int, *, eta: datetime | None = None) -> None:
        self.queue.append(job_id)

    def drain(self, db: Database, settings: Settings) -> None:
        from exporthub.runner import run_job

        while self.queue:
            run_job(db, settings, self.queue.popleft(), dispatcher=self, registry=self.registry)


def _service(args: argparse.Namespace, settings: Settings, dispatcher: Dispatcher | None = None) -> JobService:
    """The job service wired with the edges' registry and (unless given another) their queue."""
    from exporthub.jobs import JobService

    edges = edges_of(args)
    return JobService(get_database(settings), settings, dispatcher or edges.queue(), registry=edges.registry())


def _print_job(job: JobView, *, as_json: bool, with_log: bool = False) -> None:
    if as_json:
        print(json.dumps({"job": job.to_json(with_log=with_log)}, ensure_ascii=False))
        return
    print(f"job {job.id}  {job.export_type}  {job.project}  {job.status}  {job.progress}%  by {job.user}")
    if job.error:
        print(f"  error: {job.error}")
    for w in job.warnings:
        print(f"  warning: {w}")
    for f in job.files:
        print(f"  file {f.id}: {f.location}  ({f.size:,} bytes)")
    for entry in job.log if with_log else ():
        print(f"  {entry.time:%Y-%m-%d %H:%M:%S} {entry.level:<7} {entry.message}")
    for child in job.children:
        print(f"  child job {child.id}  {child.export_type}  {child.status}")


def _parse_vars(pairs: Sequence[str]) -> dict[str, str]:
    result: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ExporthubError(f"--var expects KEY=VALUE, got {pair!r}")
        result[key.strip()] = value
    return result


def _parse_at(text: str | None) -> datetime | None:
    """An ISO date and time; without an offset it stays naive and means the project's local time."""
    if text is None:
        return None
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        raise ExporthubError(f"--at expects an ISO date and time like 2026-12-01T06:30, got {text!r}") from None


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


class _WatchedQueue:
    """The queue dispatcher, remembering whether it could not be reached (the job is committed anyway)."""

    def __init__(self, inner: Dispatcher) -> None:
        self.inner = inner
        self.problem: Exception | None = None

    def enqueue(self, job_id: int, *, eta: datetime | None = None) -> None:
        try:
            self.inner.enqueue(job_id, eta=eta)
        except Exception as exc:
            self.problem = exc
            raise


def cmd_export(args: argparse.Namespace, settings: Settings) -> int:
    if args.inline and args.at:
        raise ExporthubError("--inline cannot run a job scheduled with --at; leave it to the worker")
    inline = InlineDispatcher(edges_of(args).registry()) if args.inline else None
    queue = None if inline else _WatchedQueue(edges_of(args).queue())
    service = _service(args, settings, inline or queue)
    job = service.start(args.user, args.project, args.type, _parse_vars(args.var), run_at=_parse_at(args.at))
    if queue is not None and queue.problem is not None:
        print(f"Job {job.id} queued; no worker reachable yet (the queue could not be reached: {queue.problem}). "
              "It starts as soon as a worker can take it.", file=sys.stderr)
    if inline is not None:
        inline.drain(service.db, settings)
        job = service.get(args.user, job.id)
    elif args.wait:
        job = _wait(service, settings, args.user, job.id, args.timeout)
    _print_job(job, as_json=args.json)
    if (inline is not None or args.wait) and job.status is not JobStatus.COMPLETED:
        if job.status not in FINISHED_STATUSES:
            print(f"Stopped waiting; job {job.id} is still {job.status} (cancel it with "
                  f"'exporthub cancel {job.id} --user {args.user}')", file=sys.stderr)
        return EXIT_JOB_FAILED
    return EXIT_OK


def _wait(service: JobService, settings: Settings, actor: str, job_id: int, timeout: float) -> JobView:
    """Poll the job until it finishes or ``timeout``; with no live worker, say so at once and give up
    after ``settings.worker_patience_seconds`` unless one reports in."""
    from exporthub import workers

    deadline = time.monotonic() + timeout
    no_worker_since: float | None = None
    job = service.get(actor, job_id)
    while job.status not in FINISHED_STATUSES and time.monotonic() < deadline:
        if job.status is not JobStatus.RUNNING and workers.live_count(service.db, settings) == 0:
            if no_worker_since is None:
                no_worker_since = time.monotonic()
                print("No worker is taking jobs (none has reported in the last "
                      f"{workers.live_window(settings):.0f} s). Start one with 'exporthub worker' (or "
                      "'exporthub up'), or run the job in this process with --inline. Waiting "
                      f"{settings.worker_patience_seconds:.0f} s for a worker…", file=sys.stderr, flush=True)
            elif time.monotonic() - no_worker_since > settings.worker_patience_seconds:
                return job
        else:
            no_worker_since = None
        time.sleep(0.2)
        job = service.get(actor, job_id)
    return job


def cmd_types(args: argparse.Namespace, settings: Settings) -> int:
    from exporthub.export_config import load_config

    registry = edges_of(args).registry()
    config = load_config(settings.export_config_path)
    types = [d.describe() for t, d in config.items() if not d.is_hidden and t in registry]
    if args.json:
        print(json.dumps({"types": types}, ensure_ascii=False, default=str))
        return EXIT_OK
    for entry in types:
        closed = "  (closed projects only)" if entry["needs_closed_project"] else ""
        print(f"{entry['export_type']}: {entry['title']} [{entry['group']}]{closed}")
        for var in entry["variables"]:
            allowed = var.get("options")
            allowed_text = (", ".join(allowed) if isinstance(allowed, list) else allowed) if allowed else ""
            bounds = "".join(f" {k} {var[k]}" for k in ("min", "max") if k in var)
            several = " (comma-separated)" if var["kind"] == "choices" else ""
            print(f"  {var['key']}: {var['kind']}{several}{bounds}"
                  + (f" from {allowed_text}" if allowed_text else "")
                  + f"; default {json.dumps(var['default'], default=str)}. {var['title']}")
    return EXIT_OK


def cmd_jobs(args: argparse.Namespace, settings: Settings) -> int:
    jobs = _service(args, settings).list(args.user, args.project, limit=args.limit)
    if args.json:
        print(json.dumps({"jobs": [j.to_json() for j in jobs]}, ensure_ascii=False))
    else:
        for job in jobs:
            _print_job(job, as_json=False)
    return EXIT_OK


def cmd_job(args: argparse.Namespace, settings: Settings) -> int:
    _print_job(_service(args, settings).get(args.user, args.job_id), as_json=args.json, with_log=True)
    return EXIT_OK


def _simple(action: str) -> Callable[[argparse.Namespace, Settings], int]:
    def run(args: argparse.Namespace, settings: Settings) -> int:
        service = _service(args, settings)
        job: JobView = getattr(service, action)(args.user, args.job_id)
        _print_job(job, as_json=args.json)
        return EXIT_OK

    return run


# ---------------------------------------------------------------------- parser


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="exporthub", description="Exporthub: reports and exports hub")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("demo", help="make the demo projects, users and data (only in an empty data folder)")
    p.add_argument("--scans", type=int, default=200_000, help="scans in the open demo project (default 200,000)")
    p.add_argument("--seed", type=int, default=42, help="random seed: the same seed makes the same data")
    p.add_argument("--anchor", help="last day of the 60 days of data (YYYY-MM-DD; default today)")
    p.add_argument("--force", action="store_true", help="drop the demo projects and make them again")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("types", help="list the export types with their variables, allowed values and defaults")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_types)

    p = sub.add_parser("export", help="start an export job",
                       epilog="'exporthub types' lists every type with its variables, their allowed values "
                              "and defaults.")
    p.add_argument("type", help="the export type, e.g. scans (see 'exporthub types')")
    p.add_argument("--project", required=True, help="the project's slug")
    p.add_argument("--user", required=True, help="the acting user; every permission rule applies to them")
    p.add_argument("--var", action="append", default=[], metavar="KEY=VALUE",
                   help="set a variable, e.g. --var format=xlsx (repeatable; see 'exporthub types')")
    p.add_argument("--at", metavar="ISO_DATETIME",
                   help="run at this time, e.g. 2026-12-01T06:30 (the project's local time unless an offset "
                        "is given)")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--inline", action="store_true", help="run in this process, no worker needed")
    mode.add_argument("--wait", action="store_true", help="wait for a worker to finish the job")
    p.add_argument("--timeout", type=float, default=600.0, help="seconds --wait waits at most (default 600)")
    p.add_argument("--json", action="store_true", help="print JSON (refusals too)")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("jobs", help="list a project's jobs, newest first")
    p.add_argument("--project", required=True, help="the project's slug")
    p.add_argument("--user", required=True, help="the acting user")
    p.add_argument("--limit", type=int, default=50, help="at most this many jobs (default 50)")
    p.add_argument("--json", action="store_true", help="print JSON (refusals too)")
    p.set_defaults(func=cmd_jobs)

    p = sub.add_parser("job", help="one job with its log, files and children")
    p.add_argument("job_id", type=int, help="the job's id")
    p.add_argument("--user", required=True, help="the acting user")
    p.add_argument("--json", action="store_true", help="print JSON (refusals too)")
    p.set_defaults(func=cmd_job)

    for name, action, help_text in (
        ("cancel", "cancel", "cancel a waiting, queued or running job"),
        ("remove", "remove", "delete a finished job's files and hide it"),
        ("reset-sessions", "reset_export_sessions", "reset the export sessions a job recorded"),
        ("retry", "retry", "start a failed or cancelled job again"),
    ):
        p = sub.add_parser(name, help=help_text)
        p.add_argument("job_id", type=int, help="the job's id")
        p.add_argument("--user", required=True, help="the acting user")
        p.add_argument("--json", action="store_true", help="print JSON (refusals too)")
        p.set_defaults(func=_simple(action))

    # Command groups that live in their own modules; each exposes ``register(subparsers)`` which adds
    # sub-commands whose ``func(args, settings) -> int`` follows the exit codes above.
    from exporthub import cli_admin, cli_backup, cli_data, cli_links, cli_ops, cli_tokens

    for module in (cli_ops, cli_links, cli_backup, cli_admin, cli_data, cli_tokens):
        module.register(sub)
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


def main(argv: Sequence[str] | None, *, edges: Edges) -> int:
    """Run one command. The entry point is the top-level ``cli`` module, which passes the ``edges``."""
    argv = list(sys.argv[1:] if argv is None else argv)
    bad = _unusable_argument(argv)
    if bad is not None:
        print(f"error: arguments must be UTF-8 text without NUL; got {bad!r}", file=sys.stderr)
        return EXIT_REFUSED
    args = build_parser().parse_args(argv)
    args.edges = edges
    # A command says what matters itself (a refusal, "queued; no worker reachable yet"); the domain's
    # warnings are for a worker's log. Long-running commands (worker) set up their own logging.
    logging.basicConfig(level=logging.ERROR, format="%(levelname)s %(name)s: %(message)s")
    try:
        settings = get_settings()
        return int(args.func(args, settings))
    except ExporthubError as exc:  # a refusal, or a setting that is missing or malformed
        return refuse(exc, as_json=bool(getattr(args, "json", False)))


def refuse(exc: ExporthubError, *, as_json: bool) -> int:
    """Say why a request was refused (JSON on stdout with ``--json``, else a line on stderr): exit 2."""
    if as_json:
        print(json.dumps({"error": {"code": exc.code, "message": str(exc)}}, ensure_ascii=False))
    else:
        print(f"error: {exc}", file=sys.stderr)
    return EXIT_REFUSED

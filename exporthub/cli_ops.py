"""Commands that run or watch the service: ``worker``, ``workers``, ``up``, ``web`` and ``cleanup``.

Registered in :func:`exporthub.cli.build_parser`; the worker itself comes from the edges
(:class:`exporthub.cli.Edges`), never imported here.
"""

from __future__ import annotations

import argparse
import json
import logging

from exporthub.cli import EXIT_OK, edges_of, get_database
from exporthub.settings import Settings


def cmd_worker(args: argparse.Namespace, settings: Settings) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s", force=True)
    for chatty in ("alembic", "pyiceberg"):  # a line per table load drowns the worker's own lines
        logging.getLogger(chatty).setLevel(logging.WARNING)
    get_database(settings)
    edges_of(args).run_worker(settings)
    return EXIT_OK


def cmd_up(args: argparse.Namespace, settings: Settings) -> int:
    from exporthub.launcher import up

    return up(settings, port=args.port, address=args.address or settings.address, demo_scans=args.demo_scans)


def cmd_web(args: argparse.Namespace, settings: Settings) -> int:
    from exporthub.launcher import web

    return web(settings, port=args.port, address=args.address or settings.address)


def cmd_cleanup(args: argparse.Namespace, settings: Settings) -> int:
    from exporthub.retention import cleanup

    result = cleanup(get_database(settings), settings, actor=args.user)
    out = {"jobs": result.jobs, "files": result.files, "orphans": result.orphans}
    print(json.dumps(out) if args.json else f"removed {len(result.jobs)} jobs, {result.files} files, "
          f"{result.orphans} orphaned temporary files")
    return EXIT_OK


def cmd_workers(args: argparse.Namespace, settings: Settings) -> int:
    from exporthub import workers

    db = get_database(settings)
    fleet = workers.list_workers(db, settings, include_gone=args.all)
    stats = workers.queue_stats(db)
    pending: int | None
    try:
        pending = edges_of(args).queue().pending()
        queue_error = None
    except Exception as exc:  # the queue itself may be down; the database still answers
        pending, queue_error = None, str(exc)
    if args.json:
        print(json.dumps({
            "workers": [w.to_json() for w in fleet],
            "queue": {"ready_jobs": stats.ready, "oldest_ready_seconds": stats.oldest_ready_seconds,
                      "pending_messages": pending, "error": queue_error},
        }, ensure_ascii=False))
        return EXIT_OK
    if not fleet:
        print("No worker has reported in recently. Start one with 'exporthub worker'.")
    for w in fleet:
        jobs = ", ".join(f"job {j}" for j in w.running_jobs) or "idle"
        state = w.state if w.live else "gone"
        detail = f" ({w.detail})" if w.detail else ""
        print(f"{w.id}  {state}{detail}  {w.threads} thread(s)  v{w.version}  last seen "
              f"{w.last_seen_at:%Y-%m-%d %H:%M:%S} UTC  {jobs}")
    oldest = "" if stats.oldest_ready_seconds is None else f", the oldest waiting {stats.oldest_ready_seconds:.0f} s"
    queue_text = f"{pending} message(s) in the queue" if pending is not None else f"queue unreachable: {queue_error}"
    print(f"{stats.ready} job(s) ready{oldest}; {queue_text}")
    return EXIT_OK


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("worker", help="run the background worker (SIGTERM drains it)")
    p.set_defaults(func=cmd_worker)

    p = sub.add_parser("workers", help="the workers that reported in, their running jobs, and the queue")
    p.add_argument("--all", action="store_true", help="also list workers that stopped or went silent")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_workers)

    p = sub.add_parser("up", help="start the web app and a worker on this machine (the demo in an empty data folder)")
    p.add_argument("--port", type=int, default=8501, help="the web app's port (default 8501)")
    p.add_argument("--address", help="the address to listen on (default EXPORTHUB_ADDRESS, else 127.0.0.1)")
    p.add_argument("--demo-scans", type=int, default=200_000,
                   help="scans in the demo, when the data folder is empty (default 200,000)")
    p.set_defaults(func=cmd_up)

    p = sub.add_parser("web", help="start the web app only (replicas behind a load balancer)")
    p.add_argument("--port", type=int, default=8501, help="the web app's port (default 8501)")
    p.add_argument("--address", help="the address to listen on (default EXPORTHUB_ADDRESS, else 127.0.0.1)")
    p.set_defaults(func=cmd_web)

    p = sub.add_parser("cleanup", help="apply retention now")
    p.add_argument("--user", default=None, help="recorded as the actor in the audit trail")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_cleanup)

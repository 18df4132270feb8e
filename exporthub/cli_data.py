"""Data commands: ``import`` files into a project's lake, ``compact`` it, ``migrate-lake`` an old one.

They run as the system actor (see :mod:`exporthub.cli_admin`). A refused import prints every problem
found (up to 50), one per line, on stderr, and exits 2 with nothing changed.
"""

from __future__ import annotations

import argparse
import json
import sys

from exporthub.settings import Settings

EXIT_OK, EXIT_REFUSED = 0, 2
# The tables an import may name: the importer's CONTRACT, spelled out so that building the parser
# (and `exporthub --help`) does not import the importer, pyarrow and DuckDB. A test keeps them equal.
IMPORT_TABLES: tuple[str, ...] = ("costs", "scans", "zone_sessions", "zones")


def cmd_import(args: argparse.Namespace, settings: Settings) -> int:
    from exporthub.accounts import cli_actor
    from exporthub.db import get_database
    from exporthub.errors import ImportRefused
    from exporthub.importer import ImportFile, import_files

    try:
        report = import_files(
            get_database(settings),
            settings,
            cli_actor(),
            args.project,
            args.table,
            [ImportFile.from_path(f) for f in args.files],
            replace=args.replace,
            skip_duplicates=args.skip_duplicates,
        )
    except ImportRefused as exc:
        print("error: import refused, nothing was changed:", file=sys.stderr)
        for problem in exc.problems:
            print(f"  {problem}", file=sys.stderr)
        return EXIT_REFUSED
    print(json.dumps({"import": report.to_json()}) if args.json else report.summary())
    return EXIT_OK


def cmd_compact(args: argparse.Namespace, settings: Settings) -> int:
    from exporthub.accounts import cli_actor
    from exporthub.compaction import compact
    from exporthub.db import get_database

    report = compact(get_database(settings), settings, cli_actor(), args.project)
    if args.json:
        print(json.dumps({"compact": report.to_json()}))
    else:
        print(f"{report.project}: {report.summary()}")
    return EXIT_OK


def cmd_migrate_lake(args: argparse.Namespace, settings: Settings) -> int:
    from exporthub.db import get_database
    from exporthub.lake.migrate import migrate_all

    get_database(settings)  # the catalog lives in the metadata DB: migrate its schema first
    reports = migrate_all(settings)
    if args.json:
        print(json.dumps({"migrate_lake": [r.to_json() for r in reports]}))
    elif not reports:
        print("No part-file lake found: nothing to migrate.")
    for report in reports if not args.json else ():
        print(report.summary())
    return EXIT_OK


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``import`` and ``compact`` to the ``exporthub`` parser's sub-commands."""
    p = sub.add_parser("import", help="import csv or parquet files into a project's lake table")
    p.add_argument("project", help="the project's slug")
    p.add_argument("table", choices=IMPORT_TABLES, help="the lake table the files go into")
    p.add_argument(
        "files", nargs="+", metavar="FILE", help=".csv or .parquet files (the README lists the columns)"
    )
    p.add_argument("--replace", action="store_true", help="replace the whole table (zones and costs only)")
    p.add_argument(
        "--skip-duplicates",
        action="store_true",
        help="leave out rows that were imported already instead of refusing the import",
    )
    p.add_argument("--json", action="store_true", help="print JSON (refusals too)")
    p.set_defaults(func=cmd_import)

    p = sub.add_parser(
        "compact", help="compact a project's lake and expire old snapshots (safe while jobs and imports run)"
    )
    p.add_argument("project", help="the project's slug")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(func=cmd_compact)

    p = sub.add_parser(
        "migrate-lake", help="convert a part-file lake of earlier versions into Iceberg tables (same rows)"
    )
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(func=cmd_migrate_lake)

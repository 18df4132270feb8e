"""A small project written by hand (not by the demo generator), for import and round-trip tests.

The csv texts are literal on purpose: they are what an operator would type, with the edge cases a
real file has (a quoted comma, leading zeros, a formula-like barcode, unicode, a null device, an
unclosed session, a deleted zone, a DST change day in Europe/Berlin, offsets other than the
project's own).
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from pathlib import Path

SLUG = "hand-made"
TIMEZONE = "Europe/Berlin"
ADMIN = "boss"
ADMIN_PASSWORD = "boss-password-1"
STAFF = ("ann", "bob")

ZONES_CSV = """zone_id,code,name,area,parent_zone_id,expected_items,deleted
1,A-01,Aisle 1,North,,120,false
2,A-02,"Aisle 2, back",North,1,80,false
3,B-01,=Cold room,South,,,true
"""

SESSIONS_CSV = """session_id,zone_id,user,kind,started_at,ended_at,deleted
100,1,ann,count,2026-03-28T08:00:00+01:00,2026-03-28T10:30:00+01:00,false
101,2,bob,recount,2026-03-29T07:15:00Z,2026-03-29T09:00:00Z,false
102,3,ann,audit,2026-03-30T22:30:00-04:00,,false
"""

# No scan_id column: the hub assigns 1..5 in file order.
SCANS_CSV = """zone_id,session_id,user,barcode,quantity,scanned_at,device,deleted
1,100,ann,4006381333931,1,2026-03-28T08:05:00+01:00,DEV-01,false
1,100,ann,0000000000017,2,2026-03-28T08:06:30.250+01:00,DEV-01,false
2,101,bob,=SUM(A1),1,2026-03-29T07:20:00Z,,false
2,101,bob,Ünïcødé ✓,5,2026-03-29T09:45:00+02:00,DEV-07,false
3,102,ann,4006381333931,1,2026-03-31T05:00:00+02:00,DEV-02,true
"""

# Explicit ids above the highest, given as user_id instead of user (ids filled in by :func:`scans2_csv`).
SCANS2_TEMPLATE = """scan_id,zone_id,session_id,user_id,barcode,quantity,scanned_at,device
10,1,100,{ann},5901234123457,3,2026-03-28T09:59:59.999999+01:00,DEV-01
11,2,101,{bob},5901234123457,1,2026-03-29T08:00:00Z,DEV-07
"""

COSTS_CSV = """cost_id,user,zone_id,date,category,hours,rate,amount
1,ann,1,2026-03-28,labor,2.5,20.0,50.0
2,bob,,2026-03-29,travel,,,12.4
3,,3,2026-03-30,equipment,,,199.99
"""

# The scans as they went in, in the hub's terms: (scan_id, zone code, session, username, barcode,
# quantity, scanned_at in UTC, device, deleted).
EXPECTED_SCANS: list[tuple[int, str, int, str, str, int, datetime, str | None, bool]] = [
    (
        1,
        "A-01",
        100,
        "ann",
        "4006381333931",
        1,
        datetime.fromisoformat("2026-03-28T08:05:00+01:00"),
        "DEV-01",
        False,
    ),
    (
        2,
        "A-01",
        100,
        "ann",
        "0000000000017",
        2,
        datetime.fromisoformat("2026-03-28T08:06:30.250+01:00"),
        "DEV-01",
        False,
    ),
    (3, "A-02", 101, "bob", "=SUM(A1)", 1, datetime.fromisoformat("2026-03-29T07:20:00+00:00"), None, False),
    (
        4,
        "A-02",
        101,
        "bob",
        "Ünïcødé ✓",
        5,
        datetime.fromisoformat("2026-03-29T09:45:00+02:00"),
        "DEV-07",
        False,
    ),
    (
        5,
        "B-01",
        102,
        "ann",
        "4006381333931",
        1,
        datetime.fromisoformat("2026-03-31T05:00:00+02:00"),
        "DEV-02",
        True,
    ),
    (
        10,
        "A-01",
        100,
        "ann",
        "5901234123457",
        3,
        datetime.fromisoformat("2026-03-28T09:59:59.999999+01:00"),
        "DEV-01",
        False,
    ),
    (
        11,
        "A-02",
        101,
        "bob",
        "5901234123457",
        1,
        datetime.fromisoformat("2026-03-29T08:00:00+00:00"),
        "DEV-07",
        False,
    ),
]


def write(folder: Path, name: str, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def make_project(hub, *, with_data: bool = True) -> dict[str, int]:  # type: ignore[no-untyped-def]
    """Create the admin, the staff, the project and (optionally) import zones, sessions and costs.

    Returns {username: user id} for the staff.
    """
    from exporthub.accounts import AccountService, SystemActor
    from exporthub.first_run import initialize
    from exporthub.importer import ImportFile, import_files

    system = SystemActor("pytest")
    initialize(hub.db, system, ADMIN, ADMIN_PASSWORD)
    accounts = AccountService(hub.db)
    accounts.create_project(ADMIN, SLUG, "Hand-made project", TIMEZONE)
    for name in STAFF:
        accounts.create_user(ADMIN, name, password=None, display_name=name.capitalize())
    ids = {u.username: _user_id(hub, u.username) for u in accounts.list_users(ADMIN) if u.username in STAFF}
    if with_data:
        folder = hub.settings.data_dir.parent / "handmade"
        for table, name, text in (
            ("zones", "zones.csv", ZONES_CSV),
            ("zone_sessions", "sessions.csv", SESSIONS_CSV),
            ("costs", "costs.csv", COSTS_CSV),
        ):
            import_files(
                hub.db, hub.settings, system, SLUG, table, [ImportFile.from_path(write(folder, name, text))]
            )
    return ids


def scans2_csv(ids: dict[str, int]) -> str:
    return SCANS2_TEMPLATE.format(**ids)


def _user_id(hub, username: str) -> int:  # type: ignore[no-untyped-def]
    from sqlalchemy import select

    from exporthub.models import User

    with hub.db.read() as s:
        return int(s.scalar(select(User.id).where(User.username == username)))


def lake_fingerprint(hub, slug: str = SLUG) -> dict[str, str]:  # type: ignore[no-untyped-def]
    """Every file under the project's lake folder with the sha256 of its bytes."""
    root = hub.settings.lake_dir / slug
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }

"""Deterministic demo data for one project's lake.

:func:`generate_project_lake` (re)writes the four lake tables of one project from a seed and a size.
The same arguments always give the same rows (the files differ only in their Parquet metadata), so
demos, tests and benchmarks can be reproduced exactly.

The model
---------
The data covers the 60 local days that end at ``anchor`` (inclusive) in the project's timezone.

* **zones** — ``n_zones`` places to count: codes ``Z-001``..., realistic names (some unicode, some that
  begin with ``=``, ``+``, ``-`` or ``@`` to exercise formula-injection escaping in exports) in a few
  areas. The first fifth are top-level zones; about 60 % of the others have one of them as parent (two
  levels). About 10 % of the zones are *empty*: never scanned, no sessions. Two zones that do have
  scans are soft-deleted.
* **zone_sessions** — a staff member counting one zone: about ``n_scans / 400`` sessions (at least
  20). About 15 % of ``staff`` never work (no session, scan or cost), so reports meet idle people.
  A user's sessions on one local day are laid out one after another, with breaks, inside working hours
  (06:00–20:00 local), each lasting 15 min – 4 h; then the times are converted to UTC. About 1 % of the
  sessions are deliberately moved onto another session of the same user so the two *overlap*; about
  1 % are unclosed (``ended_at`` null) and 1 % are soft-deleted. Session ids rise with start time.
* **scans** — every scan belongs to a session and carries its zone and user. ``scanned_at`` lies inside
  the session (for an unclosed session inside its planned duration). Barcodes are valid EAN-13 numbers
  drawn from a pool (popular items repeat) plus a handful of dirty values that begin with ``=``,
  ``+``, ``-`` or ``@``. Quantity is mostly 1; the device is the user's usual ``DEV-nn``. About 1 % are
  soft-deleted, and all scans of a deleted session are deleted with it. Scan ids follow ingestion:
  scans are numbered in ``scanned_at`` order, except that about 0.5 % are *late uploads* that get the
  highest ids although they were scanned earlier (incremental exports must rely on ids, not times).
* **costs** — the one source of cost. There is one ``labor`` row per closed, non-deleted session:
  ``hours`` = the session's length, ``rate`` = the user's ``hourly_rate``, ``amount`` =
  ``round(hours * rate, 2)`` with ties away from zero (as SQL rounds), the session's zone, and
  ``date`` = the local date of the session start (a row whose amount would be zero, from a zero
  rate, is left out: amounts are always positive).
  ``travel`` rows belong to a user and a day they worked (no zone); ``equipment`` rows have no user and
  sometimes a zone; ``other`` rows sometimes have a user and/or a zone. Non-labor rows have null hours
  and rate. Cost ids follow the date.

Everything is vectorised with numpy and pyarrow; Python loops only run over zones, days, staff and the
barcode pool, never over sessions or scans. Each table draws from its own child of one
``SeedSequence(seed)``, so, for instance, the zones do not change when only ``n_scans`` does.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
import pyarrow as pa

from exporthub import lake
from exporthub.lake.catalog import drop_project, ensure_table
from exporthub.lake.commit import commit, write_data_files
from exporthub.lake.schemas import COST_CATEGORIES, SESSION_KINDS
from exporthub.settings import Settings

DAYS = 60
WORKDAY_START_S = 6 * 3600
WORKDAY_END_S = 20 * 3600
MIN_SESSION_S = 15 * 60
MAX_SESSION_S = 4 * 3600
SCANS_PER_SESSION = 400
MIN_SESSIONS = 20

IDLE_STAFF_SHARE = 0.15
EMPTY_ZONE_SHARE = 0.10
DELETED_ZONES = 2
OVERLAP_SHARE = 0.01
UNCLOSED_SHARE = 0.01
DELETED_SESSION_SHARE = 0.01
DELETED_SCAN_SHARE = 0.01
LATE_UPLOAD_SHARE = 0.005
DIRTY_BARCODE_SHARE = 0.0001
MIN_DIRTY_BARCODES = 5
MULTI_QUANTITY_SHARE = 0.07
OTHER_DEVICE_SHARE = 0.10
TRAVEL_DAY_SHARE = 0.25

KINDS = SESSION_KINDS
KIND_WEIGHTS = (0.82, 0.12, 0.06)  # in the order of SESSION_KINDS
AREAS = ("Warehouse A", "Warehouse B", "Store Floor", "Back Office", "Cold Storage", "Loading Dock")
# Formula-like names alternate with unicode ones so that even a small project gets both kinds.
SPECIAL_ZONE_NAMES = (
    "=Cellar",
    "Kühlraum 3",
    "+Annex",
    "Étagère 12",
    "-Overflow",
    "Zoë's Corner",
    "@Dock",
    "倉庫 A",
)
GENERIC_ZONE_KINDS = (
    "Aisle",
    "Shelf",
    "Rack",
    "Bay",
    "Cold Room",
    "Freezer",
    "Pallet Zone",
    "Mezzanine",
    "Checkout",
    "Display",
    "Endcap",
    "Stockroom",
)
DIRTY_BARCODES = (
    '=HYPERLINK("http://example.com","x")',
    "+49 123 456",
    "-1234",
    "@SUM(A1:A9)",
    "=1+1",
    "+SUM(1;2)",
    "-2+3",
    "@cmd",
)
# GS1 prefixes (Germany, France, Switzerland, Japan, China, Netherlands) make the EAN-13 pool look real.
EAN_PREFIXES = (400, 401, 402, 403, 404, 405, 406, 407, 408, 409, 300, 301, 760, 761, 450, 490, 690, 871)

_US = 1_000_000
_EPOCH = date(1970, 1, 1)


@dataclass(frozen=True)
class StaffMember:
    user_id: int
    hourly_rate: float
    active_from_day: int = 0  # first day (0..59 within the 60-day window) the member can work


@dataclass(frozen=True)
class LakeSummary:
    zones: int
    sessions: int
    scans: int
    costs: int
    seconds: float


@dataclass(frozen=True)
class _Zones:
    table: pa.Table
    scannable_ids: np.ndarray  # int32 ids of zones that get sessions (all but the empty ones)
    scannable_weights: np.ndarray  # float64, how often each scannable zone is counted


@dataclass(frozen=True)
class _Staff:
    """The staff members who work, sorted by ``active_from_day`` (idle members are left out)."""

    user_ids: np.ndarray  # int32
    rates: np.ndarray  # float64
    from_day: np.ndarray  # int64, clipped to the window


@dataclass(frozen=True)
class _Sessions:
    """One entry per session, in session-id order."""

    session_id: np.ndarray  # int64, 1..n
    zone_id: np.ndarray  # int32
    user_index: np.ndarray  # int64 index into _Staff
    user_id: np.ndarray  # int32
    kind: np.ndarray  # int64 index into KINDS
    day: np.ndarray  # int64 local day index, 0 = first day of the window
    start_us: np.ndarray  # int64 UTC microseconds
    duration_us: np.ndarray  # int64; planned duration, also for unclosed sessions
    closed: np.ndarray  # bool
    deleted: np.ndarray  # bool
    device: np.ndarray  # int64 index into the device names

    def __len__(self) -> int:
        return len(self.session_id)


def generate_project_lake(
    settings: Settings,
    slug: str,
    *,
    n_scans: int,
    seed: int,
    anchor: date,
    timezone: str,
    staff: Sequence[StaffMember],
    n_zones: int = 40,
    part_rows: int = 1_000_000,
) -> LakeSummary:
    """Replace the project's lake tables with deterministic demo data (see the module docstring).

    The project's Iceberg tables are dropped (files included) and written again, one commit per table;
    scans go in data files of at most ``part_rows`` rows, in scan-id order.
    """
    started = time.perf_counter()
    tz = _validate(n_scans=n_scans, timezone=timezone, staff=staff, n_zones=n_zones, part_rows=part_rows)
    zone_rng, staff_rng, session_rng, scan_rng, cost_rng = (
        np.random.Generator(np.random.PCG64(child)) for child in np.random.SeedSequence(seed).spawn(5)
    )
    first_day = anchor - timedelta(days=DAYS - 1)

    zones = _make_zones(zone_rng, n_zones, n_scans)
    workers = _pick_working_staff(staff_rng, staff)
    sessions = _make_sessions(session_rng, zones, workers, n_scans, first_day, tz)
    devices = _device_names(len(workers.user_ids))
    costs = _make_costs(cost_rng, sessions, zones, workers, first_day)

    drop_project(settings, slug)
    _write(settings, slug, "zones", [zones.table], part_rows)
    _write(settings, slug, "zone_sessions", [_sessions_table(sessions)], part_rows)
    _write(settings, slug, "scans", _scan_parts(scan_rng, sessions, devices, n_scans, part_rows), part_rows)
    _write(settings, slug, "costs", [costs], part_rows)

    return LakeSummary(
        zones=zones.table.num_rows,
        sessions=len(sessions),
        scans=n_scans,
        costs=costs.num_rows,
        seconds=time.perf_counter() - started,
    )


# --- validation and files --------------------------------------------------------------------------


def _validate(
    *, n_scans: int, timezone: str, staff: Sequence[StaffMember], n_zones: int, part_rows: int
) -> ZoneInfo:
    if n_scans < 0:
        raise ValueError("n_scans must not be negative")
    if n_zones < 1:
        raise ValueError("n_zones must be at least 1")
    if part_rows < 1:
        raise ValueError("part_rows must be at least 1")
    if not staff:
        raise ValueError("staff must not be empty")
    ids = [m.user_id for m in staff]
    if len(set(ids)) != len(ids):
        raise ValueError("staff user ids must be unique")
    if any(not math.isfinite(m.hourly_rate) or m.hourly_rate < 0 for m in staff):
        raise ValueError("hourly rates must be finite and not negative")
    try:
        return ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown timezone {timezone!r}") from None


def _write(settings: Settings, slug: str, name: str, chunks: Iterable[pa.Table], part_rows: int) -> None:
    """One commit of the chunks, in order, as data files of at most ``part_rows`` rows."""
    table = ensure_table(settings, slug, name)
    commit(table, write_data_files(table, name, chunks, rows_per_file=part_rows), action="demo")


# --- zones -----------------------------------------------------------------------------------------


def _make_zones(rng: np.random.Generator, n: int, n_scans: int) -> _Zones:
    names, special = _zone_names(rng, n)
    n_top = max(1, n // 5)
    parent = np.zeros(n, dtype=np.int32)  # 0 = no parent
    area = np.empty(n, dtype=np.int64)
    area[:n_top] = np.arange(n_top) % len(AREAS)  # spread the top-level zones over the areas
    area[n_top:] = rng.integers(0, len(AREAS), n - n_top)
    has_parent = np.zeros(n, dtype=bool)
    has_parent[n_top:] = rng.random(n - n_top) < 0.6
    parent[has_parent] = rng.integers(0, n_top, int(has_parent.sum())) + 1
    area[has_parent] = area[parent[has_parent] - 1]  # a child lies in its parent's area

    # Empty and deleted zones keep plain names: the special names should show up in exports.
    plain = np.flatnonzero(~special)
    n_empty = max(1, round(EMPTY_ZONE_SHARE * n)) if n >= 3 else 0
    empty_idx = rng.choice(plain, n_empty, replace=False)
    empty = np.zeros(n, dtype=bool)
    empty[empty_idx] = True
    n_deleted = max(0, min(DELETED_ZONES, n - n_empty - 1))
    deletable = np.flatnonzero(~special & ~empty)
    if len(deletable) < n_deleted:
        deletable = np.flatnonzero(~empty)
    deleted = np.zeros(n, dtype=bool)
    deleted[rng.choice(deletable, n_deleted, replace=False)] = True

    # Relative zone sizes decide how often a zone is counted; expected items then follow the scans the
    # zone will get, so completion lands around 60-115% (recounts push a few past 100%) at any size.
    size = rng.integers(40, 2500, n).astype(np.float64)
    share = np.sqrt(size) * ~empty
    share /= share.sum() or 1.0
    mean_quantity = 1 + MULTI_QUANTITY_SHARE * 6.5
    planned = n_scans * mean_quantity * share / rng.uniform(0.6, 1.15, n)
    expected = np.where(empty, size, np.maximum(planned, 10)).round().astype(np.int32)
    zone_id = np.arange(1, n + 1, dtype=np.int32)
    table = pa.table(
        {
            "zone_id": pa.array(zone_id),
            "code": pa.array([f"Z-{i:03d}" for i in range(1, n + 1)], pa.string()),
            "name": pa.array(names, pa.string()),
            "area": pa.array(AREAS, pa.string()).take(pa.array(area)),
            "parent_zone_id": pa.array(parent, mask=parent == 0),
            "expected_items": pa.array(expected),
            "deleted": pa.array(deleted),
        },
        schema=lake.SCHEMAS["zones"],
    )
    scannable = ~empty
    # Bigger zones are counted more often, but not proportionally more.
    weights = np.sqrt(size[scannable])
    return _Zones(table=table, scannable_ids=zone_id[scannable], scannable_weights=weights / weights.sum())


def _zone_names(rng: np.random.Generator, n: int) -> tuple[list[str], np.ndarray]:
    """``n`` distinct names and a mask of the special (unicode / formula-like) ones."""
    n_special = min(len(SPECIAL_ZONE_NAMES), (n + 1) // 2)
    numbers = dict.fromkeys(GENERIC_ZONE_KINDS, 0)
    generic: list[str] = []
    for kind_index in rng.integers(0, len(GENERIC_ZONE_KINDS), n - n_special):
        kind = GENERIC_ZONE_KINDS[int(kind_index)]
        numbers[kind] += 1
        generic.append(f"{kind} {numbers[kind]}")
    special = np.zeros(n, dtype=bool)
    special[rng.choice(n, n_special, replace=False)] = True
    names: list[str] = []
    specials, plains = iter(SPECIAL_ZONE_NAMES), iter(generic)
    for is_special in special:
        names.append(next(specials) if is_special else next(plains))
    return names, special


# --- staff -----------------------------------------------------------------------------------------


def _pick_working_staff(rng: np.random.Generator, staff: Sequence[StaffMember]) -> _Staff:
    n = len(staff)
    n_idle = max(1, round(IDLE_STAFF_SHARE * n)) if n >= 2 else 0
    idle = set(rng.permutation(n)[:n_idle].tolist())
    working = [m for i, m in enumerate(staff) if i not in idle]
    working.sort(key=lambda m: min(max(m.active_from_day, 0), DAYS - 1))  # stable: ties keep input order
    return _Staff(
        user_ids=np.array([m.user_id for m in working], dtype=np.int32),
        rates=np.array([m.hourly_rate for m in working], dtype=np.float64),
        from_day=np.clip(np.array([m.active_from_day for m in working], dtype=np.int64), 0, DAYS - 1),
    )


def _device_names(n_workers: int) -> pa.Array:
    # A couple of spare devices beyond one per worker, so that some sessions borrow one.
    return pa.array([f"DEV-{i:02d}" for i in range(1, n_workers + 3)], pa.string())


# --- sessions --------------------------------------------------------------------------------------


def _make_sessions(
    rng: np.random.Generator, zones: _Zones, workers: _Staff, n_scans: int, first_day: date, tz: ZoneInfo
) -> _Sessions:
    n = max(MIN_SESSIONS, round(n_scans / SCANS_PER_SESSION))
    n_workers = len(workers.user_ids)

    zone_id = rng.choice(zones.scannable_ids, n, p=zones.scannable_weights)
    # The first sessions visit every scannable zone once, so exactly the empty zones stay empty.
    covered = min(n, len(zones.scannable_ids))
    zone_id[:covered] = rng.permutation(zones.scannable_ids)[:covered]

    n_overlap = max(3, round(OVERLAP_SHARE * n))
    # The last n_overlap sessions are kept out of the per-worker coverage: they become the movers.
    user, day = _assign_users_and_days(rng, workers, n, covered=min(n - n_overlap, n_workers))
    kind = rng.choice(len(KINDS), n, p=KIND_WEIGHTS)
    # Most sessions take about an hour; a few run to the 4 h limit.
    duration_s = np.round(rng.triangular(MIN_SESSION_S, 3600, MAX_SESSION_S, n) / 60).astype(np.int64) * 60
    start_s, duration_s = _lay_out_days(rng, user, day, duration_s)

    # Disjoint role sets: overlap movers, overlap anchors, unclosed and deleted sessions.
    n_unclosed = max(1, round(UNCLOSED_SHARE * n))
    n_deleted = max(1, round(DELETED_SESSION_SHARE * n))
    movers = np.arange(n - n_overlap, n)
    roles = rng.permutation(n - n_overlap)
    anchors = roles[:n_overlap]
    unclosed_idx = roles[n_overlap : n_overlap + n_unclosed]
    deleted_idx = roles[n_overlap + n_unclosed : n_overlap + n_unclosed + n_deleted]
    _force_overlaps(rng, anchors, movers, user, day, start_s, duration_s)

    closed = np.ones(n, dtype=bool)
    closed[unclosed_idx] = False
    deleted = np.zeros(n, dtype=bool)
    deleted[deleted_idx] = True
    n_devices = n_workers + 2
    device = user % n_devices
    borrowed = rng.random(n) < OTHER_DEVICE_SHARE
    device[borrowed] = rng.integers(0, n_devices, int(borrowed.sum()))

    start_us = _local_to_utc_us(first_day, tz, day, start_s)
    order = np.argsort(start_us, kind="stable")  # session ids rise with start time
    return _Sessions(
        session_id=np.arange(1, n + 1, dtype=np.int64),
        zone_id=zone_id[order].astype(np.int32),
        user_index=user[order],
        user_id=workers.user_ids[user[order]],
        kind=kind[order],
        day=day[order],
        start_us=start_us[order],
        duration_us=duration_s[order] * _US,
        closed=closed[order],
        deleted=deleted[order],
        device=device[order],
    )


def _assign_users_and_days(
    rng: np.random.Generator, workers: _Staff, n: int, *, covered: int
) -> tuple[np.ndarray, np.ndarray]:
    """A (worker index, local day) per session; nobody works before their ``active_from_day``.

    Sessions ``0..covered-1`` go to workers ``0..covered-1``, so every worker has one when there are
    enough sessions.
    """
    day = rng.integers(int(workers.from_day[0]), DAYS, n)
    # Workers are sorted by from_day, so the ones allowed on ``day`` are a prefix of the list.
    allowed = np.searchsorted(workers.from_day, day, side="right")
    user = (rng.random(n) * allowed).astype(np.int64)
    # The first sessions give every worker at least one, so only the idle staff have no activity.
    user[:covered] = np.arange(covered)
    spare_days = DAYS - workers.from_day[:covered]
    day[:covered] = workers.from_day[:covered] + (rng.random(covered) * spare_days).astype(np.int64)
    return user, day


def _lay_out_days(
    rng: np.random.Generator, user: np.ndarray, day: np.ndarray, duration_s: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Local start second of day for every session, placing each user's day one session after another.

    Busy days get shorter sessions (never under 15 min) so that a tenth of the working window stays
    free for breaks; the free time is split at random between the sessions. Only a day with more
    sessions than fit at 15 min each falls back to independent, possibly overlapping, placement.
    """
    n = len(user)
    window = WORKDAY_END_S - WORKDAY_START_S
    order = np.lexsort((day, user))
    u, d = user[order], day[order]
    first = np.ones(n, dtype=bool)
    first[1:] = (u[1:] != u[:-1]) | (d[1:] != d[:-1])
    group = np.cumsum(first) - 1
    n_groups = int(group[-1]) + 1

    dur = duration_s[order].astype(np.float64)
    total = np.bincount(group, weights=dur, minlength=n_groups)
    shrink = np.minimum(1.0, 0.9 * window / total)
    dur_i = np.maximum(MIN_SESSION_S, np.floor(dur * shrink[group] / 60) * 60).astype(np.int64)
    slack = window - np.bincount(group, weights=dur_i, minlength=n_groups).astype(np.int64)

    # Break before each session: a random share of the day's slack (the rest is after the last one).
    gap_weight = rng.random(n)
    weight_sum = np.bincount(group, weights=gap_weight, minlength=n_groups) + rng.random(n_groups)
    gap = np.floor(gap_weight / weight_sum[group] * np.maximum(slack[group], 0)).astype(np.int64)
    step_end = np.cumsum(gap + dur_i)  # integer arithmetic keeps consecutive sessions disjoint
    before_group = np.concatenate(([0], step_end))[np.flatnonzero(first)]
    start = WORKDAY_START_S + step_end - before_group[group] - dur_i

    overfull = slack[group] < 0
    if overfull.any():
        free = window - dur_i[overfull]
        start[overfull] = WORKDAY_START_S + (rng.random(int(overfull.sum())) * free).astype(np.int64)

    start_out = np.empty(n, dtype=np.int64)
    dur_out = np.empty(n, dtype=np.int64)
    start_out[order] = start
    dur_out[order] = dur_i
    return start_out, dur_out


def _force_overlaps(
    rng: np.random.Generator,
    anchors: np.ndarray,
    movers: np.ndarray,
    user: np.ndarray,
    day: np.ndarray,
    start_s: np.ndarray,
    duration_s: np.ndarray,
) -> None:
    """Move each mover onto its anchor's user and day, starting inside the anchor (edits in place).

    The mover starts at most half-way into the anchor and still ends by 20:00 (shortened if needed).
    """
    a_start, a_dur = start_s[anchors], duration_s[anchors]
    m_dur = duration_s[movers]
    offset = np.floor(rng.random(len(anchors)) * a_dur / 2).astype(np.int64)
    offset = np.clip(offset, 0, np.maximum(WORKDAY_END_S - m_dur - a_start, 0))
    user[movers] = user[anchors]
    day[movers] = day[anchors]
    start_s[movers] = a_start + offset
    duration_s[movers] = np.minimum(m_dur, WORKDAY_END_S - a_start - offset)


def _local_to_utc_us(first_day: date, tz: ZoneInfo, day: np.ndarray, start_s: np.ndarray) -> np.ndarray:
    """UTC microseconds of local (day, second of day), using the offset in force at that local hour."""
    offsets = np.empty((DAYS, 24), dtype=np.int64)
    for d in range(DAYS):
        local = first_day + timedelta(days=d)
        for hour in range(24):
            offset = datetime(local.year, local.month, local.day, hour, tzinfo=tz).utcoffset()
            offsets[d, hour] = int(offset.total_seconds()) if offset is not None else 0
    epoch_day = (first_day - _EPOCH).days + day
    local_s = epoch_day * 86_400 + start_s
    utc_us: np.ndarray = (local_s - offsets[day, start_s // 3600]) * _US
    return utc_us


def _sessions_table(s: _Sessions) -> pa.Table:
    ts = pa.timestamp("us", tz="UTC")
    return pa.table(
        {
            "session_id": pa.array(s.session_id),
            "zone_id": pa.array(s.zone_id),
            "user_id": pa.array(s.user_id),
            "kind": pa.array(KINDS, pa.string()).take(pa.array(s.kind)),
            "started_at": pa.array(s.start_us, ts),
            "ended_at": pa.array(s.start_us + s.duration_us, ts, mask=~s.closed),
            "deleted": pa.array(s.deleted),
        },
        schema=lake.SCHEMAS["zone_sessions"],
    )


# --- scans -----------------------------------------------------------------------------------------


def _scan_parts(
    rng: np.random.Generator, sessions: _Sessions, devices: pa.Array, n_scans: int, part_rows: int
) -> Iterator[pa.Table]:
    """The scans in scan-id order, ``part_rows`` at a time (built lazily: memory stays bounded)."""
    session_index, scanned_at = _scan_times(rng, sessions, n_scans)
    pool = _barcode_pool(rng, n_scans)
    barcode = _barcode_indices(rng, n_scans, len(pool) - len(DIRTY_BARCODES))
    quantity = np.ones(n_scans, dtype=np.int32)
    multi = rng.random(n_scans) < MULTI_QUANTITY_SHARE
    quantity[multi] = rng.integers(2, 13, int(multi.sum()), dtype=np.int32)
    deleted = (rng.random(n_scans) < DELETED_SCAN_SHARE) | sessions.deleted[session_index]

    ts = pa.timestamp("us", tz="UTC")
    for lo in range(0, n_scans, part_rows):
        hi = min(lo + part_rows, n_scans)
        idx = session_index[lo:hi]
        table = pa.table(
            {
                "scan_id": pa.array(np.arange(lo + 1, hi + 1, dtype=np.int64)),
                "zone_id": pa.array(sessions.zone_id[idx]),
                "session_id": pa.array(sessions.session_id[idx]),
                "user_id": pa.array(sessions.user_id[idx]),
                "barcode": pool.take(pa.array(barcode[lo:hi])),
                "quantity": pa.array(quantity[lo:hi]),
                "scanned_at": pa.array(scanned_at[lo:hi], ts),
                "device": devices.take(pa.array(sessions.device[idx])),
                "deleted": pa.array(deleted[lo:hi]),
            },
            schema=lake.SCHEMAS["scans"],
        )
        yield table


def _scan_times(rng: np.random.Generator, sessions: _Sessions, n_scans: int) -> tuple[np.ndarray, np.ndarray]:
    """Session index and UTC time of every scan, in scan-id (ingestion) order."""
    n = len(sessions)
    # Longer sessions and faster counters produce more scans; every session gets one if possible.
    weight = sessions.duration_us.astype(np.float64) * rng.gamma(4.0, 0.25, n)
    base = 1 if n_scans >= n else 0
    counts = rng.multinomial(n_scans - base * n, weight / weight.sum()) + base
    session_index = np.repeat(np.arange(n, dtype=np.int32), counts)
    offset = (rng.random(n_scans) * sessions.duration_us[session_index]).astype(np.int64)
    scanned_at = sessions.start_us[session_index] + offset

    by_time = np.argsort(scanned_at, kind="stable")
    # Late uploads: a sample (never the newest scan) reaches the server last and gets the highest ids.
    late = rng.random(n_scans) < LATE_UPLOAD_SHARE
    if n_scans >= 2:
        late[-1] = False
        if not late.any():
            late[rng.integers(0, n_scans - 1)] = True
    ingestion = np.concatenate((by_time[~late], by_time[late]))
    return session_index[ingestion], scanned_at[ingestion]


def _barcode_pool(rng: np.random.Generator, n_scans: int) -> pa.Array:
    """Distinct valid EAN-13 codes (fewer than the scans, so items repeat) followed by the dirty values."""
    size = int(np.clip(n_scans // 25, 50, 250_000))
    prefix = np.array(EAN_PREFIXES, dtype=np.int64)[rng.integers(0, len(EAN_PREFIXES), size)]
    body = rng.choice(1_000_000_000, size, replace=False).astype(np.int64)
    # Codes are distinct because the bodies are; three-digit prefixes make exactly 12 digits.
    first12 = prefix * 1_000_000_000 + body
    codes = first12 * 10 + _ean_check_digit(first12)
    strings = [f"{c:013d}" for c in codes.tolist()]
    return pa.array(strings + list(DIRTY_BARCODES), pa.string())


def _ean_check_digit(first12: np.ndarray) -> np.ndarray:
    digits = (first12[:, None] // (10 ** np.arange(11, -1, -1, dtype=np.int64))) % 10
    weights = np.tile([1, 3], 6)  # from the left: odd positions weigh 1, even positions 3
    check: np.ndarray = (10 - (digits * weights).sum(axis=1) % 10) % 10
    return check


def _barcode_indices(rng: np.random.Generator, n_scans: int, pool_size: int) -> np.ndarray:
    # Squaring a uniform number skews picks towards the front of the pool: a few items are popular.
    index = (rng.random(n_scans) ** 2 * pool_size).astype(np.int32)
    n_dirty = min(n_scans, max(MIN_DIRTY_BARCODES, round(DIRTY_BARCODE_SHARE * n_scans)))
    where = rng.choice(n_scans, n_dirty, replace=False)
    index[where] = pool_size + np.arange(n_dirty, dtype=np.int32) % len(DIRTY_BARCODES)
    return index


# --- costs -----------------------------------------------------------------------------------------

# Cost columns before the table is built. ``has_user`` / ``has_zone`` say whether the id is set (user
# ids come from the caller, so no id value can stand for null); NaN hours and rate mean null.
_CostColumns = dict[str, np.ndarray]


def _make_costs(
    rng: np.random.Generator, sessions: _Sessions, zones: _Zones, workers: _Staff, first_day: date
) -> pa.Table:
    parts = [
        _labor_costs(sessions, workers),
        _travel_costs(rng, sessions, workers),
        _equipment_costs(rng, sessions, zones),
        _other_costs(rng, sessions, zones, workers),
    ]
    columns = {key: np.concatenate([p[key] for p in parts]) for key in parts[0]}
    order = np.lexsort((columns["category"], columns["day"]))  # a ledger: by date, then category
    c = {key: values[order] for key, values in columns.items()}
    epoch_day = (first_day - _EPOCH).days
    return pa.table(
        {
            "cost_id": pa.array(np.arange(1, len(order) + 1, dtype=np.int64)),
            "user_id": pa.array(c["user_id"].astype(np.int32), mask=~c["has_user"]),
            "zone_id": pa.array(c["zone_id"].astype(np.int32), mask=~c["has_zone"]),
            "date": pa.array((c["day"] + epoch_day).astype(np.int32), pa.date32()),
            "category": pa.array(COST_CATEGORIES, pa.string()).take(pa.array(c["category"])),
            "hours": pa.array(c["hours"], mask=np.isnan(c["hours"])),
            "rate": pa.array(c["rate"], mask=np.isnan(c["rate"])),
            "amount": pa.array(c["amount"]),
        },
        schema=lake.SCHEMAS["costs"],
    )


def _cost_columns(
    category: str,
    *,
    user_id: np.ndarray,
    has_user: np.ndarray,
    zone_id: np.ndarray,
    has_zone: np.ndarray,
    day: np.ndarray,
    amount: np.ndarray,
) -> _CostColumns:
    n = len(amount)
    return {
        "category": np.full(n, COST_CATEGORIES.index(category), dtype=np.int64),
        "user_id": user_id.astype(np.int64),
        "has_user": has_user.astype(bool),
        "zone_id": zone_id.astype(np.int64),
        "has_zone": has_zone.astype(bool),
        "day": day.astype(np.int64),
        "hours": np.full(n, np.nan),
        "rate": np.full(n, np.nan),
        "amount": amount,
    }


def _labor_costs(sessions: _Sessions, workers: _Staff) -> _CostColumns:
    """One row per closed, non-deleted session: its hours at the user's rate, dated by its local start."""
    keep = sessions.closed & ~sessions.deleted
    hours = sessions.duration_us[keep] / (3600 * _US)
    rate = workers.rates[sessions.user_index[keep]]
    amount = _round_cents(hours * rate)
    positive = amount > 0  # a zero rate earns nothing, and amounts are always positive
    n = int(positive.sum())
    columns = _cost_columns(
        "labor",
        user_id=sessions.user_id[keep][positive],
        has_user=np.ones(n, dtype=bool),
        zone_id=sessions.zone_id[keep][positive],
        has_zone=np.ones(n, dtype=bool),
        day=sessions.day[keep][positive],
        amount=amount[positive],
    )
    columns["hours"] = hours[positive]
    columns["rate"] = rate[positive]
    return columns


def _round_cents(value: np.ndarray) -> np.ndarray:
    """Round to cents the way DuckDB's ``round(x, 2)`` does: exactly, with ties away from zero.

    ``np.round`` and Python's ``round`` send ties to even (30.625 -> 30.62), and rounding ``x * 100``
    naively is fooled when the product itself rounds onto .5 (30.275 is really 30.27499...). Either way a
    report recomputing ``round(hours * rate, 2)`` with DuckDB would disagree by a cent. So the rounding
    error of ``x * 100`` is recovered exactly (Dekker's product, splitting ``x`` in two halves) and the
    decision to round up is made on the exact value. Only for non-negative ``value``.
    """
    scaled = value * 100
    split = value * 134_217_729.0  # 2**27 + 1
    high = split - (split - value)
    low = value - high
    error = (high * 100 - scaled) + low * 100  # value * 100 == scaled + error, exactly
    whole = np.floor(scaled)
    above_half = (scaled - whole) - 0.5  # exact
    rounded: np.ndarray = (whole + (above_half >= -error)) / 100
    return rounded


def _travel_costs(rng: np.random.Generator, sessions: _Sessions, workers: _Staff) -> _CostColumns:
    """Travel on a sample of the days a user worked; never tied to a zone."""
    live = ~sessions.deleted
    user_days = np.unique(sessions.user_index[live] * DAYS + sessions.day[live])
    chosen = user_days[rng.random(len(user_days)) < TRAVEL_DAY_SHARE]
    if len(chosen) == 0:
        chosen = user_days[:1]
    n = len(chosen)
    return _cost_columns(
        "travel",
        user_id=workers.user_ids[chosen // DAYS],
        has_user=np.ones(n, dtype=bool),
        zone_id=np.zeros(n),
        has_zone=np.zeros(n, dtype=bool),
        day=chosen % DAYS,
        amount=np.round(rng.uniform(4.8, 96.0, n), 2),
    )


def _equipment_costs(rng: np.random.Generator, sessions: _Sessions, zones: _Zones) -> _CostColumns:
    """Scanner rentals and supplies: no user, about half of them booked to a zone."""
    n = max(3, len(zones.scannable_ids) // 4 + len(sessions) // 500)
    return _cost_columns(
        "equipment",
        user_id=np.zeros(n),
        has_user=np.zeros(n, dtype=bool),
        zone_id=rng.choice(zones.scannable_ids, n),
        has_zone=rng.random(n) < 0.5,
        day=rng.integers(0, DAYS, n),
        amount=np.round(rng.uniform(25.0, 1800.0, n), 2),
    )


def _other_costs(
    rng: np.random.Generator, sessions: _Sessions, zones: _Zones, workers: _Staff
) -> _CostColumns:
    """Odds and ends: sometimes a (working) user, sometimes a zone."""
    n = max(3, len(sessions) // 300)
    return _cost_columns(
        "other",
        user_id=rng.choice(workers.user_ids, n),
        has_user=rng.random(n) < 0.5,
        zone_id=rng.choice(zones.scannable_ids, n),
        has_zone=rng.random(n) < 0.3,
        day=rng.integers(0, DAYS, n),
        amount=np.round(rng.uniform(5.0, 250.0, n), 2),
    )

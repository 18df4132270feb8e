"""The demo: two projects, the five login users and the field staff, and a deterministic lake.

Every login user's password is ``demo``: fine for a laptop, never for a shared instance, which is
why the CLI prints a warning. The lake data comes from :mod:`exporthub.demo_lake`.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import delete, func, select

from exporthub.db import Database
from exporthub.demo_lake import StaffMember, generate_project_lake
from exporthub.errors import InstanceNotEmpty
from exporthub.lake.catalog import drop_project as drop_lake
from exporthub.models import Job, Membership, Project, User, utcnow
from exporthub.passwords import hash_password
from exporthub.settings import Settings
from exporthub.storage import get_store

DEMO_PASSWORD = "demo"
OPEN_SLUG, CLOSED_SLUG = "demo-open", "demo-closed"

# (username, display name, global admin, {project slug: role})
LOGIN_USERS: tuple[tuple[str, str, bool, dict[str, str]], ...] = (
    ("admin", "Ada Admin", True, {}),
    ("manager", "Manon Manager", False, {OPEN_SLUG: "manager", CLOSED_SLUG: "manager"}),
    ("analyst", "Anaïs Analyst", False, {OPEN_SLUG: "analyst"}),
    ("viewer", "Víctor Viewer", False, {OPEN_SLUG: "viewer"}),
    ("outsider", "Otto Outsider", False, {}),
)

# Field staff do the scanning; they never log in. Some names are dirty on purpose.
STAFF_NAMES: tuple[str, ...] = (
    "Zoë Müller", "Łukasz Kowalski", "Søren Ærø", "José Álvarez", "Chloé Dubois", "Ömer Yıldız",
    "Nguyễn Văn An", "李娜", "Ivan Petrović", "Aoife Ní Bhriain", "=Formula Fred", "+Plus Paula",
    "-Minus Max", "@Handle Hanna", "Mārtiņš Bērziņš", "Björn Ängström", "Katarzyna Wójcik",
    "Dimitris Papadopoulos", "Fatima Zahra", "O'Brien Seán", "Jürgen Groß", "Élodie Lefèvre",
    "Mateus Gonçalves", "Priya Raman",
)


@dataclass(frozen=True)
class DemoSummary:
    created: bool
    projects: dict[str, int]  # slug -> scans
    seconds: float


def _staff_rate(index: int) -> float:
    return round(18.0 + (index * 7 % 17) * 1.0, 2)


def _ensure_users(db: Database) -> list[StaffMember]:
    password = hash_password(DEMO_PASSWORD)
    staff: list[StaffMember] = []
    with db.write() as s:
        existing = {u.username: u for u in s.scalars(select(User))}
        for username, name, admin, _roles in LOGIN_USERS:
            if username not in existing:
                s.add(User(username=username, display_name=name, password_hash=password, active=True,
                           is_admin=admin, hourly_rate=0.0, created_at=utcnow()))
        for i, name in enumerate(STAFF_NAMES, start=1):
            username = f"staff{i:02d}"
            user = existing.get(username)
            if user is None:
                user = User(username=username, display_name=name, password_hash=None, active=True,
                            is_admin=False, hourly_rate=_staff_rate(i), created_at=utcnow())
                if i == len(STAFF_NAMES):  # one former employee, deleted but with history
                    user.active, user.deleted_at = False, utcnow()
                s.add(user)
                s.flush()
            staff.append(StaffMember(user_id=user.id, hourly_rate=user.hourly_rate))
    return staff


def _ensure_project(db: Database, slug: str, name: str, tz: str, status: str) -> None:
    with db.write() as s:
        project = Project(slug=slug, name=name, timezone=tz, status=status, created_at=utcnow(),
                          closed_at=utcnow() if status != "open" else None)
        s.add(project)
        s.flush()
        users = {u.username: u for u in s.scalars(select(User))}
        for username, _name, _admin, roles in LOGIN_USERS:
            if slug in roles:
                s.add(Membership(user_id=users[username].id, project_id=project.id, role=roles[slug]))


def _drop_project(db: Database, settings: Settings, slug: str) -> None:
    with db.write() as s:
        project = s.scalar(select(Project).where(Project.slug == slug))
        if project is None:
            return
        s.execute(delete(Job).where(Job.project_id == project.id, Job.parent_id.is_not(None)))
        s.execute(delete(Job).where(Job.project_id == project.id))
        s.delete(project)
    drop_lake(settings, slug)
    store = get_store(settings)
    store.delete_prefix(slug)
    shutil.rmtree(store.work_root / slug, ignore_errors=True)


def demo_exists(db: Database) -> bool:
    """Whether this is the demo instance (``demo-`` slugs are reserved for it)."""
    with db.read() as s:
        return s.scalar(select(Project.id).where(Project.slug == OPEN_SLUG)) is not None


def instance_is_empty(db: Database) -> bool:
    """No users and no projects yet: the only data folder the demo may be made in."""
    with db.read() as s:
        users = s.scalar(select(func.count()).select_from(User)) or 0
        projects = s.scalar(select(func.count()).select_from(Project)) or 0
    return users == 0 and projects == 0


def create_demo(
    db: Database,
    settings: Settings,
    *,
    scans: int = 200_000,
    seed: int = 42,
    anchor: date | None = None,
    force: bool = False,
) -> DemoSummary:
    """Create the demo projects and users, and write their lakes.

    Does nothing when the demo already exists, unless ``force`` (which drops the demo projects, their
    jobs, files and lake, and makes them again). Deterministic for a given seed and anchor date.
    Raises :class:`InstanceNotEmpty` on an instance with people or projects of its own: the demo's
    accounts all have the password ``demo``, which must never reach a real instance.
    """
    started = datetime.now()
    exists = demo_exists(db)
    if exists and not force:
        return DemoSummary(created=False, projects={}, seconds=0.0)
    if not exists and not instance_is_empty(db):
        raise InstanceNotEmpty(
            "This data folder holds an instance with its own users or projects; the demo is only made in "
            "an empty one (point EXPORTHUB_DATA_DIR at a new folder to try the demo)"
        )
    anchor = anchor or date.today()
    for slug in (OPEN_SLUG, CLOSED_SLUG):
        _drop_project(db, settings, slug)
    staff = _ensure_users(db)
    plans = (
        (OPEN_SLUG, "Demo Warehouse (open)", "Europe/Berlin", "open", scans, seed),
        (CLOSED_SLUG, "Demo Store (closed)", "America/New_York", "closed", max(scans // 4, 1), seed + 1),
    )
    counts: dict[str, int] = {}
    for slug, name, tz, status, n, project_seed in plans:
        _ensure_project(db, slug, name, tz, status)
        summary = generate_project_lake(settings, slug, n_scans=n, seed=project_seed, anchor=anchor,
                                        timezone=tz, staff=staff)
        counts[slug] = summary.scans
    return DemoSummary(created=True, projects=counts, seconds=(datetime.now() - started) / timedelta(seconds=1))

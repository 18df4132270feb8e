"""The lockout under parallel guesses, with real processes, on SQLite and on PostgreSQL.

Before, the lock was read before argon2 and the failure counted after it, so 20 concurrent guesses
were all checked and the right one logged in; simultaneous first failures raised an unhandled
UniqueViolation on PostgreSQL (neither counted nor audited). Now each attempt is counted and the lock
checked in one locked transaction before the password is looked at.
"""

from __future__ import annotations

import os
from collections import Counter

import pytest
from sqlalchemy import select

from exporthub.accounts import AccountService, SystemActor
from exporthub.models import AuditEvent, LoginAttempt
from tests._hubs import make_hub
from tests._processes import run_together

pytestmark = pytest.mark.slow

MAX_FAILURES = 3
RACERS = 10
PASSWORD = "the-right-password"

_GUESSER = r"""
import json, sys, time
from pathlib import Path
from exporthub.auth import LoginRefused, LoginThrottled, authenticate
from exporthub.db import get_database
from exporthub.settings import get_settings

settings = get_settings()
db = get_database(settings, migrate=False)
go, ready, username, password = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3], sys.argv[4]
ready.touch()
while not go.exists():
    time.sleep(0.002)
try:
    user = authenticate(db, settings, username, password)
    print(json.dumps(["ok", user.username]))
except LoginThrottled as exc:
    print(json.dumps(["throttled", exc.message]))
except LoginRefused as exc:
    print(json.dumps(["refused", exc.message]))
except Exception as exc:  # a unique violation, "database is locked": the test fails on it
    print(json.dumps(["error", repr(exc)]))
"""


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def instance(request, tmp_path, monkeypatch):
    """An instance with one user, ``anna``, on either database; the environment the racers get."""
    extra = {"LOGIN_MAX_FAILURES": str(MAX_FAILURES), "LOGIN_LOCKOUT_SECONDS": "600"}
    if request.param == "postgresql":
        extra |= {"DATABASE_URL": request.getfixturevalue("pg_url"), "SECRET_KEY": "s" * 32}
    hub = make_hub(tmp_path, monkeypatch, **extra)
    AccountService(hub.db).create_user(SystemActor("pytest"), "anna", password=PASSWORD)
    env = {k: v for k, v in os.environ.items() if not k.startswith("EXPORTHUB_")}
    env |= {f"EXPORTHUB_{k}": v for k, v in extra.items()} | {"EXPORTHUB_DATA_DIR": str(hub.settings.data_dir)}
    yield hub, env
    hub.db.dispose()


def _guess(env, guesses: list[str], username: str = "anna") -> list[tuple[object, ...]]:
    """One process per guess, all released at the same moment; their answers in guess order."""
    return run_together(_GUESSER, env, 0, racer_args=[(username, pw) for pw in guesses])


def _login_events(hub, username: str = "anna") -> list[tuple[str, str | None]]:
    with hub.db.read() as s:
        return [(e.outcome, e.detail) for e in s.scalars(
            select(AuditEvent).where(AuditEvent.action == "login", AuditEvent.actor == username))]


def test_parallel_first_guesses_check_at_most_the_limit_and_lock(instance):
    hub, env = instance
    results = _guess(env, ["wrong"] * RACERS)
    kinds = Counter(r[0] for r in results)
    assert "error" not in kinds, results  # no unique violation, no "database is locked"
    events = _login_events(hub)
    assert len(events) == RACERS  # every attempt is one audit event
    checked = [d for o, d in events if d and d.startswith("wrong password")]
    assert len(checked) == MAX_FAILURES  # argon2 saw exactly the allowed number of passwords
    assert all(o == "refused" for o, _ in events)
    assert kinds["throttled"] >= RACERS - MAX_FAILURES
    with hub.db.read() as s:
        assert s.get(LoginAttempt, "anna").locked_until is not None


def test_during_a_lockout_every_parallel_attempt_gets_the_same_answer_unchecked(instance):
    hub, env = instance
    _guess(env, ["wrong"] * MAX_FAILURES)  # the lock is set
    before = len(_login_events(hub))
    results = _guess(env, ["wrong"] * (RACERS - 2) + [PASSWORD] * 2)
    assert {r[0] for r in results} == {"throttled"}, results  # the right password too
    messages = {r[1] for r in results}
    assert len(messages) == 1 and next(iter(messages)).startswith("Too many failed attempts. Try again in")
    events = _login_events(hub)[before:]
    assert len(events) == RACERS and {o for o, _ in events} == {"refused"}
    assert all(d.startswith("locked") for _o, d in events)  # none of them reached argon2


def test_the_right_password_within_the_limit_still_logs_in(instance):
    hub, env = instance
    results = _guess(env, ["wrong"] * (MAX_FAILURES - 1) + [PASSWORD])
    assert Counter(r[0] for r in results) == {"refused": MAX_FAILURES - 1, "ok": 1}
    assert len(_login_events(hub)) == MAX_FAILURES


def test_simultaneous_first_failures_of_an_unknown_name_are_all_counted(instance):
    hub, env = instance
    results = _guess(env, ["x"] * RACERS, username="ghost")
    assert "error" not in {r[0] for r in results}, results
    assert len(_login_events(hub, "ghost")) == RACERS

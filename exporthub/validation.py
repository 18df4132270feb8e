"""The rules for the names people choose, once: project slugs, usernames, emails, timezones, passwords,
hourly rates and roles. Creating a project or a user, restoring a backup and importing data all check
with these functions, so they cannot disagree. Each returns the value or raises
:class:`~exporthub.errors.InvalidValue` with a message for a person."""

from __future__ import annotations

import functools
import re
from importlib import resources
from zoneinfo import available_timezones

from exporthub.errors import InvalidValue
from exporthub.permissions import ROLES

# Slugs name folders (lake/<slug>, files/<slug>) and appear in URLs: lower-case words joined by "-".
SLUG_RE = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
SLUG_MAX = 64
# No ":" in usernames, so "cli:<name>" in the audit trail can never be a user.
USERNAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")
EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
MIN_PASSWORD_LENGTH = 8


def validate_slug(slug: str) -> str:
    if not slug or len(slug) > SLUG_MAX or not SLUG_RE.match(slug):
        raise InvalidValue(
            f"Invalid project slug {slug!r}: use lower-case letters, digits and single hyphens "
            f"(e.g. 'warehouse-2026'), at most {SLUG_MAX} characters"
        )
    return slug


@functools.cache
def timezone_names() -> frozenset[str]:
    """The IANA zone names (from the ``tzdata`` package's list; the system's as a fallback).

    Not the files on disk: a system zoneinfo folder also holds ``localtime``, ``posixrules`` and the
    like, which name no place.
    """
    try:
        names = set(resources.files("tzdata").joinpath("zones").read_text(encoding="utf-8").split())
    except (ModuleNotFoundError, FileNotFoundError):
        names = set(available_timezones())
    return frozenset(names - {"Factory", "localtime", "posixrules"})


def validate_timezone(tz: str) -> str:
    if tz not in timezone_names():
        raise InvalidValue(f"Unknown timezone {tz!r}: use an IANA name such as 'Europe/Berlin' or 'UTC'")
    return tz


def validate_username(username: str) -> str:
    if not USERNAME_RE.match(username or ""):
        raise InvalidValue(
            f"Invalid username {username!r}: start with a letter or digit, then letters, digits, '.', '_', "
            "'@' or '-', at most 64 characters"
        )
    return username


def validate_password(password: str) -> str:
    if len(password) < MIN_PASSWORD_LENGTH or not password.strip():
        raise InvalidValue(f"The password must have at least {MIN_PASSWORD_LENGTH} characters")
    return password


MAX_HOURLY_RATE = 100_000.0


def validate_hourly_rate(rate: float) -> float:
    """A rate per hour in the project's currency: a finite number from 0 up to a sane maximum."""
    if not (0.0 <= rate <= MAX_HOURLY_RATE):  # also refuses NaN
        raise InvalidValue(f"The hourly rate must be between 0 and {MAX_HOURLY_RATE:,.0f}, got {rate}")
    return round(float(rate), 4)


# The currencies a project's costs may be in: ISO 4217 codes the cost data of the demo and imports use.
CURRENCIES = ("EUR", "USD", "GBP", "CHF", "SEK", "NOK", "DKK", "PLN", "CZK", "JPY", "CNY", "CAD", "AUD")


def validate_currency(code: str) -> str:
    """An ISO 4217 code from :data:`CURRENCIES` (case-insensitive; returned upper-case)."""
    upper = code.strip().upper()
    if upper not in CURRENCIES:
        raise InvalidValue(f"Unknown currency {code!r}; the currencies are: {', '.join(CURRENCIES)}")
    return upper


def validate_role(role: str) -> str:
    if role not in ROLES:
        raise InvalidValue(f"Unknown role {role!r}; the roles are: {', '.join(ROLES)}")
    return role


def validate_email(email: str) -> str:
    if not EMAIL_RE.match(email):
        raise InvalidValue(f"Invalid email address {email!r}")
    return email

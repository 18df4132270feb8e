"""Permissions, built-in roles and the one check every domain call goes through."""

from __future__ import annotations

from enum import StrEnum


class Permission(StrEnum):
    VIEW = "exports.view"
    START = "exports.start"
    CANCEL = "exports.cancel"
    REMOVE = "exports.remove"
    RESET_EXPORT_SESSIONS = "exports.reset-export-sessions"


ALL_PERMISSIONS: frozenset[Permission] = frozenset(Permission)

# Built-in roles. A membership names one role; a global admin holds every permission everywhere.
ROLES: dict[str, frozenset[Permission]] = {
    "viewer": frozenset({Permission.VIEW}),
    "analyst": frozenset({Permission.VIEW, Permission.START, Permission.CANCEL}),
    "manager": ALL_PERMISSIONS,
}


def role_permissions(role: str) -> frozenset[Permission]:
    """Permissions of a built-in role; an unknown role (e.g. from an old backup) grants nothing."""
    return ROLES.get(role, frozenset())


def role_table() -> dict[str, tuple[str, ...]]:
    """Each built-in role with its permissions, in the order of :class:`Permission`."""
    order = list(Permission)
    return {role: tuple(str(p) for p in order if p in perms) for role, perms in ROLES.items()}

"""Typed refusals. Each message is meant for a person; the UI and CLI show it as is."""

from __future__ import annotations

import re
from typing import ClassVar


class ExporthubError(Exception):
    """Base of every refusal the domain raises on purpose.

    ``code`` is the refusal's stable machine name (the CLI's ``{"error": {"code": …}}``); a subclass
    without one gets its class name in snake case.
    """

    code: ClassVar[str] = "refused"

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        if "code" not in cls.__dict__:
            cls.code = re.sub(r"(?<!^)(?=[A-Z])", "_", cls.__name__).lower()

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class PermissionDenied(ExporthubError):
    def __init__(self, message: str = "Permission denied") -> None:
        super().__init__(message)


class ProjectNotClosed(ExporthubError):
    def __init__(self, message: str = "Project must be closed") -> None:
        super().__init__(message)


class JobAlreadyRunning(ExporthubError):
    def __init__(self, export_type: str) -> None:
        super().__init__(f"Export job already running: {export_type}")
        self.export_type = export_type


class InvalidVariable(ExporthubError):
    def __init__(self, key: str, problem: str) -> None:
        super().__init__(f"Invalid variable '{key}': {problem}")
        self.key = key


class NotFound(ExporthubError):
    """An unknown project, user, job, file or export type."""


class InvalidTransition(ExporthubError):
    """The job is not in a state that allows the action (e.g. cancelling a completed job)."""


class InstanceNotEmpty(ExporthubError):
    """The demo was asked for in a data folder that holds a real instance."""


class Cancelled(Exception):
    """Raised inside a running export when its job was cancelled. Not a refusal."""

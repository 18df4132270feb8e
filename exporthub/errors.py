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


class LoginRefused(ExporthubError):
    """Wrong username or password, or an account that may not log in. Deliberately vague."""

    def __init__(self, message: str = "Invalid username or password") -> None:
        super().__init__(message)


class LoginThrottled(LoginRefused):
    """Too many failed attempts for this username; ``retry_after`` seconds until the next try.

    Every attempt during a lockout gets this same answer, whatever the password.
    """

    def __init__(self, retry_after: int) -> None:
        minutes = max(1, -(-retry_after // 60))
        super().__init__(
            f"Too many failed attempts. Try again in {minutes} minute{'s' if minutes != 1 else ''}."
        )
        self.retry_after = retry_after


class JobNotFound(NotFound):
    """A job that does not exist or that the user may not see: one answer for both, so nobody can
    tell which job ids exist on projects they are not a member of."""

    def __init__(self, job_id: object) -> None:
        super().__init__(f"Job {job_id} not found or not permitted")
        self.job_id = job_id


class FileNotAvailable(NotFound):
    """A stored file that does not exist, was removed, or that the user may not see (one answer)."""

    def __init__(self, file_id: object) -> None:
        super().__init__(f"File {file_id} not found or not permitted")
        self.file_id = file_id


class BackupInvalid(ExporthubError):
    """A backup whose content an import would refuse (a bad username, timezone, status, lake schema…)
    or that is too large; nothing was restored."""

    def __init__(self, problem: str) -> None:
        super().__init__(f"Backup refused, nothing was restored: {problem}")


class RestoreFailed(ExporthubError):
    """Restoring a backup that passed every check failed while writing; everything written was undone."""

    def __init__(self, problem: str) -> None:
        super().__init__(f"Restore failed, nothing was restored: {problem}")


class RegistryError(ExporthubError):
    """A duplicate or unknown exporter, or a config entry without one: fails loudly at start-up."""

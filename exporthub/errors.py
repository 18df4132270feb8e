"""Typed refusals. Each message is meant for a person; the UI and CLI show it as is."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, ClassVar

if TYPE_CHECKING:
    from exporthub.importer.read import Problem


class ExporthubError(Exception):
    """Base of every error the domain raises on purpose: refusals, and :class:`Cancelled`. Every error
    class lives in this module, except the file store's (:class:`exporthub.storage.StorageError` and its
    subclasses): those are OSErrors on purpose, an I/O failure that fails a job like any other, not a
    refusal to audit and show as the user's mistake.

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


class Cancelled(ExporthubError):
    """Raised inside a running export when its job was cancelled. Not a refusal: the runner ends the job."""

    def __init__(self, message: str = "Cancelled") -> None:
        super().__init__(message)


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


class LakeDamaged(ExporthubError):
    """A project's data could not be read (a damaged or missing data file). The message names no
    server path; the reader's own error stays chained as ``__cause__`` for admins and the log."""

    def __init__(self, project: str, table: str) -> None:
        super().__init__(
            f"The {table} data of project {project} could not be read: a data file is damaged or missing. "
            "An administrator can see the details."
        )
        self.project = project
        self.table = table


class RegistryError(ExporthubError):
    """A duplicate or unknown exporter, or a config entry without one: fails loudly at start-up."""


class SettingsError(ExporthubError):
    """A setting is missing or malformed; the message names the variable."""

    code = "settings"


class ConfigError(ExporthubError):
    """The export config file itself is malformed (raised at start-up, not per request)."""


class InvalidValue(ExporthubError):
    """A value that does not pass validation (slug, username, timezone, password, role...)."""


class AlreadyExists(ExporthubError):
    """A project slug or username that is taken."""


class ImportRefused(ExporthubError):
    """The files do not pass validation; nothing was written. ``problems`` lists up to 50, in file order."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = list(problems)
        more = f" (and {len(self.problems) - 1} more problems)" if len(self.problems) > 1 else ""
        super().__init__(f"Import refused, nothing was changed: {self.problems[0]}{more}")


class BackupCorrupted(ExporthubError):
    """The archive is not a backup, or an entry does not match its manifest checksum."""

    def __init__(self, problem: str) -> None:
        super().__init__(f"Backup is corrupted, nothing was restored: {problem}")


class RestoreRefused(ExporthubError):
    """The target slug is invalid or taken."""


class LakeConflict(ExporthubError):
    """Another writer committed to the same table first; nothing of this attempt was published."""


class LakeUnreadable(ExporthubError):
    """The lake holds something this version cannot read (e.g. row-level delete files)."""


class LakeMigrationFailed(ExporthubError):
    """The part-file lake could not be converted; it was left as it was."""


# What a refused download's caller sees. Deliberately vague: the reason is in the audit trail, not in the answer.
PUBLIC_MESSAGES = {
    401: "Log in as the user this link was made for to download this file.",
    403: "This download link is not valid for you, or it has expired.",
    404: "This file is not available.",
}


class LinkRefused(ExporthubError):
    """A download link that must not be honoured.

    ``status`` is the HTTP status to answer with (401, 403 or 404); ``message`` is safe to show anyone;
    ``reason`` says what was wrong, for the audit trail and logs only.
    """

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(PUBLIC_MESSAGES.get(status, PUBLIC_MESSAGES[403]))
        self.status = status
        self.reason = reason

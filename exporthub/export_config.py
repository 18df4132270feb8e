"""The ExportConfig: which export types exist, how they are grouped, and their typed variables.

The shipped JSON lives in ``exporters/export_config.json``; a deployment overrides it by path
(``EXPORTHUB_EXPORT_CONFIG``). Variable values are validated here, for the UI and the CLI alike:
unknown keys, wrong types and out-of-range values are refused with a message naming the variable.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from exporthub.errors import ConfigError, InvalidVariable


class VarType(StrEnum):
    STRING = "string"
    ARRAY = "array"
    DATE = "date"
    BOOLEAN = "boolean"
    NUMBER = "number"


DATE_PRESETS = ("all", "last7days", "last30days", "custom")
_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off", ""}
MAX_STRING_LENGTH = 500
MIN_YEAR, MAX_YEAR = 1900, 2200


@dataclass(frozen=True)
class Variable:
    key: str
    title: str
    type: VarType
    default: Any
    options: tuple[str, ...] = ()
    multiple: bool = False
    minimum: float | None = None
    maximum: float | None = None
    dynamic_options: bool = False  # options come from the project (e.g. zone codes), not the config


    def describe(self) -> dict[str, Any]:
        """The variable as documentation (``exporthub types``): kind, allowed values, default."""
        kind = "choices" if self.type is VarType.ARRAY and self.multiple else (
            "choice" if self.type is VarType.ARRAY else str(self.type))
        data: dict[str, Any] = {"key": self.key, "title": self.title, "kind": kind, "default": self.default}
        if self.type is VarType.ARRAY:
            data["options"] = (_DYNAMIC_DESCRIPTIONS.get(self.key, "the project's own values")
                               if self.dynamic_options else list(self.options))
        if self.minimum is not None:
            data["min"] = self.minimum
        if self.maximum is not None:
            data["max"] = self.maximum
        return data


@dataclass(frozen=True)
class ExportDefinition:
    type: str
    title: str
    group: str
    allow_when_project_not_closed: bool
    is_hidden: bool
    variables: tuple[Variable, ...] = field(default_factory=tuple)

    def variable(self, key: str) -> Variable | None:
        return next((v for v in self.variables if v.key == key), None)

    def describe(self) -> dict[str, Any]:
        """The type as documentation (``exporthub types``)."""
        return {
            "export_type": self.type,
            "title": self.title,
            "group": self.group,
            "needs_closed_project": not self.allow_when_project_not_closed,
            "variables": [v.describe() for v in self.variables],
        }


def _infer_type(value: Any) -> VarType:
    if isinstance(value, bool):
        return VarType.BOOLEAN
    if isinstance(value, int | float):
        return VarType.NUMBER
    if isinstance(value, list):
        return VarType.ARRAY
    if isinstance(value, str):
        try:
            date.fromisoformat(value)
            return VarType.DATE
        except ValueError:
            return VarType.STRING
    raise ConfigError(f"cannot infer a type from {value!r}; give 'type'")


# Variables whose options are the project's own values, filled in at validation time.
_DYNAMIC_KEYS = frozenset({"zones", "users", "areas"})
_DYNAMIC_DESCRIPTIONS = {"zones": "the project's zone codes", "users": "the project's usernames",
                         "areas": "the project's areas"}


def _parse_variable(export_type: str, raw: Mapping[str, Any]) -> Variable:
    try:
        key = str(raw["key"])
    except KeyError:
        raise ConfigError(f"{export_type}: a variable has no 'key'") from None
    value = raw.get("value")
    vtype = VarType(raw["type"]) if "type" in raw else _infer_type(value)
    options: tuple[str, ...] = ()
    multiple = bool(raw.get("multiple", False))
    default = value
    if vtype is VarType.ARRAY:
        options = tuple(str(o) for o in (value or []))
        default = [] if multiple else (options[0] if options else None)
        if multiple and "default" in raw:
            # A multi-choice may preselect some options (publish's report set); the rest stay choosable.
            if not isinstance(raw["default"], list):
                raise ConfigError(f"{export_type}.{key}: 'default' must be a list of options")
            default = [str(o) for o in raw["default"]]
            unknown = [o for o in default if o not in options]
            if unknown:
                raise ConfigError(f"{export_type}.{key}: default {unknown[0]!r} is not one of the options")
        if not multiple and not options and key not in _DYNAMIC_KEYS:
            raise ConfigError(f"{export_type}.{key}: an array variable needs at least one option")
    return Variable(
        key=key,
        title=str(raw.get("title", key)),
        type=vtype,
        default=default,
        options=options,
        multiple=multiple,
        minimum=raw.get("min"),
        maximum=raw.get("max"),
        dynamic_options=key in _DYNAMIC_KEYS and not options,
    )


def parse_config(data: Mapping[str, Any]) -> dict[str, ExportDefinition]:
    """Parse the config mapping (type -> entry). Raises :class:`ConfigError` on malformed entries."""
    result: dict[str, ExportDefinition] = {}
    for export_type, entry in data.items():
        missing = {"title", "group"} - set(entry)
        if missing:
            raise ConfigError(f"{export_type}: missing {', '.join(sorted(missing))}")
        variables = tuple(_parse_variable(export_type, v) for v in entry.get("exportVariables", []))
        keys = [v.key for v in variables]
        if len(keys) != len(set(keys)):
            raise ConfigError(f"{export_type}: duplicate variable keys")
        result[export_type] = ExportDefinition(
            type=export_type,
            title=str(entry["title"]),
            group=str(entry["group"]),
            allow_when_project_not_closed=bool(entry.get("allowWhenProjectNotClosed", True)),
            is_hidden=bool(entry.get("isHidden", False)),
            variables=variables,
        )
    return result


def load_config(path: Path) -> dict[str, ExportDefinition]:
    """Read and parse the config file at ``path``."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ConfigError(f"cannot read export config {path}: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"export config {path} must be a JSON object of export types")
    return parse_config(data)


# ---------------------------------------------------------------- validation of values


def _as_bool(key: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    raise InvalidVariable(key, f"expected true or false, got {value!r}")


def _as_number(var: Variable, value: Any) -> float | int:
    if isinstance(value, bool):
        raise InvalidVariable(var.key, f"expected a number, got {value!r}")
    if isinstance(value, int | float):
        number: float | int = value
    elif isinstance(value, str):
        try:
            number = int(value) if value.strip().lstrip("-").isdigit() else float(value)
        except ValueError:
            raise InvalidVariable(var.key, f"expected a number, got {value!r}") from None
    else:
        raise InvalidVariable(var.key, f"expected a number, got {value!r}")
    if isinstance(number, float) and not math.isfinite(number):
        raise InvalidVariable(var.key, "expected a finite number")
    if var.minimum is not None and number < var.minimum:
        raise InvalidVariable(var.key, f"must be at least {var.minimum}")
    if var.maximum is not None and number > var.maximum:
        raise InvalidVariable(var.key, f"must be at most {var.maximum}")
    return number


def _as_date(key: str, value: Any) -> str | None:
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        value = value.date()
    if isinstance(value, str):
        try:
            value = date.fromisoformat(value.strip())
        except ValueError:
            raise InvalidVariable(key, f"expected a date as YYYY-MM-DD, got {value!r}") from None
    if isinstance(value, date):
        # Far-off dates are typos, and day arithmetic on them overflows.
        if not MIN_YEAR <= value.year <= MAX_YEAR:
            raise InvalidVariable(key, f"must be between {MIN_YEAR} and {MAX_YEAR}")
        return value.isoformat()
    raise InvalidVariable(key, f"expected a date as YYYY-MM-DD, got {value!r}")


def _as_choices(var: Variable, value: Any, options: Sequence[str]) -> Any:
    if var.multiple:
        if value is None or value == "":
            items: list[str] = []
        elif isinstance(value, str):
            items = [v.strip() for v in value.split(",") if v.strip()]
        elif isinstance(value, list | tuple):
            items = [str(v) for v in value]
        else:
            raise InvalidVariable(var.key, f"expected a list of choices, got {value!r}")
        unknown = [v for v in items if v not in options]
        if unknown:
            raise InvalidVariable(var.key, f"unknown choice {unknown[0]!r}")
        return sorted(set(items), key=list(options).index)
    if not isinstance(value, str) or value not in options:
        raise InvalidVariable(var.key, f"must be one of {', '.join(options)}; got {value!r}")
    return value


def _as_string(key: str, value: Any) -> str:
    if not isinstance(value, str):
        raise InvalidVariable(key, f"expected text, got {value!r}")
    if len(value) > MAX_STRING_LENGTH or "\x00" in value:
        raise InvalidVariable(key, f"text must be at most {MAX_STRING_LENGTH} characters, without NUL")
    return value


def validate_variables(
    definition: ExportDefinition,
    raw: Mapping[str, Any],
    *,
    dynamic_options: Mapping[str, Sequence[str]] | None = None,
) -> dict[str, Any]:
    """Check ``raw`` against the definition and return every variable with defaults filled in.

    The result is JSON-serialisable (dates as ISO strings). ``dynamic_options`` supplies the options
    of variables that come from the project, such as zone codes. Raises :class:`InvalidVariable`
    naming the first offending variable.
    """
    dynamic_options = dynamic_options or {}
    known = {v.key for v in definition.variables}
    for key in raw:
        if key not in known:
            valid = ", ".join(v.key for v in definition.variables) or "none"
            raise InvalidVariable(str(key), f"unknown variable for export type '{definition.type}'; "
                                            f"its variables are: {valid}")
    result: dict[str, Any] = {}
    for var in definition.variables:
        value = raw.get(var.key, var.default)
        if var.type is VarType.BOOLEAN:
            result[var.key] = _as_bool(var.key, False if value is None else value)
        elif var.type is VarType.NUMBER:
            result[var.key] = None if value is None or value == "" else _as_number(var, value)
        elif var.type is VarType.DATE:
            result[var.key] = _as_date(var.key, value)
        elif var.type is VarType.ARRAY:
            options = tuple(dynamic_options.get(var.key, var.options))
            result[var.key] = _as_choices(var, value, options)
        else:
            result[var.key] = "" if value is None else _as_string(var.key, value)
    _check_date_range(result)
    return result


def _check_date_range(values: dict[str, Any]) -> None:
    if "dateRange" not in values:
        return
    if values["dateRange"] != "custom":
        # From/to only mean something for a custom range; drop them so the job records what applies.
        values["dateFrom"] = values["dateTo"] = None
        return
    start, end = values.get("dateFrom"), values.get("dateTo")
    if start is None:
        raise InvalidVariable("dateFrom", "a custom date range needs a start date")
    if end is None:
        raise InvalidVariable("dateTo", "a custom date range needs an end date")
    if start > end:
        raise InvalidVariable("dateTo", "the end date is before the start date")


@dataclass(frozen=True)
class DateWindow:
    """Whole, inclusive local days as a half-open UTC interval [start, end)."""

    first_day: date
    last_day: date
    start_utc: datetime
    end_utc: datetime


def resolve_date_window(values: Mapping[str, Any], timezone: str, now: datetime) -> DateWindow | None:
    """The UTC window for the chosen date range, in the project's timezone; ``None`` means all time.

    Presets count back from today in the project's timezone: ``last7days`` is today and the six days
    before it.
    """
    preset = values.get("dateRange", "all")
    if preset in (None, "all"):
        return None
    tz = ZoneInfo(timezone)
    today = now.astimezone(tz).date()
    if preset == "last7days":
        first, last = today - timedelta(days=6), today
    elif preset == "last30days":
        first, last = today - timedelta(days=29), today
    elif preset == "custom":
        first, last = date.fromisoformat(values["dateFrom"]), date.fromisoformat(values["dateTo"])
    else:
        raise InvalidVariable("dateRange", f"must be one of {', '.join(DATE_PRESETS)}")
    start = datetime.combine(first, time.min, tzinfo=tz)
    end = datetime.combine(last + timedelta(days=1), time.min, tzinfo=tz)
    return DateWindow(first, last, start.astimezone(ZoneInfo("UTC")), end.astimezone(ZoneInfo("UTC")))

"""What an export type must provide, and the registry that holds them: the domain's side of the plugin seam.

The domain defines the contract and never the plugins: the edges (the CLI, the worker, the web app)
build the registry from the ``exporters`` package and pass it in, as they pass the dispatcher.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from exporthub.context import ChildSpec, JobContext
from exporthub.errors import RegistryError
from exporthub.permissions import Permission

__all__ = ["Estimate", "Exporter", "ExporterRegistry", "Registry", "RegistryError"]


@dataclass(frozen=True)
class Estimate:
    """A fast guess at the output for the chosen filters, shown before a job starts."""

    rows: int
    approx_bytes: int
    warnings: tuple[str, ...] = ()


@runtime_checkable
class Exporter(Protocol):
    export_type: str
    """The config key of this export type, e.g. ``"scans"``."""

    formats: tuple[str, ...]
    """The formats it can produce; the ``format`` variable's options must be a subset."""

    permission: Permission
    """The permission needed to start it (always ``exports.start`` for the built-ins)."""

    uses_lake: bool
    """Whether the runner opens a DuckDB connection over a lake snapshot for it."""

    def run(self, ctx: JobContext) -> None:
        """Write the output files into ``ctx.workdir``; report progress and check cancellation."""
        ...

    def estimate(self, ctx: JobContext) -> Estimate | None:
        """Rows and size for the chosen variables, from a fast count; ``None`` if not meaningful."""
        ...

    def plan_children(self, variables: Mapping[str, Any], config_types: frozenset[str]) -> list[ChildSpec]:
        """Child jobs to create with this one (publish); empty for ordinary exports."""
        ...

    def check_variables(self, values: Mapping[str, Any]) -> None:
        """Checks across validated variables; raises :class:`~exporthub.errors.InvalidVariable`."""
        ...


class ExporterRegistry(Protocol):
    """What the job engine needs of a registry: look an exporter up, know the types, check the config."""

    def get(self, export_type: str) -> Exporter: ...

    def __contains__(self, export_type: object) -> bool: ...

    def __iter__(self) -> Iterator[Exporter]: ...

    def check_config(self, config_types: Mapping[str, Any]) -> None: ...


class Registry:
    """Exporters by export type; a duplicate or a config entry without one fails loudly at start-up."""

    def __init__(self) -> None:
        self._exporters: dict[str, Exporter] = {}

    def register(self, exporter: Exporter) -> Exporter:
        if not isinstance(exporter, Exporter):
            raise RegistryError(f"{exporter!r} does not implement the Exporter protocol")
        if exporter.export_type in self._exporters:
            raise RegistryError(f"exporter {exporter.export_type!r} registered twice")
        self._exporters[exporter.export_type] = exporter
        return exporter

    def get(self, export_type: str) -> Exporter:
        try:
            return self._exporters[export_type]
        except KeyError:
            raise RegistryError(f"no exporter registered for {export_type!r}") from None

    def __contains__(self, export_type: object) -> bool:
        return export_type in self._exporters

    def __iter__(self) -> Iterator[Exporter]:
        return iter(self._exporters.values())

    def types(self) -> frozenset[str]:
        return frozenset(self._exporters)

    def check_config(self, config_types: Mapping[str, Any]) -> None:
        """Every visible config entry needs an exporter (hidden ones may wait until they are built)."""
        for export_type, definition in config_types.items():
            if export_type not in self and not getattr(definition, "is_hidden", False):
                raise RegistryError(f"config entry {export_type!r} has no exporter")

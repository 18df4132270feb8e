"""The exporters' side of the plugin seam: defaults for the optional parts of the protocol.

An export type is one module in ``exporters/`` exposing ``EXPORTER``, an object implementing
:class:`exporthub.plugins.Exporter` (usually a :class:`BaseExporter`). Built-ins are registered in
``exporters/__init__.py`` and nowhere else.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from exporthub.context import ChildSpec, JobContext
from exporthub.permissions import Permission
from exporthub.plugins import Estimate, Exporter, Registry, RegistryError

__all__ = ["BaseExporter", "Estimate", "Exporter", "Registry", "RegistryError"]


class BaseExporter:
    """Defaults for the optional parts of the protocol."""

    export_type: str = ""
    formats: tuple[str, ...] = ()
    permission: Permission = Permission.START
    uses_lake: bool = True

    def run(self, ctx: JobContext) -> None:  # pragma: no cover - every exporter overrides it
        raise NotImplementedError

    def estimate(self, ctx: JobContext) -> Estimate | None:
        return None

    def plan_children(self, variables: Mapping[str, Any], config_types: frozenset[str]) -> list[ChildSpec]:
        return []

    def check_variables(self, values: Mapping[str, Any]) -> None:
        return None

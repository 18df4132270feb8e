"""The exporters' side of the plugin seam: defaults for the optional parts of the protocol.

An export type is one module in ``exporters/`` exposing ``EXPORTER``, an object implementing
:class:`exporthub.plugins.Exporter` (usually a :class:`BaseExporter`). Built-ins are registered in
``exporters/__init__.py`` and nowhere else, by module name: :class:`LazyRegistry` imports an
exporter's module only when its type is looked up (a job of that type runs or is validated), so a
process pays for the export types it uses, not for all of them.
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Iterator, Mapping
from typing import Any

from exporthub.context import ChildSpec, JobContext
from exporthub.permissions import Permission
from exporthub.plugins import Estimate, Exporter, Registry, RegistryError

__all__ = ["BaseExporter", "Estimate", "Exporter", "LazyRegistry", "Registry", "RegistryError"]


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


class LazyRegistry(Registry):
    """A :class:`Registry` that also takes ``export type -> module name`` and imports the module (its
    ``EXPORTER``) on first :meth:`get`. It fails as loudly as the eager one: a name registered twice at
    once, and at import a module whose exporter does not implement the protocol or names another type.
    Iterating imports every exporter (the meta-tests and listings that need them all)."""

    def __init__(self) -> None:
        super().__init__()
        self._modules: dict[str, str] = {}
        self._loading = threading.RLock()  # an exporter module may look another up as it loads

    def register_module(self, export_type: str, module: str) -> None:
        """Register ``module.EXPORTER`` under ``export_type``, imported when the type is first looked up."""
        if export_type in self:
            raise RegistryError(f"exporter {export_type!r} registered twice")
        self._modules[export_type] = module

    def register(self, exporter: Exporter) -> Exporter:
        if getattr(exporter, "export_type", None) in self._modules:
            raise RegistryError(f"exporter {exporter.export_type!r} registered twice")
        return super().register(exporter)

    def get(self, export_type: str) -> Exporter:
        loaded = self._exporters.get(export_type)  # every lookup after the first: one dict read, no lock
        if loaded is not None:
            return loaded
        with self._loading:  # only to import: one thread imports a module, the others wait for it
            module = self._modules.get(export_type)
            if module is not None:
                exporter = importlib.import_module(module).EXPORTER
                if getattr(exporter, "export_type", None) != export_type:
                    raise RegistryError(f"{module}.EXPORTER is not the {export_type!r} exporter")
                super().register(exporter)  # known as loaded before it stops being known as a module,
                del self._modules[export_type]  # so ``in`` and types() never miss it meanwhile
        return super().get(export_type)

    def __contains__(self, export_type: object) -> bool:
        return export_type in self._modules or super().__contains__(export_type)

    def __iter__(self) -> Iterator[Exporter]:
        return iter([self.get(t) for t in sorted(self.types())])

    def types(self) -> frozenset[str]:
        return super().types() | frozenset(self._modules)

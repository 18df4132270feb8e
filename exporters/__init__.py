"""Export types. Built-in exporters are registered here, in this one place, by import.

Add a module with an ``EXPORTER`` object and list it in ``DEFAULT_EXPORTERS`` under its export type;
the module is imported when that type is first looked up (:class:`~exporters.registry.LazyRegistry`).
A deployment adds its own export types without changing this package: modules named in ``EXPORTHUB_EXTRA_EXPORTERS`` are
registered after the built-ins, through the same registry (a duplicate name fails at start-up).
"""

from __future__ import annotations

import importlib

from exporters.registry import LazyRegistry, Registry, RegistryError
from exporthub.settings import get_settings

DEFAULT_EXPORTERS: dict[str, str] = {  # export type -> the module whose EXPORTER it is
    "scans": "exporters.scans",
    "users": "exporters.users",
    "zones": "exporters.zones",
    "sessions": "exporters.sessions",
    "backup": "exporters.backup",
    "publish": "exporters.publish",
    "cost": "exporters.cost",
    "statistics": "exporters.statistics",
    "explore": "exporters.explore",
}

REGISTRY = LazyRegistry()
for _type, _module in DEFAULT_EXPORTERS.items():
    REGISTRY.register_module(_type, _module)
# A deployment's own exporters are imported now: their types are known only from their modules.
for _module in get_settings().extra_exporters:
    REGISTRY.register(importlib.import_module(_module).EXPORTER)

__all__ = ["REGISTRY", "LazyRegistry", "Registry", "RegistryError", "DEFAULT_EXPORTERS"]

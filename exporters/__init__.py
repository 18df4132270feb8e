"""Export types. Built-in exporters are registered here, in this one place, by import.

Add a module with an ``EXPORTER`` object and list it in ``DEFAULT_EXPORTERS``.
"""

from __future__ import annotations

import importlib

from exporters.registry import Registry, RegistryError

DEFAULT_EXPORTERS: tuple[str, ...] = (
    "exporters.scans",
    "exporters.users",
    "exporters.zones",
    "exporters.sessions",
    "exporters.backup",
    "exporters.publish",
    "exporters.cost",
    "exporters.statistics",
    "exporters.explore",
)

REGISTRY = Registry()
for _module in DEFAULT_EXPORTERS:
    REGISTRY.register(importlib.import_module(_module).EXPORTER)

__all__ = ["REGISTRY", "Registry", "RegistryError", "DEFAULT_EXPORTERS"]

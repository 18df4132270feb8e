"""Export types. Built-in exporters are registered here, in this one place, by import.

Add a module with an ``EXPORTER`` object and list it in ``DEFAULT_EXPORTERS``. A deployment adds its own
export types without changing this package: modules named in ``EXPORTHUB_EXTRA_EXPORTERS`` are
registered after the built-ins, through the same registry (a duplicate name fails at start-up).
"""

from __future__ import annotations

import importlib

from exporters.registry import Registry, RegistryError
from exporthub.settings import get_settings

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
for _module in (*DEFAULT_EXPORTERS, *get_settings().extra_exporters):
    REGISTRY.register(importlib.import_module(_module).EXPORTER)

__all__ = ["REGISTRY", "Registry", "RegistryError", "DEFAULT_EXPORTERS"]

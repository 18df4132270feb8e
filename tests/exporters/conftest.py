"""Fixtures for the exporter tests: the About block the shared writers put into every file."""

from __future__ import annotations

import pytest

from exporters._about import About
from tests.exporters._writer_samples import make_about


@pytest.fixture
def about() -> About:
    return make_about()

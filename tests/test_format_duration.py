"""How long a job took, as the hub and Job Details say it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from ui.format import duration

START = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [(0.4, "< 1 s"), (0, "< 1 s"), (1, "1 s"), (59.9, "59 s"), (125, "2 min 05 s"), (3 * 3600 + 7 * 60, "3 h 07 min")],
)
def test_duration_reads_as_a_person_would_say_it(seconds, shown):
    assert duration(START, START + timedelta(seconds=seconds)) == shown


def test_no_end_yet_is_a_dash():
    assert duration(START, None) == "—" and duration(None, START) == "—"

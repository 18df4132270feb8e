"""One definition per figure that several exports and the statistics page show.

Each function returns a DuckDB SQL expression over the aliases it is given, so the users, zones and
sessions exports, the statistics report and the preview compute a figure the same way:

* **hours**: the length of a *closed* session; an unclosed one has no end, so no hours.
* **scans per hour**: scans recorded in closed sessions ÷ the hours of those sessions; scans of an
  unclosed session never inflate a rate. Empty (NULL) when no hours were worked.
* **completion**: items (sum of quantities) ÷ the zone's expected items; empty when none are expected.
* **cost per scan**: cost ÷ scans; empty without scans.
"""

from __future__ import annotations


def session_hours(session: str) -> str:
    """Hours of session ``session`` (an alias of ``zone_sessions``); NULL while it is unclosed."""
    return (f"(CASE WHEN {session}.ended_at IS NOT NULL "
            f"THEN epoch({session}.ended_at - {session}.started_at) / 3600.0 END)")


def session_minutes(session: str) -> str:
    """Minutes of a closed session; NULL while it is unclosed."""
    return f"(epoch({session}.ended_at - {session}.started_at) / 60.0)"


def scans_per_hour(scans_in_closed_sessions: str, hours: str) -> str:
    """Scans in closed sessions ÷ their hours (both aggregates or columns)."""
    return f"({scans_in_closed_sessions} / nullif({hours}, 0))::DOUBLE"


def completion(items: str, expected_items: str) -> str:
    """Items ÷ expected items; NULL when nothing is expected."""
    return f"({items} / nullif({expected_items}, 0))::DOUBLE"


def cost_per_scan(cost: str, scans: str) -> str:
    """Cost ÷ scans; NULL without scans."""
    return f"({cost} / nullif({scans}, 0))::DOUBLE"

"""The admin page's Workers tab: every worker process, its state and running jobs, and the queue."""

from __future__ import annotations

import streamlit as st

from exporthub import workers
from exporthub.settings import get_settings
from ui.session import database, make_dispatcher


def workers_tab(admin: str) -> None:
    fleet = workers.overview(database(), get_settings(), admin)
    try:
        pending: int | None = make_dispatcher().pending()  # type: ignore[attr-defined]
        queue_problem = None
    except Exception as exc:  # the queue may be down while the database answers
        pending, queue_problem = None, str(exc)
    live = [w for w in fleet.workers if w.live]
    oldest = fleet.queue.oldest_ready_seconds
    c1, c2, c3, c4 = st.columns(4)
    c1.metric("Live workers", len(live))
    c2.metric("Jobs waiting for a worker", fleet.queue.ready)
    c3.metric("Oldest waiting", "—" if oldest is None else f"{oldest:,.0f} s")
    c4.metric("Messages in the queue", "—" if pending is None else pending)
    if queue_problem:
        st.error(f"The queue cannot be reached from the web app: {queue_problem}")
    if not live:
        st.info("No worker is taking jobs. Start one with `exporthub worker` (or `exporthub up`).",
                icon=":material/warning:")
    st.dataframe(
        [
            {
                "Worker": w.id,
                "State": w.state if w.live else "gone",
                "Detail": w.detail or "",
                "Running jobs": ", ".join(f"#{j}" for j in w.running_jobs) or "idle",
                "Threads": w.threads,
                "Version": w.version,
                "Started (UTC)": w.started_at.strftime("%Y-%m-%d %H:%M:%S"),
                "Last seen (UTC)": w.last_seen_at.strftime("%Y-%m-%d %H:%M:%S"),
            }
            for w in fleet.workers
        ],
        hide_index=True,
        width="stretch",
    )
    st.caption("A worker that has not reported for "
               f"{workers.live_window(get_settings()):.0f} s counts as gone; its running jobs are reaped "
               "when their lease runs out.")

"""A helper process for the race suite: ``python -m tests.races._crowd ACTION ID...``.

``cancel`` cancels each job as the admin; ``reap`` runs one reaper pass. Started several at once, so
the races between them (and with the workers) happen between real processes on one database.
"""

from __future__ import annotations

import sys

from exporthub.db import get_database
from exporthub.dispatch import NullDispatcher
from exporthub.errors import ExporthubError
from exporthub.settings import get_settings


def main(action: str, ids: list[int]) -> None:
    settings = get_settings()
    db = get_database(settings)
    if action == "reap":
        from exporthub.maintenance import reap_stale

        print("reaped", reap_stale(db, settings, NullDispatcher()))
        return
    from exporters import REGISTRY
    from exporthub.jobs import JobService

    service = JobService(db, settings, NullDispatcher(), registry=REGISTRY)
    for job_id in ids:
        try:
            view = service.cancel("ops", job_id)
            print(job_id, view.status, view.cancel_requested)
        except ExporthubError as exc:
            print(job_id, "refused", exc)


if __name__ == "__main__":
    main(sys.argv[1], [int(x) for x in sys.argv[2:]])

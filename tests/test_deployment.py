"""The deployment files a user starts: compose.yaml and the Dockerfile, against the README and the CLI.

Docker itself does not run here, so the files are parsed and checked for what makes a fleet work:
every process shares the database, the queue, the secret and the data folder.
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urlparse

import yaml

from exporthub.cli import build_parser

REPO = Path(__file__).resolve().parent.parent
SHARED = ("EXPORTHUB_DATABASE_URL", "EXPORTHUB_REDIS_URL", "EXPORTHUB_SECRET_KEY", "EXPORTHUB_DATA_DIR")


def compose() -> dict:  # type: ignore[type-arg]
    return yaml.safe_load((REPO / "compose.yaml").read_text(encoding="utf-8"))


def readme_section(title: str) -> str:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    start = text.index(f"## {title}")
    end = text.find("\n## ", start + 3)
    return text[start:end if end != -1 else None]


def test_compose_runs_postgresql_redis_two_web_replicas_and_three_workers():
    services = compose()["services"]
    assert set(services) == {"postgres", "redis", "web", "worker"}
    assert services["web"]["deploy"]["replicas"] == 2 and services["worker"]["deploy"]["replicas"] == 3
    assert services["web"]["command"][:2] == ["exporthub", "web"]
    assert services["worker"]["command"] == ["exporthub", "worker"]
    commands = build_parser()._subparsers._group_actions[0].choices  # type: ignore[union-attr]
    assert {"web", "worker", "up", "workers"} <= set(commands)


def test_every_exporthub_process_shares_database_queue_secret_and_data_folder():
    services = compose()["services"]
    web, worker = services["web"], services["worker"]
    for key in SHARED:
        assert web["environment"][key] == worker["environment"][key], key
    assert web["volumes"] == worker["volumes"]
    data_dir = web["environment"]["EXPORTHUB_DATA_DIR"]
    assert any(v.split(":")[1].split()[0] == data_dir for v in web["volumes"])
    database = urlparse(web["environment"]["EXPORTHUB_DATABASE_URL"].replace("+psycopg", ""))
    assert database.hostname == "postgres" and services["postgres"]["environment"]["POSTGRES_DB"] == database.path[1:]
    assert urlparse(web["environment"]["EXPORTHUB_REDIS_URL"]).hostname == "redis"
    for service in ("web", "worker"):
        assert set(services[service]["depends_on"]) == {"postgres", "redis"}


def test_workers_get_longer_to_stop_than_their_grace_period():
    worker = compose()["services"]["worker"]
    grace = float(worker["environment"]["EXPORTHUB_SHUTDOWN_GRACE_SECONDS"])
    assert int(worker["stop_grace_period"].rstrip("s")) > grace + 10


def test_the_web_port_matches_the_dockerfile_and_the_image_runs_the_package():
    dockerfile = (REPO / "Dockerfile").read_text(encoding="utf-8")
    (exposed,) = re.findall(r"^EXPOSE (\d+)", dockerfile, re.M)
    web = compose()["services"]["web"]
    assert web["command"][web["command"].index("--port") + 1] == exposed
    assert all(p.endswith(f":{exposed}") for p in web["ports"])
    assert "pip install --no-cache-dir ." in dockerfile and 'CMD ["exporthub", "web"]' in dockerfile
    for path in ("app.py", "server.py", "worker.py", "cli.py", "exporthub", "exporters", "ui", "web", "pages"):
        assert re.search(rf"^COPY .*\b{re.escape(path)}\b", dockerfile, re.M), path


def test_the_readme_deployment_section_says_the_same():
    section = readme_section("Running on several machines")
    for words in ("exporthub web", "exporthub worker", "exporthub up", "compose.yaml", "docker compose up",
                  "/healthz", "/metrics", "exporthub workers", "EXPORTHUB_SHUTDOWN_GRACE_SECONDS"):
        assert words in section, words
    for key in SHARED:
        assert key in section, key
    data_dir = compose()["services"]["web"]["environment"]["EXPORTHUB_DATA_DIR"]
    assert f"`{data_dir}`" in section  # which folder the processes share


def test_theme_lists_reach_streamlit_as_one_json_value():
    import json

    from exporthub.launcher import streamlit_flags

    flags = streamlit_flags()
    at = flags.index("--theme.headingFontSizes")
    assert json.loads(flags[at + 1])[:2] == ["2.25rem", "1.5rem"]  # every heading size, not only the last
    assert flags.count("--theme.headingFontSizes") == 1
    from exporthub.charts import PALETTE

    at = flags.index("--theme.chartCategoricalColors")
    assert tuple(json.loads(flags[at + 1])) == PALETTE  # one palette for Plotly and Streamlit's charts

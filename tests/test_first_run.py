"""The README's "Starting on an empty instance", run line by line to its last line (``exporthub up``), as a
stranger would: it must leave exactly the users and projects it created, and no demo account."""

from __future__ import annotations

import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sqlalchemy import select

from exporthub.db import Database
from exporthub.models import Project, User
from exporthub.passwords import verify_password

REPO = Path(__file__).resolve().parent.parent
PASSWORD = "a-long-operator-password"

FILES = {
    "zones.csv": "zone_id,code,name,area,parent_zone_id,expected_items,deleted\n1,A-01,Aisle 1,North,,100,false\n",
    "sessions.csv": "session_id,zone_id,user,kind,started_at,ended_at,deleted\n"
                    "10,1,staff-017,count,2026-11-02T08:00:00+01:00,2026-11-02T10:00:00+01:00,false\n",
    "scans-week1.csv": "zone_id,session_id,user,barcode,quantity,scanned_at,device,deleted\n"
                       "1,10,staff-017,4006381333931,2,2026-11-02T08:05:00+01:00,DEV-1,false\n",
    "costs.csv": "cost_id,user,zone_id,date,category,hours,rate,amount\n1,staff-017,1,2026-11-02,labor,2,21.5,43.0\n",
}


def readme_steps() -> list[str]:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    section = text[text.index("## Starting on an empty instance"):]
    block = re.search(r"```bash\n(.*?)```", section, re.S)
    assert block, "the section has no bash block"
    return [line.split("  #")[0].strip() for line in block.group(1).splitlines() if line.strip()]


def write_files(folder: Path) -> None:
    for name, text in FILES.items():
        (folder / name).write_text(text, encoding="utf-8")
    table = pa.table({
        "zone_id": [1], "session_id": [10], "user": ["staff-017"], "barcode": ["5901234123457"], "quantity": [1],
        "scanned_at": pa.array([datetime(2026, 11, 9, 7, 30, tzinfo=UTC)], pa.timestamp("us", tz="UTC")),
        "device": ["DEV-2"], "deleted": [False],
    })
    pq.write_table(table, folder / "scans-week2.parquet")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.slow
def test_the_empty_instance_steps_leave_only_what_they_created(tmp_path):
    write_files(tmp_path)
    env = {k: v for k, v in os.environ.items() if not k.startswith("EXPORTHUB_")}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    data_dir = tmp_path / "srv"
    up_output = ""
    steps = readme_steps()
    assert steps[-1].startswith("exporthub up")
    for step in steps:
        if step.startswith("export "):
            name, _, _value = step.removeprefix("export ").partition("=")
            env[name] = str(data_dir)  # the README's /srv/exporthub, here in the test's folder
            continue
        argv = shlex.split(step)
        if argv[:2] == ["exporthub", "up"]:
            up_output = run_up_until_it_answers(argv, env, tmp_path)
            continue
        done = subprocess.run(argv, env=env, cwd=tmp_path, input=f"{PASSWORD}\n", capture_output=True, text=True,
                              timeout=180)
        assert done.returncode == 0, (step, done.stdout, done.stderr)
    db = Database(f"sqlite:///{data_dir / 'exporthub.db'}")
    with db.read() as s:
        users = {u.username: u for u in s.scalars(select(User))}
        projects = set(s.scalars(select(Project.slug)))
    assert set(users) == {"ops", "anna", "staff-017"}
    assert projects == {"north-2026"}
    assert not [name for name, u in users.items() if u.password_hash and verify_password(u.password_hash, "demo")]
    assert users["staff-017"].hourly_rate == 21.5
    assert "demo" not in up_output.lower()
    assert up_output.strip().splitlines()[-1].startswith("Exporthub is up: open http://127.0.0.1:")
    db.dispose()


def run_up_until_it_answers(argv: list[str], env: dict[str, str], cwd: Path) -> str:
    port = free_port()
    log = cwd / "up.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([*argv, "--port", str(port)], env=env, cwd=cwd, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 180
        text = ""
        while time.monotonic() < deadline and proc.poll() is None:
            text = log.read_text(errors="replace")
            if "Exporthub is up" in text:
                break
            time.sleep(0.2)
        assert "Exporthub is up" in text, text
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=10) as response:
            assert response.status == 200
        return text
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()

"""Hostile input: property tests over variable validation, the CLI, the link token and file names."""

from __future__ import annotations

import contextlib
import io
import json
import math
from datetime import date, datetime
from pathlib import Path
from urllib.parse import unquote

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from sqlalchemy import select, update

import cli
from exporthub import links
from exporthub.dispatch import RecordingDispatcher
from exporthub.errors import InvalidVariable
from exporthub.export_config import load_config, validate_variables
from exporthub.links import LinkRefused, Requester, make_token, parse_token, resolve_download, stored_path
from exporthub.models import AuditEvent, File, Job
from exporthub.states import ACTIVE_STATUSES, JobStatus
from web.downloads import content_disposition, media_type

REPO = Path(__file__).resolve().parent.parent
CONFIG = load_config(REPO / "exporters" / "export_config.json")
KNOWN_KEYS = sorted({v.key for d in CONFIG.values() for v in d.variables})
WITH_FIXTURES = settings(max_examples=150, deadline=None,
                         suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

# Text an attacker (or a confused script) might send: traversal, NUL, CRLF, quotes, formulas, RTL marks,
# lone surrogates (what a command line's undecodable bytes become), very long strings.
NASTY = st.sampled_from([
    "", " ", "../", "../../etc/passwd", "..\\..\\boot.ini", "\x00", "a\x00b", "\r\n", "x\r\nSet-Cookie: a=b",
    '"', "'", "\\", ";", "=1+1", "@SUM(A1)", "\u202e", "\ufeff", "李娜", "Zoë", "\udcff", "NaN", "inf", "-inf",
    "1e400", "9" * 5000, "-0", "0x10", "2026-02-30", "2026-13-01", "0001-01-01", "9999-12-31", "true", "FALSE",
    "all", "custom", "csv", "xlsx", "Z-001", "Z-001,Z-002", ",,,", "%00", "%2e%2e%2f", "𝕏" * 600,
])
TEXT = st.one_of(NASTY, st.text(max_size=40), st.text(alphabet=st.characters(codec="utf-8"), max_size=8))
SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(), st.integers(min_value=-(10**400), max_value=10**400),
    st.floats(allow_nan=True, allow_infinity=True), TEXT, st.binary(max_size=10), st.dates(), st.datetimes(),
    st.decimals(allow_nan=True), st.complex_numbers(), st.just(object()), st.just(Ellipsis),
)
VALUES = st.recursive(SCALARS, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.tuples(inner, inner), st.frozensets(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=5), inner, max_size=3)), max_leaves=8)


# ----------------------------------------------------------------------------- variable validation


@settings(max_examples=600, deadline=None)
@given(
    export_type=st.sampled_from(sorted(CONFIG)),
    raw=st.dictionaries(st.one_of(st.sampled_from(KNOWN_KEYS), TEXT), VALUES, max_size=6),
    zones=st.lists(TEXT, max_size=4),
)
def test_validate_variables_only_ever_raises_invalid_variable(export_type, raw, zones):
    definition = CONFIG[export_type]
    try:
        result = validate_variables(definition, raw, dynamic_options={"zones": zones})
    except InvalidVariable as exc:
        assert isinstance(exc.key, str) and exc.message.startswith("Invalid variable")
        return
    # What passes is complete, JSON-serialisable and only holds known keys.
    assert set(result) == {v.key for v in definition.variables}
    json.dumps(result)
    for value in result.values():
        assert not (isinstance(value, float) and not math.isfinite(value))


@settings(max_examples=300, deadline=None)
@given(raw=st.dictionaries(st.sampled_from(KNOWN_KEYS), TEXT, max_size=8))
def test_validate_variables_with_text_like_the_cli_sends(raw):
    try:
        result = validate_variables(CONFIG["scans"], raw, dynamic_options={"zones": ["Z-001", "Z-002"]})
    except InvalidVariable:
        return
    assert result["format"] in ("csv", "xlsx", "parquet")
    assert set(result["zones"]) <= {"Z-001", "Z-002"}
    for key in ("dateFrom", "dateTo"):
        assert result[key] is None or date.fromisoformat(result[key])


# ----------------------------------------------------------------------------- the command line

# What a shell can pass: any text, including the lone surrogates Python makes of undecodable bytes,
# but never NUL (main() is also given NUL below, as an API caller could).
ARGV_BYTES = st.binary(min_size=1, max_size=8).map(lambda b: b.decode("utf-8", "surrogateescape"))
CLI_TEXT = st.one_of(NASTY, st.text(max_size=30), ARGV_BYTES)
NUMBERISH = st.one_of(st.integers(-3, 10**30).map(str), CLI_TEXT)


def _run_cli(argv: list[str]) -> tuple[int, str]:
    err = io.StringIO()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
        try:
            code = cli.main(argv)
        except SystemExit as exc:  # argparse's own usage errors
            code = exc.code if isinstance(exc.code, int) else 2
    return code, err.getvalue()


@WITH_FIXTURES
@given(
    export_type=st.one_of(st.just("scans"), st.sampled_from(sorted(CONFIG)), CLI_TEXT),
    project=st.one_of(st.just("demo-open"), CLI_TEXT),
    user=st.one_of(st.sampled_from(["analyst", "viewer", "outsider"]), CLI_TEXT),
    pairs=st.lists(st.tuples(st.one_of(st.sampled_from(KNOWN_KEYS), CLI_TEXT), CLI_TEXT), max_size=5),
    raw=st.lists(CLI_TEXT, max_size=2),
    at=st.one_of(st.none(), CLI_TEXT, st.datetimes().map(str)),
)
def test_cli_export_with_hostile_vars_exits_0_1_or_2_without_traceback(
    demo_hub, monkeypatch, export_type, project, user, pairs, raw, at
):
    monkeypatch.setattr(cli.EDGES, "queue", RecordingDispatcher)
    argv = ["export", export_type, "--project", project, "--user", user]
    for key, value in pairs:
        argv += ["--var", f"{key}={value}"]
    for item in raw:
        argv += ["--var", item]
    if at is not None:
        argv += ["--at", at]
    code, err = _run_cli(argv)
    assert code in (0, 1, 2) and "Traceback" not in err
    if code == 2:
        assert err.strip()  # a refusal always says why
    _cancel_active(demo_hub)  # so the next example is not refused as "already running"


@WITH_FIXTURES
@given(
    argv=st.one_of(
        st.tuples(st.just("jobs"), st.just("--project"), CLI_TEXT, st.just("--user"), CLI_TEXT),
        st.tuples(st.sampled_from(["job", "cancel", "remove", "reset-sessions", "retry"]), NUMBERISH,
                  st.just("--user"), st.one_of(st.just("manager"), CLI_TEXT)),
        st.tuples(st.just("link"), NUMBERISH, st.just("--user"), st.one_of(st.just("analyst"), CLI_TEXT),
                  st.just("--ttl"), NUMBERISH),
        st.lists(st.one_of(CLI_TEXT, st.sampled_from(["export", "jobs", "link", "--user", "--json", "-h"])),
                 max_size=6),
    ).map(list),
    nul=st.booleans(),
)
def test_cli_commands_with_hostile_arguments_exit_0_1_or_2(demo_hub, monkeypatch, argv, nul):
    monkeypatch.setattr(cli.EDGES, "queue", RecordingDispatcher)
    if nul and argv:
        argv[-1] += "\x00"
    code, err = _run_cli(argv)
    assert code in (0, 1, 2) and "Traceback" not in err
    _cancel_active(demo_hub)


def _cancel_active(hub) -> None:
    with hub.db.write() as s:
        s.execute(update(Job).where(Job.status.in_([str(x) for x in ACTIVE_STATUSES]))
                  .values(status=str(JobStatus.CANCELLED)))


# ----------------------------------------------------------------------------- the link token


@settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(token=st.one_of(
    st.text(max_size=200), NASTY, st.binary(max_size=50), st.integers(), st.none(), st.lists(st.text(), max_size=2),
    st.builds(lambda a, b, c, d: f"{a}.{b}.{c}.{d}", st.integers(-5, 10**20), st.integers(-5, 10**20),
              st.integers(-5, 10**20),
              st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_", min_size=40,
                      max_size=46)),
))
def test_token_parser_only_raises_link_refused(hub, token):
    with pytest.raises(LinkRefused) as info:
        parse_token(hub.settings, token)
    assert info.value.status == 403 and info.value.message in links.PUBLIC_MESSAGES.values()


@WITH_FIXTURES
@given(data=st.data())
def test_mutated_tokens_never_grant_access(demo_hub, data):
    f, token = _one_link(demo_hub)
    position = data.draw(st.integers(0, len(token)), label="position")
    insert = data.draw(st.text(max_size=3), label="insert")
    cut = data.draw(st.integers(0, 3), label="cut")
    mutated = token[:position] + insert + token[position + cut:]
    assume(mutated != token)
    session = data.draw(st.one_of(st.just("analyst"), st.none(), CLI_TEXT), label="session")
    with pytest.raises(LinkRefused):
        resolve_download(demo_hub.db, demo_hub.settings, mutated, requester=Requester(session, "session"))
    with demo_hub.db.read() as s:
        assert s.get(File, f.id).download_count == 0
        assert s.scalars(select(AuditEvent).where(AuditEvent.action == "download",
                                                  AuditEvent.outcome == "ok")).all() == []


_links: dict[str, tuple[File, str]] = {}


def _one_link(hub) -> tuple[File, str]:
    key = str(hub.settings.data_dir)
    if key not in _links:
        job = hub.service().start("analyst", "demo-open", "scans", {"format": "csv"})
        hub.run(job.id)
        with hub.db.read() as s:
            f = s.scalars(select(File).where(File.job_id == job.id, File.name.endswith(".csv"))).one()
        _links[key] = (f, make_token(hub.settings, f.id, _analyst(hub), 4_000_000_000))
    return _links[key]


def _analyst(hub) -> int:
    from exporthub.models import User

    with hub.db.read() as s:
        return s.scalar(select(User.id).where(User.username == "analyst"))


# ----------------------------------------------------------------------------- names and paths


@settings(max_examples=1000, deadline=None)
@given(name=st.one_of(TEXT, st.text(max_size=300), st.lists(NASTY, max_size=6).map("".join)))
def test_content_disposition_is_one_safe_header_whatever_the_name(name):
    value = content_disposition(name)
    assert value.isascii() and value.isprintable()  # no CR, LF, NUL or other controls
    value.encode("latin-1")
    assert value.startswith('attachment; filename="')
    fallback, star = value[len('attachment; filename="'):].split("\"; filename*=UTF-8''", 1)
    assert '"' not in fallback and "\\" not in fallback and fallback
    assert all(c.isalnum() or c in "!#$&+-.^_`|~%" for c in star)  # RFC 8187 attr-chars and %XX only
    decoded = unquote(star, errors="strict")
    assert "/" not in decoded and "\\" not in decoded and decoded.isprintable()
    assert media_type(name) in (name, "application/octet-stream")


@settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(key=st.one_of(
    TEXT, st.lists(st.sampled_from(["..", ".", "", "demo-open", "scans", "1", "x.csv", "/", "\x00", "李"]),
                   max_size=6).map("/".join)))
def test_storage_keys_resolve_inside_the_files_folder_or_not_at_all(hub, key):
    root = hub.settings.files_dir.resolve()
    try:
        path = stored_path(hub.settings, key)
    except LinkRefused as exc:
        assert exc.status == 404
        return
    assert path.is_relative_to(root) and path != root


def test_datetime_expiry_is_accepted_only_when_aware(hub):
    with pytest.raises(ValueError):
        make_token(hub.settings, 1, 1, datetime(2030, 1, 1))
    for bad in (-1, 2**60, True, 1.5):
        with pytest.raises(ValueError):
            make_token(hub.settings, bad, 1, 10)  # type: ignore[arg-type]

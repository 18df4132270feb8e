"""The hub's catalogue per demo role: export cards and groups, each card's latest job, Publish, Generate."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from exporters import REGISTRY
from exporthub.export_config import parse_config
from exporthub.jobs import JobService
from exporthub.states import JobStatus
from tests.pages._hub_helpers import _run_scans
from tests.pages.conftest import ROLES, labels, open_app
from ui import hub as ui_hub

STARTERS = {"admin", "manager", "analyst"}


def _visible_types(hub) -> list[str]:
    return [
        d.type
        for group in ui_hub.grouped_types(hub.service().config, hub.service().registry).values()
        for d in group
    ]


@pytest.mark.parametrize("role", [r for r in ROLES if r != "outsider"])
def test_cards_groups_and_generate_buttons_follow_the_role(app_hub, role):
    at = open_app(role, project="demo-open")
    visible = _visible_types(app_hub)
    assert "scans" in visible and "publish" not in visible  # publish has the header button instead
    service = app_hub.service()
    hidden = [t for t, d in service.config.items() if d.is_hidden]
    subheaders = [s.value for s in at.subheader]
    markdown = [m.value for m in at.markdown]
    cards = [m for m in markdown if m.startswith("##### ")]
    generate = [b.key for b in at.button if b.label == "Generate"]
    assert subheaders[0] == "Jobs"  # the jobs and their files first, the catalogue under them
    if role in STARTERS:
        assert subheaders == ["Jobs", "New export"]
        for group in ui_hub.grouped_types(service.config, service.registry):
            assert f"**{group}**" in markdown
        # Each type with its own Material icon (no emoji font needed), secondary buttons.
        assert cards == [f"##### {ui_hub.TYPE_ICONS[t]} {service.config[t].title}" for t in visible]
        assert generate == [f"generate-{t}" for t in visible]
        assert all(b.proto.type == "secondary" for b in at.button if b.label == "Generate")
    else:
        # Nothing run yet: no tiles with nothing to click.
        assert subheaders == ["Jobs"] and cards == [] and generate == []
    for t in hidden:
        assert not any(c.endswith(f" {service.config[t].title}") for c in cards)
    publish_shown = "Publish Project Files" in labels(at)
    assert publish_shown == (role in STARTERS and "publish" in service.registry)
    assert ("**Project Management**" in [m.value for m in at.markdown]) == publish_shown


def test_outsider_has_no_hub(app_hub):
    at = open_app("outsider")
    assert "Generate" not in labels(at)
    assert "Jobs" not in [s.value for s in at.subheader]


def test_card_shows_the_latest_job_status(app_hub):
    job = _run_scans(app_hub)
    assert job.status is JobStatus.COMPLETED
    at = open_app("analyst", project="demo-open")
    scans_card = [m.value for m in at.markdown if "#1 ·" in m.value and "badge" in m.value]
    assert scans_card and scans_card[0].startswith(":green-badge[:material/check_circle: Completed]")
    assert ":gray-badge[Not run yet]" in [m.value for m in at.markdown]  # the other cards
    # The scans card offers its latest file; the others have none.
    latest = [b for b in at.get("link_button") if b.proto.label == "Latest"]
    assert len(latest) == 1 and latest[0].proto.url.startswith("/download/")


def test_viewer_sees_only_the_types_with_a_file_to_download(app_hub):
    _run_scans(app_hub)
    at = open_app("viewer", project="demo-open")
    assert [s.value for s in at.subheader] == ["Jobs", "Latest files"]
    cards = [m.value for m in at.markdown if m.value.startswith("##### ")]
    assert cards == [f"##### {ui_hub.TYPE_ICONS['scans']} {app_hub.service().config['scans'].title}"]
    assert [b.proto.label for b in at.get("link_button")] == ["Latest"]
    assert "Generate" not in labels(at)


def test_card_of_a_scheduled_job_says_when_it_runs(app_hub):
    at_time = datetime(2099, 1, 2, 7, 30, tzinfo=UTC)
    JobService(app_hub.db, app_hub.settings, app_hub.dispatcher, registry=REGISTRY).start(
        "analyst", "demo-open", "scans", {"format": "csv"}, run_at=at_time
    )
    at = open_app("analyst", project="demo-open")
    card = [m.value for m in at.markdown if "#1 ·" in m.value and "badge" in m.value]
    assert card and "Waiting" in card[0] and "runs 02 Jan 2099, 08:30:00" in card[0]  # Berlin time
    # Another scans job cannot start while this one waits: Generate says so before the click.
    generate = at.button(key="generate-scans")
    assert generate.disabled and "already running (#1)" in generate.help
    assert any("already running" in c.value for c in at.caption)


def test_generate_opens_the_export_variables_dialog(app_hub):
    at = open_app("analyst", project="demo-open")
    at.button(key="generate-scans").click().run()
    assert "Generate Export" in labels(at) and "Cancel" in labels(at)
    assert [s.label for s in at.selectbox if s.key and s.key.startswith("export-scans")] == [
        "Date range",
        "Format",
        "CSV dialect",
    ]
    at.run()  # the next full run does not open it again
    assert "Generate Export" not in labels(at)


def test_grouped_types_orders_groups_and_skips_hidden_and_publish():
    config = parse_config(
        {
            "a": {"title": "A", "group": "Financial Reports"},
            "b": {"title": "B", "group": "Data Exports"},
            "c": {"title": "C", "group": "Data Exports", "isHidden": True},
            "publish": {"title": "Publish", "group": "System"},
            "d": {"title": "D", "group": "Custom"},
            "e": {"title": "E", "group": "System"},
        }
    )
    grouped = ui_hub.grouped_types(config)
    assert {g: [d.type for d in ds] for g, ds in grouped.items()} == {
        "System": ["e"],
        "Data Exports": ["b"],
        "Financial Reports": ["a"],
        "Custom": ["d"],
    }
    assert list(ui_hub.grouped_types(config, registered={"a"})) == ["Financial Reports"]

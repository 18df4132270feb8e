"""The harness's table (Markdown) and the figures derived from several cases."""

from __future__ import annotations

from typing import Any


def derive(cases: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Figures that compare cases with each other: what zipping costs, and a worker's peak memory."""
    by_name = {c["case"]: c for c in cases}
    derived: list[dict[str, Any]] = []
    zipped, plain = by_name.get("scans_csv_big_zipped"), by_name.get("scans_csv_big")
    if zipped and plain:
        ratio = zipped["ours"]["seconds"] / plain["ours"]["seconds"]
        derived.append({"name": "zip_cost", "title": "zipped CSV ÷ unzipped CSV (big)", "value": round(ratio, 3),
                        "target": "≤ 1.5", "met": ratio <= 1.5})
    big = [c for c in cases if c["case"].startswith("scans_") and c["case"].endswith(("_big", "_big_zipped"))]
    if big:
        peak = max(c["ours"]["peak_rss_mib"] for c in big)
        derived.append({"name": "worker_peak_rss", "title": "peak RSS exporting the big dataset, any format (MiB)",
                        "value": peak, "target": "≤ 500", "met": peak <= 500})
    return derived


def render_table(report: dict[str, Any]) -> str:
    lines = [
        f"Run: `{report['command']}` on {report['date']}; {report['machine']['cores']} cores, "
        f"load average at the end {report['machine']['load_average_at_end']}; largest dataset "
        f"{report['scans']:,} scans; {report['repeat']} runs per case (medians).",
        "",
        "| case | rows | ours s | ours CPU s | ours peak MiB | baseline | baseline s | baseline CPU s | "
        "baseline peak MiB | ratio | target | met |",
        "|---|---:|---:|---:|---:|---|---:|---:|---:|---:|---|---|",
    ]
    for c in report["cases"]:
        ours = c["ours"]
        extra = ", ".join(f"{k} {v}" for k, v in ours.items()
                          if k not in ("seconds", "cpu_seconds", "peak_rss_mib", "all_seconds"))
        names = list(c["baselines"]) or ["—"]
        for i, name in enumerate(names):
            base = c["baselines"].get(name)
            head = (f"| {c['case']} ({c['title']}{'; ' + extra if extra else ''}) | {c['rows']:,} | "
                    f"{ours['seconds']:.3f} | {ours['cpu_seconds']:.2f} | {ours['peak_rss_mib']:.0f} |"
                    if i == 0 else "| | | | | |")
            tail = (f" {_fmt(c['ratio'])} | {c['target']} | {_met(c['met'])} |" if i == 0 else " | | |")
            if base is None:
                lines.append(f"{head} — | | | |{tail}")
            else:
                lines.append(f"{head} {name} | {base['seconds']:.3f} | {base['cpu_seconds']:.2f} | "
                             f"{base['peak_rss_mib']:.0f} |{tail}")
    if report.get("derived"):
        lines += ["", "| derived | value | target | met |", "|---|---:|---|---|"]
        lines += [f"| {d['title']} | {d['value']} | {d['target']} | {_met(d['met'])} |" for d in report["derived"]]
    return "\n".join(lines) + "\n"


def _fmt(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}×"


def _met(value: bool | None) -> str:
    return "—" if value is None else ("yes" if value else "**no**")

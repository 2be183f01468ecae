"""``reports/index.html``: every sweep, cell, ablation and trial report, with status and headline
numbers read from the records, so a reader finds the answer without knowing the folder layout.
Rewritten (atomically) by every command that renders a report."""

from __future__ import annotations

import html
from pathlib import Path

from ..core import paths
from ..core.provenance import CorruptFileError, atomic_write_bytes, now_iso, read_json
from . import tables

STYLE = """<style>
body { font-family: system-ui, sans-serif; margin: 2em; max-width: 70em; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; }
td, th { border-bottom: 1px solid #ddd; padding: 3px 10px; text-align: left; white-space: nowrap; }
th { background: #f4f4f4; }
</style>"""


OBJECTIVE_WORDS = {"val_logloss": "validation log loss", "val_auc": "validation AUC",
                   "val_skill": "validation skill"}


def _read(path: Path) -> dict:
    try:
        return read_json(path) if path.exists() else {}
    except CorruptFileError:
        return {"corrupt": True}


def _cell_row(sweep: str, report: Path) -> dict:
    cell = report.stem
    folder = paths.SWEEPS / sweep / cell
    best, final = _read(folder / "best.json"), _read(folder / "final.json")
    counts = best.get("counts") or {}
    status = ("corrupt record" if best.get("corrupt") or final.get("corrupt") else
              f"{counts.get('finished', 0)}/{best.get('target', '?')} trials")
    auc = "-"
    if final.get("complete") and final.get("configs"):
        conf = min(final["configs"].values(), key=lambda c: c["rank"])
        a = (conf.get("aggregate") or {}).get("auc") or {}
        auc = tables.interval(a.get("mean"), a.get("ci95"))
    metric = OBJECTIVE_WORDS.get(best.get("objective"), best.get("objective") or "objective")
    return {"report": f'<a href="{sweep}/{report.name}">{html.escape(cell)}</a>',
            "status": status,
            "best in the search": f"{tables.num(best.get('best_objective'))} "
                                  f"({html.escape(metric)})" if best.get("best_objective")
            is not None else "-",
            "architecture": html.escape(str(best.get("params", {}) and
                                            best["params"].get("arch") or "-")),
            "test AUC [95%]": auc}


def cell_order(report: Path) -> tuple:
    """Sort key of a cell's page: budget, data size (counts before 'all', then by name), horizon,
    as the sweep lists them (``100k-d1k-h1`` after ``10k-dall-h5``), not alphabetically."""
    from ..model.budget import parse_budget

    def count(text: str) -> tuple:
        try:
            return (0, parse_budget(text), "")
        except ValueError:
            return (1, 0, text)

    parts = report.stem.split("-")
    if len(parts) < 2 or not parts[-1].startswith("h") or not parts[-1][1:].isdigit():
        return (1, (1, 0, report.stem), (1, 0, ""), 0)
    data = parts[1][1:] if len(parts) == 3 else ""
    return (0, count(parts[0]), count(data) if data else (0, 0, ""), int(parts[-1][1:]))


def _table(rows: list[dict]) -> str:
    if not rows:
        return "<p>none yet</p>"
    head = "".join(f"<th>{html.escape(k)}</th>" for k in rows[0])
    body = "".join("<tr>" + "".join(f"<td>{v}</td>" for v in r.values()) + "</tr>"
                   for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def write_index() -> Path:
    """Write ``reports/index.html`` from what ``reports/`` and the records hold now."""
    parts = [f"<html><head><meta charset='utf-8'><title>Reports</title>{STYLE}</head><body>",
             "<h1>Scaling-law workbench: reports</h1>",
             f"<p>Generated {now_iso()} from the records under outputs/. Open a sweep's scaling "
             f"report first: it opens with the answer.</p>"]
    root = paths.REPORTS
    for d in sorted(p for p in root.glob("*") if p.is_dir() and p.name != "trials"):
        parts.append(f"<h2>Sweep {html.escape(d.name)}</h2>")
        links = []
        if (d / "scaling_report.html").exists():
            links.append(f'<a href="{d.name}/scaling_report.html">scaling report</a>')
        if (d / "joint_scaling.html").exists():
            links.append(f'<a href="{d.name}/joint_scaling.html">joint N x D report</a>')
        if (d / "panel_report.html").exists():
            links.append(f'<a href="{d.name}/panel_report.html">panel report</a>')
        if (d / "ablation.html").exists():
            links.append(f'<a href="{d.name}/ablation.html">input ablation</a>')
        last = _read(paths.SWEEPS / d.name / "last_run.json")
        if last.get("wall_s"):
            links.append(f"last run {last['wall_s'] / 60:.1f} min")
        parts.append("<p>" + " | ".join(links or ["no summary report yet"]) + "</p>")
        verdict = _read(paths.SWEEPS / d.name / "verdict.json")
        if verdict.get("bottom_line"):
            parts.append(f"<p><b>Bottom line</b> ({html.escape(verdict.get('written', '')[:10])})"
                         f": {html.escape(verdict['bottom_line'])}</p>")
        joint = _read(paths.SWEEPS / d.name / "joint_verdict.json")
        if joint.get("lines"):
            parts.append("<p><b>In training data D</b> (skill per decade of D at the largest "
                         "budget): " + "; ".join(html.escape(x) for x in joint["lines"]) + "</p>")
        cells = [p for p in sorted(d.glob("*.html"), key=cell_order)
                 if p.name not in ("scaling_report.html", "ablation.html",
                                   "joint_scaling.html", "panel_report.html")]
        current = _read(paths.SWEEPS / d.name / "cells.json")  # the sweep file's cells now
        if isinstance(current, list):
            cells = [p for p in cells if p.stem in current]
        parts.append(_table([_cell_row(d.name, p) for p in cells]))
    trials = sorted((root / "trials").glob("*.html"))
    if trials:
        parts.append("<h2>Single trials</h2><ul>" + "".join(
            f'<li><a href="trials/{p.name}">{html.escape(p.stem)}</a></li>' for p in trials)
            + "</ul>")
    parts.append("</body></html>")
    out = root / "index.html"
    atomic_write_bytes(out, "\n".join(parts).encode())
    return out

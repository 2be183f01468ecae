"""The index of reports quotes each sweep's bottom line and names the metric of every number."""

from lib.core import paths
from lib.core.provenance import write_json
from lib.reports.index import write_index


def test_the_index_quotes_the_bottom_line_and_names_the_metric(fresh_root):
    d = paths.REPORTS / "default"
    d.mkdir(parents=True)
    (d / "scaling_report.html").write_text("<html></html>")
    (d / "100k-h1.html").write_text("<html></html>")
    write_json(paths.SWEEPS / "default" / "verdict.json",
               {"bottom_line": "At h=1 the data cannot decide.", "written": "2026-12-04T20:00"})
    write_json(paths.SWEEPS / "default" / "100k-h1" / "best.json",
               {"objective": "val_logloss", "best_objective": 0.61, "counts": {"finished": 8},
                "target": 8, "params": {"arch": "d32-L2-h2-ff2"}})
    text = write_index().read_text()
    assert "<b>Bottom line</b> (2026-12-04): At h=1 the data cannot decide." in text
    assert "0.610 (validation log loss)" in text and "Objective 0" not in text

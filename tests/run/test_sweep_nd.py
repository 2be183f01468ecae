"""`make sweep SWEEP=scaling_nd_smoke` end to end: a sweep with a data axis (history length and a
pooled ticker) through search, final evaluation, the scaling report and the joint N x D report."""

import os
import subprocess
from pathlib import Path

import nbformat
import pytest

from lib.core import paths
from lib.core.provenance import read_json
from lib.run import notebook
from lib.search.cells import cells
from lib.search.sweepfile import load_sweep

REPO = Path(__file__).resolve().parents[2]
SWEEP = "scaling_nd_smoke"


@pytest.fixture(scope="module")
def nd_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("nd")
    env = dict(os.environ, WORKBENCH_ROOT=str(root))
    r = subprocess.run(["make", "sweep", f"SWEEP={SWEEP}"], cwd=REPO, env=env,
                       capture_output=True, text=True, timeout=900)
    old = paths.ROOT
    paths.set_root(root)
    yield root, r
    paths.set_root(old)


def test_every_cell_of_the_grid_runs_under_its_three_part_name(nd_run):
    _, r = nd_run
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    cfg = load_sweep(SWEEP)
    ids = [c.id for c in cells(SWEEP, cfg)]
    assert ids == ["8k-d400-h1", "8k-d400x2-h1", "16k-d400-h1", "16k-d400x2-h1", "30k-d400-h1",
                   "30k-d400x2-h1"]
    for cell_id in ids:
        assert cell_id in r.stdout


def test_records_hold_d_in_windows_and_tokens_and_the_compute(nd_run):
    cfg = load_sweep(SWEEP)
    for cell in cells(SWEEP, cfg):
        final = read_json(cell.dir / "final.json")
        data = final["split"]["data"]
        pooled = cell.data.endswith("x2")
        assert data["id"] == cell.data == final["cell"]["data"]
        assert data["tickers"] == ({"^GSPC": 400, "^IXIC": 400} if pooled else {"^GSPC": 400})
        assert data["windows"] == final["split"]["train"]["n_windows"] == 400 * (1 + pooled)
        assert data["tokens"] == data["windows"] * data["tokens_per_window"]
        trials = [read_json(f) for f in sorted((cell.dir / "trials").glob("trial_*.json"))]
        assert trials
        for rec in trials:
            assert rec["split"]["data"] == data
            c = rec["compute"]
            assert c["train_windows"] == data["windows"]
            assert c["windows_seen"] == c["epochs"] * c["passes_per_epoch"] * data["windows"]
        seed = next(iter(min(final["configs"].values(), key=lambda c: c["rank"])["seeds"]
                         .values()))
        assert seed["compute"]["passes_per_epoch"] == data["passes_per_epoch"] > 1


def test_the_joint_report_is_rendered_with_its_fits(nd_run):
    root, r = nd_run
    out = root / "outputs" / "sweeps" / SWEEP / "06_joint_scaling.ipynb"
    assert notebook.is_complete(out), r.stdout[-2000:]
    assert (root / "reports" / SWEEP / "joint_scaling.html").exists()
    text = "\n".join(str(o.get("data", {}).get("text/markdown", "")) + str(o.get("text", ""))
                     for c in nbformat.read(out, as_version=4).cells if c.cell_type == "code"
                     for o in c.get("outputs", []))
    assert "Horizon 1: joint law over" in text
    assert "validation chose" in text
    assert "A shorter history is a more recent one" in text  # d400 is the last 400 windows
    assert "joint N x D report" in (root / "reports" / "index.html").read_text()

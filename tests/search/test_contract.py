"""A sweep file is a contract (lib/search/contract.py): an edit to a finished sweep is applied in
full or refused in one line, and what the report shows is always the test evaluation of the
current validation choice. Each case edits a copy of one finished one-cell sweep and runs it
again as `make sweep` would."""

import json
import os
import shutil
import subprocess
import sys

import optuna
import pytest

from lib.core import paths
from lib.run import upkeep
from lib.search import contract, records
from lib.search.cells import Cell, open_storage
from lib.search.sweepfile import load_sweep
from tests.conftest import REPO

SMOKE = (REPO / "params/sweeps/smoke.yaml").read_text()
BASE = (SMOKE.replace('budgets: ["8k", "30k"]', 'budgets: ["8k"]')
        .replace("horizons: [1, 3]", "horizons: [1]")
        .replace("enqueue_extremes: true", "enqueue_extremes: false"))


def drive(root, sweep, *args) -> subprocess.CompletedProcess:
    env = dict(os.environ, WORKBENCH_ROOT=str(root))
    return subprocess.run([sys.executable, "-m", "lib.run.sweep", *args, "--sweep", str(sweep)],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def finished(tmp_path_factory, wb_root):
    """One finished cell (8k-h1, one sampled trial), final evaluation and report included."""
    root = tmp_path_factory.mktemp("contract")
    shutil.copytree(wb_root / "data", root / "data")
    p = root / "t_c.yaml"
    p.write_text(BASE)
    r = drive(root, p, "run")
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    return root


@pytest.fixture()
def edited(finished, tmp_path):
    """A copy of the finished sweep and a function that edits its sweep file."""
    root = tmp_path / "root"
    shutil.copytree(finished, root)
    p = root / "t_c.yaml"

    def edit(old: str, new: str):
        text = p.read_text()
        assert old in text, old
        p.write_text(text.replace(old, new))

    old = paths.ROOT
    paths.set_root(root)
    yield root, p, edit
    paths.set_root(old)


def study(p, cell_id="8k-h1") -> optuna.Study:
    return optuna.load_study(study_name=f"t_c:{cell_id}", storage=open_storage(
        f"sqlite:///{paths.SWEEPS / 't_c' / 'optuna.db'}"))


def snapshot(root) -> dict:
    return {str(f.relative_to(root)): f.read_bytes() for f in sorted(root.rglob("*"))
            if f.is_file() and f.name != ".driver.lock"}


def test_more_trials_are_applied_in_full_and_the_report_follows_the_new_choice(edited):
    """Issue: raising n_trials changed a cell's validation best, but final.json still evaluated
    the old one and the report showed it beside the new best. Lowering it again is refused: the
    choice was made among more trials than the file would say."""
    root, p, edit = edited
    edit("n_trials: 1", "n_trials: 2")
    r = drive(root, p, "run")
    assert r.returncode == 0, r.stdout[-2000:]
    cfg = load_sweep(p)
    s = study(p)
    assert records.counts(s.get_trials())["sampled"] == 2
    chosen = contract.validation_choice(s, cfg.final.top_k)
    final = json.loads((paths.SWEEPS / "t_c" / "8k-h1" / "final.json").read_text())
    assert [e["trial"] for e in final["evaluated"]] == [t.number for t in chosen]
    assert list(final["configs"]) == [str(t.number) for t in chosen]
    assert upkeep.final_state(Cell(str(p), "8k", 1), cfg) == "yes"
    rendered = json.loads((paths.SWEEPS / "t_c" / "report_inputs.json").read_text())
    assert rendered == upkeep.report_inputs(str(p), cfg)
    edit("n_trials: 2", "n_trials: 1")
    r = drive(root, p, "run")
    assert r.returncode == 2 and "below the 2 sampled trials" in r.stdout, r.stdout[-2000:]


def test_a_changed_search_range_is_refused_in_one_line_and_force_starts_again(edited):
    """Issue: after changing search.lr the studies held trials of two search spaces."""
    root, p, edit = edited
    before = snapshot(root)
    edit("lr: [0.0003, 0.003]", "lr: [0.001, 0.002]")
    r = drive(root, p, "run")
    errors = [ln for ln in r.stdout.splitlines() if ln.startswith("error: ")]
    assert r.returncode == 2 and len(errors) == 1, r.stdout[-2000:]
    assert "search.lr: [0.0003, 0.003] -> [0.001, 0.002]" in errors[0]
    assert "restore the file" in errors[0] and "FORCE=1" in errors[0]
    after = snapshot(root)  # nothing written but the traceback kept for the error
    same = {k: v for k, v in after.items() if not k.endswith(("t_c.yaml", "last_error.log"))}
    assert same == {k: v for k, v in before.items() if k != "t_c.yaml"}
    r = drive(root, p, "run", "--force", "--no-final", "--no-report")
    assert r.returncode == 0, r.stdout[-2000:]
    aside = list((paths.SWEEPS / "t_c" / ".set_aside").glob("8k-h1-changed-*/records/trials"))
    assert len(aside) == 1 and list(aside[0].glob("trial_*.json"))
    s = study(p)
    assert s.user_attrs["definition"]["search.lr"] == [0.001, 0.002]
    assert all(0.001 <= t.params["lr"] <= 0.002 for t in s.get_trials() if "lr" in t.params)


def test_a_stale_final_evaluation_is_not_done_and_more_seeds_re_run_it_alone(edited):
    """final.json of another validation choice reads 'stale'; more final seeds re-run the final
    evaluation (and only it)."""
    root, p, edit = edited
    cfg = load_sweep(p)
    path = paths.SWEEPS / "t_c" / "8k-h1" / "final.json"
    state = json.loads(path.read_text())
    state["evaluated"][0]["trial"] += 100
    path.write_text(json.dumps(state))
    assert upkeep.final_state(Cell(str(p), "8k", 1), cfg) == "stale"
    trials = len(study(p).get_trials())
    edit("seeds: 2", "seeds: 3")
    r = drive(root, p, "run", "--no-report")
    assert r.returncode == 0, r.stdout[-2000:]
    final = json.loads((paths.SWEEPS / "t_c" / "8k-h1" / "final.json").read_text())
    assert final["seeds"] == [1000, 1001, 1002] and len(study(p).get_trials()) == trials
    assert len(final["configs"][str(final["evaluated"][0]["trial"])]["seeds"]) == 3
    assert upkeep.final_done(Cell(str(p), "8k", 1), load_sweep(p))


def test_removed_budgets_leave_the_reports_and_can_be_pruned(edited):
    """Issue: after replacing 30k by 16k in budgets, the 30k cells stayed in the report, the fits
    and the index."""
    root, p, edit = edited
    edit('budgets: ["8k"]', 'budgets: ["12k"]')
    r = drive(root, p, "run", "--no-final")  # the report and the index are what is checked
    assert r.returncode == 0, r.stdout[-2000:]
    assert "orphan cells" in r.stdout and "8k-h1" in r.stdout
    index = (paths.REPORTS / "index.html").read_text()
    assert "t_c/12k-h1.html" in index and "t_c/8k-h1.html" not in index
    report = (paths.REPORTS / "t_c" / "scaling_report.html").read_text()
    assert "12k-h1" in report and "8k-h1" not in report
    r = drive(root, p, "status")
    assert "orphan cells" in r.stdout and "8k-h1" in r.stdout
    r = drive(root, p, "prune")
    assert r.returncode == 0 and "1 orphan cell(s) removed" in r.stdout, r.stdout
    assert upkeep.orphans(str(p), load_sweep(p)) == []
    assert not (paths.SWEEPS / "t_c" / "8k-h1").exists()
    assert list((paths.SWEEPS / "t_c" / ".set_aside").glob("8k-h1-orphan-*/records/best.json"))


def test_an_upgrade_that_adds_a_setting_changes_no_definition():
    """A study recorded before a setting existed reads it as its default: no refusal."""
    cfg = load_sweep(REPO / "params/sweeps/smoke.yaml")
    old = contract.of_config(cfg)
    old.pop("data.max_gap_days")
    assert contract.changes(old, contract.of_config(cfg)) == []
    old["grid.tolerance"] = 0.1
    assert contract.changes(old, contract.of_config(cfg)) == ["grid.tolerance: 0.1 -> 0.4"]

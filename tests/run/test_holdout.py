"""A holdout block declared in the sweep file (split.holdout_start) is never built by the search
or the final evaluation, and `make holdout` scores it exactly once, after the test evaluation, on
a CSV sweep whose data extend past its test block; every read is in the ledger."""

import json

import pytest

from lib.analysis import ledger
from lib.analysis.final import run_final
from lib.core import paths
from lib.data import dataset
from lib.run import holdout
from lib.search.cells import cells
from lib.search.runner import CellRunner
from lib.search.sweepfile import load_sweep
from tests.conftest import synthetic_bars
from tests.test_faults import sweep_file

HOLDOUT_START = "2004-07-01"


@pytest.fixture()
def csv_sweep(fresh_root, tmp_path):
    folder = tmp_path / "csv"
    folder.mkdir()
    synthetic_bars(1400, seed=4).reset_index().to_csv(folder / "T.csv", index=False)
    p = sweep_file(tmp_path, "t_holdout", **{
        "data:\n  name: gspc_a25": f"data:\n  name: t_hold\n  source: csv\n  csv_dir: {folder}\n"
                                   f"  tickers: [T]\n  target: T",
        "budgets: [\"8k\", \"30k\"]": "budgets: [\"8k\"]", "horizons: [1, 3]": "horizons: [1]",
        "  min_eval_windows: 250": "  min_eval_windows: 100\n  val_start: \"2002-07-01\"\n"
                                   "  test_start: \"2003-07-01\"\n"
                                   f"  holdout_start: \"{HOLDOUT_START}\"",
        "  seeds: 2": "  seeds: 2", "enqueue_extremes: true": "enqueue_extremes: false"})
    cfg = load_sweep(str(p))
    dataset.build_dataset(cfg.data)
    return str(p), cfg


def test_the_holdout_is_scored_once_after_the_test_evaluation(csv_sweep, capsys):
    sweep, cfg = csv_sweep
    (cell,) = cells(sweep, cfg)
    assert holdout.main(["--sweep", sweep]) == 1  # before the test evaluation: refused
    assert "no complete final evaluation" in capsys.readouterr().err
    assert not holdout.result_path(sweep, cell).exists()

    r = CellRunner(cell, cfg, threads=1, log=lambda m: None)
    r.prepare()
    r.run(progress=False)
    state = run_final(cell, cfg, threads=1)
    # the search and the final evaluation never reach the holdout: the test block ends before it
    assert state["split"]["test"]["block_end"] < HOLDOUT_START
    assert all(e["block"].get("kind") != "holdout" for e in ledger.reads(sweep))

    assert holdout.main(["--sweep", sweep]) == 0
    out = capsys.readouterr().out
    assert f"{cell.id}: holdout {HOLDOUT_START[:7]}" in out
    path = holdout.result_path(sweep, cell)
    result = json.loads(path.read_text())
    assert result["block"]["name"] == "holdout" and result["block"]["block_start"] >= HOLDOUT_START
    assert result["seeds"] == [int(s) for s in state["configs"][str(result["trial"])]["seeds"]]
    assert 0 <= result["model"]["mean_probability"]["auc"] <= 1
    assert set(result["comparisons"]) == {"logreg", "hgb", "prior"}
    summary = ledger.summary(sweep)
    assert summary["holdout_reads"] == 1 and summary["holdout_cells"] == 1
    assert summary["reads"] == len(ledger.reads(sweep)) - 1  # test reads counted apart

    before = path.read_bytes()
    assert holdout.main(["--sweep", sweep]) == 1  # a second time: refused, nothing rewritten
    assert "already scored" in capsys.readouterr().err
    assert path.read_bytes() == before and ledger.summary(sweep)["holdout_reads"] == 1


def test_a_sweep_without_a_holdout_says_how_to_declare_one(fresh_root, capsys):
    assert holdout.main(["--sweep", "smoke"]) == 2
    assert "declares no holdout block: add split.holdout_start" in capsys.readouterr().err


@pytest.mark.parametrize("value, words", [
    ("2016-01-01", "must come after a test_start date"),
    ("someday", "not a date"),
])
def test_a_bad_holdout_start_is_named(tmp_path, value, words):
    from lib.core.config import ConfigError

    p = sweep_file(tmp_path, "t_bad_holdout", **{
        "  min_eval_windows: 250": f"  min_eval_windows: 250\n  val_start: \"2015-01-01\"\n"
                                   f"  test_start: \"2017-01-01\"\n  holdout_start: \"{value}\""})
    with pytest.raises(ConfigError, match=words):
        load_sweep(str(p))


def test_holdout_past_the_data_is_a_clear_error(wb_root):
    from dataclasses import replace

    from lib.data.splits import SplitError, make_splits

    paths.set_root(wb_root)
    df, _ = dataset.load_dataset("gspc_a25")
    cfg = load_sweep("smoke").split
    with pytest.raises(SplitError, match="leaves no holdout block"):
        make_splits(df, replace(cfg, holdout_start="2030-01-01"), horizon=1)


def test_the_report_note_quotes_the_holdout(csv_sweep):
    """The scaling report's test-block note states the holdout read beside the test reads."""
    from lib.core.provenance import write_json
    from lib.reports.evidence import test_block_note

    sweep, cfg = csv_sweep
    (cell,) = cells(sweep, cfg)
    assert "holdout block** was scored" not in test_block_note(sweep)
    diff = {"estimate": 0.01, "ci95": [-0.02, 0.04]}
    write_json(holdout.result_path(sweep, cell), {
        "cell": cell.as_dict(), "block": {"block_start": "2004-07-01", "block_end": "2005-05-13"},
        "model": {"mean_probability": {"auc": 0.55}}, "test_block_result": {"auc": 0.52},
        "comparisons": {"logreg": {"auc_diff": diff}}})
    note = test_block_note(sweep)
    assert "holdout block** was scored once for 1 cell(s)" in note and "AUC 0.550" in note

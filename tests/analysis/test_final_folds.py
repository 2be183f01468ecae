"""Rolling-origin final evaluation (split.fold_years) through the real path: the search on its
validation block, then every fold re-trained with the final seeds and scored on its own years;
the test days of all folds are pooled in date order for the intervals, the baselines are fitted
per fold, and the ledger records one read of the whole test period."""

from dataclasses import replace

import numpy as np

from lib.analysis.final import run_final
from lib.search.cells import Cell
from lib.search.runner import CellRunner
from lib.search.sweepfile import load_sweep


def test_every_fold_is_scored_by_models_trained_before_it(root):
    from lib.analysis import ledger
    from lib.data import dataset
    from lib.data.splits import make_splits, test_folds

    cfg = load_sweep("smoke")
    cfg.split = replace(cfg.split, val_start="2013-01-01", test_start="2015-01-01", fold_years=2)
    cfg.search = replace(cfg.search, n_trials=1, enqueue_extremes=False, max_epochs=[2, 2])
    cfg.final = replace(cfg.final, seeds=2, bootstrap=100)
    cell = Cell("folds", "8k", 1)
    r = CellRunner(cell, cfg, threads=1, log=lambda m: None)
    r.prepare()
    r.run(progress=False)
    state = run_final(cell, cfg, threads=1)

    df = dataset.load_dataset(cfg.data.name)[0]
    folds = test_folds(df, cfg.split, horizon=1)
    assert len(folds) == 2
    y = np.concatenate([f.test.y for f in folds])
    assert state["y_test"] == y.astype(int).tolist()
    assert state["test_dates"][0] >= "2015-01-01" and len(state["test_dates"]) == len(y)
    assert state["split"]["test"]["n_windows"] == len(y) == sum(
        f["test"]["n_windows"] for f in state["split"]["folds"])
    # one block over the same period holds more windows only at the fold boundary: the second
    # fold's first context_len - 1 days (a window's inputs stay in its block) and the first
    # fold's last h days (its labels too)
    one = make_splits(df, replace(cfg.split, fold_years=0), horizon=1).stats.test.n_windows
    assert len(y) == one - (cfg.split.context_len - 1 + 1)
    (conf,) = state["configs"].values()
    for s in conf["seeds"].values():
        assert len(s["p_test"]) == len(y) and len(s["folds"]) == 2
        assert [f["test_block"][0] for f in s["folds"]] == [str(f.test.dates[0].date())
                                                             for f in folds]
    for b in state["baselines"].values():
        assert len(b["p_test"]) == len(y) and b["folds"] == 2
    assert state["comparisons"]["logreg"]["auc_diff"]["estimate"] is not None
    assert state["final_settings"]["fold_years"] == 2
    (read,) = [x for x in ledger.reads(cell.name) if x["cell"] == cell.id]
    assert read["block"]["folds"] == 2 and read["block"]["windows"] == len(y)

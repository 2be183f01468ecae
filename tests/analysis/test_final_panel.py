"""A panel cell through the real path: the search on the pooled validation windows, the final
evaluation with new seeds on every asset's test windows, pooled and per-asset results, intervals
over dates, and the scaling report's verdict in N and D reading them."""

from dataclasses import replace

import numpy as np

from lib.analysis.final import run_final
from lib.core.config import DataConfig, DataSizeConfig
from lib.search.cells import Cell
from lib.search.runner import CellRunner
from lib.search.sweepfile import load_sweep, validate_sweep
from tests.data.test_panel import ASSETS, build, closes, write


def test_a_panel_cell_is_searched_evaluated_and_scored_per_asset(fresh_root):
    frames = {t: closes(i, n=3200) for i, t in enumerate(ASSETS)}
    write(fresh_root / "csv", frames)
    cfg = load_sweep("smoke")
    cfg.data = DataConfig(source="csv", csv_dir=str(fresh_root / "csv"), panel=True,
                          tickers=ASSETS, target="AAA", feature_set="sfc", name="p3")
    cfg.split = replace(cfg.split, label="close", val_start="2007-01-01",
                        test_start="2008-01-01", min_eval_windows=100)
    cfg.model = replace(cfg.model, norm="none")
    cfg.search = replace(cfg.search, n_trials=1, enqueue_extremes=False, max_epochs=[2, 2],
                         norm=[])
    cfg.train = replace(cfg.train, epoch_windows=256)
    cfg.data_sizes = [DataSizeConfig(id="d2ya1", assets=1, years=2)]
    cfg.final = replace(cfg.final, seeds=2, bootstrap=50)
    validate_sweep(cfg)
    build(cfg)
    cell = Cell("panelt", cfg.budgets[0], 1, "d2ya1")
    r = CellRunner(cell, cfg, threads=1, log=lambda m: None)
    r.prepare()
    r.run(progress=False)
    state = run_final(cell, cfg, threads=1)

    n = len(state["y_test"])
    assert set(state["per_asset"]) == set(ASSETS)
    assert sum(e["windows"] for e in state["per_asset"].values()) == n
    assert state["split"]["data"]["panel"] and state["split"]["data"]["train_assets"] == ["AAA"]
    assert state["interval"]["unit"].startswith("date")
    dates = np.asarray(state["test_dates"])
    assert len(np.unique(dates)) * len(ASSETS) == n  # every asset on every test date
    (conf,) = state["configs"].values()
    for s in conf["seeds"].values():
        assert len(s["p_test"]) == n
        # an epoch is epoch_windows windows: the small level repeated (d2ya1 has ~500)
        assert s["compute"]["windows_seen"] == 256 * s["compute"]["epochs"]
    for b in ("logreg", "hgb"):
        assert len(state["baselines"][b]["p_test"]) == n
        assert state["comparisons"][b]["logloss_diff"]["estimate"] is not None

"""The two canaries on real data (docs/research-rules.md), through the real path: the cell
runner's search, the final evaluation with new seeds, and the aggregation into the report's
table, at smoke size, at horizons 1 and 5.

- Placebo: the training and validation labels are permuted (``split.canary: placebo``), so the
  search can neither learn nor select on real labels. The test AUC of the selected configuration
  (mean over seeds) must lie inside its own null: the AUCs of the same predictions against
  circularly shifted test labels, which keep the labels' dependence (no independence assumed).
  Leakage of test information, or selection on the test block, shows up as skill outside it.
- Positive control: a feature equals the future label (``split.canary: leak``); a pipeline that
  can learn reaches near-perfect test AUC, and beats logistic regression (which does not see it)
  in the paired comparison.
"""

from dataclasses import replace

import numpy as np
import pytest

from lib.analysis.final import run_final
from lib.analysis.stats import circular_shift_null
from lib.reports import report
from lib.search.cells import Cell
from lib.search.runner import CellRunner
from lib.search.sweepfile import load_sweep
from lib.train.metrics import fast_metrics

CASES = [("placebo", 1), ("placebo", 5), ("leak", 1), ("leak", 5)]


BUDGET = {"placebo": "8k", "leak": "30k"}


def canary_cfg(canary):
    """Smoke-sized: one sampled trial, the smoke grid. The placebo's final evaluation averages
    six seeds: one placebo model is a random function of volatility-linked features whose AUC
    swings far from 0.5 by itself, with a random sign that the seed mean averages out."""
    cfg = load_sweep("smoke")
    cfg.split = replace(cfg.split, canary=canary)
    cfg.budgets, cfg.horizons = [BUDGET[canary]], [1, 5]
    epochs = 3 if canary == "placebo" else 6
    cfg.search = replace(cfg.search, n_trials=1, enqueue_extremes=False,
                         max_epochs=[epochs, epochs])
    cfg.final = replace(cfg.final, seeds=6 if canary == "placebo" else 2, bootstrap=200)
    return cfg


def run_case(root, canary, h):
    """One canary cell: search, final evaluation (in its own process, one thread)."""
    from lib.core import paths

    paths.set_root(root)
    cfg = canary_cfg(canary)
    cell = Cell(f"canary_{canary}_h{h}", BUDGET[canary], h)
    r = CellRunner(cell, cfg, threads=1, log=lambda m: None)
    r.prepare()
    r.run(progress=False)
    return run_final(cell, cfg, threads=1)


@pytest.fixture(scope="module")
def canary_runs(wb_root):
    # two processes of one thread each: these tiny models do not use a second core, so the four
    # cells finish in about half the time of one two-thread process
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(2, mp_context=mp.get_context("spawn")) as pool:
        futures = {case: pool.submit(run_case, wb_root, *case) for case in CASES}
        return {case: f.result() for case, f in futures.items()}


@pytest.mark.parametrize("h", [1, 5])
def test_placebo_stays_inside_its_own_null(canary_runs, h):
    state = canary_runs["placebo", h]
    row = report.results_table([state]).iloc[0]
    assert row["canary"] == "placebo" and row["n_seeds"] == 6
    y = np.asarray(state["y_test"])
    best = min(state["configs"].values(), key=lambda c: c["rank"])
    probs = [np.asarray(s["p_test"]) for s in best["seeds"].values()]

    def auc(yy, p):
        return np.mean([fast_metrics(yy, q, 0.5)["auc"] for q in probs]) if p is None else \
            fast_metrics(yy, p, 0.5)["auc"]

    p_mean = np.mean(probs, axis=0)
    null = circular_shift_null(y, p_mean, lambda yy, p: fast_metrics(yy, p, 0.5)["auc"],
                               min_shift=state["interval"]["block_length"])
    lo, hi = np.percentile(null, [0.5, 99.5])
    observed = fast_metrics(y, p_mean, 0.5)["auc"]
    assert lo <= observed <= hi, f"placebo AUC {observed:.3f} outside its null [{lo:.3f}, {hi:.3f}]"
    assert abs(row["test_auc"] - 0.5) < 0.15  # the table aggregates the same runs


@pytest.mark.parametrize("h", [1, 5])
def test_positive_control_is_learned_through_the_pipeline(canary_runs, h):
    state = canary_runs["leak", h]
    row = report.results_table([state]).iloc[0]
    assert row["canary"] == "leak" and state["seeds_differ_from_search_seed"]
    assert row["test_auc"] >= 0.95 and row["test_auc_ci"][0] >= 0.9, row["test_auc_ci"]
    assert row["auc_vs_logreg_ci"][0] > 0  # logistic regression does not see the leak

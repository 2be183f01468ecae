"""The two canaries on real data (docs/research-rules.md), through the real path: the cell
runner's search, the final evaluation with new seeds, and the aggregation into the report's
table, at smoke size, at horizons 1 and 5.

- Placebo: the training and validation labels are permuted (``split.canary: placebo``), so the
  search can neither learn nor select on real labels. The test AUC of the selected configuration
  (mean over seeds) must lie inside its own null: the AUCs of the same predictions against
  circularly shifted test labels, which keep the labels' dependence (no independence assumed).
  Leakage of test information, or selection on the test block, shows up as skill outside it.
- Placebo with selection: eight trials, all eight evaluated on the test block (``top_k`` 8), the
  ranking made on the permuted validation labels. The test block cannot have informed that ranking,
  so the configuration ranked first is, by exchangeability, equally likely to hold any of the
  eight ranks of test AUC: first in both horizons with probability 1/64. A pipeline that selects
  on the test block puts it first every time; the check is red when it is first in both
  (`test_select_on_test_turns_the_placebo_red` plants that mutation and shows it).
- Positive control: a feature that is a noisy function of the future (the next h days' largest
  rise plus noise, ``split.canary: leak``; not the label itself); a pipeline that can learn gets
  most of the way to that feature's own test AUC, and beats logistic regression (which does not
  see it) in the paired comparison.
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

CASES = [("placebo", 1), ("placebo", 5), ("leak", 1), ("leak", 5), ("select", 1), ("select", 5)]


BUDGET = {"placebo": "8k", "leak": "30k", "select": "8k"}
SELECT_K = 8  # trials searched and evaluated in the selection placebo


def canary_cfg(canary):
    """Smoke-sized: one sampled trial, the smoke grid. The placebo's final evaluation averages
    six seeds: one placebo model is a random function of volatility-linked features whose AUC
    swings far from 0.5 by itself, with a random sign that the seed mean averages out."""
    cfg = load_sweep("smoke")
    cfg.split = replace(cfg.split, canary="placebo" if canary == "select" else canary)
    cfg.budgets, cfg.horizons = [BUDGET[canary]], [1, 5]
    if canary == "select":  # real selection: 8 complete trials, all evaluated, 1 seed each
        cfg.search = replace(cfg.search, n_trials=SELECT_K, enqueue_extremes=False,
                             max_epochs=[2, 2], pruner="none")
        cfg.final = replace(cfg.final, seeds=1, bootstrap=100, top_k=SELECT_K)
        return cfg
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
def test_positive_control_is_learned_through_the_pipeline(canary_runs, h, wb_root):
    from lib.core import paths
    from lib.data import dataset
    from lib.data.splits import make_splits

    state = canary_runs["leak", h]
    row = report.results_table([state]).iloc[0]
    assert row["canary"] == "leak" and state["seeds_differ_from_search_seed"]
    # the planted feature alone, on the test block: the most a model can get from it
    paths.set_root(wb_root)
    sp = make_splits(dataset.load_dataset("gspc_a25")[0], canary_cfg("leak").split, horizon=h)
    own = fast_metrics(sp.test.y, sp.test.X[:, -1, -1], 0.5)["auc"]
    assert 0.75 <= own < 0.97  # a noisy view of the future, not the label
    assert row["test_auc"] >= own - 0.1, (row["test_auc"], own)
    # logistic regression does not see the planted feature: the transformer is ahead of it, and
    # significantly so where the feature alone is clearly better than logistic regression (at
    # h = 1 volatility alone gives logistic regression an AUC near the feature's own). The
    # control's hypothesis is one-sided (the model that sees the future is better), so the test
    # is one-sided at 5%: half the two-sided p-value. At h = 5 the 420 test days hold about 85
    # non-overlapping labels: a gap of 0.16 in AUC gives a two-sided p of about 0.06.
    assert row["auc_vs_logreg"] > 0
    if row["logreg_auc"] < own - 0.1:
        assert row["p_vs_logreg"] / 2 < 0.05, (row["auc_vs_logreg_ci"], own, row["logreg_auc"])


def selected_test_rank(state: dict) -> int:
    """Rank (1 = highest) of the validation-chosen configuration's test AUC among all the
    configurations the final evaluation scored."""
    aucs = {c["rank"]: c["aggregate"]["auc"]["mean"] for c in state["configs"].values()}
    return 1 + sum(a > aucs[0] for a in aucs.values())


def selection_on_test_suspected(states: list[dict]) -> bool:
    """The placebo-with-selection check: red when the configuration ranked first on the permuted
    validation labels is also first on the test block in every horizon (probability
    1/len(configs) per horizon under honest selection)."""
    return all(selected_test_rank(s) == 1 for s in states)


def test_placebo_with_selection_has_no_test_information(canary_runs):
    states = [canary_runs["select", h] for h in (1, 5)]
    for s in states:
        assert len(s["configs"]) == SELECT_K and s["split"]["canary"] == "placebo"
    assert not selection_on_test_suspected(states), [selected_test_rank(s) for s in states]


def test_select_on_test_turns_the_placebo_red(canary_runs):
    """The mutation: the same evaluated configurations, ranked on the test block (what a
    pipeline that peeks at the test labels to choose would report first)."""
    import copy

    mutated = []
    for h in (1, 5):
        s = copy.deepcopy(canary_runs["select", h])
        by_test = sorted(s["configs"].values(), key=lambda c: -c["aggregate"]["auc"]["mean"])
        for rank, c in enumerate(by_test):
            c["rank"] = rank
        mutated.append(s)
    assert selection_on_test_suspected(mutated)

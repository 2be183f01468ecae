"""Intervals for dependent test days (block bootstrap over days and seeds), paired comparisons,
Holm's correction, and DeLong's test (kept as a secondary, independence-assuming number)."""

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from lib.analysis.stats import block_length, bootstrap_p, delong, hierarchical, holm, percentile_ci
from lib.train.metrics import fast_metrics


def dependent_case(n=500, seed=0, persistence=15):
    """Labels and predictions whose errors come in long runs, as overlapping-horizon labels and
    volatility regimes make them: a slowly varying latent drives both."""
    rng = np.random.default_rng(seed)
    latent = np.convolve(rng.normal(size=n + persistence), np.ones(persistence), "valid")[:n]
    y = (latent + rng.normal(0, 1.0, n) > 0).astype(int)
    noise = np.convolve(rng.normal(size=n + persistence), np.ones(persistence), "valid")[:n]
    p = 1 / (1 + np.exp(-(0.15 * latent + 0.3 * noise)))
    return y, p


def auc_stat(y, groups):
    return [float(np.mean([fast_metrics(y, p, 0.5)["auc"] for p in groups[0]]))]


def width(draws):
    lo, hi = percentile_ci(draws[:, 0])
    return hi - lo


def test_block_interval_is_wider_than_iid_on_dependent_days():
    """The old i.i.d. interval over test days is too narrow when errors cluster; the block
    bootstrap's is honest (undo it and this fails)."""
    y, p = dependent_case()
    b = block_length(5, [y.astype(float), np.abs(y - p)])
    assert b["block_length"] >= 5 and b["automatic"] > 5
    block = hierarchical(y, [[p]], auc_stat, b["block_length"], 400, seed=1)
    iid = hierarchical(y, [[p]], auc_stat, 1, 400, seed=1, iid=True)
    assert width(block) > 1.4 * width(iid)


def test_block_length_never_below_the_horizon_and_near_one_for_independent_days():
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 600).astype(float)
    b = block_length(5, [y])
    assert b["block_length"] == 5 and b["automatic"] < 3 and "max(horizon" in b["rule"]
    b1 = block_length(1, [y])
    assert b1["block_length"] <= 3
    capped = block_length(1, [np.repeat([0.0, 1.0], 300)], cap_share=0.05)
    assert capped["block_length"] == 30 and capped["capped_at"] == 30


def test_seed_variance_enters_the_interval():
    """Re-trainings that disagree widen the interval of their mean when seeds are resampled
    with the days; with the seeds held fixed (days only) they do not."""
    y, p = dependent_case(seed=4)
    seeds = [p, np.random.default_rng(5).random(len(p)), p]  # one seed learned nothing
    with_seeds = hierarchical(y, [seeds], auc_stat, 10, 300, seed=2)
    days_only = hierarchical(y, [seeds], auc_stat, 10, 300, seed=2, resample_seeds=False)
    assert width(with_seeds) > 1.3 * width(days_only)


def test_paired_difference_detects_a_real_gap_and_not_a_copy():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 400)
    good = 1 / (1 + np.exp(-(y * 2 - 1 + rng.normal(0, 0.8, 400))))
    weak = 1 / (1 + np.exp(-(y * 2 - 1 + rng.normal(0, 3.0, 400))))

    def diff(yb, groups):
        return [fast_metrics(yb, groups[0][0], 0.5)["auc"] - fast_metrics(yb, groups[1][0],
                                                                          0.5)["auc"]]
    est = diff(y, [[good], [weak]])[0]
    d = hierarchical(y, [[good], [weak]], diff, 5, 300)[:, 0]
    assert est > 0 and percentile_ci(d)[0] > 0 and bootstrap_p(est, d) < 0.01
    same = hierarchical(y, [[good], [good]], diff, 5, 100)[:, 0]
    assert np.all(same == 0) and bootstrap_p(0.0, same) == 1.0


def test_holm_by_hand():
    """p = .01, .04, .03, .005 -> adjusted .03, .06, .06, .02 (step-down, monotone)."""
    out = holm({"a": 0.01, "b": 0.04, "c": 0.03, "d": 0.005, "e": None})
    assert {k: round(v["p_holm"], 6) for k, v in out.items()} == {
        "d": 0.02, "a": 0.03, "c": 0.06, "b": 0.06}
    assert [k for k, v in out.items() if v["reject"]] == ["d", "a"]


def test_delong_matches_sklearn_aucs_and_detects_a_real_difference():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 400)
    good = y + rng.normal(0, 0.7, 400)
    weak = y + rng.normal(0, 3.0, 400)
    r = delong(y, good, weak)
    assert r["auc_1"] == pytest.approx(roc_auc_score(y, good))
    assert r["auc_2"] == pytest.approx(roc_auc_score(y, weak))
    assert r["diff"] > 0 and r["p_value"] < 0.001 and r["assumes"] == "independent test days"


def test_delong_identical_predictions_give_no_difference():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 200)
    p = rng.random(200)
    r = delong(y, p, p)
    assert r["diff"] == 0 and r["p_value"] == 1.0

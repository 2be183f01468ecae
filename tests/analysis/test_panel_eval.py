"""A panel's evaluation: dates resampled with their whole cross-section, intervals that do not
count correlated assets as independent evidence, pooled and per-asset metrics as a direct
computation gives them."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
from sklearn.metrics import log_loss, roc_auc_score

from lib.analysis.final import compare
from lib.analysis.panel_eval import per_asset
from lib.analysis.stats import by_date, hierarchical
from lib.train.metrics import evaluate


def panel_days(n_dates=300, n_assets=4, seed=0, common=1.0):
    """Labels and probabilities of ``n_assets`` assets on ``n_dates`` dates, stacked by asset; a
    shared daily factor (weight ``common``) makes the assets move together."""
    rng = np.random.default_rng(seed)
    f = rng.normal(size=n_dates)
    dates = np.tile(np.arange(n_dates), n_assets)
    z = common * np.tile(f, n_assets) + rng.normal(size=n_dates * n_assets) * (1 - common + 0.3)
    y = (z + rng.normal(size=len(z)) > 0.8).astype(float)
    p = 1 / (1 + np.exp(-(0.6 * z - 1.2)))
    return y, p, dates, np.repeat(np.arange(n_assets), n_dates)


def test_a_date_is_resampled_with_its_whole_cross_section():
    n_dates, n_assets = 120, 5
    dates = np.tile(np.arange(n_dates), n_assets)
    rows = np.arange(len(dates), dtype=float)  # the "labels" carry each row's identity
    seen = []

    def stat(yb, groups):
        picked = yb.astype(int)
        counts = np.bincount(dates[picked], minlength=n_dates)
        seen.append(counts)
        return [0.0]

    hierarchical(rows, [[np.zeros(len(rows))]], stat, block=5, resamples=50, dates=dates)
    counts = np.asarray(seen)
    assert len(counts) == 50 and (counts % n_assets == 0).all()  # whole dates only
    assert (counts.sum(axis=1) == len(rows)).all()  # as many dates as there are
    assert (counts == 0).any() and (counts >= 2 * n_assets).any()  # a real resample


def test_by_date_keeps_the_mean_and_orders_dates():
    x = np.array([1.0, 2.0, 3.0, 4.0, 5.0, 6.0])
    dates = np.array([2, 1, 0, 2, 1, 0])
    s = by_date(x, dates)
    assert s.mean() == pytest.approx(x.mean())
    # dates 0, 1, 2: (3+6), (2+5), (1+4), times dates / windows = 1/2: each date's mean here
    np.testing.assert_allclose(s, [4.5, 3.5, 2.5])
    np.testing.assert_array_equal(by_date(x, None), x)


def test_copies_of_one_asset_add_no_evidence():
    """Five identical assets are one asset's evidence: the interval counted by date equals the
    single series'; counted by window (the mutation) it is about sqrt(5) times too narrow."""
    y, p, _, _ = panel_days(n_assets=1, common=0.0, seed=3)
    q = np.clip(p + np.random.default_rng(4).normal(0, 0.1, len(p)), 0.01, 0.99)
    one = compare(y, [p], q, horizon=1)
    k = 5
    ys, ps, qs = np.tile(y, k), np.tile(p, k), np.tile(q, k)
    dates = np.tile(np.arange(len(y)), k)
    panel = compare(ys, [ps], qs, horizon=1, dates=dates)
    naive = compare(ys, [ps], qs, horizon=1)
    for key in ("logloss_diff", "auc_diff"):
        w1 = np.diff(one[key]["ci95"])[0]
        assert np.diff(panel[key]["ci95"])[0] == pytest.approx(w1, rel=1e-6)
        assert np.diff(naive[key]["ci95"])[0] < 0.6 * w1


def test_pooled_and_per_asset_metrics_agree_with_a_direct_computation():
    y, p, dates, assets = panel_days(seed=1)
    rng = np.random.default_rng(2)
    probs = [np.clip(p + rng.normal(0, 0.02, len(p)), 0.01, 0.99) for _ in range(3)]
    base = float(y.mean())
    b = {"prior": np.full(len(y), base), "logreg": np.clip(p * 0.9 + 0.05, 0.01, 0.99)}
    splits = SimpleNamespace(assets={"test": assets}, names=["A", "B", "C", "D"])
    out = per_asset(y, probs, b, splits, base, 1, compare)
    for i, name in enumerate(splits.names):
        rows = assets == i
        auc = np.mean([roc_auc_score(y[rows], q[rows]) for q in probs])
        ll = np.mean([log_loss(y[rows], q[rows]) for q in probs])
        assert out[name]["windows"] == rows.sum()
        assert out[name]["model"]["auc"] == pytest.approx(auc, abs=1e-9)
        assert out[name]["model"]["logloss"] == pytest.approx(ll, rel=1e-6)
        assert out[name]["logreg"]["auc"] == pytest.approx(roc_auc_score(y[rows],
                                                                          b["logreg"][rows]))
        assert out[name]["vs_logreg"]["auc_diff"]["estimate"] == pytest.approx(
            auc - roc_auc_score(y[rows], b["logreg"][rows]), abs=1e-9)
    pooled = evaluate(y, probs[0], base)
    assert pooled["auc"] == pytest.approx(roc_auc_score(y, probs[0]))
    assert pooled["logloss"] == pytest.approx(log_loss(y, probs[0]), rel=1e-6)


def test_the_skill_per_decade_counts_dates_too():
    """The verdict's interval (skill per decade of N or D) on a panel of copies of one asset is
    the one asset's; counted by window it would be too narrow."""
    from lib.analysis.scaling import skill_per_decade

    rng = np.random.default_rng(7)
    y, p, _, _ = panel_days(n_assets=1, common=0.0, seed=5)
    probs = [[np.clip(p + rng.normal(0, 0.05, len(p)), 0.01, 0.99) for _ in range(2)]
             for _ in range(3)]
    one = skill_per_decade([1e4, 1e5, 1e6], y, probs, float(y.mean()), 1)
    k = 4
    tiled = [[np.tile(q, k) for q in seeds] for seeds in probs]
    dates = np.tile(np.arange(len(y)), k)
    panel = skill_per_decade([1e4, 1e5, 1e6], np.tile(y, k), tiled, float(y.mean()), 1, dates)
    naive = skill_per_decade([1e4, 1e5, 1e6], np.tile(y, k), tiled, float(y.mean()), 1)
    assert panel["skill_per_decade"] == pytest.approx(one["skill_per_decade"])
    assert panel["skill_test"]["se"] == pytest.approx(one["skill_test"]["se"], rel=1e-6)
    assert naive["skill_test"]["se"] < 0.7 * one["skill_test"]["se"]

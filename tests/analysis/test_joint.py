"""The joint law L(N, D) = E + A/N^alpha + B/D^beta on synthetic data: known exponents are
recovered within their intervals, and data that do not depend on N do not produce an alpha."""

import numpy as np
import pytest

from lib.analysis.joint import (
    bootstrap_joint,
    exponent_verdicts,
    fit_joint,
    joint_law,
    limited_by,
    optimal_split,
)

TRUE = {"E": 0.3, "A": 40.0, "alpha": 0.5, "B": 60.0, "beta": 0.6}


def grid():
    N = np.array([1e4, 3e4, 1e5, 3e5, 1e6])
    D = np.array([2e3, 5e3, 1.2e4, 3e4])
    NN, DD = np.meshgrid(N, D)
    return NN.ravel(), DD.ravel()


def replicates(N, D, law_kw, noise, n=120, seed=0):
    rng = np.random.default_rng(seed)
    clean = joint_law(N, D, **law_kw)
    point = clean * np.exp(rng.normal(0, noise, len(clean)))
    reps = [point * np.exp(rng.normal(0, noise, len(clean))) for _ in range(n)]
    return point, reps


def test_known_exponents_are_recovered_within_their_intervals():
    N, D = grid()
    L, reps = replicates(N, D, TRUE, noise=0.01)
    fit = fit_joint(N, D, L)
    boot = bootstrap_joint(N, D, reps)
    verdicts = exponent_verdicts(fit, boot, max_bound_share=0.1)
    for name in ("alpha", "beta"):
        lo, hi = boot[name]["ci95"]
        assert lo <= TRUE[name] <= hi, (name, fit[name], lo, hi)
        assert hi - lo < 0.3 and verdicts[name]["code"] == "scaling"
    assert boot["E"]["ci95"][0] <= TRUE["E"] <= boot["E"]["ci95"][1]


def test_no_dependence_on_n_gives_no_alpha():
    """Data with no N term: alpha is 'not identified' or its interval covers 0, never a law."""
    N, D = grid()
    L, reps = replicates(N, D, dict(TRUE, A=0.0), noise=0.01, seed=1)
    fit = fit_joint(N, D, L)
    boot = bootstrap_joint(N, D, reps)
    v = exponent_verdicts(fit, boot, max_bound_share=0.1)["alpha"]
    lo, hi = boot["alpha"]["ci95"]
    assert v["code"] == "not_identified" or (lo <= 0 <= hi), (v, fit)


def test_data_limited_and_size_limited_are_told_apart():
    N, D = grid()
    # the D term dominates at the largest observed (N, D): more data pays more
    L, reps = replicates(N, D, dict(TRUE, A=5.0, B=600.0), noise=0.005, seed=2)
    fit, boot = fit_joint(N, D, L), bootstrap_joint(N, D, reps)
    v = exponent_verdicts(fit, boot, 0.1)
    assert limited_by(fit, boot, v, N.max(), D.max())["code"] == "data_limited"
    L, reps = replicates(N, D, dict(TRUE, A=400.0, B=6.0), noise=0.005, seed=3)
    fit, boot = fit_joint(N, D, L), bootstrap_joint(N, D, reps)
    v = exponent_verdicts(fit, boot, 0.1)
    assert limited_by(fit, boot, v, N.max(), D.max())["code"] == "size_limited"


def test_compute_optimal_split_minimises_the_law_along_the_budget():
    C = 1e12
    opt = optimal_split(TRUE, C)
    ns = np.geomspace(opt["N"] / 30, opt["N"] * 30, 401)
    losses = joint_law(ns, C / 6 / ns, **TRUE)
    assert ns[np.argmin(losses)] == pytest.approx(opt["N"], rel=0.05)
    assert opt["N"] * opt["D"] * 6 == pytest.approx(C)


def test_too_few_points_or_one_data_size_are_refused():
    with pytest.raises(ValueError, match="2 distinct N and 2 distinct D"):
        fit_joint([1e4, 1e5, 1e6, 1e4, 1e5, 1e6], [1e3] * 6, [1, 0.9, 0.8, 1, 0.9, 0.8])
    with pytest.raises(ValueError, match="cannot determine the 5 parameters"):
        fit_joint([1e4, 1e5, 1e4, 1e5], [1e3, 1e3, 1e4, 1e4], [1, 0.9, 0.8, 0.7])


def test_the_frontier_spends_the_budget_and_its_band_holds_the_estimate():
    from lib.reports.joint_report import _frontier

    N, D = grid()
    point, reps = replicates(N, D, TRUE, 0.002)
    fit, boot = fit_joint(N, D, point), bootstrap_joint(N, D, reps)
    C = np.geomspace(1e9, 1e12, 7)
    fr = _frontier(fit, boot, C)
    assert np.allclose(6 * np.asarray(fr["N"]) * np.asarray(fr["D"]), C)
    assert fr["n_draws"] > 0.9 * len(reps)
    for k in ("N", "D"):
        assert (np.asarray(fr[f"{k}_lo"]) <= np.asarray(fr[k]) * 1.0001).all()
        assert (np.asarray(fr[k]) <= np.asarray(fr[f"{k}_hi"]) * 1.0001).all()


def synthetic_finals(budgets=(1e4, 1e5, 1e6), windows=(500, 1000, 2000, 4000), days=600):
    """Final evaluations of a budget x data grid scored on the same test days: predictions sharpen
    with N and with D, and each cell's measured N differs a little from its budget (as a chosen
    architecture's does)."""
    rng = np.random.default_rng(0)
    y = (rng.random(days) < 0.3).astype(float)
    noise = rng.normal(0, 1, days)
    finals = []
    for b in budgets:
        for j, w in enumerate(windows):
            strength = 0.4 + 0.3 * np.log10(b / 1e4) + 0.2 * np.log2(w / 500)
            seeds = {}
            for k in range(3):
                z = (np.log(0.3 / 0.7) + strength * (2 * y - 1) + 0.8 * noise
                     + rng.normal(0, 0.2, days))
                seeds[str(k)] = {"p_test": (1 / (1 + np.exp(-z))).tolist()}
            n = int(b * (1 + 0.05 * j))
            finals.append({
                "cell": {"id": f"{b:g}-d{w}-h1", "budget": f"{b:g}", "budget_n": b, "horizon": 1,
                         "data": f"d{w}"},
                "split": {"data": {"windows": w, "tokens_per_window": 10},
                          "train": {"n_windows": w}},
                "y_test": y.tolist(), "interval": {"block_length": 3},
                "configs": {"0": {"rank": 0, "seeds": seeds,
                                  "n_params": {"measured": n, "measured_non_embedding": n}}}})
    return finals


def test_joint_fits_read_the_grid_and_fit_one_factor_laws_along_its_edges():
    from lib.core.config import SweepConfig
    from lib.reports.joint_report import joint_fits

    fits = joint_fits(synthetic_finals(), SweepConfig(), resamples=60)
    e = fits[1]
    assert len(e["N"]) == 12 and sorted(set(e["D_windows"])) == [500, 1000, 2000, 4000]
    assert e["D"] == [w * 10 for w in e["D_windows"]]
    one = e["one_factor"]
    # in D at the largest budget: every data size, although measured N differs between them
    assert one["D"]["x"] == [5000.0, 10000.0, 20000.0, 40000.0]
    # in N at the largest data size: every budget
    assert len(one["N"]["x"]) == 3
    assert e["verdicts"]["beta"]["code"] == "scaling" and e["fit"]["beta"] > 0

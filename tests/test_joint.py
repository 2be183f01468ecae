"""The joint law L(N, D) = E + A/N^alpha + B/D^beta on synthetic data: known exponents are
recovered within their intervals, and data that do not depend on N do not produce an alpha."""

import numpy as np
import pytest

from lib.joint import (
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

"""SCIENCE rule 15: the fitted law recovers known exponents; flat data gives no evidence."""

import numpy as np
import pytest

from lib.scaling import bootstrap_alpha, fit_law, law, verdict

N = np.array([1e4, 3e4, 1e5, 3e5, 1e6])


def test_recovers_known_exponent_within_interval():
    truth = law(N, 2.0, 0.25, 0.3)
    L = truth * np.exp(np.random.default_rng(0).normal(0, 0.01, len(N)))
    f = fit_law(N, L)
    ci = bootstrap_alpha(N, lambda r: truth * np.exp(r.normal(0, 0.01, len(N))), 200)["alpha_ci95"]
    assert f["form"] == "a*N^-alpha+c" and abs(f["alpha"] - 0.25) < 0.05
    assert ci[0] <= 0.25 <= ci[1] and ci[0] > 0
    assert "falls with model size" in verdict(f["alpha"], ci)


def test_flat_data_interval_includes_zero():
    ci = bootstrap_alpha(N, lambda r: 0.6 * np.exp(r.normal(0, 0.01, len(N))), 100)["alpha_ci95"]
    assert ci[0] <= 0 <= ci[1]
    assert verdict(0.0, ci).startswith("no evidence of scaling")


def test_inverse_scaling_is_reported_as_such():
    L = law(N[:3], 0.05, -0.2)
    f = fit_law(N[:3], L)
    assert f["alpha"] < 0
    assert "inverse scaling" in verdict(f["alpha"], [-0.3, -0.1])


def test_pure_power_law_with_too_few_points():
    f = fit_law(N[:3], law(N[:3], 3.0, 0.3))
    assert f["form"] == "a*N^-alpha" and f["c"] == 0
    assert f["alpha"] == pytest.approx(0.3, abs=1e-6) and f["a"] == pytest.approx(3.0, rel=1e-6)


def test_one_point_is_an_error():
    with pytest.raises(ValueError, match="at least 2 distinct"):
        fit_law([1e4], [0.5])


def test_fit_at_the_bound_is_reported_as_not_identified():
    assert verdict(-3.0, [-3.0, 3.0]).startswith("not identified")


def test_bootstrap_in_worker_processes_gives_the_same_interval():
    """Rule 15's intervals do not depend on how many processes fit the resamples."""
    def sample(r):
        return law(N, 2.0, 0.25, 0.3) * np.exp(r.normal(0, 0.02, len(N)))

    one = bootstrap_alpha(N, sample, 70, next_N=3e6, workers=1)
    two = bootstrap_alpha(N, sample, 70, next_N=3e6, workers=2)  # >= 64 fits: a process pool
    assert one == two and one["n"] == 70

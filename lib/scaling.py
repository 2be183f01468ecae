"""Scaling-law fits (SCIENCE rule 15): L(N) = a * N^(-alpha) + c against MEASURED parameter counts.

Fitted robustly (Huber loss on log residuals, several starting points, scipy ``least_squares``);
the pure power law a * N^(-alpha) is used where too few budgets exist to support c (fewer than 4).
Intervals come from a bootstrap over test windows and seeds; when the interval for alpha includes 0
the conclusion is that there is no evidence of scaling. alpha may come out negative (error growing
with size): that is reported as it is.
"""

from __future__ import annotations

import os

import numpy as np
from scipy.optimize import least_squares

MIN_POINTS_WITH_C = 4
HUBER_SCALE = 0.05  # log-residual beyond which the loss is linear (robust to an outlier)
ALPHA_BOUND = 3.0  # |alpha| beyond this is not a scaling law anyone would fit


def law(N, a, alpha, c=0.0):
    return a * np.power(np.asarray(N, dtype=float), -alpha) + c


def fit_law(N, L, with_c: bool | None = None) -> dict:
    """Fit the law to points (N, L), L > 0; returns a, alpha, c, form and the fit's loss."""
    N, L = np.asarray(N, dtype=float), np.asarray(L, dtype=float)
    if len(N) < 2 or len(np.unique(N)) < 2:
        raise ValueError(f"a scaling fit needs at least 2 distinct parameter counts, got {len(N)}")
    if (L <= 0).any() or not np.isfinite(L).all():
        raise ValueError("error measure must be positive and finite")
    with_c = len(np.unique(N)) >= MIN_POINTS_WITH_C if with_c is None else with_c
    x = np.log(N / N.min())  # scale-free abscissa: a is the error at the smallest model

    def resid(theta):
        la, alpha = theta[0], theta[1]
        c = np.exp(theta[2]) if with_c else 0.0
        pred = np.exp(la - alpha * x) + c
        return np.log(pred) - np.log(L)

    def jac(theta):  # analytic: finite differences took a third of each fit's time
        la, alpha = theta[0], theta[1]
        power = np.exp(la - alpha * x)
        c = np.exp(theta[2]) if with_c else 0.0
        pred = power + c
        cols = [power / pred, -x * power / pred] + ([c / pred] if with_c else [])
        return np.stack(cols, axis=1)

    # theta = [log of the power-law part at the smallest N, alpha, log c]. A vectorised grid over
    # (alpha, c) with the amplitude in closed form gives the start; one bounded refinement follows.
    # alpha is bounded, so an unidentifiable (flat) case ends at a wide, honest interval.
    la0, alpha0, c0 = _grid_start(x, L, with_c)
    lo = [-30.0, -ALPHA_BOUND] + ([np.log(L.min()) - 30] if with_c else [])
    hi = [30.0, ALPHA_BOUND] + ([np.log(L.max())] if with_c else [])
    theta0 = [la0, alpha0] + ([np.log(max(c0, L.min() * 1e-9))] if with_c else [])
    theta0 = np.clip(theta0, np.array(lo) + 1e-9, np.array(hi) - 1e-9)
    best = least_squares(resid, theta0, jac=jac, bounds=(lo, hi), loss="huber",
                         f_scale=HUBER_SCALE, max_nfev=200)
    la, alpha = best.x[0], best.x[1]
    c = float(np.exp(best.x[2])) if with_c else 0.0
    a = float(np.exp(la) * N.min() ** alpha)  # back to L = a * N^-alpha + c
    return {"a": a, "alpha": float(alpha), "c": c, "form": "a*N^-alpha+c" if with_c else
            "a*N^-alpha", "cost": float(best.cost), "n_points": int(len(N))}


def _huber(r: np.ndarray, k: float = 0.05) -> np.ndarray:
    a = np.abs(r)
    return np.where(a <= k, 0.5 * r**2, k * (a - 0.5 * k))


def _grid_start(x: np.ndarray, L: np.ndarray, with_c: bool) -> tuple[float, float, float]:
    alphas = np.linspace(-ALPHA_BOUND, ALPHA_BOUND, 121)
    G = np.exp(-alphas[:, None] * x[None, :])  # G: [n_alpha, n_points]
    w = 1.0 / L**2
    best = (np.inf, 0.0, 0.0, 0.0)
    for c in (L.min() * np.linspace(0.0, 0.98, 25) if with_c else [0.0]):
        amp = (G * (L - c) * w).sum(1) / (G**2 * w).sum(1)  # amp: [n_alpha], weighted LSQ
        amp = np.clip(amp, 1e-12, None)
        loss = _huber(np.log(amp[:, None] * G + c) - np.log(L), HUBER_SCALE).sum(1)
        i = int(np.argmin(loss))
        if loss[i] < best[0]:
            best = (loss[i], np.log(amp[i]), alphas[i], c)
    return best[1], best[2], best[3]


def _fit_or_none(args) -> dict | None:
    N, L, with_c = args
    try:
        return fit_law(N, L, with_c)
    except (ValueError, np.linalg.LinAlgError):
        return None


def available_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def fit_many(N, Ls: list, with_c: bool | None, workers: int = 1) -> list[dict | None]:
    """``fit_law`` on each resample, in ``workers`` processes when there are enough fits to pay
    for starting them (the same results as one process, in the same order)."""
    import multiprocessing as mp

    tasks = [(np.asarray(N, dtype=float), np.asarray(L, dtype=float), with_c) for L in Ls]
    if workers <= 1 or len(tasks) < 64 or "fork" not in mp.get_all_start_methods():
        return [_fit_or_none(t) for t in tasks]
    import warnings
    from concurrent.futures import ProcessPoolExecutor
    from concurrent.futures.process import BrokenProcessPool

    # fork, not spawn: a spawned worker re-imports the parent's main module (torch, pandas, ...:
    # seconds per worker, which made 2 workers slower than 1); the forked workers run only numpy
    # and scipy code
    try:
        with ProcessPoolExecutor(workers, mp_context=mp.get_context("fork")) as pool:
            return list(pool.map(_fit_or_none, tasks, chunksize=-(-len(tasks) // (4 * workers))))
    except (BrokenProcessPool, OSError) as e:
        warnings.warn(f"bootstrap fits fall back to one process ({type(e).__name__}: {e})",
                      RuntimeWarning, stacklevel=2)
        return [_fit_or_none(t) for t in tasks]


def bootstrap_alpha(N, sample_L, resamples: int = 500, seed: int = 0,
                    with_c: bool | None = None, next_N: float | None = None,
                    grid_N=None, workers: int = 1) -> dict:
    """Interval for alpha (and the prediction at ``next_N``) from resampled error measures.

    Args:
        N: measured parameter counts, one per budget.
        sample_L: callable(rng) -> array of L per budget for one bootstrap resample (resampling
            test windows and seeds consistently across budgets).
        workers: processes for the fits (the resamples are drawn first, in order, so the result
            does not depend on it). A fit along a flat valley can take 200 evaluations.
    """
    rng = np.random.default_rng(seed)
    Ls = []
    for _ in range(resamples):
        L = sample_L(rng)
        if L is None or (np.asarray(L) <= 0).any() or not np.isfinite(L).all():
            continue
        Ls.append(L)
    alphas, preds, curves = [], [], []
    for f in fit_many(N, Ls, with_c, workers):
        if f is None:
            continue
        alphas.append(f["alpha"])
        if next_N is not None:
            preds.append(law(next_N, f["a"], f["alpha"], f["c"]))
        if grid_N is not None:
            curves.append(law(grid_N, f["a"], f["alpha"], f["c"]))
    if not alphas:
        return {"alpha_ci95": [None, None], "n": 0}
    out = {"alpha_ci95": [float(v) for v in np.percentile(alphas, [2.5, 97.5])],
           "n": len(alphas)}
    if preds:
        out["pred_next_ci95"] = [float(v) for v in np.percentile(preds, [2.5, 97.5])]
    if curves:
        lo, hi = np.percentile(np.asarray(curves), [2.5, 97.5], axis=0)
        out["band"] = {"N": np.asarray(grid_N).tolist(), "lo": lo.tolist(), "hi": hi.tolist()}
    return out


def verdict(alpha: float, ci: list) -> str:
    lo, hi = ci
    if lo is None:
        return "no interval could be computed"
    if abs(alpha) >= ALPHA_BOUND - 1e-3:
        return (f"not identified: alpha sits at the fit's bound (+/-{ALPHA_BOUND:g}), so these "
                f"points do not determine a law; no evidence of scaling")
    if lo <= 0 <= hi:
        return "no evidence of scaling (the 95% interval for alpha includes 0)"
    if lo > 0:
        return "error falls with model size (alpha > 0 at 95%)"
    return "error grows with model size (alpha < 0 at 95%): inverse scaling"

"""Scaling-law fits (research rule 15): L(N) = a * N^(-alpha) + c against MEASURED parameter counts.

Fitted on log residuals (a grid of starting points, then a bounded refinement with scipy
``least_squares``) with a Huber loss whose scale is tied to the measured noise of the points: k =
1.345 times the typical bootstrap standard deviation of log L (:func:`noise_scale`), the classic
95%-efficiency tuning. Residuals of the size of the noise are fitted by least squares, so no point
is interpolated and no single point decides alpha; only a point several noise widths off the curve
is down-weighted. (A fixed delta of 1e-3, as Besiroglu et al. 2024 use on far less noisy language
model losses, turned the fit into an L1 fit here: with 4 budgets two points were interpolated
exactly.) Without a noise estimate the fit is plain least squares. The form with the asymptote c
needs at least ``min_budgets_with_c`` distinct budgets (5 by default: three parameters on four
points are not identified); with fewer, the pure power law a * N^(-alpha).

A fit is IDENTIFIED only when neither the estimate nor more than ``max_bound_share`` of the
bootstrap fits sit on a bound of the parameter space (|alpha| = 3, the amplitude's limits, or c at
the smallest observed loss, where the power term vanishes). An unidentified fit prints no exponent
as a result. Beside the law, an effect size that needs no law: the least-squares change of skill
per decade of N (:func:`skill_slope`), with an interval calibrated for dependent days, and a three-
state verdict on it (:func:`decide`): "scales", "no meaningful scaling" (an equivalence test
against the sweep file's smallest effect of interest) or "inconclusive", with the minimum effect
the design detects (:func:`mde`). alpha may come out negative (error growing with size): that is
reported as it is.
"""

from __future__ import annotations

import os

import numpy as np
from scipy.optimize import least_squares

HUBER_K = 1.345  # Huber scale in noise standard deviations (95% efficiency under normal noise)
ALPHA_BOUND = 3.0  # |alpha| beyond this is not a scaling law anyone would fit
AMPLITUDE_BOUND = 30.0  # |log amplitude at the smallest N|
BOUND_TOL = 1e-3  # a parameter this close to a bound counts as sitting on it


def law(N, a, alpha, c=0.0):
    """a * N^(-alpha) + c."""
    return a * np.power(np.asarray(N, dtype=float), -alpha) + c


def noise_scale(draws) -> float | None:
    """The Huber scale for fits to these points: ``HUBER_K`` times the median over points of the
    bootstrap standard deviation of log L (``draws``: [resamples, points])."""
    d = np.asarray(draws, dtype=float)
    if d.ndim != 2 or len(d) < 2 or (d <= 0).any() or not np.isfinite(d).all():
        return None
    sd = float(np.median(np.log(d).std(0, ddof=1)))
    return HUBER_K * sd if sd > 0 else None


def fit_law(N, L, with_c: bool, scale: float | None = None) -> dict:
    """Fit the law to points (N, L), L > 0: least squares on log residuals, or a Huber loss at
    ``scale`` (see :func:`noise_scale`).

    Returns a, alpha, c, form, the fit's loss, and ``at_bound``: the parameters that ended on a
    bound (an empty list for an interior, identified optimum).
    """
    N, L = np.asarray(N, dtype=float), np.asarray(L, dtype=float)
    if len(N) < 2 or len(np.unique(N)) < 2:
        raise ValueError(f"a scaling fit needs at least 2 distinct parameter counts, got {len(N)}")
    if (L <= 0).any() or not np.isfinite(L).all():
        raise ValueError("error measure must be positive and finite")
    if with_c and len(np.unique(N)) < 4:
        raise ValueError(f"the law with an asymptote has 3 parameters; {len(np.unique(N))} "
                         f"points cannot determine it")
    x = np.log(N / N.min())  # scale-free abscissa: the amplitude is the power term at min N

    def resid(theta):
        la, alpha = theta[0], theta[1]
        c = np.exp(theta[2]) if with_c else 0.0
        return np.log(np.exp(la - alpha * x) + c) - np.log(L)

    def jac(theta):  # analytic: finite differences took a third of each fit's time
        la, alpha = theta[0], theta[1]
        power = np.exp(la - alpha * x)
        c = np.exp(theta[2]) if with_c else 0.0
        pred = power + c
        cols = [power / pred, -x * power / pred] + ([c / pred] if with_c else [])
        return np.stack(cols, axis=1)

    lo = [-AMPLITUDE_BOUND, -ALPHA_BOUND] + ([np.log(L.min()) - AMPLITUDE_BOUND] if with_c else [])
    hi = [AMPLITUDE_BOUND, ALPHA_BOUND] + ([np.log(L.min())] if with_c else [])
    best = None
    # the best point of a fine grid over (alpha, c), the amplitude in closed form for each, then
    # one bounded refinement: a flat valley no longer costs hundreds of evaluations per fit
    robust = {"loss": "huber", "f_scale": scale} if scale else {"loss": "linear"}
    for start in _grid_starts(x, L, with_c, keep=1, scale=scale):
        theta0 = np.clip(start, np.array(lo) + 1e-6, np.array(hi) - 1e-6)
        r = least_squares(resid, theta0, jac=jac, bounds=(lo, hi), max_nfev=60, **robust)
        if best is None or r.cost < best.cost:
            best = r
    la, alpha = best.x[0], best.x[1]
    c = float(np.exp(best.x[2])) if with_c else 0.0
    names = ["amplitude", "alpha"] + (["c"] if with_c else [])
    at_bound = [nm for nm, v, a, b in zip(names, best.x, lo, hi, strict=True)
                if v - a < BOUND_TOL * max(1.0, abs(a)) or b - v < BOUND_TOL * max(1.0, abs(b))]
    if with_c and "c" in at_bound and best.x[2] < np.log(L.min()) - 1:
        at_bound.remove("c")  # c -> 0 is the pure power law, an interior answer for alpha
    a = float(np.exp(la) * N.min() ** alpha)  # back to L = a * N^-alpha + c
    return {"a": a, "alpha": float(alpha), "c": c, "form": "a*N^-alpha+c" if with_c else
            "a*N^-alpha", "cost": float(best.cost), "n_points": int(len(N)),
            "at_bound": at_bound, "scale": scale, "resid": [float(v) for v in best.fun]}


def _huber(r: np.ndarray, k: float | None) -> np.ndarray:
    """Huber's loss at scale k; squares when k is None."""
    if not k:
        return 0.5 * r**2
    a = np.abs(r)
    return np.where(a <= k, 0.5 * r**2, k * (a - 0.5 * k))


def _grid_starts(x: np.ndarray, L: np.ndarray, with_c: bool, keep: int = 3,
                 scale: float | None = None) -> list[list]:
    """The ``keep`` best points of a vectorised grid over (alpha, c), the amplitude in closed
    form (weighted least squares) for each."""
    alphas = np.linspace(-ALPHA_BOUND, ALPHA_BOUND, 241)
    G = np.exp(-alphas[:, None] * x[None, :])  # G: [n_alpha, n_points]
    w = 1.0 / L**2
    cands = []
    for c in (L.min() * np.linspace(0.0, 0.995, 41) if with_c else [0.0]):
        amp = (G * (L - c) * w).sum(1) / (G**2 * w).sum(1)  # amp: [n_alpha]
        amp = np.clip(amp, 1e-12, None)
        loss = _huber(np.log(amp[:, None] * G + c) - np.log(L), scale).sum(1)
        for i in np.argsort(loss)[:keep]:
            start = [np.log(amp[i]), alphas[i]] + ([np.log(max(c, L.min() * 1e-9))] if with_c
                                                   else [])
            cands.append((loss[i], start))
    cands.sort(key=lambda t: t[0])
    return [s for _, s in cands[:keep]]


def _fit_or_none(args) -> dict | None:
    N, L, with_c, scale = args
    try:
        return fit_law(N, L, with_c, scale)
    except (ValueError, np.linalg.LinAlgError):
        return None


def available_cpus() -> int:
    """CPUs this process may run on (its affinity, not the machine's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def fit_many(N, Ls: list, with_c: bool, workers: int = 1,
             scale: float | None = None) -> list[dict | None]:
    """``fit_law`` on each resample, in ``workers`` processes when there are enough fits to pay
    for starting them (the same results as one process, in the same order)."""
    import multiprocessing as mp

    tasks = [(np.asarray(N, dtype=float), np.asarray(L, dtype=float), with_c, scale) for L in Ls]
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


def per_decade(N, L) -> float:
    """Least-squares slope of L against log10 N: the change of the measure per decade of N."""
    x = np.log10(np.asarray(N, dtype=float))
    return float(np.polyfit(x, np.asarray(L, dtype=float), 1)[0])


def bootstrap_fits(N, Ls, with_c: bool, next_N: float | None = None, grid_N=None,
                   workers: int = 1, scale: float | None = None,
                   return_fits: bool = False) -> dict:
    """Intervals from bootstrap replicates of the measure (one array of L per budget each).

    Returns alpha's 95% percentile interval over EVERY replicate's fit, the share of replicates
    whose fit sits on a bound (reported beside it, and "not identified" above
    ``max_bound_share``), the prediction at ``next_N`` and a band over ``grid_N``, and the
    per-decade slope's interval (it needs no law). Keeping only the interior fits, as this did
    before, cut off the tail where the data are least informative: with an asymptote and 5
    budgets such intervals covered the true alpha 7 times in 11 (``make calibrate`` measures it).
    """
    Ls = [np.asarray(L, dtype=float) for L in Ls
          if L is not None and np.isfinite(L).all() and (np.asarray(L) > 0).all()]
    slopes = [per_decade(N, L) for L in Ls]
    alphas, preds, curves, on_bound, ok = [], [], [], 0, 0
    fits = fit_many(N, Ls, with_c, workers, scale)
    for f in fits:
        if f is None:
            continue
        ok += 1
        on_bound += bool(f["at_bound"])
        alphas.append(f["alpha"])
        if next_N is not None:
            preds.append(law(next_N, f["a"], f["alpha"], f["c"]))
        if grid_N is not None:
            curves.append(law(grid_N, f["a"], f["alpha"], f["c"]))
    out = {"n": ok, "bound_share": on_bound / ok if ok else None,
           "alpha_ci95": [float(v) for v in np.percentile(alphas, [2.5, 97.5])] if alphas
           else [None, None],
           "per_decade_ci95": [float(v) for v in np.percentile(slopes, [2.5, 97.5])] if slopes
           else [None, None]}
    if return_fits:
        out["fits"] = [f for f in fits if f is not None]
    if preds:
        out["pred_next_ci95"] = [float(v) for v in np.percentile(preds, [2.5, 97.5])]
    if curves:
        lo, hi = np.percentile(np.asarray(curves), [2.5, 97.5], axis=0)
        out["band"] = {"N": np.asarray(grid_N).tolist(), "lo": lo.tolist(), "hi": hi.tolist()}
    return out


def identified(fit: dict, boot: dict, max_bound_share: float) -> tuple[bool, str]:
    """Whether the law's parameters are determined by these points, and why not."""
    n_par = 3 if fit.get("form") == "a*N^-alpha+c" else 2
    if fit.get("n_points", n_par + 1) <= n_par:
        return False, (f"{fit['n_points']} budgets for {n_par} parameters: the curve passes "
                       f"through every point, nothing is tested")
    if fit["at_bound"]:
        return False, f"the fit's {', '.join(fit['at_bound'])} sits on its bound"
    share = boot.get("bound_share")
    if share is None:
        return False, "no bootstrap fit succeeded"
    if share > max_bound_share:
        return False, (f"{share:.0%} of bootstrap fits sit on a bound (more than "
                       f"{max_bound_share:.0%})")
    if boot["alpha_ci95"][0] is None:
        return False, "no interval for alpha"
    return True, ""


def verdict(fit: dict, boot: dict, max_bound_share: float) -> dict:
    """The law's verdict: ``code`` (not_identified, no_evidence, scaling, inverse) and text."""
    ok, why = identified(fit, boot, max_bound_share)
    if not ok:
        return {"code": "not_identified", "identified": False,
                "text": f"not identified ({why}): these points do not determine a law, and no "
                        f"exponent is reported"}
    lo, hi = boot["alpha_ci95"]
    if lo <= 0 <= hi:
        return {"code": "no_evidence", "identified": True,
                "text": "no evidence of scaling (the 95% interval for alpha includes 0)"}
    if lo > 0:
        return {"code": "scaling", "identified": True,
                "text": "error falls with model size (alpha > 0 at 95%)"}
    return {"code": "inverse", "identified": True,
            "text": "error grows with model size (alpha < 0 at 95%): inverse scaling"}


def skill_slope(N, day_losses: np.ndarray, ref_day: np.ndarray, horizon: int,
                per_seed: np.ndarray | None = None, level: float = 0.95,
                dates: np.ndarray | None = None) -> dict:
    """The change of skill per decade of N with a calibrated interval for dependent test days.

    Skill is ``1 - L / L_ref`` (``L_ref`` a reference log loss on the same days: the training
    base rate's, or the block's own rate's for the drift-aware skill), so its least-squares slope
    against log10 N is ``-slope(L) / L_ref``, a ratio of two means over days. Its per-day
    influence values (the delta method) go to :func:`lib.analysis.stats.hac_interval`, the same
    interval whose coverage ``make calibrate`` measures for paired differences.

    Args:
        day_losses: [budgets, days] each budget's per-day log loss, mean over its seeds.
        ref_day: [days] the reference's per-day log loss.
        per_seed: the slope computed with each seed (seed k of every budget): its spread is
            added to the variance.
        dates: a panel's date per window: the influence values count by date.
    """
    from .stats import by_date, hac_interval

    x = np.log10(np.asarray(N, dtype=float))
    w = (x - x.mean()) / np.sum((x - x.mean()) ** 2)  # least-squares slope weights
    s_day = w @ np.asarray(day_losses, dtype=float)  # [days]: slope = mean over days
    ref = float(np.mean(ref_day))
    est = -float(s_day.mean()) / ref
    influence = -(s_day - (-est) * np.asarray(ref_day, dtype=float)) / ref
    out = hac_interval(by_date(influence, dates), est, horizon, per_seed, level)
    return out | {"mde80": mde(out), "ref_logloss": ref}


def mde(interval: dict, power: float = 0.8) -> float:
    """Minimum detectable effect at ``power`` for a two-sided test at the interval's level: the
    true effect that the interval excludes 0 for with that probability, (critical value +
    z_power) x standard error."""
    from scipy import stats as st

    return float((interval["critical_value"] + st.norm.ppf(power)) * interval["se"])


def decide(est: float, ci95: list, ci90: list, threshold: float,
           p_adjusted: float | None = None, alpha: float = 0.05, axis: str = "N") -> dict:
    """Three-state verdict on the change of skill per decade of N (research rule 25).

    ``no meaningful scaling`` when the 90% interval lies within +-``threshold`` (an equivalence
    test, two one-sided tests at 5%); else ``scales`` or ``falls with size`` when the 95%
    interval excludes 0 (and the family-adjusted p-value, when given, is below ``alpha``); else
    ``inconclusive``: no evidence either way, which is not evidence of no effect."""
    lo90, hi90 = ci90
    lo, hi = ci95
    if -threshold < lo90 and hi90 < threshold:
        return {"code": "no_meaningful_scaling",
                "text": f"no meaningful scaling: the 90% interval [{lo90:+.4f}, {hi90:+.4f}] lies "
                        f"within +-{threshold:g} skill per decade (equivalence test)"}
    significant = (lo > 0 or hi < 0) and (p_adjusted is None or p_adjusted < alpha)
    if significant and est > 0:
        return {"code": "scales", "text": f"scales: skill grows by {est:+.4f} per decade of {axis} "
                                          f"(95% interval [{lo:+.4f}, {hi:+.4f}] above 0)"}
    if significant:
        return {"code": "falls", "text": f"falls with size: skill changes by {est:+.4f} per "
                                         f"decade of {axis} (95% interval [{lo:+.4f}, {hi:+.4f}] "
                                         f"below 0)"}
    why = (f"excludes 0 on its own but not after the Holm correction over the horizons (adjusted "
           f"p {p_adjusted:.3f}), and does not lie within +-{threshold:g}; weak evidence of an "
           f"effect, not a finding" if lo > 0 or hi < 0 else  # clear of 0 before Holm only
           f"neither excludes 0 nor lies within +-{threshold:g}; no evidence either way, which "
           f"is not evidence of no effect")
    return {"code": "inconclusive", "text": f"inconclusive: the 95% interval [{lo:+.4f}, "
                                            f"{hi:+.4f}] {why}"}


def skill_per_decade(N, y: np.ndarray, probs: list[list[np.ndarray]], ref_rate: float,
                     horizon: int, dates: np.ndarray | None = None) -> dict:
    """The change of skill per decade of N from each budget's per-seed test probabilities, with
    its calibrated 95% and 90% intervals, p-value and minimum detectable effect (skill against a
    constant prediction of ``ref_rate``); ``probs``: per budget (in the order of ``N``), the
    list of its seeds' probabilities."""
    from .stats import day_loss

    per_cell = [[day_loss(y, p) for p in seeds] for seeds in probs]  # [budgets][seeds][days]
    ref = day_loss(y, np.full(len(y), ref_rate))
    x = np.log10(np.asarray(N, dtype=float))
    k = min(len(c) for c in per_cell)
    per_seed = np.asarray([-np.polyfit(x, [c[j].mean() for c in per_cell], 1)[0] / ref.mean()
                           for j in range(k)])
    days = np.asarray([np.mean(c, axis=0) for c in per_cell])
    t95 = skill_slope(N, days, ref, horizon, per_seed, dates=dates)
    t90 = skill_slope(N, days, ref, horizon, per_seed, level=0.90, dates=dates)
    return {"skill_per_decade": t95["estimate"], "skill_per_decade_ci95": t95["ci95"],
            "skill_per_decade_ci90": t90["ci95"], "skill_test": t95,
            "test_days": int(len(np.unique(dates)) if dates is not None else len(y))}

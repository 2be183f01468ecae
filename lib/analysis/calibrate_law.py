"""Calibration of the scaling law's exponent (research rule 24), the part of ``make calibrate``
that simulates points on a known law rather than test days.

Points lie on L = a N^-alpha (+ c) with independent log-normal noise of known size per budget; the
bootstrap replicates a fit sees are the observed points with fresh noise of the same size, which
is what resampling the test days gives. :func:`alpha_coverage` runs the fit and the interval the
report uses (:func:`lib.analysis.scaling.bootstrap_fits`) on such points and measures how often
alpha's 95% interval holds the truth, over every bootstrap fit (in use) and over the fits off the
bounds only (the rule before), and how often a fit passes through as many points as it has
parameters.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np


@dataclass(frozen=True)
class LawCase:
    """Points on a known law L = a N^-alpha + c with independent log-normal noise of sd
    ``noise`` per budget; the bootstrap replicates a fit sees are the observed points with fresh
    noise of the same size (what resampling the test days gives: replicates around the observed
    values, with the measured spread)."""

    budgets: int = 5
    with_c: bool = True
    alpha: float = 0.3
    a: float = 5.0
    c: float = 0.3
    noise: float = 0.01
    n_min: float = 1e3
    n_max: float = 1e7


LAW_SCALES = {"Huber at 1.345 x noise (in use)": "noise", "Huber delta 1e-3 (before)": 1e-3}
LAW_CASES = {
    "4 budgets, power law, 1% noise": LawCase(budgets=4, with_c=False, c=0.0),
    "5 budgets, asymptote, 4 decades, 1% noise": LawCase(),
    "5 budgets, asymptote, 2 decades, 1% noise": LawCase(a=0.5, c=0.6, n_min=1e4, n_max=1e6),
}


INTERPOLATED = 0.1  # a residual under this share of the noise sd: the fit passes through the point


def alpha_coverage(case: LawCase, repeats: int, resamples: int = 200, scale_rule="noise",
                   seed: int = 0, workers: int = 1, max_bound_share: float = 0.1) -> dict:
    """Coverage of alpha's 95% interval as :func:`lib.analysis.scaling.bootstrap_fits` builds it
    (over all bootstrap fits) and as it was built before (over the fits off the bounds only), the
    same for the repeats called identified, and how often the fit passes through as many points
    as it has parameters (an L1-like fit: those points alone decide alpha). ``scale_rule``:
    "noise" (:func:`lib.analysis.scaling.noise_scale`) or a fixed Huber delta."""
    from .scaling import bootstrap_fits, fit_law, identified, law, noise_scale

    rng = np.random.default_rng(seed)
    N = np.geomspace(case.n_min, case.n_max, case.budgets)
    true = law(N, case.a, case.alpha, case.c)
    n_par = 3 if case.with_c else 2
    hits = {"all": 0, "interior": 0, "basic": 0}
    hits_id = dict(hits)
    n_id = interp = 0
    for _ in range(repeats):
        L = true * np.exp(rng.normal(0, case.noise, len(N)))
        draws = L * np.exp(rng.normal(0, case.noise, (resamples, len(N))))
        scale = noise_scale(draws) if scale_rule == "noise" else scale_rule
        f = fit_law(N, L, case.with_c, scale)
        interp += sum(abs(r) < INTERPOLATED * case.noise for r in f["resid"]) >= n_par
        boot = bootstrap_fits(N, list(draws), case.with_c, workers=workers, scale=scale,
                              return_fits=True)
        is_id = identified(f, boot, max_bound_share)[0]
        n_id += is_id
        inner = [g["alpha"] for g in boot["fits"] if not g["at_bound"]]
        lo, hi = boot["alpha_ci95"]
        cis = {"all": boot["alpha_ci95"],  # the interval the report prints
               "interior": np.percentile(inner, [2.5, 97.5]) if inner else [None, None],
               # the basic (reflected) interval over the same fits: 2 alpha - the percentiles
               "basic": [2 * f["alpha"] - hi, 2 * f["alpha"] - lo] if lo is not None
               else [None, None]}
        for k, (lo, hi) in cis.items():
            hit = bool(lo is not None and lo <= case.alpha <= hi)
            hits[k] += hit
            hits_id[k] += hit and is_id
    out = {"law": asdict(case), "repeats": repeats, "resamples": resamples,
           "scale": scale_rule, "identified_share": n_id / repeats,
           "interpolates_points": interp / repeats}
    for k in hits:
        c = hits[k] / repeats
        out[k] = {"coverage": c, "mc_se": math.sqrt(max(c * (1 - c), 1e-9) / repeats),
                  "coverage_when_identified": hits_id[k] / n_id if n_id else None}
    return out

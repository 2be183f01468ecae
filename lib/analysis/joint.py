"""The joint scaling law in parameters and data: L(N, D) = E + A / N^alpha + B / D^beta.

Chinchilla's approach 3 (Hoffmann et al. 2022), fitted as :mod:`lib.analysis.scaling` fits the one-
factor law: log residuals, a Huber loss whose scale is tied to the points' measured noise
(:func:`lib.analysis.scaling.noise_scale`; least squares without one), the best point of a grid over
(alpha, beta, E) with the amplitudes in closed form as the start, then one bounded refinement (scipy
``least_squares``). N and D are measured: non-embedding parameters and training windows (or tokens).

Each exponent gets its own verdict. An exponent is IDENTIFIED only when neither it nor its amplitude
sits on a bound of the parameter space in the fit, and no more than ``max_bound_share`` of the
bootstrap fits put it there; a law whose data do not depend on N (A -> 0) leaves alpha undetermined,
and says so. With both exponents identified and positive, the compute-optimal split of a budget C =
6 N D follows in closed form (:func:`optimal_split`), and :func:`limited_by` says whether the
largest observed model is data-limited or size-limited: which of the two terms a decade more of N or
of D would reduce more, with the bootstrap interval of the difference.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import least_squares

from .scaling import ALPHA_BOUND, AMPLITUDE_BOUND, BOUND_TOL, _huber

NAMES = ("log_A", "log_B", "log_E", "alpha", "beta")
FLOPS_PER_PARAM_TOKEN = 6  # training FLOPs ~ 6 N D (forward + backward; Kaplan et al. 2020)


def joint_law(N, D, E, A, alpha, B, beta):
    """E + A / N^alpha + B / D^beta."""
    N, D = np.asarray(N, dtype=float), np.asarray(D, dtype=float)
    return E + A * np.power(N, -alpha) + B * np.power(D, -beta)


def _check(N, D, L) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    N, D, L = (np.asarray(v, dtype=float) for v in (N, D, L))
    if not (len(N) == len(D) == len(L)):
        raise ValueError(f"N, D and L need one value per point: {len(N)}, {len(D)}, {len(L)}")
    if len(np.unique(N)) < 2 or len(np.unique(D)) < 2:
        raise ValueError(f"a joint fit needs at least 2 distinct N and 2 distinct D, got "
                         f"{len(np.unique(N))} and {len(np.unique(D))}")
    if len(L) <= len(NAMES):
        raise ValueError(f"{len(L)} points cannot determine the {len(NAMES)} parameters of "
                         f"E + A/N^alpha + B/D^beta")
    if (L <= 0).any() or not np.isfinite(L).all() or (N <= 0).any() or (D <= 0).any():
        raise ValueError("N, D and the loss must be positive and finite")
    return N, D, L


def _starts(x, z, L, keep: int = 2, scale: float | None = None) -> list[list]:
    """The ``keep`` best points of a grid over (alpha, beta, E), the amplitudes A and B in closed
    form (least squares on relative residuals) for every pair at once."""
    grid = np.linspace(-1.0, 2.0, 31)
    gn = np.exp(-grid[:, None] * x[None, :]) / L  # [n_alpha, n_points], relative
    gd = np.exp(-grid[:, None] * z[None, :]) / L  # [n_beta, n_points]
    s_nn, s_dd, s_nd = (gn * gn).sum(1), (gd * gd).sum(1), gn @ gd.T
    det = s_nn[:, None] * s_dd[None, :] - s_nd**2  # [n_alpha, n_beta]
    det = np.where(np.abs(det) < 1e-300, 1e-300, det)
    cands = []
    for e in L.min() * np.linspace(0.0, 0.99, 12):
        y = (L - e) / L
        r_n, r_d = gn @ y, gd @ y
        amp_a = np.clip((r_n[:, None] * s_dd[None, :] - s_nd * r_d[None, :]) / det, 1e-12, None)
        amp_b = np.clip((s_nn[:, None] * r_d[None, :] - s_nd * r_n[:, None]) / det, 1e-12, None)
        pred = (amp_a[..., None] * gn[:, None, :] + amp_b[..., None] * gd[None, :, :]) * L + e
        loss = _huber(np.log(pred) - np.log(L), scale).sum(-1)  # [n_alpha, n_beta]
        for flat in np.argsort(loss, axis=None)[:keep]:
            i, j = np.unravel_index(flat, loss.shape)
            cands.append((loss[i, j], [np.log(amp_a[i, j]), np.log(amp_b[i, j]),
                                       np.log(max(e, L.min() * 1e-9)), grid[i], grid[j]]))
    cands.sort(key=lambda t: t[0])
    return [c for _, c in cands[:keep]]


def fit_joint(N, D, L, scale: float | None = None) -> dict:
    """Fit E + A/N^alpha + B/D^beta to points (N, D, L). Returns the parameters (A and B at the
    smallest observed N and D are ``A * Nmin^-alpha`` and ``B * Dmin^-beta``), the fit's loss and
    ``at_bound``: the parameters that ended on a bound."""
    N, D, L = _check(N, D, L)
    x, z = np.log(N / N.min()), np.log(D / D.min())

    def parts(th):
        return np.exp(th[0] - th[3] * x), np.exp(th[1] - th[4] * z), np.exp(th[2])

    def resid(th):
        pn, pd, e = parts(th)
        return np.log(pn + pd + e) - np.log(L)

    def jac(th):
        pn, pd, e = parts(th)
        pred = pn + pd + e
        return np.stack([pn / pred, pd / pred, np.full_like(pred, e) / pred, -x * pn / pred,
                         -z * pd / pred], axis=1)

    lm = np.log(L.min())
    lo = [-AMPLITUDE_BOUND, -AMPLITUDE_BOUND, lm - AMPLITUDE_BOUND, -ALPHA_BOUND, -ALPHA_BOUND]
    hi = [AMPLITUDE_BOUND, AMPLITUDE_BOUND, lm, ALPHA_BOUND, ALPHA_BOUND]
    best = None
    robust = {"loss": "huber", "f_scale": scale} if scale else {"loss": "linear"}
    for start in _starts(x, z, L, scale=scale):
        th0 = np.clip(start, np.array(lo) + 1e-6, np.array(hi) - 1e-6)
        r = least_squares(resid, th0, jac=jac, bounds=(lo, hi), max_nfev=200, **robust)
        if best is None or r.cost < best.cost:
            best = r
    th = best.x
    at_bound = [nm for nm, v, a, b in zip(NAMES, th, lo, hi, strict=True)
                if v - a < BOUND_TOL * max(1.0, abs(a)) or b - v < BOUND_TOL * max(1.0, abs(b))]
    if "log_E" in at_bound and th[2] < lm - 1:
        at_bound.remove("log_E")  # E -> 0: no irreducible floor, an interior answer
    alpha, beta = float(th[3]), float(th[4])
    return {"E": float(np.exp(th[2])), "A": float(np.exp(th[0]) * N.min() ** alpha),
            "alpha": alpha, "B": float(np.exp(th[1]) * D.min() ** beta), "beta": beta,
            "cost": float(best.cost), "n_points": int(len(L)), "at_bound": at_bound,
            "N_range": [float(N.min()), float(N.max())],
            "D_range": [float(D.min()), float(D.max())]}


def _fit_or_none(N, D, L, scale: float | None = None) -> dict | None:
    try:
        return fit_joint(N, D, L, scale)
    except (ValueError, np.linalg.LinAlgError):
        return None


EXPONENT_PARTS = {"alpha": ("alpha", "log_A"), "beta": ("beta", "log_B")}


def bootstrap_joint(N, D, Ls, scale: float | None = None) -> dict:
    """Fits to bootstrap replicates of the loss (one array over the points each): for each
    exponent its 95% interval over EVERY replicate's fit (keeping only the interior ones cut off
    the least informed tail, and intervals covered too little), and the share of replicates that
    put it (or its amplitude) on a bound; E's interval; the fits themselves."""
    fits = [f for f in (_fit_or_none(N, D, L, scale) for L in Ls) if f is not None]
    out = {"n": len(fits), "fits": fits}
    for name, parts in EXPONENT_PARTS.items():
        values = [f[name] for f in fits]
        on = sum(bool(set(parts) & set(f["at_bound"])) for f in fits)
        out[name] = {"ci95": [float(v) for v in np.percentile(values, [2.5, 97.5])] if values
                     else [None, None],
                     "bound_share": on / len(fits) if fits else None}
    es = [f["E"] for f in fits]
    out["E"] = {"ci95": [float(v) for v in np.percentile(es, [2.5, 97.5])] if es
                else [None, None]}
    return out


def exponent_verdicts(fit: dict, boot: dict, max_bound_share: float) -> dict:
    """Per exponent: identified or not (and why), and what its interval says."""
    out = {}
    for name, parts in EXPONENT_PARTS.items():
        ci, share = boot[name]["ci95"], boot[name]["bound_share"]
        on = set(parts) & set(fit["at_bound"])
        if on:
            why = f"the fit's {', '.join(sorted(on))} sits on its bound"
        elif share is None or ci[0] is None:
            why = "no bootstrap fit determined it"
        elif share > max_bound_share:
            why = (f"{share:.0%} of bootstrap fits put it on a bound (more than "
                   f"{max_bound_share:.0%})")
        else:
            why = ""
        if why:
            out[name] = {"identified": False, "code": "not_identified",
                         "text": f"{name} not identified ({why})"}
        elif ci[0] <= 0 <= ci[1]:
            out[name] = {"identified": True, "code": "no_evidence",
                         "text": f"{name}: no evidence of scaling (95% interval includes 0)"}
        else:
            out[name] = {"identified": True, "code": "scaling" if ci[0] > 0 else "inverse",
                         "text": f"{name} = {fit[name]:.3f} [{ci[0]:.3f}, {ci[1]:.3f}]"}
    return out


def optimal_split(fit: dict, C) -> dict:
    """The compute-optimal N and D for training compute C = 6 N D (Hoffmann et al. 2022, eq. 4):
    N = G (C/6)^(beta/(alpha+beta)), D = (C/6) / N, G = (alpha A / (beta B))^(1/(alpha+beta)).
    Needs both exponents positive."""
    a, b = fit["alpha"], fit["beta"]
    if a <= 0 or b <= 0:
        raise ValueError(f"no compute-optimal split without both exponents positive "
                         f"(alpha {a:.3f}, beta {b:.3f})")
    c6 = np.asarray(C, dtype=float) / FLOPS_PER_PARAM_TOKEN
    g = (a * fit["A"] / (b * fit["B"])) ** (1 / (a + b))
    n = g * c6 ** (b / (a + b))
    return {"N": n, "D": c6 / n, "L": joint_law(n, c6 / n, fit["E"], fit["A"], a, fit["B"], b)}


def marginal_gains(fit: dict, N: float, D: float) -> tuple[float, float]:
    """How much the loss falls for one decade more of N, and for one decade more of D, at (N, D)."""
    law = lambda n, d: joint_law(n, d, fit["E"], fit["A"], fit["alpha"], fit["B"],  # noqa: E731
                                 fit["beta"])
    base = law(N, D)
    return float(base - law(10 * N, D)), float(base - law(N, 10 * D))


def limited_by(fit: dict, boot: dict, verdicts: dict, N: float, D: float) -> dict:
    """At (N, D) (the largest observed model and data): 'data-limited' when a decade more data
    would lower the loss more than a decade more parameters with the 95% bootstrap interval of
    the difference above 0, 'size-limited' when below, 'neither (no evidence of scaling)' when
    neither exponent shows scaling, 'not identified' when an exponent that matters is not."""
    codes = {k: v["code"] for k, v in verdicts.items()}
    if "not_identified" in codes.values():
        return {"code": "not_identified", "text": "not identified: " + "; ".join(
            v["text"] for v in verdicts.values() if v["code"] == "not_identified")}
    if all(c in ("no_evidence", "inverse") for c in codes.values()):
        return {"code": "neither", "text": "neither (no evidence of scaling in N or in D)"}
    gain_n, gain_d = marginal_gains(fit, N, D)
    diffs = [np.subtract(*marginal_gains(f, N, D)[::-1]) for f in boot["fits"]]
    lo, hi = np.percentile(diffs, [2.5, 97.5]) if diffs else (None, None)
    out = {"gain_per_decade_N": gain_n, "gain_per_decade_D": gain_d,
           "diff_ci95": [None if lo is None else float(lo), None if hi is None else float(hi)]}
    if lo is not None and lo > 0:
        return dict(out, code="data_limited", text=(
            f"data-limited: a decade more data lowers the loss by {gain_d:.4f}, a decade more "
            f"parameters by {gain_n:.4f} (difference 95% interval [{lo:.4f}, {hi:.4f}])"))
    if hi is not None and hi < 0:
        return dict(out, code="size_limited", text=(
            f"size-limited: a decade more parameters lowers the loss by {gain_n:.4f}, a decade "
            f"more data by {gain_d:.4f} (difference 95% interval [{lo:.4f}, {hi:.4f}])"))
    return dict(out, code="undecided", text=(
        f"undecided: the 95% interval of (gain from data - gain from size) per decade "
        f"[{lo:.4f}, {hi:.4f}] includes 0"))

"""Calibration by simulation (research rule 24): test blocks where the truth is known, scored by
the project's own interval code, to measure what a nominal 95% interval really covers.

A simulated test block is built like a real one. Log-volatility follows an AR(1) with persistence
``vol_persistence`` (volatility clusters for months); daily log returns are ``exp(v_t) z_t``; the
label is ours, "the close rises at least ``threshold`` within ``horizon`` days", so neighbouring
labels share future days. The label's probability given today's volatility, ``q_t``, comes from
the reflection principle, ``2 (1 - Phi(log(1 + threshold) / (sigma_t sqrt(h))))``. A predictor is
``logit q_t`` plus an error that is itself an AR(1) with persistence ``error_persistence`` (a
model is wrong for weeks at a time): a model re-trained with ``seeds`` seeds shares one error
component and adds a seed's own, and a baseline has the same structure drawn once. With equal
error sizes the model and the baseline are exchangeable, so the true paired differences in AUC and
log loss are exactly 0; with ``model_error_sd`` below ``error_sd`` the model is better by an
amount measured once on a very long series (:func:`truth`).

:func:`coverage` runs an interval method on ``repeats`` such blocks and reports the share of
intervals that hold the truth, with its Monte Carlo error; ``make calibrate`` runs the full
comparison of methods (``python -m lib.analysis.calibrate``) and a fast version runs in the tests.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, replace

import numpy as np

from .simulate import SimConfig, _ar1, threshold_labels, volatility
from .stats import auc_influence, day_loss


def _labels(cfg: SimConfig, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Labels and the logit of their probability given today's volatility, burn-in included."""
    total = cfg.burn + cfg.n_days + cfg.horizon
    sigma = volatility(cfg, rng, total)
    return threshold_labels(np.cumsum(sigma * rng.standard_normal(total)), sigma, cfg)


def _predictor(cfg: SimConfig, rng: np.random.Generator, z: np.ndarray, sd: float,
               seeds: int) -> np.ndarray:
    """``seeds`` re-trainings of one predictor: logit = truth + a shared AR(1) error + each
    seed's own AR(1) error; probabilities [seeds, n]."""
    n = len(z)
    shared = _ar1(rng, n, cfg.error_persistence, sd * math.sqrt(1 - cfg.seed_share))
    own = _ar1(rng, n, cfg.error_persistence, sd * math.sqrt(cfg.seed_share), seeds)
    return 1 / (1 + np.exp(-(z + shared + own)))


def simulate(cfg: SimConfig, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray,
                                                                  np.ndarray]:
    """One test block: labels ``y`` [n], the model's per-seed probabilities [seeds, n] and the
    baseline's [n]."""
    y, z = _labels(cfg, rng)
    sd_model = cfg.error_sd if cfg.model_error_sd is None else cfg.model_error_sd
    model = _predictor(cfg, rng, z, sd_model, cfg.seeds)
    base = _predictor(cfg, rng, z, cfg.error_sd, 1)[0]
    keep = slice(cfg.burn, cfg.burn + cfg.n_days)
    return y[keep], model[:, keep], base[keep]


BUDGETS = (1e4, 3e4, 1e5, 3e5)  # the default sweep's 1.5 decades of N


def simulate_cells(cfg: SimConfig, rng: np.random.Generator, gain: float = 0.0,
                   budgets=BUDGETS) -> tuple[np.ndarray, list[np.ndarray]]:
    """One test block scored by one model per budget, each with ``cfg.seeds`` seeds: labels
    and per-budget probabilities [seeds, n]. A budget's error sd is ``error_sd`` x
    exp(-``gain`` x (log10 N - mean)): with ``gain`` 0 the budgets are exchangeable and the
    true change of skill per decade of N is exactly 0."""
    y, z = _labels(cfg, rng)
    x = np.log10(np.asarray(budgets, dtype=float))
    keep = slice(cfg.burn, cfg.burn + cfg.n_days)
    probs = [_predictor(cfg, rng, z, cfg.error_sd * math.exp(-gain * (xc - x.mean())),
                        cfg.seeds)[:, keep] for xc in x]
    return y[keep], probs


def truth(cfg: SimConfig, n_days: int = 400_000, seed: int = 12345) -> dict:
    """The population paired differences (model - baseline) in AUC and log loss: 0 for a null,
    else measured on one very long block (one seed: every seed has the same law)."""
    if cfg.model_error_sd is None or cfg.model_error_sd == cfg.error_sd:
        return {"auc": 0.0, "logloss": 0.0}
    y, model, base = simulate(replace(cfg, n_days=n_days, seeds=1), np.random.default_rng(seed))
    return {"auc": auc_influence(y, model[0])[0] - auc_influence(y, base)[0],
            "logloss": float(day_loss(y, model[0]).mean() - day_loss(y, base).mean())}


Method = Callable[[np.ndarray, np.ndarray, np.ndarray, int], dict]


def coverage(method: Method, cfg: SimConfig, repeats: int, seed: int = 0,
             level: float = 0.95) -> dict:
    """Share of ``repeats`` simulated blocks whose interval holds the true difference, per
    measure, with the Monte Carlo standard error; also the share of blocks where a null effect
    was declared (the interval excludes 0) when the truth is 0.

    Args:
        method: callable(y, model_probs [seeds, n], baseline_probs [n], horizon) ->
            {"auc": [lo, hi], "logloss": [lo, hi]}, 95% intervals of model - baseline.
    """
    true = truth(cfg)
    rng = np.random.default_rng(seed)
    hits = {k: 0 for k in true}
    excl = {k: 0 for k in true}
    widths = {k: [] for k in true}
    done = 0
    for _ in range(repeats):
        y, model, base = simulate(cfg, rng)
        if y.min() == y.max():
            continue
        ci = method(y, model, base, cfg.horizon)
        done += 1
        for k in true:
            lo, hi = ci[k]
            hits[k] += lo <= true[k] <= hi
            excl[k] += not (lo <= 0 <= hi)
            widths[k].append(hi - lo)
    out = {"config": asdict(cfg), "truth": true, "repeats": done, "level": level}
    for k in true:
        c = hits[k] / done
        out[k] = {"coverage": c, "mc_se": math.sqrt(max(c * (1 - c), 1e-9) / done),
                  "excludes_zero": excl[k] / done, "mean_width": float(np.mean(widths[k]))}
    return out


def in_use(y, model, base, horizon) -> dict:
    """The interval the final evaluation reports (:func:`lib.analysis.final.compare`)."""
    from .final import compare

    c = compare(y, list(model), base, horizon)
    return {"auc": c["auc_diff"]["ci95"], "logloss": c["logloss_diff"]["ci95"]}


def _bootstrap(y, model, base, horizon, iid: bool, resamples: int = 300) -> dict:
    """Percentile intervals of the paired differences from the hierarchical bootstrap: blocks of
    days (the method used until calibration showed it too narrow) or single days (``iid``)."""
    from ..train.metrics import fast_metrics
    from .final import interval_for
    from .stats import hierarchical, percentile_ci

    probs = list(model)
    block = 1 if iid else interval_for(y, probs, {"b": base}, horizon, resamples)["block_length"]

    def stat(yb, groups):
        m = [fast_metrics(yb, p, 0.5) for p in groups[0]]
        r = fast_metrics(yb, groups[1][0], 0.5)
        return [float(np.mean([x[k] for x in m])) - r[k] for k in ("auc", "logloss")]

    draws = hierarchical(y, [probs, [base]], stat, block, resamples, iid=iid)
    return {"auc": percentile_ci(draws[:, 0]), "logloss": percentile_ci(draws[:, 1])}


METHODS = {
    "in use: HAC, fixed-b": in_use,
    "block bootstrap, percentile (before)": lambda *a: _bootstrap(*a, iid=False),
    "i.i.d. bootstrap over days": lambda *a: _bootstrap(*a, iid=True),
}
CASES = {  # name -> configuration; the nulls have a true difference of exactly 0
    "h1 null": SimConfig(horizon=1),
    "h5 null": SimConfig(horizon=5),
    "h5 model better": SimConfig(horizon=5, model_error_sd=0.45),
    "h5 null, 3x days": SimConfig(horizon=5, n_days=1260),
}


def run(repeats: int, bootstrap_repeats: int, seed: int = 0) -> list[dict]:
    """Coverage of every method on every case (bootstrap methods on fewer repeats: they are
    about 100 times slower)."""
    rows = []
    for case, cfg in CASES.items():
        for name, method in METHODS.items():
            n = repeats if name.startswith("in use") else bootstrap_repeats
            r = coverage(method, cfg, n, seed)
            rows.append({"case": case, "method": name, **r})
            print(f"{case:18} {name:38} AUC {r['auc']['coverage']:.3f}  log loss "
                  f"{r['logloss']['coverage']:.3f}  (+-{r['logloss']['mc_se']:.3f}, {r['repeats']} "
                  f"blocks)", flush=True)
    return rows


def slope_truth(cfg: SimConfig, gain: float, n_days: int = 200_000, seed: int = 54321) -> float:
    """The true change of skill (against the block's own rate) per decade of N for ``gain``:
    0 without one, else measured on one very long block."""
    if gain == 0:
        return 0.0
    from .scaling import per_decade

    y, probs = simulate_cells(replace(cfg, n_days=n_days, seeds=1), np.random.default_rng(seed),
                              gain)
    rate = float(np.mean(y))
    ref = -float(np.mean(y * math.log(rate) + (1 - y) * math.log1p(-rate)))
    return -per_decade(BUDGETS, [day_loss(y, p[0]).mean() for p in probs]) / ref


def slope_coverage(cfg: SimConfig, gain: float, repeats: int, threshold: float = 0.01,
                   seed: int = 0) -> dict:
    """Coverage of the interval of the change of skill per decade of N that the report prints
    (:func:`lib.analysis.scaling.skill_per_decade`), and how often each verdict is reached."""
    from .scaling import decide, skill_per_decade

    true = slope_truth(cfg, gain)
    rng = np.random.default_rng(seed)
    hits, codes = 0, {}
    for _ in range(repeats):
        y, probs = simulate_cells(cfg, rng, gain)
        r = skill_per_decade(BUDGETS, y, [list(p) for p in probs], float(np.mean(y)),
                             cfg.horizon)
        lo, hi = r["skill_per_decade_ci95"]
        hits += lo <= true <= hi
        code = decide(r["skill_per_decade"], r["skill_per_decade_ci95"],
                      r["skill_per_decade_ci90"], threshold)["code"]
        codes[code] = codes.get(code, 0) + 1
    c = hits / repeats
    return {"truth": true, "gain": gain, "repeats": repeats, "coverage": c,
            "mc_se": math.sqrt(max(c * (1 - c), 1e-9) / repeats),
            "verdicts": {k: v / repeats for k, v in sorted(codes.items())}}


SLOPE_CASES = {"h1 no dependence on N": (SimConfig(horizon=1), 0.0),
               "h5 no dependence on N": (SimConfig(horizon=5), 0.0),
               "h5 larger models better": (SimConfig(horizon=5), 0.3)}


def main(argv: list[str] | None = None) -> int:
    """``make calibrate``: the coverage table, written to outputs/calibration/coverage.json."""
    import argparse
    import sys

    from ..core import paths
    from ..core.provenance import code_version, now_iso, write_json

    p = argparse.ArgumentParser(prog="python -m lib.analysis.calibrate",
                                description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=1000, help="blocks per case, interval in use")
    p.add_argument("--bootstrap-repeats", type=int, default=200,
                   help="blocks per case for the bootstrap methods")
    p.add_argument("--law-repeats", type=int, default=400,
                   help="simulated sets of points per case for alpha's interval")
    p.add_argument("--law-resamples", type=int, default=500,
                   help="bootstrap replicates per set of points (the report's are "
                        "final.bootstrap, 1000 by default; 150 undercover by about 2 points)")
    a = p.parse_args(argv)
    rows = run(a.repeats, a.bootstrap_repeats)
    slopes = []
    for case, (cfg, gain) in SLOPE_CASES.items():
        r = slope_coverage(cfg, gain, a.repeats)
        slopes.append({"case": case, **r})
        print(f"{case:26} skill per decade: truth {r['truth']:+.4f}, coverage "
              f"{r['coverage']:.3f} (+-{r['mc_se']:.3f}), verdicts {r['verdicts']}", flush=True)
    from .calibrate_panel import PANEL_CASES, panel_coverage

    panels = []
    for case, sim in PANEL_CASES.items():
        r = panel_coverage(sim, a.repeats // 2)
        panels.append({"case": case, **r})
        print(f"{case:26} panel, by date (in use): AUC {r['by date']['auc']['coverage']:.3f} "
              f"log loss {r['by date']['logloss']['coverage']:.3f}; by window: AUC "
              f"{r['by window']['auc']['coverage']:.3f} log loss "
              f"{r['by window']['logloss']['coverage']:.3f}", flush=True)
    from .calibrate_law import LAW_CASES, LAW_SCALES, alpha_coverage
    from .scaling import available_cpus

    alphas = []
    for case, law_case in LAW_CASES.items():
        # the fixed delta used before only where it did harm (4 budgets: it passed through 2)
        for name, rule in list(LAW_SCALES.items())[:1 if law_case.with_c else None]:
            r = alpha_coverage(law_case, a.law_repeats, a.law_resamples, rule,
                               workers=available_cpus())
            alphas.append({"case": case, "method": name, **r})
            for k, words in (("all", "all fits (in use)"), ("interior", "interior only (before)"),
                             ("basic", "basic (reflected)")):
                cid = r[k]["coverage_when_identified"]
                print(f"{case:42} {name:32} {words:24} alpha coverage {r[k]['coverage']:.3f} "
                      f"(+-{r[k]['mc_se']:.3f}), when identified "
                      f"{'-' if cid is None else f'{cid:.3f}'}; identified "
                      f"{r['identified_share']:.2f}; fit through {'3' if law_case.with_c else '2'}"
                      f" points {r['interpolates_points']:.2f}", flush=True)
    out = paths.OUTPUTS / "calibration" / "coverage.json"
    write_json(out, {"rows": rows, "skill_per_decade": slopes, "alpha": alphas, "panel": panels,
                     "recorded_at": now_iso(),
                     "code": code_version(), "nominal": 0.95})
    print(f"written {paths.rel(out)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

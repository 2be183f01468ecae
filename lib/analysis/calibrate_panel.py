"""Coverage of a panel's paired intervals on simulated correlated assets (``make calibrate``).

The single-series simulation of :mod:`lib.analysis.calibrate`, extended to a panel: K assets share
a market volatility path and a common return factor (correlation ``rho`` between their daily
returns), so their labels on a date move together; each predictor's logit error has a part shared
by every asset on a date (a market-wide mistake), an asset's own part, and each seed's own part,
all persistent (AR(1)). Under the null the model and the baseline have the same error law, so the
true pooled differences in AUC and log loss are 0 and an interval's coverage is the share of
blocks whose interval holds 0. The interval in use counts dates with their whole cross-section
(:func:`lib.analysis.final.compare` with ``dates``); the mutation counts windows as days.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .simulate import SimConfig, _ar1, threshold_labels, volatility


@dataclass(frozen=True)
class PanelSim:
    """One family of simulated panel test blocks."""

    base: SimConfig = SimConfig(n_days=300, horizon=5)
    assets: int = 10
    rho: float = 0.4  # correlation of the assets' daily returns (a common factor)
    shared_error: float = 0.5  # share of a predictor's error variance common to every asset


def simulate_panel(sim: PanelSim, rng: np.random.Generator):
    """Labels [K x n], the model's per-seed probabilities [seeds, K x n], the baseline's [K x n]
    and each window's date, stacked by asset."""
    cfg, k, h = sim.base, sim.assets, sim.base.horizon
    total = cfg.burn + cfg.n_days + h
    sigma = volatility(cfg, rng, total)
    common = rng.standard_normal(total)
    ys, zs = [], []
    for _ in range(k):
        eps = math.sqrt(sim.rho) * common + math.sqrt(1 - sim.rho) * rng.standard_normal(total)
        y_a, z_a = threshold_labels(np.cumsum(sigma * eps), sigma, cfg)
        ys.append(y_a)
        zs.append(z_a)
    n = total - h
    keep = slice(cfg.burn, cfg.burn + cfg.n_days)

    def predictor(seeds: int) -> np.ndarray:
        sd, phi = cfg.error_sd, cfg.error_persistence
        market = _ar1(rng, n, phi, sd * math.sqrt(sim.shared_error * (1 - cfg.seed_share)))[0]
        out = []
        for a in range(k):
            own = _ar1(rng, n, phi, sd * math.sqrt((1 - sim.shared_error)
                                                   * (1 - cfg.seed_share)))[0]
            seed = _ar1(rng, n, phi, sd * math.sqrt(cfg.seed_share), seeds)
            out.append(1 / (1 + np.exp(-(zs[a] + market + own + seed)))[:, keep])
        return np.concatenate(out, axis=1)  # [seeds, K x n_days]

    y = np.concatenate([yy[keep] for yy in ys])
    dates = np.tile(np.arange(cfg.n_days), k)
    return y, predictor(cfg.seeds), predictor(1)[0], dates


def panel_coverage(sim: PanelSim, repeats: int, seed: int = 0) -> dict:
    """Coverage of 0 (the null's truth) by the paired AUC and log-loss intervals, counted by
    date (in use) and by window (the mutation), with Monte Carlo standard errors."""
    from .final import compare

    rng = np.random.default_rng(seed)
    hits = {(m, k): 0 for m in ("by date", "by window") for k in ("auc", "logloss")}
    done = 0
    for _ in range(repeats):
        y, model, base, dates = simulate_panel(sim, rng)
        if y.min() == y.max():
            continue
        done += 1
        for m, d in (("by date", dates), ("by window", None)):
            c = compare(y, list(model), base, sim.base.horizon, d)
            for k in ("auc", "logloss"):
                lo, hi = c[f"{k}_diff"]["ci95"]
                hits[(m, k)] += lo <= 0 <= hi
    out = {"assets": sim.assets, "rho": sim.rho, "shared_error": sim.shared_error,
           "n_days": sim.base.n_days, "horizon": sim.base.horizon, "repeats": done}
    for (m, k), v in hits.items():
        c = v / done
        out.setdefault(m, {})[k] = {"coverage": c,
                                    "mc_se": math.sqrt(max(c * (1 - c), 1e-9) / done)}
    return out


PANEL_CASES = {"h5, 10 assets, rho 0.4": PanelSim(),
               "h1, 20 assets, rho 0.4": PanelSim(base=SimConfig(n_days=300, horizon=1),
                                                  assets=20)}

"""The building blocks of the simulated test blocks (:mod:`lib.analysis.calibrate` for one series,
:mod:`lib.analysis.calibrate_panel` for a panel): the family's settings and persistent noise."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats


@dataclass(frozen=True)
class SimConfig:
    """One family of simulated test blocks."""

    n_days: int = 420  # test days (the shipped data's 2017-18 test block has about 420)
    horizon: int = 5  # trading days the label looks ahead
    threshold: float = 0.01  # relative rise that makes a positive label
    daily_vol: float = 0.01  # typical daily volatility
    vol_persistence: float = 0.98  # AR(1) coefficient of log-volatility
    vol_sd: float = 0.35  # stationary sd of log-volatility
    error_persistence: float = 0.9  # AR(1) coefficient of a predictor's logit error
    error_sd: float = 0.6  # sd of the baseline's logit error (shared part + seed part)
    model_error_sd: float | None = None  # the model's; None: as the baseline's (a null)
    seed_share: float = 0.3  # share of a predictor's error variance that is its seed's own
    seeds: int = 4  # re-training seeds of the model
    burn: int = 300  # days simulated before the block, so it starts in the stationary law


def _ar1(rng: np.random.Generator, n: int, phi: float, sd: float, size: int = 1) -> np.ndarray:
    """``size`` stationary AR(1) paths of length ``n`` with marginal sd ``sd``: [size, n]."""
    out = np.empty((size, n))
    out[:, 0] = rng.normal(0, sd, size)
    innov = rng.normal(0, sd * math.sqrt(1 - phi**2), (size, n))
    for t in range(1, n):
        out[:, t] = phi * out[:, t - 1] + innov[:, t]
    return out


def _logit(p):
    return np.log(p) - np.log1p(-p)




def volatility(cfg: SimConfig, rng: np.random.Generator, total: int) -> np.ndarray:
    """Daily volatility over ``total`` days: log-volatility AR(1) around ``daily_vol``."""
    return np.exp(math.log(cfg.daily_vol) + _ar1(rng, total, cfg.vol_persistence,
                                                 cfg.vol_sd)[0])


def threshold_labels(logp: np.ndarray, sigma: np.ndarray,
                     cfg: SimConfig) -> tuple[np.ndarray, np.ndarray]:
    """Labels of a log-price path (the largest rise over the next ``horizon`` days reaches the
    threshold) and the logit of their probability given each day's volatility; the last
    ``horizon`` days have none."""
    h, total = cfg.horizon, len(logp)
    ahead = np.lib.stride_tricks.sliding_window_view(logp[1:], h)[: total - h].max(axis=1)
    y = (ahead - logp[: total - h] >= math.log1p(cfg.threshold)).astype(int)
    q = 2 * stats.norm.sf(math.log1p(cfg.threshold) / (sigma[: total - h] * math.sqrt(h)))
    return y, _logit(np.clip(q, 1e-4, 1 - 1e-4))

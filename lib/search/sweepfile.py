"""Sweep files (``params/sweeps/<name>.yaml``): read strictly and checked before anything runs.

A bad sweep file is one :class:`~lib.core.config.ConfigError` that names the file and the key, never
a failure halfway through a run: types and unknown keys (:func:`lib.core.config.from_dict`), ranges,
dates, seeds, and every budget against the feature set's number of inputs. Keys the sweep sets
itself (the architecture from each budget's grid, the window length from the split, the number of
inputs from the dataset) are refused instead of being silently ignored.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from ..core import paths
from ..core.config import NORMS, ConfigError, SplitConfig, SweepConfig, from_dict
from ..data.data_axis import validate_sizes
from ..data.features import FEATURE_SETS, columns_of
from ..data.panel import validate_panel
from ..data.splits import feature_columns
from ..model.budget import BudgetError, base_model, budget_grid, parse_budget

# model keys a sweep file may not set: the sweep sets them itself, per cell
SET_BY_SWEEP = {
    "d_model": "the architecture comes from each budget's grid: use grid.d_model",
    "n_layers": "the architecture comes from each budget's grid: use grid.n_layers",
    "n_heads": "the architecture comes from each budget's grid: use grid.n_heads",
    "d_ff": "the architecture comes from each budget's grid: use grid.ff_ratio",
    "context_len": "the window length is split.context_len",
    "n_features": "the number of inputs comes from the dataset's feature set (data.feature_set)",
}


def load_sweep(name_or_path: str | Path) -> SweepConfig:
    """Load ``params/sweeps/<name>.yaml`` (or a path) strictly; errors name the key and the file."""
    path = Path(name_or_path)
    if not path.suffix:
        path = paths.SWEEP_FILES / f"{name_or_path}.yaml"
    if not path.exists():
        have = ", ".join(sorted(p.stem for p in paths.SWEEP_FILES.glob("*.yaml")))
        raise ConfigError(f"sweep file not found: {path} (the sweeps in params/sweeps: {have})")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML: {e}") from e
    split = (data or {}).get("split") if isinstance(data, dict) else None
    if isinstance(split, dict) and "horizon" in split:
        raise ConfigError(f"{path}: split.horizon: set by the sweep for every cell from the "
                          f"top-level list `horizons`, so a value here would be ignored; remove "
                          f"it")
    try:
        cfg = from_dict(SweepConfig, data, "")
    except ConfigError as e:
        raise ConfigError(f"{path}: {e}") from None
    for key in sorted(set((data or {}).get("model") or {}) & set(SET_BY_SWEEP)):
        raise ConfigError(f"{path}: model.{key}: set by the sweep for every cell, so a value here "
                          f"would be ignored ({SET_BY_SWEEP[key]}); remove it")
    validate_sweep(cfg, path)
    return cfg


def validate_sweep(cfg: SweepConfig, where: Any = "sweep") -> None:
    """Every check that needs no data, before any study is created or any file written: a bad
    sweep file is one ``ConfigError`` naming the key, never a failure halfway through a run."""
    def bad(key: str, msg: str) -> ConfigError:
        return ConfigError(f"{where}: {key}: {msg}")

    if not cfg.budgets:
        raise bad("budgets", "at least one budget is needed")
    for b in cfg.budgets:
        try:
            parse_budget(b)
        except ValueError as e:
            raise bad("budgets", str(e)) from None
    if not cfg.horizons:
        raise bad("horizons", "at least one horizon is needed")
    for h in cfg.horizons:
        if h < 1:
            raise bad("horizons", f"horizon must be >= 1 trading day, got {h}")
    if cfg.jobs < 1:
        raise bad("jobs", f"must be >= 1 (cells run at once), got {cfg.jobs}")
    if cfg.split.fold_years < 0:
        raise bad("split.fold_years", f"must be 0 (one test block) or >= 1, got "
                  f"{cfg.split.fold_years}")
    if cfg.split.fold_years and (cfg.split.val_start is None or cfg.split.test_start is None):
        raise bad("split.fold_years", "rolling-origin folds need split.val_start and "
                  "split.test_start as dates")
    if cfg.split.fold_years and cfg.final.walk_forward_folds:
        raise bad("final.walk_forward_folds", "set 0 with split.fold_years: the folds already "
                  "evaluate every year after the validation block")
    if cfg.train.epoch_windows is not None and cfg.train.epoch_windows < 1:
        raise bad("train.epoch_windows", f"must be >= 1 windows per epoch (or null: one pass), "
                  f"got {cfg.train.epoch_windows}")
    if cfg.jobs_threads is not None and cfg.jobs_threads < 1:
        raise bad("jobs_threads", f"must be >= 1, got {cfg.jobs_threads}")
    s = cfg.search
    if s.pruner not in ("median", "hyperband", "none"):
        raise bad("search.pruner", f"must be median, hyperband or none, got {s.pruner!r}")
    if s.memory_policy not in ("drop", "fail"):
        raise bad("search.memory_policy", "must be drop or fail")
    for key in ("lr", "weight_decay", "warmup_frac", "dropout", "max_epochs"):
        rng = getattr(s, key)
        if len(rng) != 2 or rng[0] > rng[1]:
            raise bad(f"search.{key}", f"expected [low, high], got {rng}")
    for key in ("lr", "weight_decay"):  # sampled log-uniformly
        if getattr(s, key)[0] <= 0:
            raise bad(f"search.{key}", f"a log-uniform range must be positive, got "
                      f"{getattr(s, key)}")
    for key in ("warmup_frac", "dropout"):
        lo, hi = getattr(s, key)
        if lo < 0 or hi >= 1:
            raise bad(f"search.{key}", f"must lie in [0, 1), got {[lo, hi]}")
    if s.max_epochs[0] < 1:
        raise bad("search.max_epochs", f"must be >= 1, got {s.max_epochs}")
    if not s.batch_size or min(s.batch_size) < 1:
        raise bad("search.batch_size", f"needs sizes >= 1, got {s.batch_size}")
    if s.n_trials < 1:
        raise bad("search.n_trials", "must be >= 1")
    for norm in [cfg.model.norm, *s.norm, *cfg.ablation.norms]:
        if norm not in NORMS:
            raise bad("model.norm, search.norm or ablation.norms",
                      f"unknown normalisation {norm!r} (choose from {', '.join(NORMS)})")
    if cfg.train.objective not in ("val_logloss", "val_auc"):
        raise bad("train.objective", "must be val_logloss or val_auc")
    if cfg.final.seeds < 1:
        raise bad("final.seeds", "must be >= 1")
    final_seeds = range(cfg.final.first_seed, cfg.final.first_seed + cfg.final.seeds)
    if cfg.train.seed in final_seeds:
        raise bad("final.first_seed", f"the final seeds {list(final_seeds)} include the search "
                  f"seed train.seed = {cfg.train.seed}; the final evaluation must re-train with "
                  f"new seeds")
    if cfg.final.together < 0:
        raise bad("final.together", f"must be >= 0 (0: all seeds together), got "
                  f"{cfg.final.together}")
    if cfg.final.bootstrap < 10:
        raise bad("final.bootstrap", f"needs at least 10 resamples, got {cfg.final.bootstrap}")
    _validate_split(cfg.split, bad)
    a = cfg.analysis
    if a.n_axis not in ("non_embedding", "total"):
        raise bad("analysis.n_axis", "must be non_embedding or total")
    if not 0 < a.max_bound_share < 1:
        raise bad("analysis.max_bound_share", "must lie in (0, 1)")
    if a.min_budgets_with_c < 4:
        raise bad("analysis.min_budgets_with_c", "a law with an asymptote has 3 parameters and "
                  "needs at least 4 budgets (5 recommended)")
    _validate_data(cfg, bad)
    validate_sizes(cfg, bad)
    validate_panel(cfg, bad)


def _validate_split(sp: SplitConfig, bad) -> None:
    import pandas as pd

    if sp.canary not in ("none", "placebo", "leak"):
        raise bad("split.canary", "must be none, placebo or leak")
    if sp.min_price < 0:
        raise bad("split.min_price", f"must be >= 0 (0 keeps every window), got {sp.min_price}")
    if sp.context_len < 1 or sp.min_eval_windows < 1 or sp.threshold <= 0:
        raise bad("split", "context_len and min_eval_windows must be >= 1, threshold > 0")
    if sp.label not in ("threshold", "close"):
        raise bad("split.label", f"must be threshold or close, got {sp.label!r}")
    dates = {}
    for key in ("val_start", "test_start", "end", "holdout_start"):
        value = getattr(sp, key)
        if value is not None:
            try:
                dates[key] = pd.Timestamp(value)
            except ValueError:
                raise bad(f"split.{key}", f"not a date: {value!r}") from None
    if (sp.val_start is None) != (sp.test_start is None):
        raise bad("split", "give both val_start and test_start, or neither (then fractions)")
    if sp.val_start is not None:
        if not dates["val_start"] < dates["test_start"]:
            raise bad("split", f"blocks out of order: val_start {sp.val_start} must come before "
                      f"test_start {sp.test_start}")
        if "end" in dates and not dates["test_start"] < dates["end"]:
            raise bad("split", f"blocks out of order: end {sp.end} must come after test_start "
                      f"{sp.test_start}")
    elif sp.val_frac is None or sp.test_frac is None:
        raise bad("split", "give either val_start and test_start (dates) or val_frac and "
                  "test_frac")
    if "holdout_start" in dates:
        if "test_start" not in dates or not dates["test_start"] < dates["holdout_start"]:
            raise bad("split.holdout_start", f"{sp.holdout_start} must come after a test_start "
                      f"date ({sp.test_start}): the holdout block follows the test block")
        if "end" in dates and not dates["holdout_start"] < dates["end"]:
            raise bad("split.holdout_start", f"{sp.holdout_start} must come before end {sp.end}")


def _validate_data(cfg: SweepConfig, bad) -> None:
    """Data section and grids: every budget must hold at least one architecture for the
    feature set's number of inputs (found without data)."""
    d = cfg.data
    if d.source not in ("embedded", "skfolio", "yfinance", "csv"):
        raise bad("data.source", f"must be embedded, skfolio, yfinance or csv, got "
                  f"{d.source!r}")
    if d.target not in d.tickers:
        raise bad("data.target", f"'{d.target}' is not among data.tickers {d.tickers}")
    if d.feature_set not in FEATURE_SETS:
        raise bad("data.feature_set", f"unknown feature set '{d.feature_set}' (registered: "
                  f"{', '.join(FEATURE_SETS)})")
    if d.source == "csv" and not d.csv_dir:
        raise bad("data.csv_dir", "source csv needs a folder with <TICKER>.csv files")
    for fs in cfg.ablation.feature_sets:
        if fs not in FEATURE_SETS:
            raise bad("ablation.feature_sets", f"unknown feature set '{fs}' (registered: "
                      f"{', '.join(FEATURE_SETS)})")
    for fs, budgets in [(d.feature_set, cfg.budgets),
                        *[(f, cfg.ablation.budgets or cfg.budgets)
                          for f in cfg.ablation.feature_sets]]:
        n = n_inputs_of(cfg, fs)
        base = base_model(cfg, n)
        for b in budgets:
            try:
                budget_grid(b, base, cfg.grid)
            except BudgetError as e:
                raise bad("budgets", f"{e} (feature set {fs}, {n} inputs)") from None
            except ValueError as e:  # an impossible model setting (patching, heads)
                raise bad("model", str(e)) from None


def n_inputs_of(cfg: SweepConfig, feature_set: str | None = None) -> int:
    """Model inputs of a feature set (the sweep's by default), canary feature included, known
    without building the dataset."""
    d = cfg.data
    return len(feature_columns(columns_of(feature_set or d.feature_set, d.tickers, d.target),
                               cfg.split))

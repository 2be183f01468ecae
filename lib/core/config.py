"""Configuration dataclasses, one per concern (like nanoGPT's ``GPTConfig``), built strictly.

Unknown keys and wrong types are errors that name the key: papermill only warns on an unknown
parameter, so every entry point validates through :func:`from_dict`. Reading and checking a sweep
file (values, dates, budgets against the feature set) is :mod:`lib.search.sweepfile`.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from typing import Any

NORMS = ("revin", "revin_stats", "global", "none")  # input normalisations (lib/model/model.py)


class ConfigError(ValueError):
    """A parameter file or parameter set that is malformed: unknown key, wrong type, bad value."""


@dataclass
class DataConfig:
    """Where the bars come from, the target, the feature set and the dataset's name."""

    source: str = "embedded"  # embedded | skfolio (20 S&P 500 stocks' closes) | yfinance | csv
    tickers: list[str] = field(default_factory=lambda: ["^GSPC", "^IXIC"])  # tickers to fetch
    target: str = "^GSPC"  # ticker whose bars give features and labels
    feature_set: str = "a25"  # name in lib.data.features.FEATURE_SETS
    csv_dir: str | None = None  # folder with <TICKER>.csv, for source=csv
    start: str | None = None  # first date to fetch (yfinance), ISO
    end: str | None = None  # last date to fetch (yfinance), ISO
    name: str = "gspc_a25"  # processed dataset id (file name under data/processed)
    max_gap_days: int = 10  # most weekdays a series may miss between two bars: a longer gap is
    #                         an error naming its dates (windows and labels would span it)
    panel: bool = False  # every ticker is an asset of one panel: training, validation and test
    #                      windows pooled over all of them, each asset from its own dataset
    #                      (lib/data/panel.py); False: the target alone (plus a data axis' pool)


@dataclass
class DataSizeConfig:
    """One level of the data axis (``data_sizes`` in a sweep file): how much training history,
    and from which series. Validation and test blocks are the target's and never change."""

    id: str = ""  # the cell label (``d4k`` in ``100k-d4k-h1``); default from the fields below
    windows: int | None = None  # the most recent k training windows of each series; None: all
    spread: bool = False  # with windows: k windows evenly spaced over the whole training block
    #                       instead of the most recent k (the same regimes as all of it, less data)
    years: float | None = None  # only windows whose day t lies in the last k years before the
    #                            validation block; None: all
    assets: int | None = None  # a panel's first k assets (data.tickers order) train; None: all
    pool: list[str] = field(default_factory=list)  # other tickers (from data.tickers) whose
    #                                                training windows join the target's, each
    #                                                labelled from its own prices


@dataclass
class SplitConfig:
    """Labels (threshold, kind), window length, date blocks and canaries."""

    context_len: int = 80  # trading days per input window
    threshold: float = 0.01  # relative rise that makes a positive label
    label: str = "threshold"  # threshold (uses High) | close (uses Close)
    val_start: str | None = "2015-01-01"  # first day of the validation block (ISO date)
    test_start: str | None = "2017-01-01"  # first day of the test block (ISO date)
    end: str | None = None  # last day used (ISO date); None = end of data
    holdout_start: str | None = None  # first day of a holdout block after the test block (ISO
    #   date): scored exactly once, on request (make holdout), after the test evaluation
    fold_years: int = 0  # 0: one test block; k > 0: rolling origin, the test period cut into
    #   folds of k years, each scored by models trained on everything before it (final only)
    val_frac: float | None = None  # used when val_start/test_start are None: share of rows
    test_frac: float | None = None  # share of rows for the test block
    min_eval_windows: int = 250  # minimum windows in validation and in test
    min_price: float = 0.0  # windows whose day-t close is below this are left out: a price
    #   stored to 3 decimals cannot resolve a 1% rise near $0.50 (the skfolio panel)
    canary: str = "none"  # none | placebo (training and validation labels permuted) | leak
    #                       (the future label as a feature): pipeline checks only, never a study
    canary_seed: int = 0  # seed of the placebo's permutation


@dataclass
class ModelConfig:
    """The model: window, inputs, patching, size, dropout, tokenizer, input normalisation."""

    context_len: int = 80  # trading days per input window
    n_features: int = 25  # input channels
    patch_len: int = 16  # days per patch
    stride: int = 8  # days between patch starts (<= patch_len)
    d_model: int = 64  # token width
    n_layers: int = 2  # encoder blocks
    n_heads: int = 4  # attention heads (divides d_model)
    d_ff: int = 256  # feed-forward width
    dropout: float = 0.1  # on residual branches, feed-forward and head (not attention weights)
    tokenizer: str = "mixed"  # mixed (patch across all features) | independent (per channel)
    norm: str = "revin"  # input normalisation: revin (per window) | revin_stats (per window, the
    #                      window's level and scale given back as a token) | global (training-block
    #                      statistics) | none (for scale-free feature sets)


@dataclass
class TrainConfig:
    """Training settings: optimizer, schedule, batch, epochs, early stopping, device, precision."""

    lr: float = 1e-3  # peak learning rate of AdamW
    weight_decay: float = 1e-2  # AdamW decoupled weight decay
    warmup_frac: float = 0.1  # share of optimizer steps with linear warm-up, then cosine decay
    batch_size: int = 64  # samples per optimizer step
    epoch_windows: int | None = None  # windows drawn per epoch (fresh each epoch, without
    #   replacement); None: one pass. Keeps an epoch affordable at a panel's largest D
    micro_batch_size: int | None = None  # samples per forward pass, accumulated; None: batch
    max_epochs: int = 20  # upper bound on epochs
    patience: int = 5  # epochs without improvement before early stopping
    min_delta: float = 1e-4  # improvement smaller than this does not count
    objective: str = "val_logloss"  # val_logloss (minimise) | val_auc (maximise)
    grad_clip: float = 1.0  # max global gradient norm; 0 disables
    pos_weight: float | None = None  # BCEWithLogitsLoss pos_weight; None = unweighted
    device: str = "auto"  # auto (cuda, mps, cpu) | cpu | cuda | mps
    threads: int | None = None  # torch intra-op threads; None leaves torch's default
    seed: int = 0  # seeds initialisation, data order and dropout
    bf16: bool = True  # bf16 autocast, used on CUDA only
    compile: str = "off"  # torch.compile backend (inductor, aot_eager, ...); off: eager
    memory_headroom: float = 0.85  # share of free device memory the micro-batch plan may use
    progress: bool = False  # tqdm bar per epoch
    collapse_spread: float = 0.02  # p95 - p5 of probabilities below this flags a collapsed model


@dataclass
class GridConfig:
    """The architecture grid: widths, depths, heads, feed-forward ratios; budget tolerance."""

    d_model: list[int] = field(default_factory=lambda: [16, 32, 64, 128, 256, 512, 1024])
    n_layers: list[int] = field(default_factory=lambda: [1, 2, 3, 4, 6, 8])
    n_heads: list[int] = field(default_factory=lambda: [1, 2, 4, 8, 16])
    ff_ratio: list[int] = field(default_factory=lambda: [2, 4])  # d_ff = ff_ratio * d_model
    tolerance: float = 0.25  # relative distance from the budget an architecture may have
    max_candidates: int = 24  # keep at most this many per budget (closest to target first)


@dataclass
class SearchConfig:
    """The search: trials per cell, sampled ranges, pruner, retries, memory policy."""

    n_trials: int = 10  # finished trials a cell must have (re-runs top up)
    lr: list[float] = field(default_factory=lambda: [1e-4, 3e-3])  # log-uniform range
    weight_decay: list[float] = field(default_factory=lambda: [1e-4, 1e-1])  # log-uniform range
    warmup_frac: list[float] = field(default_factory=lambda: [0.0, 0.2])  # uniform range
    dropout: list[float] = field(default_factory=lambda: [0.0, 0.3])  # uniform range
    batch_size: list[int] = field(default_factory=lambda: [32, 64, 128])  # categorical
    max_epochs: list[int] = field(default_factory=lambda: [10, 30])  # integer range
    norm: list[str] = field(default_factory=list)  # input normalisations to sample; empty: the
    #                                               model section's norm, fixed
    pruner: str = "median"  # median | hyperband | none
    pruner_startup_trials: int = 3  # trials completed before the median pruner acts
    pruner_warmup_epochs: int = 2  # epochs of a trial before it may be pruned
    enqueue_extremes: bool = True  # enqueue narrowest, widest, shallowest, deepest, default first
    seed: int = 0  # TPE sampler seed
    max_retry: int = 2  # retries of trials that died (stale heartbeat)
    heartbeat_s: int = 30  # trial heartbeat interval
    memory_policy: str = "drop"  # drop | fail: architectures whose memory estimate does not fit


@dataclass
class GuardConfig:
    """Telemetry period and the thresholds at which a search pauses or stops."""

    interval_s: float = 5.0  # telemetry sampling period
    temp_warn_c: float = 85.0  # pause between trials above this CPU/GPU temperature
    temp_critical_c: float = 95.0  # stop the cell cleanly above this
    mem_floor_gb: float = 1.0  # pause while available memory is below this
    max_pause_s: float = 600.0  # give up pausing and stop the cell after this long
    min_disk_gb: float = 1.0  # pre-flight: free disk needed under outputs/


@dataclass
class FinalConfig:
    """The final evaluation: new seeds, configurations re-trained, resamples, walk-forward."""

    seeds: int = 3  # re-training seeds per selected configuration
    first_seed: int = 1000  # seeds are first_seed, first_seed + 1, ...; never the search's seed
    top_k: int = 1  # best configurations re-trained per cell
    bootstrap: int = 1000  # block-bootstrap resamples for intervals
    walk_forward_folds: int = 0  # >0 also evaluates on K walk-forward folds after validation
    together: int = 0  # seeds trained together as one stacked model: 0 = all, 1 = one at a time


@dataclass
class AnalysisConfig:
    """How the report fits laws and draws conclusions."""

    min_budgets_with_c: int = 5  # fewer budgets: the pure power law, no asymptote c
    max_bound_share: float = 0.1  # more bootstrap fits than this at a bound: "not identified"
    meaningful_skill_per_decade: float = 0.01  # smaller |change of skill per decade of N|: no
    #                                            practically meaningful scaling
    n_axis: str = "non_embedding"  # non_embedding | total: the parameter count fits use
    alpha: float = 0.05  # family-wise error rate of the conclusions (Holm over cells)


@dataclass
class AblationConfig:
    """What ``make ablation`` crosses."""

    feature_sets: list[str] = field(default_factory=list)  # feature sets crossed (make ablation)
    norms: list[str] = field(default_factory=list)  # input normalisations crossed
    budgets: list[str] = field(default_factory=list)  # budgets of the ablation; empty: budgets


@dataclass
class SweepConfig:
    """A whole sweep file: the grid of budgets (x data sizes) x horizons and every section."""

    budgets: list[str] = field(default_factory=lambda: ["100k"])  # parameter budget targets
    horizons: list[int] = field(default_factory=lambda: [1, 3, 5])  # trading days ahead
    data_sizes: list[DataSizeConfig] = field(default_factory=list)  # the data axis; empty: a
    #                                                                  two-axis sweep, all history
    data: DataConfig = field(default_factory=DataConfig)
    split: SplitConfig = field(default_factory=SplitConfig)
    model: ModelConfig = field(default_factory=ModelConfig)  # fixed parts (patching, tokenizer)
    train: TrainConfig = field(default_factory=TrainConfig)  # defaults for non-searched settings
    grid: GridConfig = field(default_factory=GridConfig)
    search: SearchConfig = field(default_factory=SearchConfig)
    guards: GuardConfig = field(default_factory=GuardConfig)
    final: FinalConfig = field(default_factory=FinalConfig)
    analysis: AnalysisConfig = field(default_factory=AnalysisConfig)
    ablation: AblationConfig = field(default_factory=AblationConfig)  # make ablation only
    jobs: int = 1  # cells run at once by make sweep (JOBS overrides)
    jobs_threads: int | None = None  # torch threads shared by parallel cells; None: all cores
    description: str = ""  # what the sweep is for


def _check(value: Any, tp: Any, where: str) -> Any:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(tp)
        if value is None and type(None) in options:
            return None
        errors = []
        for opt in options:
            if opt is type(None):
                continue
            try:
                return _check(value, opt, where)
            except ConfigError as e:
                errors.append(str(e))
        raise ConfigError(errors[0] if errors else f"{where}: must not be null")
    if origin is list:
        if not isinstance(value, list):
            raise ConfigError(f"{where}: expected a list, got {type(value).__name__} {value!r}")
        (inner,) = typing.get_args(tp)
        return [_check(v, inner, f"{where}[{i}]") for i, v in enumerate(value)]
    if dataclasses.is_dataclass(tp):
        return from_dict(tp, value, where)
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: expected true/false, got {type(value).__name__} {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: expected an integer, got {type(value).__name__} {value!r}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{where}: expected a number, got {type(value).__name__} {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where}: expected a string, got {type(value).__name__} {value!r}")
        return value
    raise ConfigError(f"{where}: unsupported type {tp}")


def from_dict(cls, data: dict[str, Any] | None, where: str = ""):
    """Build dataclass ``cls`` from ``data``; unknown keys and wrong types raise ConfigError."""
    data = {} if data is None else data
    if not isinstance(data, dict):
        raise ConfigError(f"{where or cls.__name__}: expected a mapping, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ConfigError(f"{where or cls.__name__}: unknown key '{unknown[0]}' "
                          f"(allowed: {', '.join(sorted(names))})")
    kwargs = {k: _check(v, hints[k], f"{where}.{k}" if where else k) for k, v in data.items()}
    return cls(**kwargs)


def to_dict(obj) -> dict[str, Any]:
    """A configuration as plain nested dicts (for records and provenance)."""
    return dataclasses.asdict(obj)

"""Labels, sliding windows and purged, contiguous date blocks (research rules 1, 3, 5).

Label (``threshold``): y_t = 1 when max(High[t+1..t+h]) >= Close[t] * (1 + threshold); the
``close`` variant uses Close[t+1..t+h] (the only one a close-only series has). With ``min_price``,
a window whose day-t close lies below it is left out: a price stored to 3 decimals moves in steps
of 0.001 / price, 0.2% of it at $0.50, too coarse for a 1% threshold. The horizon h is a required
argument everywhere (no default a call site could fall back on). Labels come from the dataset's raw
price columns (``raw_close``, ``raw_high``), which are never features: whatever scaling the
features get, the labels cannot change. The last h days have no label. A sample is the window of
``context_len`` days ending at t, labelled y_t. Blocks are train, then validation, then test; a
window belongs to a block only if its whole span, the h label days included, lies inside the block
(the purge), so no label span crosses a block boundary.

A sweep may declare a holdout block after the test block (``SplitConfig.holdout_start``). The
test block then ends where the holdout begins (its windows' label days stay inside it, as for every
block), and :func:`make_splits` never builds the holdout unless asked (``holdout=True``, which puts
the holdout in the place of the test block): only ``make holdout`` does, once
(:mod:`lib.run.holdout`).

Canaries (``SplitConfig.canary``), for checking the pipeline only: ``placebo`` permutes the labels
of the training and validation blocks (everything the search learns from or selects on; the test
labels stay real), so any test skill is leakage or chance; ``leak`` adds a noisy function of the
future (:func:`future_signal`, the next h days' largest rise plus noise, not the label itself),
which a working pipeline must learn. Both are recorded in the split statistics of
every record.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from ..core.config import SplitConfig

BLOCKS = ("train", "val", "test")
RAW_PREFIX = "raw_"  # raw price columns that labels are built from; never model inputs
LEAK_COLUMN = "canary_leak"
CANARIES = ("none", "placebo", "leak")


class SplitError(ValueError):
    """Too little data for the requested split, or an impossible split specification."""


def make_labels(close: np.ndarray, high: np.ndarray, *, horizon: int, threshold: float = 0.01,
                kind: str = "threshold") -> np.ndarray:
    """Binary labels (1.0/0.0) with NaN for the last ``horizon`` days; ``horizon`` is explicit."""
    if not isinstance(horizon, int | np.integer) or horizon < 1:
        raise SplitError(f"horizon must be an integer >= 1 trading day, got {horizon!r}")
    if kind not in ("threshold", "close"):
        raise SplitError(f"unknown label kind '{kind}' (threshold, close)")
    close = np.asarray(close, dtype=float)
    ref = np.asarray(high if kind == "threshold" else close, dtype=float)
    n = len(close)
    y = np.full(n, np.nan)
    if n <= horizon:
        return y
    # future[t, j] = ref[t + 1 + j], j < horizon: the h days after t
    future = np.lib.stride_tricks.sliding_window_view(ref[1:], horizon)[: n - horizon]
    y[: n - horizon] = (future.max(axis=1) >= close[: n - horizon] * (1 + threshold)).astype(float)
    return y


@dataclass
class BlockStats:
    """One block's size, positive rate and date range."""

    name: str  # train | val | test
    n_windows: int  # samples in the block
    positive_rate: float  # share of positive labels
    block_start: str  # first day of the block (ISO)
    block_end: str  # last day of the block (ISO)
    first_window_end: str | None  # t of the first sample
    last_window_end: str | None  # t of the last sample


@dataclass
class SplitStats:
    """What a split was made with (horizon, window, label, threshold) and its blocks' stats."""

    horizon: int
    context_len: int
    threshold: float
    label: str
    canary: str
    train: BlockStats
    val: BlockStats
    test: BlockStats

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class Block:
    """One block's windows, labels, window-end rows and dates."""

    X: np.ndarray  # [n_windows, context_len, n_features] float32, raw (unscaled) features
    y: np.ndarray  # [n_windows] float32 in {0, 1}
    ends: np.ndarray  # [n_windows] row index of t (the window's newest day)
    dates: pd.DatetimeIndex  # [n_windows] date of t


@dataclass
class Splits:
    """The training, validation and test blocks of one horizon, with their statistics."""

    train: Block
    val: Block
    test: Block
    stats: SplitStats
    columns: list[str]  # feature names, in channel order

    def block(self, name: str) -> Block:
        return getattr(self, name)


def block_bounds(dates: pd.DatetimeIndex, cfg: SplitConfig) -> dict[str, tuple[int, int]]:
    """Row ranges [start, end) of the train, validation and test blocks."""
    n = len(dates)
    if cfg.end is not None:
        n = int(dates.searchsorted(pd.Timestamp(cfg.end), side="right"))
    if cfg.val_start is not None and cfg.test_start is not None:
        v = int(dates.searchsorted(pd.Timestamp(cfg.val_start)))
        t = int(dates.searchsorted(pd.Timestamp(cfg.test_start)))
    elif cfg.val_frac is not None and cfg.test_frac is not None:
        vf, tf = cfg.val_frac, cfg.test_frac
        if not (0 < vf < 1 and 0 < tf < 1 and vf + tf < 1):
            raise SplitError(f"val_frac={vf}, test_frac={tf}: each must lie in (0, 1) and their "
                             f"sum below 1")
        t = n - int(round(n * cfg.test_frac))
        v = t - int(round(n * cfg.val_frac))
    else:
        raise SplitError("give either val_start and test_start (dates) or val_frac and test_frac")
    if not 0 < v < t < n:
        per_block = cfg.context_len + cfg.min_eval_windows  # plus the horizon's label days
        where = (f"validation from {cfg.val_start}, test from {cfg.test_start}"
                 if cfg.val_start is not None else
                 f"val_frac {cfg.val_frac}, test_frac {cfg.test_frac}")
        raise SplitError(
            f"the series has {len(dates)} rows ({dates[0].date()}..{dates[-1].date()}), which "
            f"the split ({where}) cuts into train {max(v, 0)}, validation {max(t - v, 0)} and "
            f"test {max(n - t, 0)} rows: every block must hold rows, and validation and test "
            f"about {per_block} each (context_len {cfg.context_len} + min_eval_windows "
            f"{cfg.min_eval_windows} + the horizon); give a longer series or other split dates")
    out = {"train": (0, v), "val": (v, t), "test": (t, n)}
    if cfg.holdout_start is not None:
        hs = int(dates.searchsorted(pd.Timestamp(cfg.holdout_start)))
        if not t < hs < n:
            raise SplitError(f"holdout_start {cfg.holdout_start} leaves no holdout block: the "
                             f"data run {dates[0].date()}..{dates[n - 1].date()} and the test "
                             f"block starts {dates[t].date()}; the holdout needs days after the "
                             f"test block (data that extend past it: your CSVs, Yahoo Finance)")
        out["test"], out["holdout"] = (t, hs), (hs, n)
    return out


def window_ends(start: int, end: int, context_len: int, horizon: int) -> np.ndarray:
    """Rows t whose window [t-context_len+1, t] and label days [t+1, t+horizon] lie in
    [start, end)."""
    first, last = start + context_len - 1, end - 1 - horizon
    return np.arange(first, last + 1) if last >= first else np.arange(0)


LEAK_NOISE = 0.5  # sd of the noise on the standardised future rise (signal sd 1)


def future_signal(df: pd.DataFrame, horizon: int, cfg: SplitConfig) -> np.ndarray:
    """The positive control's planted feature: the largest rise over the next ``horizon`` days,
    max(High or Close [t+1..t+h]) / Close[t] - 1, standardised, plus Gaussian noise of sd
    ``LEAK_NOISE`` (seeded by ``canary_seed``). A noisy function of the future, not the label: a
    pipeline must learn where the threshold cuts it, and the noise keeps it from a perfect
    score. 0 where the future is unknown (the last h days, which have no label either)."""
    close = df[f"{RAW_PREFIX}close"].to_numpy(dtype=float)
    ref = df[f"{RAW_PREFIX}{'high' if cfg.label == 'threshold' else 'close'}"].to_numpy(float)
    n = len(close)
    rise = np.zeros(n)
    if n > horizon:
        future = np.lib.stride_tricks.sliding_window_view(ref[1:], horizon)[: n - horizon]
        rise[: n - horizon] = future.max(axis=1) / close[: n - horizon] - 1
    known = rise[: max(n - horizon, 0)]
    z = (rise - known.mean()) / (known.std() or 1.0)
    z[n - horizon:] = 0.0
    noise = np.random.default_rng([cfg.canary_seed, 7]).normal(0, LEAK_NOISE, n)
    return (z + noise).astype(np.float32)


def feature_columns(columns: list[str], cfg: SplitConfig) -> list[str]:
    """Model inputs of a dataset with these columns: every column but the raw prices, plus the
    leak feature of the positive-control canary."""
    out = [c for c in columns if not c.startswith(RAW_PREFIX)]
    return out + [LEAK_COLUMN] if cfg.canary == "leak" else out


def make_splits(df: pd.DataFrame, cfg: SplitConfig, *, horizon: int,
                columns: list[str] | None = None, holdout: bool = False) -> Splits:
    """Windows and labels for the three blocks of ``df`` (features and raw prices by date).

    Args:
        horizon: trading days the label looks ahead; required (research rule 1).
        columns: feature columns in channel order (default: every non-raw column).
        holdout: put the sweep's holdout block in the place of the test block (its statistics
            are named "holdout"); only the holdout stage asks for it.
    """
    h = horizon
    if f"{RAW_PREFIX}close" not in df:
        raise SplitError(f"dataset lacks the raw price column {RAW_PREFIX}close that labels are "
                         f"built from (a dataset written by an older version): rebuild it with "
                         f"`make data`")
    if cfg.label == "threshold" and f"{RAW_PREFIX}high" not in df:
        raise SplitError(f"label 'threshold' needs the day's High ({RAW_PREFIX}high), which a "
                         f"close-only dataset lacks: use split.label: close")
    if cfg.context_len < 1:
        raise SplitError(f"context_len must be >= 1, got {cfg.context_len}")
    if cfg.canary not in CANARIES:
        raise SplitError(f"unknown canary '{cfg.canary}' ({', '.join(CANARIES)})")
    close = df[f"{RAW_PREFIX}close"].to_numpy(dtype=float)
    y_all = make_labels(close, df[f"{RAW_PREFIX}high"].to_numpy() if cfg.label == "threshold"
                        else close, horizon=h, threshold=cfg.threshold, kind=cfg.label)
    columns = [c for c in feature_columns(list(df.columns), cfg) if c != LEAK_COLUMN] \
        if columns is None else [c for c in columns if c != LEAK_COLUMN]
    values = df[columns].to_numpy(dtype=np.float32)
    if not np.isfinite(values).all():
        bad = [c for c in columns if not np.isfinite(df[c].to_numpy(dtype=float)).all()]
        raise SplitError(f"features contain NaN or infinite values (columns {bad[:5]})")
    if cfg.canary == "leak":  # the positive control: day t carries a noisy view of its future
        values = np.column_stack([values, future_signal(df, h, cfg)])
        columns = columns + [LEAK_COLUMN]
    dates = pd.DatetimeIndex(df.index)
    bounds = block_bounds(dates, cfg)
    if holdout:
        if "holdout" not in bounds:
            raise SplitError("this sweep declares no holdout block (split.holdout_start)")
        bounds["test"] = bounds["holdout"]
    # views: windows[i] = values[i : i + context_len]  -> [n - L + 1, L, C]
    windows = np.lib.stride_tricks.sliding_window_view(values, cfg.context_len, axis=0)
    windows = windows.transpose(0, 2, 1)
    blocks, stats = {}, {}
    for name in BLOCKS:
        s, e = bounds[name]
        ends = window_ends(s, e, cfg.context_len, h)
        if cfg.min_price > 0:  # too coarse a price to resolve the threshold (min_price)
            ends = ends[close[ends] >= cfg.min_price]
        y = y_all[ends]
        assert not np.isnan(y).any(), "a window's label reaches past the data"
        need = cfg.min_eval_windows
        if len(ends) < need:
            label = {"train": "training", "val": "validation",
                     "test": "holdout" if holdout else "test"}[name]
            raise SplitError(
                f"{label} block {dates[s].date()}..{dates[e - 1].date()} has {len(ends)} windows "
                f"for context_len={cfg.context_len}, horizon={h}; needs at least {need} "
                f"(min_eval_windows): {need - len(ends)} missing")
        if name != "test" and cfg.canary == "placebo":  # the placebo: nothing to learn
            y = np.random.default_rng([cfg.canary_seed, BLOCKS.index(name)]).permutation(y)
        blocks[name] = Block(X=np.ascontiguousarray(windows[ends - cfg.context_len + 1]),
                             y=y.astype(np.float32), ends=ends, dates=dates[ends])
        stats[name] = BlockStats(
            name="holdout" if holdout and name == "test" else name, n_windows=len(ends),
            positive_rate=float(y.mean()),
            block_start=str(dates[s].date()), block_end=str(dates[e - 1].date()),
            first_window_end=str(dates[ends[0]].date()),
            last_window_end=str(dates[ends[-1]].date()))
    split_stats = SplitStats(horizon=h, context_len=cfg.context_len, threshold=cfg.threshold,
                             label=cfg.label, canary=cfg.canary, **stats)
    return Splits(**blocks, stats=split_stats, columns=columns)


def walk_forward(df: pd.DataFrame, cfg: SplitConfig, folds: int, *, horizon: int,
                 eval_rows: int | None = None):
    """Yield ``folds`` successive (train, val, test) Splits with an expanding training block,
    whose test blocks all lie AFTER the main validation block (the one used for selection): a fold
    never tests on days that chose the configuration. A fold's own validation block (early
    stopping only) is the ``eval_rows`` rows before its test block.

    Each fold's blocks have ``eval_rows`` rows (default: just enough for ``min_eval_windows``
    windows); fold k's test block ends where fold k+1's begins, so test blocks never overlap. Too
    few rows after the validation block is an error saying how many are needed.
    """
    from dataclasses import replace

    h = horizon
    rows = eval_rows or cfg.min_eval_windows + cfg.context_len - 1 + h
    dates = pd.DatetimeIndex(df.index)
    main = block_bounds(dates, cfg)
    first, n = main["test"][0], main["test"][1]  # first row after the main validation block
    need = folds * rows
    if folds < 1 or n - first < need:
        raise SplitError(f"walk-forward with {folds} fold(s) of {rows} rows needs {need} rows "
                         f"after the validation block (from {dates[first].date()}) for the folds' "
                         f"test blocks; the data has {n - first}")
    for k in range(folds):
        test_end = n - (folds - 1 - k) * rows
        test_start, val_start = test_end - rows, test_end - 2 * rows
        fold_cfg = replace(cfg, val_start=str(dates[val_start].date()),
                           test_start=str(dates[test_start].date()),
                           end=str(dates[test_end - 1].date()), val_frac=None, test_frac=None)
        yield make_splits(df, fold_cfg, horizon=h)


def test_folds(df: pd.DataFrame, cfg: SplitConfig, *, horizon: int) -> list[Splits]:
    """Rolling-origin evaluation: the test period (``test_start`` to the end, or to the holdout)
    cut into consecutive folds of ``fold_years`` years (the last absorbs a remainder shorter than
    a fold). Fold k tests on its own years with models trained on every day before its early-
    stopping block, which is the ``test_start - val_start`` span just before the fold (for the
    first fold the search's own validation block). Every fold's test days lie after the
    search's validation block, so none of them chose the configuration; test blocks never
    overlap, and each block keeps the usual purge (a window's context and label days inside it).
    """
    from dataclasses import replace

    if cfg.fold_years < 1:
        raise SplitError(f"fold_years must be >= 1 for rolling-origin folds, got {cfg.fold_years}")
    if cfg.val_start is None or cfg.test_start is None:
        raise SplitError("rolling-origin folds need val_start and test_start as dates")
    dates = pd.DatetimeIndex(df.index)
    t, n = block_bounds(dates, cfg)["test"]
    first, last = pd.Timestamp(cfg.test_start), dates[n - 1]
    starts = [first]
    while starts[-1] + pd.DateOffset(years=2 * cfg.fold_years) <= last + pd.Timedelta(days=1):
        starts.append(starts[-1] + pd.DateOffset(years=cfg.fold_years))
    folds = []
    for k, start in enumerate(starts):
        end = starts[k + 1] - pd.Timedelta(days=1) if k + 1 < len(starts) else last
        val_start = pd.Timestamp(cfg.val_start) + pd.DateOffset(years=k * cfg.fold_years)
        fold = replace(cfg, val_start=str(val_start.date()), test_start=str(start.date()),
                       end=str(end.date()), holdout_start=None, fold_years=0)
        try:
            folds.append(make_splits(df, fold, horizon=horizon))
        except SplitError as e:
            raise SplitError(f"rolling-origin fold {k + 1} ({start.date()}..{end.date()}): {e}") \
                from None
    return folds


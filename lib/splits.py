"""Labels, sliding windows and purged, contiguous date blocks (SCIENCE rules 1, 3, 5).

Label (``threshold``): y_t = 1 when max(High[t+1..t+h]) >= Close[t] * (1 + threshold); the ``close``
variant uses Close[t+1..t+h]. Labels come from raw prices, before any scaling; the last h days have
no label. A sample is the window of ``context_len`` days ending at t, labelled y_t. Blocks are
train, then validation, then test; a window belongs to a block only if its whole span, the h label
days included, lies inside the block (the purge), so no label span crosses a block boundary.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from .config import SplitConfig

BLOCKS = ("train", "val", "test")


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
    name: str  # train | val | test
    n_windows: int  # samples in the block
    positive_rate: float  # share of positive labels
    block_start: str  # first day of the block (ISO)
    block_end: str  # last day of the block (ISO)
    first_window_end: str | None  # t of the first sample
    last_window_end: str | None  # t of the last sample


@dataclass
class SplitStats:
    horizon: int
    context_len: int
    threshold: float
    label: str
    train: BlockStats
    val: BlockStats
    test: BlockStats

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class Block:
    X: np.ndarray  # [n_windows, context_len, n_features] float32, raw (unscaled) features
    y: np.ndarray  # [n_windows] float32 in {0, 1}
    ends: np.ndarray  # [n_windows] row index of t (the window's newest day)
    dates: pd.DatetimeIndex  # [n_windows] date of t


@dataclass
class Splits:
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
        raise SplitError(f"blocks out of order or empty: train rows [0, {v}), validation "
                         f"[{v}, {t}), test [{t}, {n}) of {len(dates)} rows "
                         f"({dates[0].date()}..{dates[-1].date()})")
    return {"train": (0, v), "val": (v, t), "test": (t, n)}


def window_ends(start: int, end: int, context_len: int, horizon: int) -> np.ndarray:
    """Rows t whose window [t-context_len+1, t] and label days [t+1, t+horizon] lie in
    [start, end)."""
    first, last = start + context_len - 1, end - 1 - horizon
    return np.arange(first, last + 1) if last >= first else np.arange(0)


def make_splits(df: pd.DataFrame, cfg: SplitConfig, *, horizon: int | None = None,
                columns: list[str] | None = None) -> Splits:
    """Windows and labels for the three blocks of ``df`` (features indexed by date, raw prices).

    ``horizon`` overrides ``cfg.horizon`` explicitly (a sweep cell passes its own).
    """
    h = cfg.horizon if horizon is None else horizon
    missing = [c for c in ("close", "high") if c not in df.columns]
    if missing:
        raise SplitError(f"dataset lacks raw price column(s) {missing} needed for labels")
    if cfg.context_len < 1:
        raise SplitError(f"context_len must be >= 1, got {cfg.context_len}")
    y_all = make_labels(df["close"].to_numpy(), df["high"].to_numpy(), horizon=h,
                        threshold=cfg.threshold, kind=cfg.label)
    columns = list(df.columns) if columns is None else columns
    values = df[columns].to_numpy(dtype=np.float32)
    if not np.isfinite(values).all():
        raise SplitError("features contain NaN or infinite values")
    dates = pd.DatetimeIndex(df.index)
    bounds = block_bounds(dates, cfg)
    # views: windows[i] = values[i : i + context_len]  -> [n - L + 1, L, C]
    windows = np.lib.stride_tricks.sliding_window_view(values, cfg.context_len, axis=0)
    windows = windows.transpose(0, 2, 1)
    blocks, stats = {}, {}
    for name in BLOCKS:
        s, e = bounds[name]
        ends = window_ends(s, e, cfg.context_len, h)
        y = y_all[ends]
        assert not np.isnan(y).any(), "a window's label reaches past the data"
        need = cfg.min_eval_windows
        if len(ends) < need:
            label = {"train": "training", "val": "validation", "test": "test"}[name]
            raise SplitError(
                f"{label} block {dates[s].date()}..{dates[e - 1].date()} has {len(ends)} windows "
                f"for context_len={cfg.context_len}, horizon={h}; needs at least {need} "
                f"(min_eval_windows): {need - len(ends)} missing")
        blocks[name] = Block(X=np.ascontiguousarray(windows[ends - cfg.context_len + 1]),
                             y=y.astype(np.float32), ends=ends, dates=dates[ends])
        stats[name] = BlockStats(
            name=name, n_windows=len(ends), positive_rate=float(y.mean()),
            block_start=str(dates[s].date()), block_end=str(dates[e - 1].date()),
            first_window_end=str(dates[ends[0]].date()),
            last_window_end=str(dates[ends[-1]].date()))
    split_stats = SplitStats(horizon=h, context_len=cfg.context_len, threshold=cfg.threshold,
                             label=cfg.label, **stats)
    return Splits(**blocks, stats=split_stats, columns=columns)


def walk_forward(df: pd.DataFrame, cfg: SplitConfig, folds: int, *, horizon: int | None = None,
                 eval_rows: int | None = None):
    """Yield ``folds`` successive (train, val, test) Splits with an expanding training block.

    Each evaluation block has ``eval_rows`` rows (default: just enough for ``min_eval_windows``
    windows); fold k's test block ends where fold k+1's begins, so test blocks never overlap.
    """
    from dataclasses import replace

    h = cfg.horizon if horizon is None else horizon
    rows = eval_rows or cfg.min_eval_windows + cfg.context_len - 1 + h
    dates = pd.DatetimeIndex(df.index)
    n = len(dates)
    if n - (folds + 1) * rows < rows:
        raise SplitError(f"walk-forward with {folds} folds of {rows} rows needs at least "
                         f"{(folds + 2) * rows} rows; the data has {n}")
    for k in range(folds):
        test_end = n - (folds - 1 - k) * rows
        test_start, val_start = test_end - rows, test_end - 2 * rows
        fold_cfg = replace(cfg, val_start=str(dates[val_start].date()),
                           test_start=str(dates[test_start].date()),
                           end=str(dates[test_end - 1].date()), val_frac=None, test_frac=None)
        yield make_splits(df, fold_cfg, horizon=h)

"""The data axis of a sweep: how much training data a cell gets, and from which series.

A sweep file's ``data_sizes`` lists levels of training data D besides its budgets and horizons;
each level is a :class:`~lib.core.config.DataSizeConfig` and names the cells it makes
(``100k-d1k-h1``). Two real ways to vary D, which combine:

- **history length**: only the most recent ``windows`` training windows of each series, or only
  the windows whose day t lies in the last ``years`` years before the validation block; with
  ``spread``, ``windows`` windows evenly spaced over the whole training block instead, which
  separates the amount of data from the regime a recent history comes from;
- **pooled series**: the training windows of the tickers in ``pool`` join the target's. Each pooled
  ticker has a dataset of its own (``<data.name>_<ticker>``, built by the data notebook with that
  ticker as target), so its features are computed from its own bars and its labels from its own
  prices. Its training block ends where the TARGET's validation block begins, purged as every
  block is (a pooled window's label days end before the target's validation block): nothing of
  the validation or test period reaches training through a correlated series.

The validation and test blocks are always the target's, whatever the level: every cell of a
horizon is scored on the same days, so their losses can be compared and fitted jointly. A level
asking for more windows than a series has is an error that says how many it has (a cell never
trains on less data than its name says). The records hold D in windows and in tokens, per ticker
(``split.data`` in every trial record and final evaluation).

Equal optimisation for every level: an epoch of a level smaller than the target's whole history is
``passes_per_epoch`` = round(whole / level) passes over its windows, shuffled together, so that the
search's epoch range, patience and pruner give every level about as many optimizer steps. Without
it the smallest level would also be the least trained, and a data effect would be an
optimisation effect.

Kept apart from :mod:`lib.data.splits`, whose source is part of every dataset's identity.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from ..core.config import DataConfig, DataSizeConfig, SweepConfig
from ..model.budget import base_model, fmt_count
from ..model.model import window_tokens
from . import dataset as ds
from .splits import Block, BlockStats, SplitError, Splits, SplitStats, make_splits

ID_PATTERN = re.compile(r"^d[A-Za-z0-9.]+$")


def size_id(size: DataSizeConfig) -> str:
    """The level's cell label: its own ``id``, else ``d<windows>`` (``d1k``; ``d1ks`` spread),
    ``d<years>y`` (``d4y``) or ``dall``, with ``x<series>`` appended when tickers are pooled
    (``dallx2``), and ``a<k>`` when a panel's level keeps k assets (``d3ya1``)."""
    if size.id:
        return size.id
    if size.windows is not None:
        base = f"d{fmt_count(size.windows)}" + ("s" if size.spread else "")
    elif size.years is not None:
        base = f"d{size.years:g}y"
    else:
        base = "dall"
    return base + (f"x{1 + len(size.pool)}" if size.pool else "") + \
        (f"a{size.assets}" if size.assets else "")


def slug(ticker: str) -> str:
    """A ticker as a file-name part: ``^IXIC`` -> ``ixic``."""
    return re.sub(r"[^a-z0-9]+", "", ticker.lower()) or "ticker"


def pool_config(data: DataConfig, ticker: str) -> DataConfig:
    """The dataset of a pooled ``ticker``: the sweep's data section with that ticker as target,
    named ``<data.name>_<ticker>``."""
    return replace(data, target=ticker, name=f"{data.name}_{slug(ticker)}")


def pooled_tickers(cfg: SweepConfig) -> list[str]:
    """Every ticker some level pools, in first-seen order."""
    out: list[str] = []
    for s in cfg.data_sizes:
        out += [t for t in s.pool if t not in out]
    return out


def validate_sizes(cfg: SweepConfig, bad) -> None:
    """Checks that need no data: ids readable and unique, positive sizes, pooled tickers among
    ``data.tickers`` and not the target, no walk-forward folds (they use the whole history)."""
    seen: dict[str, int] = {}
    for i, s in enumerate(cfg.data_sizes):
        key = f"data_sizes[{i}]"
        # sizes before ids: a negative size would otherwise read as a malformed id
        if s.windows is not None and s.windows < 1:
            raise bad(f"{key}.windows", f"must be >= 1 training windows, got {s.windows}")
        if s.years is not None and s.years <= 0:
            raise bad(f"{key}.years", f"must be > 0, got {s.years}")
        sid = size_id(s)
        if not ID_PATTERN.match(sid):
            raise bad(f"{key}.id", f"{sid!r}: a data size id starts with 'd' followed by letters, "
                      f"digits or '.' (it is part of the cell name, e.g. 100k-d1k-h1)")
        if sid in seen:
            raise bad(f"{key}.id", f"{sid!r} is also data_sizes[{seen[sid]}]'s id; give each "
                      f"level its own id")
        seen[sid] = i
        if s.spread and s.windows is None:
            raise bad(f"{key}.spread", "spreads `windows` windows over the training block; give "
                      "windows too")
        for t in s.pool:
            if t == cfg.data.target:
                raise bad(f"{key}.pool", f"'{t}' is the target; pool other tickers")
            if t not in cfg.data.tickers:
                raise bad(f"{key}.pool", f"'{t}' is not among data.tickers {cfg.data.tickers}")
        if len(set(s.pool)) != len(s.pool):
            raise bad(f"{key}.pool", f"a ticker is listed twice: {s.pool}")
    if cfg.data_sizes and cfg.split.fold_years > 0:
        raise bad("split.fold_years", "rolling-origin folds train each fold on everything before "
                  "it and cannot honour a data axis; set 0 in a sweep with data_sizes")
    if cfg.data_sizes and cfg.final.walk_forward_folds > 0:
        raise bad("final.walk_forward_folds", "walk-forward folds train on the whole history and "
                  "cannot honour a data axis; set 0 in a sweep with data_sizes")


def size_of(cfg: SweepConfig, data_id: str) -> DataSizeConfig:
    """The level named ``data_id``; a SplitError listing the sweep's levels when there is none."""
    for s in cfg.data_sizes:
        if size_id(s) == data_id:
            return s
    raise SplitError(f"data size '{data_id}' is not in the sweep's data_sizes "
                     f"({', '.join(size_id(s) for s in cfg.data_sizes) or 'none'})")


@dataclass
class AxisSplitStats(SplitStats):
    """Split statistics with the data level: D in windows and tokens, per ticker."""

    data: dict = field(default_factory=dict)


@dataclass
class AxisSplits(Splits):
    """Splits whose training block is a data level's. ``train_parts`` says where each training
    window comes from: (ticker, that ticker's dataset frame, row index of each window's day t in
    it), in the order the windows are stacked; the baselines read their features from there."""

    train_parts: list = field(default_factory=list)


def _keep(block: Block, size: DataSizeConfig, val_start: pd.Timestamp, ticker: str,
          data_id: str, horizon: int) -> np.ndarray:
    """Indices of the block's windows that the level keeps (the most recent ones)."""
    idx = np.arange(len(block.y))
    if size.years is not None:
        cutoff = val_start - pd.DateOffset(days=int(round(365.25 * size.years)))
        if len(block.dates) and cutoff < block.dates.min() - pd.DateOffset(days=7):
            span = (val_start - block.dates.min()).days / 365.25
            raise SplitError(f"data size '{data_id}' asks for the last {size.years:g} years of "
                             f"{ticker}'s training block, which holds {span:.1f} (from "
                             f"{block.dates.min().date()}): lower data_sizes.years, or leave it "
                             f"out to use the whole history")
        idx = idx[np.asarray(block.dates > cutoff)]
    if size.windows is not None:
        if len(idx) < size.windows:
            raise SplitError(f"data size '{data_id}' asks for {size.windows} training windows of "
                             f"{ticker} at horizon {horizon}; its training block has "
                             f"{len(idx)}: lower data_sizes.windows or pool more series")
        if size.spread:  # evenly spaced over the block: every regime, fewer windows
            idx = idx[np.unique(np.round(np.linspace(0, len(idx) - 1, size.windows)).astype(int))]
        else:
            idx = idx[len(idx) - size.windows:]
    if not len(idx):
        raise SplitError(f"data size '{data_id}' leaves no training window of {ticker}")
    classes = np.unique(block.y[idx])
    if len(classes) < 2:
        raise SplitError(f"data size '{data_id}' leaves {len(idx)} training window(s) of {ticker} "
                         f"at horizon {horizon}, all labelled {int(classes[0])}: training and the "
                         f"baselines need both classes; give the level more windows or years")
    return idx


def _take(block: Block, idx: np.ndarray) -> Block:
    return Block(X=block.X[idx], y=block.y[idx], ends=block.ends[idx], dates=block.dates[idx])


def pooled_block(cfg: SweepConfig, ticker: str, target: Splits, horizon: int) -> tuple:
    """A pooled ticker's training block, cut at the TARGET's validation start (and purged there):
    (frame, block). Its own labels, its own features."""
    pdf, _ = ds.load_dataset(pool_config(cfg.data, ticker).name)
    st = target.stats
    pcfg = replace(cfg.split, val_start=st.val.block_start, test_start=st.test.block_start,
                   end=st.test.block_end, val_frac=None, test_frac=None, min_eval_windows=1)
    try:
        sp = make_splits(pdf, pcfg, horizon=horizon)
    except SplitError as e:
        raise SplitError(f"pooled ticker {ticker}: {e}") from None
    if sp.columns != target.columns:
        raise SplitError(f"pooled ticker {ticker}: its features {sp.columns[:3]}... differ from "
                         f"the target's {target.columns[:3]}...")
    return pdf, sp.train


def apply_size(cfg: SweepConfig, df: pd.DataFrame, splits: Splits, data_id: str) -> AxisSplits:
    """``splits`` (the target's, whole history) with the training block of level ``data_id``;
    validation and test are untouched."""
    size = size_of(cfg, data_id)
    h = splits.stats.horizon
    val_start = pd.Timestamp(splits.stats.val.block_start)
    parts = [(cfg.data.target, df, splits.train)]
    parts += [(t, *pooled_block(cfg, t, splits, h)) for t in size.pool]
    kept = []
    for ticker, frame, block in parts:
        kept.append((ticker, frame, _take(block, _keep(block, size, val_start, ticker, data_id,
                                                        h))))
    blocks = [b for _, _, b in kept]
    train = Block(X=np.concatenate([b.X for b in blocks]), y=np.concatenate([b.y for b in blocks]),
                  ends=np.concatenate([b.ends for b in blocks]),
                  dates=pd.DatetimeIndex(np.concatenate([b.dates.values for b in blocks])))
    s0 = splits.stats.train
    n = len(train.y)
    tstats = BlockStats(name="train", n_windows=n, positive_rate=float(train.y.mean()),
                        block_start=s0.block_start, block_end=s0.block_end,
                        first_window_end=str(train.dates.min().date()),
                        last_window_end=str(train.dates.max().date()))
    # a smaller level's epoch is several passes over its windows (reshuffled as one set), so
    # that every level's epoch sees about as many windows as the whole history's: the search's
    # epoch range, patience and pruner then give each level as many optimizer steps, and a small
    # level is not also an under-trained one
    passes = max(1, int(round(len(splits.train.y) / n)))
    per_window = window_tokens(base_model(cfg, len(splits.columns)))
    data = {"id": data_id, "windows": n, "passes_per_epoch": passes,
            "tokens": n * per_window, "tokens_per_window": per_window,
            "tickers": {t: int(len(b.y)) for t, _, b in kept},
            "positive_rate": {t: float(b.y.mean()) for t, _, b in kept},
            "history": {"windows": size.windows, "years": size.years,
                        "spread": size.spread},
            "pooled": list(size.pool), "target": cfg.data.target}
    stats = AxisSplitStats(**{k: getattr(splits.stats, k) for k in
                              ("horizon", "context_len", "threshold", "label", "canary", "val",
                               "test")}, train=tstats, data=data)
    return AxisSplits(train=train, val=splits.val, test=splits.test, stats=stats,
                      columns=splits.columns,
                      train_parts=[(t, f, b.ends) for t, f, b in kept] if size.pool else [])

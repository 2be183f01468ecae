"""A panel of assets: training, validation and test windows pooled over many series at once.

With ``data.panel: true`` every ticker of ``data.tickers`` is an asset. Each asset has a dataset
of its own (the target's is ``data.name``, the others ``<data.name>_<ticker>``, as a pooled
ticker's), so its features come from its own bars and its labels from its own prices; every asset
is split on the same dates (the sweep's ``split`` section), each block purged as always.

Per-asset statistics: each asset's inputs are standardised with the mean and standard deviation
of the last day of its own training windows, so no statistic mixes assets and none reads a day
after the asset's training block (``tests/data/test_panel.py`` plants a future and another
asset's values and checks both change nothing). A data level (``data_sizes``) keeps the first
``assets`` assets' training windows, each cut to its last ``years`` years or ``windows`` windows
as on the single-series axis; validation and test are always every asset's, so every cell of a
horizon is scored on the same windows. An epoch is ``train.epoch_windows`` windows drawn afresh
(a small level's windows repeated until it has that many), so every level gets as many
optimizer steps and the largest stays affordable.

Evaluation is pooled over assets and per asset; intervals treat a date with its whole
cross-section as the unit (:func:`lib.analysis.stats.by_date`), so correlation between assets on
a day is kept. Windows are materialised once per cell (not per trial): float32
[windows, context_len, features], about 0.5 GB for 20 assets x 30 years x 64 days x 17 features.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from ..core.config import DataConfig, DataSizeConfig, SweepConfig
from ..model.budget import base_model
from ..model.model import window_tokens
from . import dataset as ds
from .splits import BLOCKS, Block, BlockStats, SplitError, Splits, make_splits


@dataclass
class PanelSplits(Splits):
    """Splits whose blocks stack the windows of several assets: ``assets[block]`` is each
    window's asset (an index into ``names``); ``data`` describes the panel and its data level."""

    assets: dict = field(default_factory=dict)
    names: list = field(default_factory=list)


def asset_config(data: DataConfig, ticker: str) -> DataConfig:
    """One asset's dataset: the target's is ``data.name``, another's ``<data.name>_<ticker>``."""
    if ticker == data.target:
        return data
    from .data_axis import pool_config

    return pool_config(data, ticker)


def asset_frames(cfg: SweepConfig) -> dict[str, pd.DataFrame]:
    """Every asset's verified dataset frame, in ``data.tickers`` order."""
    return {t: ds.load_dataset(asset_config(cfg.data, t).name)[0] for t in cfg.data.tickers}


def _take(block: Block, idx: np.ndarray) -> Block:
    return Block(X=block.X[idx], y=block.y[idx], ends=block.ends[idx], dates=block.dates[idx])


def _stack(blocks: list[Block]) -> Block:
    return Block(X=np.concatenate([b.X for b in blocks]), y=np.concatenate([b.y for b in blocks]),
                 ends=np.concatenate([b.ends for b in blocks]),
                 dates=pd.DatetimeIndex(np.concatenate([b.dates.values for b in blocks])))


def standardise(sp: Splits) -> tuple[Splits, dict]:
    """One asset's splits with inputs standardised by its own training block: mean and sd of the
    last day of its training windows (no other asset, no later day)."""
    last = sp.train.X[:, -1, :].astype(np.float64)
    mu, sd = last.mean(axis=0), last.std(axis=0)
    sd = np.where(sd > 0, sd, 1.0)
    out = {}
    for name in BLOCKS:
        b = sp.block(name)
        out[name] = replace(b, X=((b.X - mu) / sd).astype(np.float32))
    return replace(sp, **out), {"mean": mu.tolist(), "sd": sd.tolist()}


def level_of(cfg: SweepConfig, data_id: str) -> DataSizeConfig:
    """The data level named ``data_id``; every asset's whole history when there is none."""
    from .data_axis import size_of

    return size_of(cfg, data_id) if data_id else DataSizeConfig()


def panel_splits(cfg: SweepConfig, horizon: int, data_id: str = "", holdout: bool = False,
                 frames: dict[str, pd.DataFrame] | None = None) -> PanelSplits:
    """The panel's blocks for one horizon (and data level): every asset split on the same dates
    and standardised by its own training block, training windows of the level's assets, and
    validation and test of every asset."""
    from .data_axis import _keep

    frames = frames if frames is not None else asset_frames(cfg)
    size = level_of(cfg, data_id)
    names = list(cfg.data.tickers)
    train_assets = names[: size.assets] if size.assets else names
    per, norm = {}, {}
    for t in names:
        try:
            sp = make_splits(frames[t], cfg.split, horizon=horizon, holdout=holdout)
        except SplitError as e:
            raise SplitError(f"panel asset {t}: {e}") from None
        if per and sp.columns != next(iter(per.values())).columns:
            raise SplitError(f"panel asset {t}: its features differ from {names[0]}'s")
        if per and [sp.stats.val.block_start, sp.stats.test.block_start] != [
                per[names[0]].stats.val.block_start, per[names[0]].stats.test.block_start]:
            raise SplitError(f"panel asset {t}: its blocks start on other dates than "
                             f"{names[0]}'s (its dates differ); every asset is split on the same "
                             f"dates")
        per[t], norm[t] = standardise(sp)
    first = per[names[0]]
    val_start = pd.Timestamp(first.stats.val.block_start)
    train = []
    for t in train_assets:
        b = per[t].train
        keep = _keep(b, size, val_start, t, data_id or "dall", horizon) if data_id else \
            np.arange(len(b.y))
        train.append((t, _take(b, keep)))
    blocks = {"train": _stack([b for _, b in train])}
    codes = {"train": np.concatenate([np.full(len(b.y), names.index(t)) for t, b in train])}
    for name in ("val", "test"):
        blocks[name] = _stack([per[t].block(name) for t in names])
        codes[name] = np.concatenate([np.full(len(per[t].block(name).y), i)
                                      for i, t in enumerate(names)])
    stats = {}
    for name in BLOCKS:
        b, s0 = blocks[name], getattr(first.stats, name)
        stats[name] = BlockStats(name=s0.name, n_windows=len(b.y), positive_rate=float(b.y.mean()),
                                 block_start=s0.block_start, block_end=s0.block_end,
                                 first_window_end=str(b.dates.min().date()),
                                 last_window_end=str(b.dates.max().date()))
    n = len(blocks["train"].y)
    whole = sum(len(per[t].train.y) for t in names)
    ew = cfg.train.epoch_windows
    passes = max(1, int(np.ceil(ew / n))) if ew else max(1, int(round(whole / n)))
    per_window = window_tokens(base_model(cfg, len(first.columns)))
    data = {"id": data_id, "panel": True, "windows": n, "passes_per_epoch": passes,
            "epoch_windows": ew, "tokens": n * per_window, "tokens_per_window": per_window,
            "tickers": {t: int(len(b.y)) for t, b in train},
            "positive_rate": {t: float(b.y.mean()) for t, b in train},
            "assets": names, "train_assets": train_assets,
            "history": {"windows": size.windows, "years": size.years, "spread": size.spread,
                        "assets": size.assets},
            "eval_windows": {t: {k: int(len(per[t].block(k).y)) for k in ("val", "test")}
                             for t in names},
            "min_price": cfg.split.min_price, "input_stats": norm, "target": cfg.data.target,
            "pooled": []}
    from .data_axis import AxisSplitStats

    split_stats = AxisSplitStats(**{k: getattr(first.stats, k) for k in
                                    ("horizon", "context_len", "threshold", "label", "canary")},
                                 **stats, data=data)
    return PanelSplits(**blocks, stats=split_stats, columns=first.columns, assets=codes,
                       names=names)


def validate_panel(cfg: SweepConfig, bad) -> None:
    """Checks that need no data: a panel has two or more assets, its levels pool nothing (every
    asset is in already) and keep between 1 and all assets; no rolling-origin or walk-forward
    folds (they re-split one series)."""
    n = len(cfg.data.tickers)
    for i, s in enumerate(cfg.data_sizes):
        if s.assets is not None and not cfg.data.panel:
            raise bad(f"data_sizes[{i}].assets", "keeps a panel's first k assets; set "
                      "data.panel: true, or leave it out")
        if not cfg.data.panel:
            continue
        if s.pool:
            raise bad(f"data_sizes[{i}].pool", "a panel pools every ticker already; use "
                      "data_sizes.assets to train on fewer")
        if s.assets is not None and not 1 <= s.assets <= n:
            raise bad(f"data_sizes[{i}].assets", f"must lie in 1..{n} (the panel's assets), "
                      f"got {s.assets}")
    if not cfg.data.panel:
        return
    if n < 2:
        raise bad("data.panel", f"a panel needs two or more tickers, got {cfg.data.tickers}")
    if cfg.split.fold_years:
        raise bad("split.fold_years", "rolling-origin folds are not built for a panel; set 0")
    if cfg.final.walk_forward_folds:
        raise bad("final.walk_forward_folds", "walk-forward folds are not built for a panel; "
                  "set 0")

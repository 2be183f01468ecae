"""Where every stage gets a cell's data: the target's blocks for the cell's horizon, with the
training block of its data level (:mod:`lib.data.data_axis`), or a panel's blocks over every asset
(:mod:`lib.data.panel`)."""

from __future__ import annotations

import pandas as pd

from ..core.config import SweepConfig
from . import dataset as ds
from .data_axis import apply_size
from .panel import panel_splits
from .splits import Splits, make_splits


def cell_splits(cfg: SweepConfig, cell, df: pd.DataFrame | None = None,
                manifest: dict | None = None,
                holdout: bool = False) -> tuple[pd.DataFrame, dict, Splits]:
    """The cell's dataset frame, manifest entry and splits: the target's blocks for the cell's
    horizon, with the training block of the cell's data level when the sweep has a data axis.
    The one place every stage (search, final evaluation, record rebuilding) gets its data."""
    if df is None:
        df, manifest = ds.load_dataset(cfg.data.name)
    if cfg.data.panel:  # every asset's windows (lib/data/panel.py)
        return df, manifest, panel_splits(cfg, cell.horizon, getattr(cell, "data", ""), holdout)
    splits = make_splits(df, cfg.split, horizon=cell.horizon, holdout=holdout)
    if not getattr(cell, "data", ""):
        return df, manifest, splits
    return df, manifest, apply_size(cfg, df, splits, cell.data)

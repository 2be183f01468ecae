"""The sweep's data stage: the dataset exactly as the sweep file's data section asks for it.

Kept apart from :mod:`lib.data.dataset`, whose source is part of every dataset's identity (a dataset
built by other code is stale): orchestration around it must not invalidate the data.
"""

from __future__ import annotations

import papermill as pm

from ..core import paths
from ..core.config import DataConfig, SweepConfig
from ..data.cell_data import cell_splits
from ..data.data_axis import pool_config, pooled_tickers
from ..data.dataset import DatasetMissing, build_dataset, check_request, load_dataset
from ..data.sources import DataError
from ..search.cells import Cell, data_ids
from . import notebook

KNOWN_ERRORS = ("DataError", "DatasetMissing", "ConfigError", "SplitError", "BudgetError")


def ensure_data(cfg: SweepConfig) -> None:
    """The sweep's dataset, exactly as its data section asks, and one per ticker its data axis
    pools (:func:`lib.data.data_axis.pool_config`): built by the data notebook when missing; an
    existing dataset of that name built from another request (source, tickers, CSV folder or
    content, dates, feature set, feature code) or with a bad checksum is an error that shows
    both, never reused silently."""
    for d in [cfg.data, *[pool_config(cfg.data, t) for t in pooled_tickers(cfg)]]:
        ensure_dataset(cfg, d)
    if cfg.data.panel:  # the other assets: the same code as the notebook, in this process
        for t in cfg.data.tickers:
            if t != cfg.data.target:
                ensure_asset(pool_config(cfg.data, t))


def ensure_asset(d: DataConfig) -> None:
    """A panel asset's dataset, built by :func:`lib.data.dataset.build_dataset` (what the data
    notebook runs) when missing; another request under its name is an error, as for every
    dataset."""
    try:
        check_request(d)
        return
    except DatasetMissing:
        pass
    entry = build_dataset(d)
    print(f"dataset '{d.name}' built: {entry['rows']} rows, {entry['first_date']}.."
          f"{entry['last_date']}", flush=True)


def ensure_dataset(cfg: SweepConfig, d: DataConfig) -> None:
    """One dataset (:func:`ensure_data`)."""
    try:
        check_request(d)
        return
    except DatasetMissing:
        pass
    out = paths.OUTPUTS / "data_prep" / f"01_data_prep_{d.name}.ipynb"
    print(f"dataset '{d.name}' missing: running notebooks/01_data_prep.ipynb -> "
          f"{paths.rel(out)}", flush=True)
    try:
        notebook.execute(paths.NOTEBOOKS / "01_data_prep.ipynb", out, {
            "source": d.source, "tickers": ",".join(d.tickers), "target": d.target,
            "feature_set": d.feature_set, "csv_dir": d.csv_dir or "", "name": d.name,
            "start": d.start or "", "end": d.end or "", "max_gap_days": d.max_gap_days,
            "val_start": cfg.split.val_start or "", "test_start": cfg.split.test_start or "",
            "label": cfg.split.label, "min_price": cfg.split.min_price})
    except pm.PapermillExecutionError as e:
        if e.ename in KNOWN_ERRORS:  # a bad input: its own message, the notebook keeps the rest
            raise DataError(f"{e.evalue} (data notebook: {paths.rel(out)})") from None
        raise
    check_request(d)


def check_splits(cfg: SweepConfig) -> None:
    """Blocks inside the data with enough windows for every horizon and every data size: a
    SplitError now, before any study is created, rather than when a cell runs."""
    df, manifest = load_dataset(cfg.data.name)
    for h in cfg.horizons:
        for d in data_ids(cfg):
            cell_splits(cfg, Cell("check", cfg.budgets[0], h, d), df, manifest)

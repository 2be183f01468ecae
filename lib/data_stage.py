"""The sweep's data stage: the dataset exactly as the sweep file's data section asks for it.

Kept apart from :mod:`lib.dataset`, whose source is part of every dataset's identity (a dataset
built by other code is stale): orchestration around it must not invalidate the data.
"""

from __future__ import annotations

import papermill as pm

from . import notebook, paths
from .config import SweepConfig
from .dataset import DatasetMissing, check_request, load_dataset
from .sources import DataError
from .splits import make_splits

KNOWN_ERRORS = ("DataError", "DatasetMissing", "ConfigError", "SplitError", "BudgetError")


def ensure_data(cfg: SweepConfig) -> None:
    """The sweep's dataset, exactly as its data section asks: built by the data notebook when
    missing; an existing dataset of that name built from another request (source, tickers, CSV
    folder or content, dates, feature set, feature code) or with a bad checksum is an error
    that shows both, never reused silently."""
    try:
        check_request(cfg.data)
        return
    except DatasetMissing:
        pass
    d = cfg.data
    out = paths.OUTPUTS / "data_prep" / f"01_data_prep_{d.name}.ipynb"
    print(f"dataset '{d.name}' missing: running notebooks/01_data_prep.ipynb -> "
          f"{paths.rel(out)}", flush=True)
    try:
        notebook.execute(paths.NOTEBOOKS / "01_data_prep.ipynb", out, {
            "source": d.source, "tickers": ",".join(d.tickers), "target": d.target,
            "feature_set": d.feature_set, "csv_dir": d.csv_dir or "", "name": d.name,
            "start": d.start or "", "end": d.end or "",
            "val_start": cfg.split.val_start or "", "test_start": cfg.split.test_start or ""})
    except pm.PapermillExecutionError as e:
        if e.ename in KNOWN_ERRORS:  # a bad input: its own message, the notebook keeps the rest
            raise DataError(f"{e.evalue} (data notebook: {paths.rel(out)})") from None
        raise
    check_request(cfg.data)


def check_splits(cfg: SweepConfig) -> None:
    """Blocks inside the data with enough windows for every horizon: a SplitError now, before
    any study is created, rather than when a cell runs."""
    df, _ = load_dataset(cfg.data.name)
    for h in cfg.horizons:
        make_splits(df, cfg.split, horizon=h)

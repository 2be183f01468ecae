"""Processed datasets: features for one target, stored as parquet with a checksummed manifest.

The processed manifest records, per dataset: id, feature set, target, sha256, rows, first/last date,
warm-up rows dropped, the raw files' sha256s it came from, and the code version. Besides the
features, a dataset holds the target's raw prices (``raw_open`` .. ``raw_close``), which labels are
built from and which are never model inputs. Every read verifies
the checksum, so a changed file is an error rather than a silent different study.
"""

from __future__ import annotations

from dataclasses import asdict

import pandas as pd

from . import features, paths
from .config import DataConfig
from .provenance import (
    atomic_write_bytes,
    code_version,
    now_iso,
    read_json,
    sha256_file,
    write_json,
)
from .sources import DataError, get_raw, parquet_bytes
from .splits import RAW_PREFIX


def dataset_path(name: str):
    return paths.PROCESSED / f"{name}.parquet"


def read_manifest() -> dict:
    if not paths.PROCESSED_MANIFEST.exists():
        return {"datasets": {}}
    return read_json(paths.PROCESSED_MANIFEST)


def build_dataset(cfg: DataConfig, refresh: bool = False) -> dict:
    """Fetch (or read) raw bars, compute the feature set, write the dataset; returns its entry."""
    if cfg.target not in cfg.tickers:
        raise DataError(f"target '{cfg.target}' is not among tickers {cfg.tickers}")
    bars, raw_sha = get_raw(cfg.source, cfg.tickers, cfg.csv_dir, cfg.start, cfg.end, refresh)
    frame, dropped = features.compute(cfg.feature_set, bars, cfg.target)
    # raw prices for the labels, kept apart from the features (research rule 5): whatever
    # scaling a feature set or a model applies, labels are built from these
    raw = bars[cfg.target].reindex(frame.index)
    for col in ("open", "high", "low", "close"):
        if col in raw:
            frame[f"{RAW_PREFIX}{col}"] = raw[col].to_numpy(dtype=float)
    frame = frame.reset_index()
    path = dataset_path(cfg.name)
    atomic_write_bytes(path, parquet_bytes(frame))
    entry = {
        "id": cfg.name, "path": paths.rel(path), "feature_set": cfg.feature_set,
        "target": cfg.target, "source": cfg.source, "sha256": sha256_file(path),
        "rows": len(frame),
        "columns": [c for c in frame.columns if c != "date" and not c.startswith(RAW_PREFIX)],
        "label_columns": [c for c in frame.columns if c.startswith(RAW_PREFIX)],
        "first_date": str(frame["date"].iloc[0].date()),
        "last_date": str(frame["date"].iloc[-1].date()), "warmup_rows_dropped": dropped,
        "raw_sha256": {t: raw_sha[t] for t in cfg.tickers}, "code": code_version(),
        "config": asdict(cfg), "created_at": now_iso(),
    }
    manifest = read_manifest()
    manifest["datasets"][cfg.name] = entry
    write_json(paths.PROCESSED_MANIFEST, manifest)
    return entry


def manifest_entry(name: str) -> dict:
    entry = read_manifest()["datasets"].get(name)
    if entry is None:
        raise DataError(f"dataset '{name}' is not in {paths.rel(paths.PROCESSED_MANIFEST)}; "
                        f"run `make data` (notebooks/01_data_prep.ipynb) first")
    return entry


def verify(name: str) -> dict:
    """Check the dataset file against its manifest checksum; returns the manifest entry."""
    entry = manifest_entry(name)
    path = dataset_path(name)
    if not path.exists():
        raise DataError(f"{paths.rel(path)}: dataset file missing (manifest lists it)")
    digest = sha256_file(path)
    if digest != entry["sha256"]:
        raise DataError(f"{paths.rel(path)}: checksum mismatch (manifest {entry['sha256'][:12]}…, "
                        f"file {digest[:12]}…): the dataset changed after it was recorded")
    return entry


def load_dataset(name: str) -> tuple[pd.DataFrame, dict]:
    """Verified dataset as a frame indexed by date, plus its manifest entry."""
    entry = verify(name)
    df = pd.read_parquet(dataset_path(name)).set_index("date")
    return df, entry

"""Processed datasets: features for one target, stored as parquet with a checksummed manifest.

The processed manifest records, per dataset: id, feature set, target, sha256, rows, first/last date,
warm-up rows dropped, the raw files' sha256s it came from, and the code version. Besides the
features, a dataset holds the target's raw prices (``raw_open`` .. ``raw_close``), which labels are
built from and which are never model inputs. Every read verifies
the checksum, so a changed file is an error rather than a silent different study.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import pandas as pd

from ..core import paths
from ..core.config import DataConfig
from ..core.provenance import (
    atomic_write_bytes,
    code_version,
    now_iso,
    read_json,
    sha256_file,
    write_json,
)
from . import features
from .sources import (
    DataError,
    check_gaps,
    load_raw,
    parquet_bytes,
    raw_digests,
    request,
    store_raw,
)
from .splits import RAW_PREFIX


def dataset_path(name: str):
    return paths.PROCESSED / f"{name}.parquet"


def read_manifest() -> dict:
    if not paths.PROCESSED_MANIFEST.exists():
        return {"datasets": {}}
    return read_json(paths.PROCESSED_MANIFEST)


CODE_FILES = ("sources.py", "features.py", "splits.py", "dataset.py")  # what makes a dataset


def features_code() -> str:
    """sha256 of the code that turns raw bars into a dataset: a dataset built by other code is
    stale, whatever its name."""
    import hashlib

    h = hashlib.sha256()
    here = Path(__file__).parent
    for name in CODE_FILES:
        h.update((here / name).read_bytes())
    return h.hexdigest()


def request_of(cfg: DataConfig) -> dict:
    """Everything a dataset is keyed by: the data section (csv folder resolved) and the code."""
    config = asdict(cfg)
    config.pop("panel", None)  # how a sweep uses the dataset, not what it holds
    if config.get("csv_dir"):
        config["csv_dir"] = str(Path(config["csv_dir"]).resolve())
    return {"config": config, "features_code": features_code()}


def build_dataset(cfg: DataConfig, refresh: bool = False) -> dict:
    """Fetch (or read) raw bars, compute the feature set, write the dataset; returns its entry.

    Raw bars are cached by what made them (:func:`sources.request`), so a changed CSV file or
    folder is read again. Nothing is written unless every step succeeded: raw files are stored
    only once the features computed."""
    if cfg.target not in cfg.tickers:
        raise DataError(f"target '{cfg.target}' is not among tickers {cfg.tickers}")
    bars, requests, fetched = load_raw(cfg.source, cfg.tickers, cfg.csv_dir, cfg.start, cfg.end,
                                       refresh)
    for ticker, frame in bars.items():
        check_gaps(frame, ticker, cfg.max_gap_days)
    frame, dropped = features.compute(cfg.feature_set, bars, cfg.target)
    # raw prices for the labels, kept apart from the features (research rule 5): whatever
    # scaling a feature set or a model applies, labels are built from these
    raw = bars[cfg.target].reindex(frame.index)
    for col in ("open", "high", "low", "close"):
        if col in raw:
            frame[f"{RAW_PREFIX}{col}"] = raw[col].to_numpy(dtype=float)
    frame = frame.reset_index()
    store_raw(cfg.source, {t: bars[t] for t in fetched}, requests)
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
        "raw_sha256": raw_digests(cfg.source, cfg.tickers), "raw_requests": requests,
        "code": code_version(), "config": asdict(cfg), "request": request_of(cfg),
        "created_at": now_iso(),
    }
    manifest = read_manifest()
    manifest["datasets"][cfg.name] = entry
    write_json(paths.PROCESSED_MANIFEST, manifest)
    return entry


def mismatches(cfg: DataConfig, entry: dict) -> list[str]:
    """How the stored dataset ``entry`` differs from what ``cfg`` asks for (empty: the same)."""
    want = request_of(cfg)
    have = entry.get("request") or {"config": entry.get("config"), "features_code": None}
    out = []
    default = asdict(DataConfig())  # a setting added to the code since reads as its default
    for key in sorted(set(want["config"]) | set(have.get("config") or {})):
        a, b = (have.get("config") or {}).get(key, default.get(key)), want["config"].get(key)
        if a != b:
            out.append(f"data.{key}: the dataset has {a!r}, the request asks for {b!r}")
    if have.get("features_code") != want["features_code"]:
        out.append("the feature code (lib/data/sources.py, features.py, splits.py, dataset.py) "
                   "changed since the dataset was built")
    for t, key in (entry.get("raw_requests") or {}).items():
        if key.get("source") == "csv" and not out:
            try:
                now = request(cfg.source, t, cfg.csv_dir, cfg.start, cfg.end)
            except DataError as e:
                out.append(str(e))
                continue
            if now != key:
                out.append(f"{key['csv_file']}: the file changed since the dataset was built")
    return out


def check_request(cfg: DataConfig) -> dict:
    """The verified dataset named ``cfg.name`` if it is exactly what ``cfg`` asks for; otherwise
    a DataError that shows both (a dataset is never reused silently for another request)."""
    entry = verify(cfg.name)
    diffs = mismatches(cfg, entry)
    if diffs:
        raise DataError(f"dataset '{cfg.name}' exists but was built from another request: "
                        + "; ".join(diffs) + f". Rebuild it (`make data`, or delete "
                        f"{paths.rel(dataset_path(cfg.name))}) or give the sweep another "
                        f"data.name")
    return entry


class DatasetMissing(DataError):
    """No dataset of that name has been built (or its file is gone)."""


def manifest_entry(name: str) -> dict:
    """The dataset's manifest entry; DatasetMissing (saying how to build it) when there is none."""
    entry = read_manifest()["datasets"].get(name)
    if entry is None:
        raise DatasetMissing(f"dataset '{name}' is not in {paths.rel(paths.PROCESSED_MANIFEST)}; "
                        f"run `make data` (notebooks/01_data_prep.ipynb) first")
    return entry


def verify(name: str) -> dict:
    """Check the dataset file against its manifest checksum; returns the manifest entry."""
    entry = manifest_entry(name)
    path = dataset_path(name)
    if not path.exists():
        raise DatasetMissing(f"{paths.rel(path)}: dataset file missing (manifest lists it)")
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

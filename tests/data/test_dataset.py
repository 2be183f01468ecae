import json

import pytest

from lib.core import paths
from lib.core.config import DataConfig
from lib.data import dataset
from lib.data.sources import DataError


def test_processed_dataset_and_manifest(root):
    entry = dataset.manifest_entry("gspc_a25")
    df, e = dataset.load_dataset("gspc_a25")
    assert len(entry["columns"]) == 25 and df.index.name == "date"
    assert entry["label_columns"] == ["raw_open", "raw_high", "raw_low", "raw_close"]
    assert list(df.columns) == entry["columns"] + entry["label_columns"]
    assert entry["rows"] == len(df) and entry["warmup_rows_dropped"] > 0
    assert set(entry["raw_sha256"]) == {"^GSPC", "^IXIC"}
    assert "commit" in entry["code"] and entry["path"] == "data/processed/gspc_a25.parquet"


def test_checksum_mismatch_detected(fresh_root):
    dataset.build_dataset(DataConfig(name="tmpset"))
    path = dataset.dataset_path("tmpset")
    path.write_bytes(path.read_bytes()[:-10] + b"0123456789")
    with pytest.raises(DataError, match="tmpset.parquet: checksum mismatch"):
        dataset.load_dataset("tmpset")


def test_missing_dataset_is_clear(fresh_root):
    with pytest.raises(DataError, match="dataset 'nope' is not in data/processed_manifest.json"):
        dataset.load_dataset("nope")


def test_target_must_be_fetched(fresh_root):
    with pytest.raises(DataError, match="target '\\^DJI' is not among tickers"):
        dataset.build_dataset(DataConfig(target="^DJI"))
    assert not paths.PROCESSED_MANIFEST.exists()


def test_manifest_paths_are_relative(root):
    m = json.loads(paths.PROCESSED_MANIFEST.read_text())
    assert all(not e["path"].startswith("/") for e in m["datasets"].values())

"""Cells and storage: an unreachable storage is a clear error within seconds, with the password
masked."""

import time

import pytest

from lib.search.cells import StorageError, mask_url, open_storage


def test_unreachable_storage_is_a_quick_clear_error():
    t0 = time.time()
    with pytest.raises(StorageError, match=r"cannot open study storage postgresql\+psycopg://"
                                           r"u:\*\*\*@127\.0\.0\.1:9/x"):
        open_storage("postgresql+psycopg://u:secret@127.0.0.1:9/x")
    assert time.time() - t0 < 15


def test_password_masked():
    assert mask_url("postgresql://me:pa:ss@host/db") == "postgresql://me:***@host/db"
    assert mask_url("sqlite:///x.db") == "sqlite:///x.db"


def test_opening_a_storage_prints_no_experimental_warning(tmp_path):
    """Optuna's 'heartbeat is experimental' warnings (13 lines at every sweep start) are silenced
    where they arise; the storage still has its heartbeat."""
    import warnings

    from lib.search.cells import open_storage

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        storage = open_storage(f"sqlite:///{tmp_path / 'x.db'}", heartbeat_s=7)
    assert not [w for w in caught if "experimental" in str(w.message).lower()]
    assert storage.heartbeat_interval == 7

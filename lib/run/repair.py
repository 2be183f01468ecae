"""Records from elsewhere and records rebuilt: :func:`collect` merges per-trial records from other
machines, :func:`regenerate` rebuilds every record of a sweep from its study storage,
:func:`dashboard` serves optuna-dashboard on the loopback interface."""

from __future__ import annotations

import os
import time
from pathlib import Path

import optuna

from ..core import paths
from ..core.provenance import CorruptFileError, read_json, write_json
from ..data import dataset as ds
from ..search import records
from ..search.cells import StorageError, cells, mask_url, open_storage, scrub, storage_url
from ..search.sweepfile import load_sweep
from .upkeep import say


def collect(name: str, sources: list[str]) -> int:
    """Merge per-trial records from several machines' outputs folders into this sweep's folders."""
    n = 0
    for src in sources:
        for f in sorted(Path(src).glob("*/trials/trial_*.json")):
            dest = paths.SWEEPS / name / f.parent.parent.name / "trials" / f.name
            if dest.exists() and read_json(dest).get("state") == read_json(f).get("state"):
                continue
            write_json(dest, read_json(f))
            n += 1
    say(f"collected {n} record(s) into {paths.rel(paths.SWEEPS / name)}")
    return 0


def regenerate(name: str) -> int:
    """Rebuild every record file of a sweep from its study storage (trial records, best.json,
    all_trials.json, study summaries with their baselines); a final.json that does not parse is
    moved aside, so that the next `make final` re-runs it."""
    from ..data.cell_data import cell_splits
    from ..train.baselines import cached_baselines

    cfg = load_sweep(name)
    storage = open_storage(storage_url(Path(name).stem))
    df = None
    for cell in cells(name, cfg):
        try:
            study = optuna.load_study(study_name=cell.study_name, storage=storage)
        except KeyError:
            continue
        n = records.regenerate(cell.dir, study, cell.as_dict())
        if df is None:
            df, manifest = ds.load_dataset(cfg.data.name)
        _, _, splits = cell_splits(cfg, cell, df, manifest)
        baselines = cached_baselines(df, splits, paths.BASELINE_CACHE, seed=cfg.train.seed,
                                     collapse_spread=cfg.train.collapse_spread)
        records.study_summary(cell.dir, study, cell.as_dict(), baselines)
        final, note = cell.dir / "final.json", ""
        if final.exists():
            try:
                read_json(final)
            except CorruptFileError:
                aside = final.with_name(f"final.json.corrupt-{time.strftime('%Y%m%d-%H%M%S')}")
                os.replace(final, aside)
                note = f"; {paths.rel(final)} did not parse: moved to {aside.name}, `make final` " \
                       f"re-runs it"
        say(f"{cell.id}: {n} record(s) rebuilt from storage{note}")
    return 0


def read_only_storage(url: str) -> optuna.storages.RDBStorage:
    """The storage at ``url`` opened so that nothing can be written through it: SQLite in
    read-only mode, PostgreSQL with read-only transactions. A write (optuna-dashboard's "Delete
    study" button) fails with a storage error and the studies stay as they were."""
    if url.startswith("sqlite:///"):
        ro = f"sqlite:///file:{url[len('sqlite:///'):]}?mode=ro&uri=true"
        engine = {"connect_args": {"timeout": 60}}
    else:
        ro = url
        engine = {"connect_args": {"connect_timeout": 5,
                                   "options": "-c default_transaction_read_only=on"},
                  "pool_pre_ping": True}
    try:
        return optuna.storages.RDBStorage(ro, engine_kwargs=engine)
    except Exception as e:  # sqlalchemy OperationalError, driver errors
        raise StorageError(scrub(f"cannot open study storage {mask_url(url)} read-only: "
                                 f"{type(e).__name__}: {str(e).splitlines()[0][:300]}", url)) \
            from None


def dashboard(name: str, port: int, write: bool = False) -> int:
    """optuna-dashboard for the sweep's storage on 127.0.0.1, started in this process: the
    storage URL (and its password) never appears on a command line. Read-only unless ``write``:
    its delete and note buttons would otherwise act on the live studies the workers use. The
    dashboard has no login; it listens on the loopback interface only (reach it from elsewhere
    through an SSH tunnel)."""
    from optuna_dashboard import run_server

    url = storage_url(Path(name).stem)
    mode = "read-write (WRITE=1)" if write else "read-only: its delete and note buttons fail " \
        "and change nothing (WRITE=1 allows them)"
    say(f"optuna-dashboard for {mask_url(url)} on http://127.0.0.1:{port}, {mode} (no login: "
        f"loopback only; from another machine: ssh -L {port}:127.0.0.1:{port} <this host>)")
    run_server(open_storage(url) if write else read_only_storage(url), host="127.0.0.1",
               port=port)
    return 0

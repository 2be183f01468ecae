"""A sweep's upkeep: the driver's lock, whether cells are done, status, and repair of records.

``SweepLock`` keeps a second driver off a sweep; :func:`cell_done` and :func:`final_done` say what
a run may skip; :func:`status_table` is ``make status``; :func:`utilization` is a run's training
share. Merging, rebuilding and serving records is in :mod:`lib.run.repair`.
"""

from __future__ import annotations

import fcntl
import os
import socket
import time
from datetime import datetime
from pathlib import Path

import optuna
import pandas as pd

from ..core import paths
from ..core.config import SweepConfig
from ..core.provenance import CorruptFileError, read_json, write_json
from ..search.cells import Cell, cells, open_storage, storage_url
from ..search.contract import final_is_current, validation_choice
from ..search.study import cell_status
from . import notebook


def say(msg: str) -> None:
    """Print a line of the driver's output at once."""
    print(msg, flush=True)


class LockError(RuntimeError):
    """Another driver holds the sweep."""


class SweepLock:
    """An exclusive lock on a sweep's folder for the process that drives it (``run``, ``final``,
    ``report``, ``regenerate``): two drivers on one sweep would sample the same parameters and
    write the same files. Workers (``make worker``) do not take it: they join a running sweep.
    The lock is released when the process ends, however it ends."""

    def __init__(self, name: str):
        self.path = paths.SWEEPS / name / ".driver.lock"
        self.name = name
        self.f = None

    def __enter__(self) -> SweepLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.f = open(self.path, "a+")  # noqa: SIM115 -- held for the life of the driver
        try:
            fcntl.flock(self.f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self.f.seek(0)
            holder = self.f.read().strip() or "another process"
            self.f.close()
            raise LockError(f"sweep '{self.name}' is being driven by {holder}: wait for it to "
                            f"finish, or add workers to its search with `make worker "
                            f"SWEEP={self.name}`") from None
        self.f.seek(0)
        self.f.truncate()
        self.f.write(f"pid {os.getpid()} on {socket.gethostname()} since "
                     f"{time.strftime('%Y-%m-%d %H:%M:%S')}")
        self.f.flush()
        return self

    def __exit__(self, *exc) -> None:
        if self.f is not None:
            self.f.close()


def corrupt_records(name: str) -> list[str]:
    """Record files of a sweep that do not parse (checked before a run reads them)."""
    bad = []
    for pattern in ("*/trials/trial_*.json", "*/final.json", "*/best.json",
                    "*/study_summary.json"):
        for f in sorted((paths.SWEEPS / name).glob(pattern)):
            try:
                read_json(f)
            except CorruptFileError:
                bad.append(paths.rel(f))
    return bad


def cell_done(cell: Cell, counts: dict) -> bool:
    """A cell is done when its study has its target, and its records, executed notebook and
    report exist and parse (a disk-full failure can leave any of them missing or torn)."""
    if counts["finished"] < counts["target"]:
        return False
    if not notebook.is_complete(cell.dir / "03_hpo_sweep.ipynb"):
        return False
    html = paths.REPORTS / cell.name / f"{cell.id}.html"
    if not html.exists() or b"</html>" not in html.read_bytes()[-200:]:
        return False
    try:
        for f in ("best.json", "study_summary.json"):
            read_json(cell.dir / f)
    except (OSError, CorruptFileError):
        return False
    return True


def _trial_seconds(cell_dir: Path) -> float | None:
    """Seconds the cell's finished trials trained, from its records (None before any)."""
    try:
        trials = read_json(cell_dir / "all_trials.json").get("trials") or []
    except (OSError, CorruptFileError):
        return None
    return round(sum(t.get("seconds") or 0.0 for t in trials), 1) if trials else None


def status_table(name: str, cfg: SweepConfig, results: dict | None = None) -> pd.DataFrame:
    """One row per cell: finished/target, trial states, best objective and architecture, the
    seconds its trials trained (recorded, so the same after a rerun that had nothing to do),
    final evaluation done, and (after a run) this run's wall time for it and its status."""
    url = storage_url(Path(name).stem)
    rows = []
    for cell in cells(name, cfg):
        c = cell_status(cell, cfg, url)
        r = (results or {}).get(cell.id, {})
        rows.append({"cell": cell.id, "finished": f"{c['finished']}/{c['target']}",
                     "sampled": c["sampled"], "enqueued": c["enqueued"],
                     "complete": c["complete"], "pruned": c["pruned"], "failed": c["failed"],
                     "best_objective": c.get("best_objective"), "best_arch": c.get("best_arch"),
                     "trials_s": _trial_seconds(cell.dir),
                     "this_run_s": round(r["wall_s"], 1) if "wall_s" in r else "-",
                     "final": final_state(cell, cfg, url),
                     "status": r.get("status", "done" if c["finished"] >= c["target"]
                                     else "unfinished")})
    return pd.DataFrame(rows)


def utilization(sweep: str, cfg: SweepConfig, since: float, wall_s: float, jobs: int,
                stages: dict) -> dict:
    """How much of a run's slot time (``jobs`` x wall) went into training: the trials and the
    final evaluation's training runs that ended during this run. The rest is orchestration
    (kernels, data loading, baselines, plots, records, rendering, the report)."""
    start = datetime.fromtimestamp(since)  # Optuna's timestamps are naive local time
    trial_s = 0.0
    for f in (paths.SWEEPS / Path(sweep).stem).glob("*/trials/trial_*.json"):
        rec = read_json(f)
        begun = rec.get("datetime_start")
        if begun and datetime.fromisoformat(begun) >= start:
            trial_s += rec.get("seconds") or 0.0
    final_s = 0.0
    for c in cells(sweep, cfg):
        f = c.dir / "final.json"
        if f.exists():
            for conf in read_json(f).get("configs", {}).values():
                # seeds trained together share one wall time: each counts its share of it
                final_s += sum(s.get("seconds", 0.0) / s.get("trained_together", 1)
                               for s in conf.get("seeds", {}).values()
                               if (s.get("finished_at") or 0) >= since)
    slot_s = max(jobs * wall_s, 1e-9)
    cells_slot_s = max(jobs * stages.get("cells_s", 0.0), 1e-9)
    return {"sweep": Path(sweep).stem, "jobs": jobs, "wall_s": wall_s,
            "stages": {k: round(v, 2) for k, v in stages.items()}, "trial_s": trial_s,
            "final_train_s": final_s, "training_share": (trial_s + final_s) / slot_s,
            "cells_stage_trial_share": trial_s / cells_slot_s if stages.get("cells_s") else None,
            "definition": "training share = (trial seconds + final-evaluation training seconds "
                          "that ended in this run) / (jobs x wall); overhead = 1 - share"}


def final_state(cell: Cell, cfg: SweepConfig, url: str | None = None) -> str:
    """``yes`` when ``final.json`` is a complete evaluation of the cell's current validation
    choice with the current final settings, ``stale`` when it is complete but of another choice
    or settings (the search moved on, or the file changed), ``no`` otherwise."""
    f = cell.dir / "final.json"
    try:
        state = read_json(f) if f.exists() else {}
    except CorruptFileError:
        return "no"
    if not (state.get("complete") and "interval" in state):
        return "no"
    storage = open_storage(url or storage_url(cell.name), cfg.search.heartbeat_s,
                           cfg.search.max_retry)
    try:
        study = optuna.load_study(study_name=cell.study_name, storage=storage)
    except KeyError:
        return "stale"
    chosen = [t.number for t in validation_choice(study, cfg.final.top_k)]
    return "yes" if final_is_current(state, chosen, cfg) else "stale"


def final_done(cell: Cell, cfg: SweepConfig, url: str | None = None) -> bool:
    """Whether the cell's final evaluation is of its current validation choice
    (:func:`final_state`)."""
    return final_state(cell, cfg, url) == "yes"


def report_inputs(sweep: str, cfg: SweepConfig) -> dict:
    """What a sweep's reports are rendered from: the resolved sweep file and each current cell's
    final evaluation (its last update). A report rendered from other inputs is out of date."""
    import hashlib
    import json
    from dataclasses import asdict

    finals = {}
    for c in cells(sweep, cfg):
        try:
            finals[c.id] = read_json(c.dir / "final.json").get("updated")
        except (OSError, CorruptFileError):
            finals[c.id] = None
    text = json.dumps(asdict(cfg), sort_keys=True, default=str).encode()
    return {"sweep_file": hashlib.sha256(text).hexdigest(), "finals": finals}


def driver_active(name: str) -> str | None:
    """Who holds the sweep's driver lock now (``pid … on … since …``), or None."""
    path = paths.SWEEPS / Path(name).stem / ".driver.lock"
    if not path.exists():
        return None
    with open(path) as f:
        try:
            fcntl.flock(f, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return f.read().strip() or "another process"
        fcntl.flock(f, fcntl.LOCK_UN)
    return None


def report_state(sweep: str, cfg: SweepConfig, pages: list[tuple[str, str]]) -> str:
    """The sweep's report as ``make status`` shows it: ``done``, ``missing``, ``incomplete`` (a
    render that stopped half-way), ``out of date`` (rendered from other records or another
    sweep file), with ``rendering`` when a driver holds the sweep now."""
    name = Path(sweep).stem
    state = "done"
    for nb, html in pages:
        page = paths.REPORTS / name / html
        if not page.exists():
            state = "missing"
            break
        if not notebook.is_complete(paths.SWEEPS / name / nb) or \
                b"</html>" not in page.read_bytes()[-200:]:
            state = "incomplete"
            break
    if state == "done":
        try:
            if read_json(paths.SWEEPS / name / "report_inputs.json") != report_inputs(sweep, cfg):
                state = "out of date"
        except (OSError, CorruptFileError):
            state = "out of date"
    holder = driver_active(name)
    return f"{state}; rendering or running now ({holder})" if holder and state != "done" \
        else state


def write_cell_list(name: str, cfg: SweepConfig) -> None:
    """``outputs/sweeps/<sweep>/cells.json``: the cells the sweep file names now (the index of
    reports lists only these)."""
    write_json(paths.SWEEPS / name / "cells.json", [c.id for c in cells(name, cfg)])


def orphans(name: str, cfg: SweepConfig) -> list[str]:
    """Cells of the sweep's folder or storage that its file no longer names (a removed budget,
    horizon or data size): left out of every report, removed by :func:`prune`."""
    current = {c.id for c in cells(name, cfg)}
    folder = paths.SWEEPS / Path(name).stem
    found = {p.name for p in folder.glob("*") if p.is_dir() and not p.name.startswith(".")
             and ((p / "trials").is_dir() or (p / "best.json").exists())}
    storage = open_storage(storage_url(Path(name).stem), cfg.search.heartbeat_s,
                           cfg.search.max_retry)
    prefix = f"{Path(name).stem}:"
    found |= {s.study_name[len(prefix):] for s in optuna.get_all_study_summaries(storage)
              if s.study_name.startswith(prefix)}
    return sorted(found - current)


def prune(name: str, cfg: SweepConfig) -> int:
    """``make prune``: move every orphan cell's records and report page aside
    (``.set_aside/``) and delete its study from the storage."""
    from ..search.study import set_aside

    storage = open_storage(storage_url(Path(name).stem), cfg.search.heartbeat_s,
                           cfg.search.max_retry)
    gone = orphans(name, cfg)
    for cell_id in gone:
        budget, *rest = cell_id.split("-")
        cell = Cell(name, budget, int(rest[-1][1:]), rest[0] if len(rest) == 2 else "")
        say(f"{cell_id}: moved to {paths.rel(set_aside(cell, storage, 'orphan'))}")
    write_cell_list(Path(name).stem, cfg)
    from ..reports.index import write_index

    write_index()
    say(f"{len(gone)} orphan cell(s) removed from sweep '{Path(name).stem}'")
    return 0

"""Runs one sweep cell's search: prepare the cell, then top its study up to the target.

Preparation (:func:`prepare_cell`) loads the dataset, makes the splits for the cell's horizon,
lists the budget's architectures, runs the pre-flight checks (memory per architecture, dataset
checksum, disk) and fits the baselines. :class:`CellRunner` then runs trials one at a time
(:func:`lib.search.objective.objective`) until the cell has its target of finished sampled trials,
pausing on the hardware guards and waiting for trials other workers run. Every trial's record is
written the moment it ends; an interrupted trial is recorded and queued again. The pieces live
beside it: cells and storage in :mod:`lib.search.cells`, the study in :mod:`lib.search.study`, one
trial's model and training in :mod:`lib.train.trial`.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable
from dataclasses import dataclass

import optuna
import pandas as pd
from optuna.trial import TrialState
from threadpoolctl import threadpool_limits

from ..core import hardware, paths
from ..core.config import SweepConfig
from ..core.provenance import now_iso
from ..data import dataset as ds
from ..data.cell_data import cell_splits
from ..data.splits import Splits
from ..model.budget import Arch, base_model, budget_grid
from ..model.memory import memory_estimate
from ..train.baselines import cached_baselines
from ..train.trainer import DivergenceError
from . import records
from .cells import (
    Cell,
    StorageError,
    cells,
    mask_url,
    open_storage,
    scrub,
    storage_failure,
    storage_url,
)
from .objective import ArchitectureUnavailable, SurplusTrial, objective
from .study import create_study, n_inputs
from .sweepfile import load_sweep

optuna.logging.set_verbosity(optuna.logging.WARNING)  # our sweep.log says what each trial did
__all__ = ["Cell", "CellRunner", "Prepared", "StorageError", "mask_url", "prepare_cell"]


@dataclass
class Prepared:
    """What a cell's trials share: its grid, the pre-flight report, data, splits, baselines."""

    archs_all: list[Arch]  # the budget's grid
    archs: list[Arch]  # those this machine's pre-flight kept
    preflight: dict
    df: pd.DataFrame
    manifest: dict
    splits: Splits
    baselines: dict


def prepare_cell(cell: Cell, cfg: SweepConfig, *, threads: int | None = None,
                 available_bytes: int | None = None,
                 log: Callable[[str], None] = print) -> Prepared:
    """Grid, pre-flight checks (written to ``preflight.json``), dataset, splits and baselines."""
    base = base_model(cfg, n_inputs(cfg, ds.manifest_entry(cfg.data.name)))
    archs_all = budget_grid(cell.budget, base, cfg.grid)
    # an architecture fits when it can train at all: the trainer picks the micro-batch from
    # the same estimate and accumulates gradients, so the need is the footprint at
    # micro-batch 1 (weights, gradients, optimizer state, one sample's activations)
    bf16 = cfg.train.bf16 and hardware.device_type(cfg.train.device) == "cuda"
    needs = {a.id: memory_estimate(a.apply(base), 1, autocast_bf16=bf16)["total"]
             for a in archs_all}
    report = hardware.preflight(
        memory_needs=needs, policy=cfg.search.memory_policy,
        dataset_check=lambda: ds.verify(cfg.data.name), device=cfg.train.device,
        threads=threads, outputs=paths.OUTPUTS, min_disk_gb=cfg.guards.min_disk_gb,
        available_bytes=available_bytes)
    report["cell"] = cell.as_dict()
    remove_stale_temporaries(cell.dir)
    for w in report["warnings"]:
        log(f"preflight warning: {w}")
    hardware.write_preflight(report, cell.dir / "preflight.json")
    archs = [a for a in archs_all if a.id in set(report["architectures"])]
    df, manifest, splits = cell_splits(cfg, cell)
    baselines = cached_baselines(df, splits, paths.BASELINE_CACHE, seed=cfg.train.seed,
                                 collapse_spread=cfg.train.collapse_spread)
    return Prepared(archs_all, archs, report, df, manifest, splits, baselines)


def remove_stale_temporaries(folder, age_s: float = 300) -> None:
    """Temporary files a killed process left behind (never a record: those are renamed)."""
    now = time.time()
    for tmp in folder.rglob(".*.tmp"):
        if now - tmp.stat().st_mtime > age_s:
            tmp.unlink(missing_ok=True)


class OneInterrupt:
    """SIGINT handler for a search: the first interrupt raises KeyboardInterrupt, later ones are
    ignored until the interrupted trial is recorded and queued again. A driver interrupts its
    kernels repeatedly (one that sits between two cells ignores a single interrupt); a second
    interrupt landing in Optuna's bookkeeping left a trial RUNNING with no record."""

    def __init__(self):
        self.hit = False
        self.previous = None

    def __call__(self, signum, frame):
        if not self.hit:
            self.hit = True
            raise KeyboardInterrupt

    def install(self) -> OneInterrupt:
        """Become the SIGINT handler (main thread only)."""
        import signal
        import threading

        if threading.current_thread() is threading.main_thread():
            self.previous = signal.signal(signal.SIGINT, self)
        return self

    def restore(self) -> None:
        """Put the previous SIGINT handler back."""
        import signal

        if self.previous is not None:
            signal.signal(signal.SIGINT, self.previous)
            self.previous = None


class CellRunner:
    """Prepares a cell (:func:`prepare_cell`, then its study) and runs its trials."""

    def __init__(self, cell: Cell, cfg: SweepConfig, *, threads: int | None = None,
                 worker: str = "", log: Callable[[str], None] | None = None,
                 storage: str | None = None, available_bytes: int | None = None):
        self.cell, self.cfg, self.threads, self.worker = cell, cfg, threads, worker
        self.dir = cell.dir
        self.dir.mkdir(parents=True, exist_ok=True)
        suffix = f".{worker}" if worker else ""
        self.log_path = self.dir / f"sweep{suffix}.log"
        self._print = log or print
        self.url = storage or storage_url(cell.name)
        self.available_bytes = available_bytes
        self.stopped_reason: str | None = None

    def log(self, msg: str) -> None:
        """Print a line and append it to the cell's sweep log."""
        line = scrub(f"{now_iso()} {self.cell.id} {msg}")
        self._print(line)
        with open(self.log_path, "a") as f:  # this process is the only writer of this file
            f.write(line + "\n")

    # -- preparation -------------------------------------------------------------------------
    def prepare(self) -> dict:
        """Prepare the cell and create (or load) its study; returns the pre-flight report."""
        if self.threads:
            self._limits = threadpool_limits(self.threads)  # BLAS/OpenMP pools of the baselines
        prep = prepare_cell(self.cell, self.cfg, threads=self.threads,
                            available_bytes=self.available_bytes, log=self.log)
        self.prep = prep
        self.archs_all, self.archs, self.preflight = prep.archs_all, prep.archs, prep.preflight
        self.df, self.manifest, self.splits = prep.df, prep.manifest, prep.splits
        self.baselines = prep.baselines
        self.storage = open_storage(self.url, self.cfg.search.heartbeat_s,
                                    self.cfg.search.max_retry)
        self.study = create_study(self.cell, self.cfg, self.storage, self.archs_all,
                                  self.manifest, self.worker)
        return prep.preflight

    # -- trials ------------------------------------------------------------------------------
    def objective(self, trial: optuna.Trial) -> float:
        """One trial on this cell (:func:`lib.search.objective.objective`)."""
        return objective(trial, self)

    def _after_trial(self, study: optuna.Study, t: optuna.trial.FrozenTrial) -> None:
        if records.is_surplus(t):
            return
        records.write_after_trial(self.dir, study, t, self.cell.as_dict())
        rec = t.user_attrs.get("record", {})
        hw = rec.get("hardware") or {}
        rss = (hw.get("proc_rss_mb") or {}).get("max")
        value = f"{t.value:.4f}" if t.value is not None else "-"
        reason = t.user_attrs.get("fail_reason") or rec.get("prune_reason") or ""
        self.log(f"trial {t.number} end state={t.state.name} objective={value} "
                 f"seconds={rec.get('seconds', 0):.1f} peak_rss_mb={rss} "
                 f"cpu_temp={(hw.get('cpu_temp_c') or {}).get('max')} {reason}".rstrip())

    def _record_unrecorded_failures(self) -> list:
        """Write the record of every FAILED trial that has none (killed or interrupted: no
        Optuna callback ran for it), so that every finished trial has its file."""
        written = []
        for t in self.study.get_trials(deepcopy=False, states=(TrialState.FAIL,)):
            if not records.is_surplus(t) and not records.trial_path(self.dir, t.number).exists():
                self._after_trial(self.study, t)
                written.append(t)
        return written

    def status(self) -> dict:
        """Trial counts of the cell's study and its target."""
        c = records.counts(self.study.get_trials(deepcopy=False))
        c["target"] = records.target(self.study, self.cfg.search.n_trials)
        return c

    def run(self, progress: bool = True) -> dict:
        """Top up the cell to its target of finished trials; returns the final counts."""
        from tqdm.auto import tqdm

        suffix = f".{self.worker}" if self.worker else ""
        self.telemetry = hardware.Telemetry(self.dir / f"hardware{suffix}.jsonl",
                                            self.cfg.guards.interval_s).start()
        g = self.cfg.guards
        guard = hardware.Guard(self.telemetry, g.temp_warn_c, g.temp_critical_c, g.mem_floor_gb,
                               g.max_pause_s, log=self.log)
        target = self.status()["target"]
        waited = False
        bar = tqdm(total=target, initial=min(self.status()["finished"], target),
                   desc=self.cell.id, disable=not progress)
        # The objects alive now (modules, dataset, splits) outlive every trial: freezing them
        # keeps the collection after each trial (gc_after_trial) from rescanning ~450k objects,
        # 0.25 s a trial here (bench/NOTES.md).
        gc.collect()
        gc.freeze()
        interrupt = OneInterrupt().install()
        try:
            while True:
                optuna.storages.fail_stale_trials(self.study)
                self._record_unrecorded_failures()  # e.g. a killed worker's stale trial
                c = self.status()
                bar.n = min(c["finished"], target)
                bar.refresh()
                if c["finished"] >= target:
                    break
                if c["finished"] + c["running"] >= target and c["waiting"] == 0:
                    # the rest is running elsewhere: wait until it ends or its heartbeat goes stale
                    # (then the retry comes back as a waiting trial this worker can take)
                    if not waited:
                        self.log(f"{c['running']} trial(s) running in other workers; waiting")
                    waited = True
                    time.sleep(min(self.cfg.search.heartbeat_s, 5))
                    continue
                ok, why = guard.wait()
                if not ok:
                    self.stopped_reason = why
                    break
                self.study.optimize(self.objective, n_trials=1, callbacks=[self._after_trial],
                                    catch=(DivergenceError, SurplusTrial,
                                           ArchitectureUnavailable),
                                    gc_after_trial=True)
        except Exception as e:
            cause = storage_failure(e)
            if cause is None:
                raise
            raise StorageError(f"the study storage {mask_url(self.url)} failed during the "
                               f"search: {cause} (every trial that finished before is "
                               f"recorded; run again once the storage is back)") from e
        except KeyboardInterrupt:
            # Optuna has ended the interrupted trial FAILED but calls no callback for it: record
            # it, and queue its parameters again (behind the trials already waiting), so the
            # configuration is not lost. Further interrupts are ignored until this is done.
            t0 = time.time()
            for t in self._record_unrecorded_failures():
                if t.user_attrs.get("interrupted") and "arch" in t.params:
                    # a probe's retry is still a probe: effort stays equal per budget
                    self.study.enqueue_trial(dict(t.params), user_attrs={
                        "retry_of": t.number, "enqueued": records.is_probe(t)})
            self.log(f"interrupted: trial recorded and queued again in {time.time() - t0:.1f} s")
            raise
        finally:
            interrupt.restore()
            gc.unfreeze()
            bar.close()
            self.telemetry.stop()
        return self.status()

    def summarize(self) -> dict:
        """Write the study summary (with confusion matrices and baselines); returns it."""
        return records.study_summary(self.dir, self.study, self.cell.as_dict(), self.baselines)


def work(name: str, cell_id: str | None, threads: int | None, worker_id: str) -> int:
    """``make worker``: join the sweep's studies and work on its unfinished cells (or the named
    one) until each has its target."""
    cfg = load_sweep(name)
    for cell in cells(name, cfg):
        if cell_id and cell.id != cell_id:
            continue
        runner = CellRunner(cell, cfg, threads=threads, worker=worker_id)
        runner.prepare()
        c = runner.status()
        if c["finished"] >= c["target"]:
            continue
        runner.run(progress=False)
        runner.summarize()
    return 0

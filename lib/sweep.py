"""Grid orchestration: ``python -m lib.sweep run|worker|status|final|report|regenerate|collect``.

``run`` (behind ``make sweep``) reads ``params/sweeps/<name>.yaml``, prepares the dataset when it is
missing (through the data notebook), creates every cell's study once, runs the HPO notebook for each
unfinished cell through papermill (executed copy in the cell folder, rendered HTML in
``reports/<sweep>/``), then the final test evaluation and the scaling report. A failing cell does
not stop the others; the command ends with a status table and exits non-zero if any cell failed.
Ctrl-C stops cleanly; the next run does only what is missing.
"""

from __future__ import annotations

import argparse
import os
import queue
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pandas as pd

from . import dataset as ds
from . import notebook, paths, records
from .budget import BudgetError, parse_budget
from .cells import Cell, StorageError, cells, storage_url
from .config import ConfigError, SweepConfig
from .provenance import CorruptFileError, read_json, write_json
from .search import CellRunner
from .study import cell_status, grid_sizes, init_cell
from .sweepfile import load_sweep


def _say(msg: str) -> None:
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
        import fcntl
        import socket

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


KNOWN_ERRORS = ("DataError", "DatasetMissing", "ConfigError", "SplitError", "BudgetError")


def ensure_data(name: str, cfg: SweepConfig) -> None:
    """The sweep's dataset, exactly as its data section asks: built by the data notebook when
    missing; an existing dataset of that name built from another request (source, tickers, CSV
    folder or content, dates, feature set, feature code) or with a bad checksum is an error
    that shows both, never reused silently."""
    try:
        ds.check_request(cfg.data)
        return
    except ds.DatasetMissing:
        pass
    d = cfg.data
    out = paths.OUTPUTS / "data_prep" / f"01_data_prep_{d.name}.ipynb"
    _say(f"dataset '{d.name}' missing: running notebooks/01_data_prep.ipynb -> {paths.rel(out)}")
    import papermill as pm

    try:
        notebook.execute(paths.NOTEBOOKS / "01_data_prep.ipynb", out, {
            "source": d.source, "tickers": ",".join(d.tickers), "target": d.target,
            "feature_set": d.feature_set, "csv_dir": d.csv_dir or "", "name": d.name,
            "start": d.start or "", "end": d.end or "",
            "val_start": cfg.split.val_start or "", "test_start": cfg.split.test_start or ""})
    except pm.PapermillExecutionError as e:
        if e.ename in KNOWN_ERRORS:  # a bad input: its own message, the notebook keeps the rest
            raise ds.DataError(f"{e.evalue} (data notebook: {paths.rel(out)})") from None
        raise
    ds.check_request(cfg.data)


def check_splits(cfg: SweepConfig) -> None:
    """Blocks inside the data with enough windows for every horizon: a SplitError now, before
    any study is created, rather than when a cell runs."""
    from .splits import make_splits

    df, _ = ds.load_dataset(cfg.data.name)
    for h in cfg.horizons:
        make_splits(df, cfg.split, horizon=h)


def corrupt_records(name: str) -> list[str]:
    """Record files of a sweep that do not parse (checked before a run reads them)."""
    from .provenance import CorruptFileError

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
    from .provenance import CorruptFileError

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


THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


def limit_threads(threads: int) -> None:
    """Cap every thread pool (OpenMP in torch and scikit-learn, BLAS) of the kernels and
    subprocesses this process starts: parallel cells that each spin up all cores' worth of OpenMP
    threads ran 6x slower here than with the pools divided."""
    for var in THREAD_VARS:
        os.environ[var] = str(threads)


def threads_per_job(cfg: SweepConfig, jobs: int) -> int:
    total = cfg.jobs_threads or os.cpu_count() or 1
    return max(1, total // max(jobs, 1))


def run_cell_notebook(cell: Cell, threads: int, workers: int, sweep_file: str,
                      kernel: notebook.Kernel | None = None) -> dict:
    out = cell.dir / "03_hpo_sweep.ipynb"
    t0 = time.time()
    status = "done"
    error = None
    try:
        notebook.execute(paths.NOTEBOOKS / "03_hpo_sweep.ipynb", out, {
            "sweep": sweep_file, "budget": cell.budget, "horizon": cell.horizon,
            "n_trials": 0, "workers": workers, "threads": threads}, kernel=kernel)
    except Exception as e:  # papermill raises PapermillExecutionError with the cell's error
        status = "failed"
        if getattr(e, "ename", None):  # the cell's own error, without papermill's wrapper
            error = f"{e.ename}: {(str(e.evalue).strip().splitlines() or [''])[0][:300]}"
        else:
            error = f"{type(e).__name__}: {str(e).strip().splitlines()[-1][:300]}"
    if out.exists():
        try:
            notebook.render_html(out, paths.REPORTS / cell.sweep / f"{cell.id}.html")
        except Exception as e:  # a rendering problem must not hide the cell's own status
            error = (error or "") + f" (rendering failed: {e})"
    return {"cell": cell.id, "status": status, "wall_s": time.time() - t0, "error": error}


def status_table(name: str, cfg: SweepConfig, results: dict | None = None) -> pd.DataFrame:
    url = storage_url(Path(name).stem)
    rows = []
    for cell in cells(name, cfg):
        c = cell_status(cell, cfg, url)
        r = (results or {}).get(cell.id, {})
        rows.append({"cell": cell.id, "finished": f"{c['finished']}/{c['target']}",
                     "sampled": c["sampled"], "enqueued": c["enqueued"],
                     "complete": c["complete"], "pruned": c["pruned"], "failed": c["failed"],
                     "best_objective": c.get("best_objective"), "best_arch": c.get("best_arch"),
                     "wall_s": round(r["wall_s"], 1) if "wall_s" in r else None,
                     "final": "yes" if _final_done(cell) else "no",
                     "status": r.get("status", "done" if c["finished"] >= c["target"]
                                     else "unfinished")})
    return pd.DataFrame(rows)


def _subprocess(args: list[str], log: Path) -> int:
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "w") as f:
        return subprocess.call([sys.executable, "-m", "lib.sweep", *args], stdout=f,
                               stderr=subprocess.STDOUT)


def run(sweep: str, jobs: int | None = None, force: bool = False, workers: int = 1,
        final: bool = True, report: bool = True) -> int:
    cfg = load_sweep(sweep)
    name = Path(sweep).stem
    if jobs is not None and jobs < 1:
        raise ConfigError(f"JOBS must be >= 1 (cells run at once), got {jobs}")
    if workers < 1:
        raise ConfigError(f"WORKERS must be >= 1 (worker processes per cell), got {workers}")
    with SweepLock(name):
        return _run(sweep, name, cfg, jobs or cfg.jobs, force, workers, final, report)


def _run(sweep: str, name: str, cfg: SweepConfig, jobs: int, force: bool, workers: int,
         final: bool, report: bool) -> int:
    t0 = time.time()
    bad = corrupt_records(name)
    if bad:
        raise CorruptFileError(f"{len(bad)} record file(s) of sweep '{name}' do not parse: "
                               f"{', '.join(bad[:5])}; rebuild them from the study storage with "
                               f"`make regenerate SWEEP={name}`")
    stale = notebook.remove_stale(paths.SWEEPS / name) + notebook.remove_stale(
        paths.REPORTS / name)
    if stale:
        _say(f"removed {len(stale)} temporary file(s) an earlier run left behind")
    ensure_data(name, cfg)
    check_splits(cfg)
    stages = {"data_s": time.time() - t0}
    try:
        sizes = grid_sizes(cfg)
    except BudgetError as e:
        raise ConfigError(f"{sweep}: {e}") from None
    _say("architectures per budget: " + ", ".join(f"{b} {n}" for b, n in sizes.items()))
    if max(sizes.values()) > 2 * min(sizes.values()):
        _say("warning: the budgets' grids offer very different numbers of architectures; the "
             "search effort per budget is not comparable (widen grid.d_model / grid.n_layers)")
    url = storage_url(name)
    todo = []
    for cell in cells(name, cfg):
        init_cell(cell, cfg, url)
        if force or not cell_done(cell, cell_status(cell, cfg, url)):
            todo.append(cell)
    # largest budgets first: the slots then finish together instead of one slot running the
    # biggest cell alone at the end (longest-processing-time-first scheduling)
    todo.sort(key=lambda c: -parse_budget(c.budget))
    threads = threads_per_job(cfg, jobs)
    limit_threads(threads)
    _say(f"sweep '{name}': {len(todo)} of {len(cfg.budgets) * len(cfg.horizons)} cells to run, "
         f"{jobs} at a time, {threads} torch thread(s) each")
    results: dict[str, dict] = {}
    # one long-lived kernel per job slot runs that slot's cells in turn (notebook.Kernel)
    kernels = [notebook.Kernel(paths.CODE_ROOT) for _ in range(jobs)]
    pending: queue.Queue[Cell] = queue.Queue()
    for c in todo:
        pending.put(c)
    done: queue.Queue[dict] = queue.Queue()
    stop = threading.Event()

    def slot(kernel: notebook.Kernel) -> None:
        while not stop.is_set():
            try:
                cell = pending.get_nowait()
            except queue.Empty:
                return
            done.put(run_cell_notebook(cell, threads, workers, sweep, kernel=kernel))

    try:
        t_stage = time.time()
        # daemon threads: an interrupted run must not wait at exit for a notebook to finish
        slots = [threading.Thread(target=slot, args=(k,), daemon=True, name=f"slot{i}")
                 for i, k in enumerate(kernels)]
        for t in slots:
            t.start()
        try:
            for _ in todo:
                r = done.get()
                results[r["cell"]] = r
                _say(f"  {r['cell']}: {r['status']} in {r['wall_s']:.0f} s"
                     + (f" ({r['error']})" if r["error"] else ""))
        except KeyboardInterrupt:
            # the kernels run in sessions of their own, so Ctrl-C reaches only this process:
            # start no further cell, interrupt the running ones (the trial ends FAILED, is
            # recorded, does not count, and its parameters are queued again) and give them a
            # moment to stop; whatever still runs is killed with its kernel below
            stop.set()
            deadline = time.time() + 20
            while any(t.is_alive() for t in slots) and time.time() < deadline:
                for k in kernels:  # again every 2 s: a kernel between two cells ignores it
                    k.interrupt()
                for t in slots:
                    t.join(timeout=1)
            raise
        stages["cells_s"], t_stage = time.time() - t_stage, time.time()
        finals = []
        if final:
            finals = [c for c in cells(sweep, cfg) if force or not _final_done(c)]
            # one process per job slot evaluates its share of the cells in turn: the imports
            # are paid once per slot, not once per cell
            groups = [g for g in (finals[i::jobs] for i in range(jobs)) if g]
            logs = [paths.SWEEPS / name / f"final.{i}.log" for i in range(len(groups))]
            with ThreadPoolExecutor(max_workers=jobs) as pool:
                list(pool.map(lambda g, log: _subprocess(
                    ["final", "--sweep", sweep, *[x for c in g for x in ("--cell", c.id)],
                     "--threads", str(threads), "--held-by-driver"], log),
                    groups, logs))
            for i, g in enumerate(groups):
                for c in g:
                    if not _final_done(c):
                        results.setdefault(c.id, {})["status"] = "final failed"
                        _say(f"  {c.id}: final evaluation failed (see "
                             f"{paths.rel(logs[i])})")
        stages["final_s"], t_stage = time.time() - t_stage, time.time()
        html = paths.REPORTS / name / "scaling_report.html"
        if report and (todo or finals or force or not notebook.is_complete(
                paths.SWEEPS / name / "04_scaling_report.ipynb") or not html.exists()):
            rc = make_report(sweep, kernel=kernels[0])
            if rc:
                results["report"] = {"status": "failed"}
        stages["report_s"] = time.time() - t_stage
    except KeyboardInterrupt:
        _say("\ninterrupted: every finished trial is recorded; run the same command to resume")
        return 130
    finally:
        for k in kernels:
            k.close()
    from .index import write_index

    write_index()
    table = status_table(sweep, cfg, results)
    _say("\n" + table.to_string(index=False))
    use = utilization(sweep, cfg, t0, time.time() - t0, jobs, stages)
    write_json(paths.SWEEPS / name / "last_run.json", use)
    trained = (f"training (trials {use['trial_s']:.0f} s, final evaluation "
               f"{use['final_train_s']:.0f} s) filled {use['training_share']:.0%} of {jobs} "
               f"slot(s)" if use["trial_s"] + use["final_train_s"] > 0 else "nothing to train")
    _say(f"\nwall time {use['wall_s']:.0f} s; {trained}; reports in "
         f"{paths.rel(paths.REPORTS / name)}/")
    failed = [k for k, r in results.items() if "failed" in r.get("status", "")]
    if failed:
        _say(f"FAILED: {', '.join(failed)}")
    return 1 if failed else 0


def utilization(sweep: str, cfg: SweepConfig, since: float, wall_s: float, jobs: int,
                stages: dict) -> dict:
    """How much of a run's slot time (``jobs`` x wall) went into training: the trials and the
    final evaluation's training runs that ended during this run. The rest is orchestration
    (kernels, data loading, baselines, plots, records, rendering, the report)."""
    from datetime import datetime

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
                final_s += sum(s.get("seconds", 0.0) for s in conf.get("seeds", {}).values()
                               if (s.get("finished_at") or 0) >= since)
    slot_s = max(jobs * wall_s, 1e-9)
    cells_slot_s = max(jobs * stages.get("cells_s", 0.0), 1e-9)
    return {"sweep": Path(sweep).stem, "jobs": jobs, "wall_s": wall_s,
            "stages": {k: round(v, 2) for k, v in stages.items()}, "trial_s": trial_s,
            "final_train_s": final_s, "training_share": (trial_s + final_s) / slot_s,
            "cells_stage_trial_share": trial_s / cells_slot_s if stages.get("cells_s") else None,
            "definition": "training share = (trial seconds + final-evaluation training seconds "
                          "that ended in this run) / (jobs x wall); overhead = 1 - share"}


def _final_done(cell: Cell) -> bool:
    """A complete final evaluation in the current format (with its interval method)."""
    f = cell.dir / "final.json"
    try:
        state = read_json(f) if f.exists() else {}
    except CorruptFileError:
        return False
    return bool(state.get("complete")) and "interval" in state


def final_cells(sweep: str, cell_ids: list[str] | None, threads: int | None) -> int:
    """Final evaluation of the named cells (default: all) in this process, one after the other;
    a failing cell is reported and the others still run."""
    import traceback

    from .final import run_final

    cfg = load_sweep(sweep)
    chosen = [c for c in cells(sweep, cfg) if not cell_ids or c.id in cell_ids]
    unknown = set(cell_ids or ()) - {c.id for c in chosen}
    if unknown:
        raise ConfigError(f"unknown cell(s) {', '.join(sorted(unknown))} in sweep '{sweep}'")
    failed = []
    for cell in chosen:
        t0 = time.time()
        try:
            run_final(cell, cfg, threads=threads)
            _say(f"{cell.id}: final evaluation done in {time.time() - t0:.0f} s")
        except Exception:  # noqa: BLE001 -- one cell's failure must not stop the others
            _say(f"{cell.id}: final evaluation FAILED\n{traceback.format_exc()}")
            failed.append(cell.id)
    return 1 if failed else 0


def make_report(sweep: str, kernel: notebook.Kernel | None = None) -> int:
    name = Path(sweep).stem
    out = paths.SWEEPS / name / "04_scaling_report.ipynb"
    html = paths.REPORTS / name / "scaling_report.html"
    try:
        notebook.execute(paths.NOTEBOOKS / "04_scaling_report.ipynb", out, {"sweep": sweep},
                         kernel=kernel)
        rc = 0
    except Exception as e:
        _say(f"report failed: {type(e).__name__}: {str(e).strip().splitlines()[-1][:300]}")
        rc = 1
    if out.exists():
        notebook.render_html(out, html)
        _say(f"report: {paths.rel(html)}")
    from .index import write_index

    _say(f"index of every report: {paths.rel(write_index())}")
    return rc


def worker(name: str, cell_id: str | None, threads: int | None, worker_id: str) -> int:
    """Join the sweep's studies and work on unfinished cells (or the named one)."""
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
    _say(f"collected {n} record(s) into {paths.rel(paths.SWEEPS / name)}")
    return 0


def regenerate(name: str) -> int:
    """Rebuild every record file of a sweep from its study storage (trial records, best.json,
    all_trials.json, study summaries with their baselines); a final.json that does not parse is
    moved aside, so that the next `make final` re-runs it."""
    import optuna

    from .baselines import cached_baselines
    from .cells import open_storage
    from .splits import make_splits

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
            df, _ = ds.load_dataset(cfg.data.name)
        splits = make_splits(df, cfg.split, horizon=cell.horizon)
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
        _say(f"{cell.id}: {n} record(s) rebuilt from storage{note}")
    return 0


def dashboard(name: str, port: int) -> int:
    """optuna-dashboard for the sweep's storage on 127.0.0.1, started in this process: the
    storage URL (and its password) never appears on a command line. The dashboard has no
    login; it listens on the loopback interface only (reach it from elsewhere through an SSH
    tunnel)."""
    from optuna_dashboard import run_server

    from .cells import mask_url, open_storage

    url = storage_url(Path(name).stem)
    _say(f"optuna-dashboard for {mask_url(url)} on http://127.0.0.1:{port} (no login: loopback "
         f"only; from another machine: ssh -L {port}:127.0.0.1:{port} <this host>)")
    run_server(open_storage(url), host="127.0.0.1", port=port)
    return 0


def _errors() -> tuple[type, ...]:
    """Failures that are the input's fault or the environment's: one ``error:`` line, exit 2."""
    from .hardware import PreflightError
    from .splits import SplitError
    from .study import DatasetChanged

    return (ConfigError, StorageError, ds.DataError, SplitError, BudgetError, CorruptFileError,
            DatasetChanged, LockError, PreflightError)


def _keep_traceback(name: str) -> None:
    """The full traceback of the last error, for a sweep that has run before (a bad input to a
    new sweep writes nothing): ``outputs/sweeps/<sweep>/last_error.log``."""
    import traceback

    folder = paths.SWEEPS / name
    if folder.is_dir() and any(p.is_dir() for p in folder.iterdir()):
        from .provenance import atomic_write_bytes

        atomic_write_bytes(folder / "last_error.log", traceback.format_exc().encode())


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m lib.sweep", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run", help="run every unfinished cell, the final evaluation and the report")
    r.add_argument("--sweep", default="default")
    r.add_argument("--jobs", type=int, default=None,
                   help="cells at once, threads divided among them (default: the sweep file's)")
    r.add_argument("--workers", type=int, default=1, help="worker processes per cell")
    r.add_argument("--force", action="store_true", help="re-execute finished cells' notebooks")
    r.add_argument("--no-final", action="store_true")
    r.add_argument("--no-report", action="store_true")
    w = sub.add_parser("worker", help="join the sweep's studies and work on unfinished cells")
    w.add_argument("--sweep", default="default")
    w.add_argument("--cell", default=None)
    w.add_argument("--threads", type=int, default=None)
    w.add_argument("--worker-id", default=f"w{os.getpid()}")
    for cmd in ("status", "regenerate", "report"):
        sub.add_parser(cmd).add_argument("--sweep", default="default")
    d = sub.add_parser("dashboard", help="optuna-dashboard on 127.0.0.1 (no login)")
    d.add_argument("--sweep", default="default")
    d.add_argument("--port", type=int, default=8080)
    f = sub.add_parser("final", help="multi-seed test evaluation of a cell's best configurations")
    f.add_argument("--sweep", default="default")
    f.add_argument("--cell", action="append", default=None,
                   help="a cell id (repeatable); default: every cell")
    f.add_argument("--threads", type=int, default=None)
    f.add_argument("--held-by-driver", action="store_true", help=argparse.SUPPRESS)
    c = sub.add_parser("collect", help="merge records from other machines' sweep folders")
    c.add_argument("--sweep", default="default")
    c.add_argument("sources", nargs="+")
    a = p.parse_args(argv)
    name = Path(a.sweep).stem
    try:
        if a.cmd == "run":
            return run(a.sweep, a.jobs, a.force, a.workers, not a.no_final, not a.no_report)
        if a.cmd == "worker":
            return worker(a.sweep, a.cell, a.threads, a.worker_id)
        if a.cmd == "status":
            cfg = load_sweep(a.sweep)
            _say(status_table(a.sweep, cfg).to_string(index=False))
            return 0
        if a.cmd == "dashboard":
            return dashboard(a.sweep, a.port)
        if a.cmd == "collect":
            return collect(a.sweep, a.sources)
        if a.cmd == "final" and a.held_by_driver:  # the driver holds the lock
            return final_cells(a.sweep, a.cell, a.threads)
        load_sweep(a.sweep)  # a bad sweep file is an error before any lock file is written
        with SweepLock(name):
            if a.cmd == "regenerate":
                return regenerate(a.sweep)
            if a.cmd == "report":
                return make_report(a.sweep)
            if a.cmd == "final":
                return final_cells(a.sweep, a.cell, a.threads)
    except _errors() as e:
        _say(f"error: {e}")
        _keep_traceback(name)
        return 2
    except KeyboardInterrupt:
        _say("interrupted; run the same command to resume")
        return 130
    return 1


if __name__ == "__main__":
    sys.exit(main())

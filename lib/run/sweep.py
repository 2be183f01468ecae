"""Grid orchestration: ``python -m lib.run.sweep`` run|worker|status|final|report|regenerate|
collect.

``run`` (behind ``make sweep``) goes through its stages in order, each a function below:
:func:`check_inputs` (records parse, temporaries of an earlier run removed, the dataset exactly as
the data section asks, splits valid for every horizon), :func:`init_studies` (each cell's study
created once; the cells still to run), :func:`run_cells` (the HPO notebook per cell through
papermill, one long-lived kernel per job slot; executed copy in the cell folder, rendered HTML in
``reports/<sweep>/``), :func:`run_finals` (the multi-seed test evaluation), :func:`run_report`
(the scaling report) and :func:`summarise` (status table, index of reports, training share). A
failing cell does not stop the others; the command exits non-zero if any cell failed. Ctrl-C
stops cleanly; the next run does only what is missing. Upkeep (lock, status) is
:mod:`lib.run.upkeep`; regenerate, collect and the dashboard are :mod:`lib.run.repair`.

About 480 lines, on purpose: the stages of a run and the command line that starts them, so that a
reader follows ``make sweep`` from top to bottom in one file.
"""

from __future__ import annotations

import argparse
import errno
import math
import os
import queue
import shutil
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor, wait
from pathlib import Path

from ..core import hardware, paths
from ..core.config import ConfigError, SweepConfig
from ..core.provenance import CorruptFileError, read_json, write_json
from ..data import dataset as ds
from ..model.budget import BudgetError, parse_budget
from ..search.cells import Cell, StorageError, cells, data_ids, scrub, storage_url
from ..search.runner import work
from ..search.study import cell_status, grid_sizes, init_cell
from ..search.sweepfile import load_sweep
from . import notebook
from .data_stage import check_splits, ensure_data
from .final_stage import final_cells
from .progress import Progress, Ticking, clock, run_estimate
from .repair import collect, dashboard, regenerate
from .upkeep import (
    LockError,
    SweepLock,
    cell_done,
    corrupt_records,
    final_done,
    orphans,
    prune,
    report_inputs,
    report_state,
    say,
    status_table,
    utilization,
    write_cell_list,
)


def cost_weights(cells_: list[Cell]) -> dict[str, float]:
    """Each cell's expected relative cost for the time-left estimate: the square root of its
    parameter budget (measured: 320k cells take about 5.5 times as long as 10k cells)."""
    return {c.id: math.sqrt(parse_budget(c.budget)) for c in cells_}


def run_cell_notebook(cell: Cell, threads: int, workers: int, sweep_file: str,
                      kernel: notebook.Kernel | None = None) -> dict:
    """Execute the HPO notebook for ``cell`` and render it; returns its status and wall time."""
    out = cell.dir / "03_hpo_sweep.ipynb"
    t0 = time.time()
    status = "done"
    error = None
    try:
        notebook.execute(paths.NOTEBOOKS / "03_hpo_sweep.ipynb", out, {
            "sweep": sweep_file, "budget": cell.budget, "horizon": cell.horizon,
            "data_size": cell.data, "n_trials": 0, "workers": workers, "threads": threads},
            kernel=kernel)
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


def _subprocess(args: list[str], log: Path) -> int:
    log.parent.mkdir(parents=True, exist_ok=True)
    # 0600: a failing evaluation's traceback can quote the storage's driver
    with open(os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as f:
        return subprocess.call([sys.executable, "-m", "lib.run.sweep", *args], stdout=f,
                               stderr=subprocess.STDOUT)


def run(sweep: str, jobs: int | None = None, force: bool = False, workers: int = 1,
        final: bool = True, report: bool = True) -> int:
    """``make sweep``: every stage in order under the sweep's lock; 0 when nothing failed."""
    cfg = load_sweep(sweep)
    name = Path(sweep).stem
    if jobs is not None and jobs < 1:
        raise ConfigError(f"JOBS must be >= 1 (cells run at once), got {jobs}")
    if workers < 1:
        raise ConfigError(f"WORKERS must be >= 1 (worker processes per cell), got {workers}")
    jobs = jobs or cfg.jobs
    with SweepLock(name):
        t0 = time.time()
        check_inputs(name, cfg)
        stages = {"data_s": time.time() - t0}
        todo = init_studies(sweep, name, cfg, force)
        threads = hardware.threads_per_job(cfg.jobs_threads, jobs)
        hardware.limit_threads(threads)
        say(f"sweep '{name}': {len(todo)} of {len(cells(name, cfg))} cells to "
             f"run, {jobs} at a time, {threads} torch thread(s) each")
        if todo:
            say(run_estimate(todo, cfg, jobs))
        results: dict[str, dict] = {}
        # one long-lived kernel per job slot runs that slot's cells in turn (notebook.Kernel)
        kernels = [notebook.Kernel(paths.CODE_ROOT) for _ in range(jobs)]
        try:
            t = time.time()
            results.update(run_cells(sweep, todo, kernels, threads, workers))
            stages["cells_s"], t = time.time() - t, time.time()
            finals = run_finals(sweep, name, cfg, jobs, threads, force, results) if final else []
            stages["final_s"], t = time.time() - t, time.time()
            if report and run_report(sweep, name, kernels[0], bool(todo or finals or force)):
                results["report"] = {"status": "failed"}
            stages["report_s"] = time.time() - t
        except KeyboardInterrupt:
            say("\ninterrupted: every finished trial is recorded; run the same command to "
                 "resume")
            return 130
        finally:
            for k in kernels:
                k.close()
        return summarise(sweep, name, cfg, results, t0, jobs, stages)


def check_inputs(name: str, cfg: SweepConfig) -> None:
    """Before anything runs: every record parses, temporaries an earlier run left are removed,
    the dataset is exactly the one the data section asks for, the splits hold every horizon."""
    bad = corrupt_records(name)
    if bad:
        raise CorruptFileError(f"{len(bad)} record file(s) of sweep '{name}' do not parse: "
                               f"{', '.join(bad[:5])}; rebuild them from the study storage with "
                               f"`make regenerate SWEEP={name}`")
    stale = notebook.remove_stale(paths.SWEEPS / name) + notebook.remove_stale(
        paths.REPORTS / name)
    if stale:
        say(f"removed {len(stale)} temporary file(s) an earlier run left behind")
    ensure_data(cfg)
    check_splits(cfg)


def init_studies(sweep: str, name: str, cfg: SweepConfig, force: bool) -> list[Cell]:
    """Create every cell's study once; the cells still to run, largest budgets first."""
    try:
        sizes = grid_sizes(cfg)
    except BudgetError as e:
        raise ConfigError(f"{sweep}: {e}") from None
    say("architectures per budget: " + ", ".join(f"{b} {n}" for b, n in sizes.items()))
    if max(sizes.values()) > 2 * min(sizes.values()):
        say("warning: the budgets' grids offer very different numbers of architectures; the "
             "search effort per budget is not comparable (widen grid.d_model / grid.n_layers)")
    url = storage_url(name)
    write_cell_list(name, cfg)
    todo = []
    for cell in cells(name, cfg):
        init_cell(cell, cfg, url, force)
        if force or not cell_done(cell, cell_status(cell, cfg, url)):
            todo.append(cell)
    # largest budgets first: the slots then finish together instead of one slot running the
    # biggest cell alone at the end (longest-processing-time-first scheduling)
    todo.sort(key=lambda c: cost_rank(c, cfg))
    return todo


def cost_rank(cell: Cell, cfg: SweepConfig) -> tuple:
    """Sort key putting the costliest cells first: larger budgets, then larger data sizes
    (more pooled series, then more history; a level without a cap counts as the most)."""
    order = data_ids(cfg)
    size = cfg.data_sizes[order.index(cell.data)] if cell.data else None
    weight = (0, 0.0) if size is None else (
        len(size.pool), float(size.windows or size.years or float("inf")))
    return (-parse_budget(cell.budget), tuple(-w for w in weight))


def run_cells(sweep: str, todo: list[Cell], kernels: list[notebook.Kernel], threads: int,
              workers: int) -> dict[str, dict]:
    """Run the cells' notebooks, one slot per kernel; on Ctrl-C start no further cell, interrupt
    the running ones and re-raise."""
    results: dict[str, dict] = {}
    pending: queue.Queue[Cell] = queue.Queue()
    for c in todo:
        pending.put(c)
    done: queue.Queue[dict] = queue.Queue()
    stop = threading.Event()
    running: dict[str, float] = {}  # cell -> start time, for the progress lines

    def slot(kernel: notebook.Kernel) -> None:
        while not stop.is_set():
            try:
                cell = pending.get_nowait()
            except queue.Empty:
                return
            running[cell.id] = time.time()
            done.put(run_cell_notebook(cell, threads, workers, sweep, kernel=kernel))
            running.pop(cell.id, None)

    # daemon threads: an interrupted run must not wait at exit for a notebook to finish
    slots = [threading.Thread(target=slot, args=(k,), daemon=True, name=f"slot{i}")
             for i, k in enumerate(kernels)]
    for t in slots:
        t.start()
    progress = Progress("search", len(todo), say=say, weights=cost_weights(todo))
    try:
        while len(results) < len(todo):
            try:
                r = done.get(timeout=2)
            except queue.Empty:
                recorded = sum(len(list((c.dir / "trials").glob("trial_*.json"))) for c in todo)
                progress.tick([f"{c} for {clock(time.time() - t)}"
                               for c, t in list(running.items())],
                              extra=f"{recorded} trial record(s) in these cells")
                continue
            results[r["cell"]] = r
            progress.done(r["cell"], f"{r['status']} in {r['wall_s']:.0f} s"
                          + (f" ({r['error']})" if r["error"] else ""))
    except KeyboardInterrupt:
        progress.close()
        # the kernels run in sessions of their own, so Ctrl-C reaches only this process:
        # start no further cell, interrupt the running ones (the trial ends FAILED, is
        # recorded, does not count, and its parameters are queued again) and give them a
        # moment to stop; whatever still runs is killed with its kernel by the caller
        stop.set()
        deadline = time.time() + 20
        while any(t.is_alive() for t in slots) and time.time() < deadline:
            for k in kernels:  # again every 2 s: a kernel between two cells ignores it
                k.interrupt()
            for t in slots:
                t.join(timeout=1)
        raise
    return results


def run_finals(sweep: str, name: str, cfg: SweepConfig, jobs: int, threads: int, force: bool,
               results: dict) -> list[Cell]:
    """The final evaluation of every cell without a complete one: one process per job slot
    (the imports are paid once per slot, not once per cell) takes the next unclaimed cell, the
    largest budgets first, so the slots finish together. A failure is marked in ``results``;
    returns the cells it evaluated."""
    finals = [c for c in cells(sweep, cfg) if force or not final_done(c, cfg)]
    finals.sort(key=lambda c: cost_rank(c, cfg))
    if not finals:
        return finals
    claims = paths.SWEEPS / name / ".final_claims"
    shutil.rmtree(claims, ignore_errors=True)  # this driver holds the sweep lock
    claims.mkdir(parents=True)
    n = min(jobs, len(finals))
    logs = [paths.SWEEPS / name / f"final.{i}.log" for i in range(n)]
    args = ["final", "--sweep", sweep, *[x for c in finals for x in ("--cell", c.id)],
            "--threads", str(threads), "--held-by-driver", "--claims", str(claims)]
    say(f"final evaluation of {len(finals)} cell(s), {n} at a time (logs: "
        f"{paths.rel(paths.SWEEPS / name)}/final.<slot>.log)")
    progress = Progress("final", len(finals), say=say, weights=cost_weights(finals))
    try:
        with ThreadPoolExecutor(max_workers=n) as pool:
            futures = [pool.submit(_subprocess, args, log) for log in logs]
            seen: set[str] = set()
            while not all(f.done() for f in futures):
                wait(futures, timeout=5)
                for c in finals:  # a cell is done when its final.json is complete
                    if c.id not in seen and final_done(c, cfg):
                        seen.add(c.id)
                        progress.done(c.id, "evaluated")
                progress.tick([c.id for c in finals if c.id not in seen
                               and (claims / c.id).exists()])
    finally:
        progress.close()
        shutil.rmtree(claims, ignore_errors=True)
    for c in finals:
        if not final_done(c, cfg):
            results.setdefault(c.id, {})["status"] = "final failed"
            say(f"  {c.id}: final evaluation failed (see the final.<slot>.log files in "
                f"{paths.rel(paths.SWEEPS / name)})")
    return finals


def run_report(sweep: str, name: str, kernel: notebook.Kernel, changed: bool) -> int:
    """The scaling report when anything changed, it was rendered from other inputs (an edited
    sweep file, another final evaluation) or it is missing or torn; its exit status."""
    rendered = paths.SWEEPS / name / "report_inputs.json"
    try:
        stale = read_json(rendered) != report_inputs(sweep, load_sweep(sweep))
    except (OSError, CorruptFileError):
        stale = True
    if changed or stale or any(not notebook.is_complete(paths.SWEEPS / name / nb)
                               or not (paths.REPORTS / name / html).exists()
                               for nb, html in report_pages(sweep)):
        return make_report(sweep, kernel=kernel)
    return 0


def summarise(sweep: str, name: str, cfg: SweepConfig, results: dict, t0: float, jobs: int,
              stages: dict) -> int:
    """Index of reports, status table, wall time and training share (``last_run.json``)."""
    from ..reports.index import write_index

    table = status_table(sweep, cfg, results)
    say("\n" + table.to_string(index=False))
    use = utilization(sweep, cfg, t0, time.time() - t0, jobs, stages)
    last = paths.SWEEPS / name / "last_run.json"
    if use["trial_s"] + use["final_train_s"] > 0 or not last.exists():
        write_json(last, use)
    else:  # a rerun with nothing to train keeps the timings of the run that did the work
        say(f"nothing was trained; {paths.rel(last)} keeps the last working run's timings")
    write_index()
    trained = (f"training (trials {use['trial_s']:.0f} s, final evaluation "
               f"{use['final_train_s']:.0f} s) filled {use['training_share']:.0%} of {jobs} "
               f"slot(s)" if use["trial_s"] + use["final_train_s"] > 0 else "nothing to train")
    say(f"\nwall time {use['wall_s']:.0f} s; {trained}; reports in "
         f"{paths.rel(paths.REPORTS / name)}/")
    gone = orphans(sweep, cfg)
    if gone:
        say(f"orphan cells, no longer in the sweep file and left out of the reports: "
            f"{', '.join(gone)} (`make prune SWEEP={name}` moves them aside)")
    failed = [k for k, r in results.items() if "failed" in r.get("status", "")]
    if failed:
        say(f"FAILED: {', '.join(failed)}")
    return 1 if failed else 0


def report_pages(sweep: str) -> list[tuple[str, str]]:
    """The report notebooks of ``sweep`` and the HTML page each renders to: the scaling report,
    and for a sweep with a data axis the joint N x D report."""
    pages = [("04_scaling_report.ipynb", "scaling_report.html")]
    cfg = load_sweep(sweep)
    if cfg.data_sizes:
        pages.append(("06_joint_scaling.ipynb", "joint_scaling.html"))
    if cfg.data.panel:
        pages.append(("07_panel_report.ipynb", "panel_report.html"))
    return pages


def make_report(sweep: str, kernel: notebook.Kernel | None = None) -> int:
    """Execute and render the sweep's report notebooks (:func:`report_pages`); 1 when one
    failed."""
    name = Path(sweep).stem
    rc = 0
    pages = report_pages(sweep)
    prog = Progress("report", len(pages), say=say)
    for nb, html in pages:
        t0 = time.time()
        with Ticking(prog, [nb.removesuffix(".ipynb")]):  # never silent: a report may take
            rc |= render(sweep, nb, paths.REPORTS / name / html, kernel)  # minutes
        prog.done(nb.removesuffix(".ipynb"), f"rendered in {time.time() - t0:.0f} s")
    prog.close()
    if rc == 0:  # what the pages were rendered from: a later run re-renders when it changes
        write_json(paths.SWEEPS / name / "report_inputs.json",
                   report_inputs(sweep, load_sweep(sweep)))
    from ..reports.index import write_index

    say(f"index of every report: {paths.rel(write_index())}")
    if rc == 0:
        say_verdicts(name)
    return rc


def say_verdicts(name: str) -> None:
    """The verdicts the reports wrote, per horizon: in N (the scaling report's bottom line) and,
    with a data axis, in D."""
    from ..core.provenance import read_json

    for file, head in (("verdict.json", "verdict in N"), ("joint_verdict.json", "verdict in D")):
        path = paths.SWEEPS / name / file
        if not path.exists():
            continue
        data = read_json(path)
        mde = data.get("mde80") or []
        for i, line in enumerate(data.get("lines") or []):
            m = mde[i] if i < len(mde) else None
            say(f"{head}: {line}" + (f" Detectable with 80% power: {m:.4f} per decade."
                                     if m is not None else ""))


def render(sweep: str, notebook_name: str, html: Path,
           kernel: notebook.Kernel | None = None) -> int:
    """Execute a report notebook for ``sweep`` (executed copy in the sweep's folder) and render
    it to ``html``, even when it failed; 1 when it failed."""
    out = paths.SWEEPS / Path(sweep).stem / notebook_name
    say(f"report: rendering {notebook_name} ...")
    try:
        notebook.execute(paths.NOTEBOOKS / notebook_name, out, {"sweep": sweep}, kernel=kernel)
        rc = 0
    except Exception as e:
        say(f"report failed ({notebook_name}): {type(e).__name__}: "
            f"{str(e).strip().splitlines()[-1][:300]}")
        rc = 1
    if out.exists():
        notebook.render_html(out, html)
        say(f"report: {paths.rel(html)}")
    return rc


def _errors() -> tuple[type, ...]:
    """Failures that are the input's fault or the environment's: one ``error:`` line, exit 2."""
    from ..core.hardware import PreflightError
    from ..data.splits import SplitError
    from ..search.study import DatasetChanged

    return (ConfigError, StorageError, ds.DataError, SplitError, BudgetError, CorruptFileError,
            DatasetChanged, LockError, PreflightError)


def _keep_traceback(name: str) -> None:
    """The full traceback of the last error, for a sweep that has run before (a bad input to a
    new sweep writes nothing): ``outputs/sweeps/<sweep>/last_error.log``."""
    import traceback

    folder = paths.SWEEPS / name
    if folder.is_dir() and any(p.is_dir() for p in folder.iterdir()):
        from ..core.provenance import atomic_write_bytes

        atomic_write_bytes(folder / "last_error.log", scrub(traceback.format_exc()).encode(),
                           mode=0o600)


def main(argv: list[str] | None = None) -> int:
    """The command line; input errors are one ``error:`` line and exit status 2."""
    p = argparse.ArgumentParser(prog="python -m lib.run.sweep", description=__doc__.splitlines()[0])
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
    for cmd in ("status", "regenerate", "report", "prune"):
        sub.add_parser(cmd).add_argument("--sweep", default="default")
    d = sub.add_parser("dashboard", help="optuna-dashboard on 127.0.0.1 (no login)")
    d.add_argument("--sweep", default="default")
    d.add_argument("--port", type=int, default=8080)
    d.add_argument("--write", action="store_true",
                   help="let the dashboard change the storage (delete studies, write notes)")
    f = sub.add_parser("final", help="multi-seed test evaluation of a cell's best configurations")
    f.add_argument("--sweep", default="default")
    f.add_argument("--cell", action="append", default=None,
                   help="a cell id (repeatable); default: every cell")
    f.add_argument("--threads", type=int, default=None)
    f.add_argument("--held-by-driver", action="store_true", help=argparse.SUPPRESS)
    f.add_argument("--claims", type=Path, default=None, help=argparse.SUPPRESS)
    c = sub.add_parser("collect", help="merge records from other machines' sweep folders")
    c.add_argument("--sweep", default="default")
    c.add_argument("sources", nargs="+")
    a = p.parse_args(argv)
    name = Path(a.sweep).stem
    try:
        if a.cmd == "run":
            return run(a.sweep, a.jobs, a.force, a.workers, not a.no_final, not a.no_report)
        if a.cmd == "worker":
            return work(a.sweep, a.cell, a.threads, a.worker_id)
        if a.cmd == "status":
            cfg = load_sweep(a.sweep)
            say(status_table(a.sweep, cfg).to_string(index=False))
            say(f"report: {report_state(a.sweep, cfg, report_pages(a.sweep))} "
                f"({paths.rel(paths.REPORTS / name)}/)")
            gone = orphans(a.sweep, cfg)
            if gone:
                say(f"orphan cells (not in the sweep file, left out of the reports; `make prune "
                    f"SWEEP={name}` moves them aside): {', '.join(gone)}")
            return 0
        if a.cmd == "dashboard":
            return dashboard(a.sweep, a.port, write=a.write)
        if a.cmd == "collect":
            return collect(a.sweep, a.sources)
        if a.cmd == "final" and a.held_by_driver:  # the driver holds the lock
            return final_cells(a.sweep, a.cell, a.threads, a.claims)
        load_sweep(a.sweep)  # a bad sweep file is an error before any lock file is written
        with SweepLock(name):
            if a.cmd == "regenerate":
                return regenerate(a.sweep)
            if a.cmd == "report":
                return make_report(a.sweep)
            if a.cmd == "prune":
                return prune(a.sweep, load_sweep(a.sweep))
            if a.cmd == "final":
                return final_cells(a.sweep, a.cell, a.threads)
    except _errors() as e:
        say(f"error: {scrub(str(e))}")
        _keep_traceback(name)
        return 2
    except KeyboardInterrupt:
        say("interrupted; run the same command to resume")
        return 130
    except OSError as e:
        if e.errno not in (errno.EROFS, errno.EACCES, errno.EPERM):
            raise
        where = e.filename or str(paths.ROOT)
        say(f"error: cannot write {where}: {os.strerror(e.errno)}; the workbench writes its "
            f"records under {paths.SWEEPS} and {paths.REPORTS} (set WORKBENCH_ROOT to a "
            f"writable folder)")
        return 2
    return 1


if __name__ == "__main__":
    sys.exit(main())

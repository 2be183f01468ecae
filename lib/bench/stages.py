"""Benchmarks of the stages around training (``make bench``): worker layouts, the data stage's wall
time, the orchestration overhead of the smoke sweep, and the stage timings of the last default
sweep."""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from ..core import paths
from ..model.budget import budget_grid, parse_budget
from ..model.model import flops_per_sample
from .step import BASE, GRID, SMALL_GRID, _row_worker


def arch_for(budget: str, tokenizer: str):
    """The benchmark's architecture for a budget: the closest of its grid (below 50k, of the
    default sweep's small widths)."""
    grid = SMALL_GRID if parse_budget(budget) < 50_000 else GRID
    return budget_grid(budget, replace(BASE, tokenizer=tokenizer), grid)[0]


def worker_layouts(budgets=("100k", "400k"), seconds: float = 4.0) -> list[dict]:
    """One process with 2 threads against two processes with 1 thread each (total samples/s,
    and the model FLOP rate it makes, for MFU against the machine's matmul rate): the second is
    how the default sweep runs."""
    ctx = mp.get_context("spawn")
    rows = []
    for budget in budgets:
        res = {}
        cfg = replace(arch_for(budget, "mixed").apply(BASE), dropout=0.1, norm="global")
        for layout, procs, threads in (("1x2 threads", 1, 2), ("2x1 thread", 2, 1)):
            q = ctx.Queue()
            ps = [ctx.Process(target=_row_worker, args=(cfg, seconds, 2, "off", threads, q, 256))
                  for _ in range(procs)]
            for p in ps:
                p.start()
            total = sum(q.get()["samples_per_s"] for _ in ps)
            for p in ps:
                p.join()
            res[layout] = total
        rows.append({"budget": budget, **res, "faster": max(res, key=res.get),
                     "flops_per_sample": flops_per_sample(cfg), "batch": 256})
    return rows


def data_stage_seconds() -> float:
    """Seconds to build the default dataset from the shipped bars (the data stage)."""
    from ..core.config import DataConfig
    from ..data.dataset import build_dataset

    with tempfile.TemporaryDirectory() as tmp:
        old = paths.ROOT
        paths.set_root(tmp)
        try:
            t0 = time.perf_counter()
            build_dataset(DataConfig())
            return time.perf_counter() - t0
        finally:
            paths.set_root(old)


def orchestration_overhead(sweep: str = "smoke") -> dict:
    """Run a sweep's cells (no final evaluation, no report) in a temporary root and report the
    share of its slot time (jobs x wall of the cell stage) not spent inside trials."""
    with tempfile.TemporaryDirectory() as tmp:
        env = dict(os.environ, WORKBENCH_ROOT=tmp)
        # the dataset is prepared first so that only the sweep's own orchestration is timed
        subprocess.run([sys.executable, "-c", "from lib.core.config import DataConfig;"
                        "from lib.data.dataset import build_dataset; build_dataset(DataConfig())"],
                       env=env, check=True, cwd=paths.CODE_ROOT)
        subprocess.run([sys.executable, "-m", "lib.run.sweep", "run", "--sweep", sweep,
                        "--no-final", "--no-report"], env=env, check=True, cwd=paths.CODE_ROOT,
                       capture_output=True)
        use = json.loads((Path(tmp) / "outputs/sweeps" / sweep / "last_run.json").read_text())
        n_trials = len(list((Path(tmp) / "outputs/sweeps" / sweep).glob("*/trials/trial_*.json")))
    cells_s = use["stages"]["cells_s"]
    share = use["cells_stage_trial_share"]
    return {"sweep": sweep, "cells_stage_s": cells_s, "jobs": use["jobs"],
            "inside_trials_s": use["trial_s"], "overhead_share": 1 - share, "trials": n_trials,
            "overhead_per_cell_s": (use["jobs"] * cells_s - use["trial_s"])
            / max(len(list(_cells(sweep))), 1)}


def _cells(sweep: str):
    from ..search.cells import cells
    from ..search.sweepfile import load_sweep

    return cells(sweep, load_sweep(sweep))


def last_sweep_stages(sweep: str = "default") -> dict | None:
    """The stage timings of the sweep's last ``make sweep`` (``last_run.json``), when there is
    one: the benchmark reports where the time of the real job went without running it again."""
    path = paths.SWEEPS / sweep / "last_run.json"
    if not path.exists():
        return None
    use = json.loads(path.read_text())
    return {"sweep": sweep, "wall_s": use.get("wall_s"), "stages": use.get("stages", {}),
            "trial_s": use.get("trial_s"), "final_train_s": use.get("final_train_s"),
            "training_share": use.get("training_share"), "file": paths.rel(path)}

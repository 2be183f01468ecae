"""Benchmarks (``make bench``): training throughput, model FLOP rate and MFU, peak memory, the data
stage's wall time, the orchestration overhead of the smoke sweep, and worker layouts.

MFU = achieved model FLOP rate (analytic FLOPs of forward + backward, ``model.flops_per_sample``)
divided by the matrix-multiply rate measured in the same run on the same device (fp32 on CPU,
bf16 on CUDA). Prints a table and writes ``outputs/bench/<timestamp>.json``. Targets (2-core
CPU, mixed tokenizer): MFU >= 45% at about 2M parameters and >= 55% at about 20M. Rows at 10k,
100k, 2M and 20M (200M and 2B on CUDA), each also with 4 models trained together as one stack
(the speed-up against one model alone); the stage timings of the last default sweep; with
``--against COMMIT`` the trial loop of this checkout and of COMMIT side by side
(:mod:`lib.sidebyside`).

Each training row also says where a step's time goes (:func:`time_split`): matrix products, the
attention kernel and everything else, and the ceiling that split puts on any speed-up that leaves
those two kernels as they are.

About 450 lines, on purpose: every benchmark of ``make bench`` and the table it prints in one file,
so that a reader sees what is measured next to how it is reported.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import torch

from . import paths
from .budget import budget_grid, fmt_count, parse_budget
from .config import GridConfig, ModelConfig
from .model import PatchTST, flops_per_sample
from .provenance import hardware_info, now_iso, write_json

BASE = ModelConfig(context_len=80, n_features=25, patch_len=16, stride=8, dropout=0.0)
GRID = GridConfig(d_model=[32, 64, 128, 256, 512, 1024, 2048, 4096],
                  n_layers=[1, 2, 3, 4, 6, 8, 12, 16], n_heads=[4, 8, 16], ff_ratio=[4],
                  tolerance=0.35)
TOGETHER = 4  # models per stack in the batched rows (the default sweep's final seeds)
SMALL_GRID = GridConfig(d_model=[8, 12, 16, 24, 32], n_layers=[1, 2, 3, 4], n_heads=[1, 2, 4],
                        ff_ratio=[2, 4], tolerance=0.35)


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def matmul_rate(device: torch.device, n: int = 2048, seconds: float = 2.0) -> float:
    """Sustained matrix-multiply rate in FLOP/s (fp32 on CPU, bf16 on CUDA)."""
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    n = 8192 if device.type == "cuda" else n
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    a @ b
    _sync(device)
    reps, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        a @ b
        reps += 1
        _sync(device)
    return 2 * n**3 * reps / (time.perf_counter() - t0)


class Timer:
    """Wall time of GPU work by CUDA events (recorded in the stream, read after a synchronise);
    ``time.perf_counter`` on the CPU."""

    def __init__(self, device: torch.device):
        self.cuda = device.type == "cuda"

    def __enter__(self) -> Timer:
        if self.cuda:
            self._start = torch.cuda.Event(enable_timing=True)
            self._end = torch.cuda.Event(enable_timing=True)
            self._start.record()
        else:
            self._t0 = time.perf_counter()
        return self

    def __exit__(self, *exc) -> None:
        if self.cuda:
            self._end.record()
            self._end.synchronize()
            self.seconds = self._start.elapsed_time(self._end) / 1000
        else:
            self.seconds = time.perf_counter() - self._t0


MATMUL_OPS = ("aten::mm", "aten::addmm", "aten::bmm", "aten::baddbmm")


def time_split(step, n: int = 3) -> dict:
    """Where ``n`` calls of ``step`` spend their time on the CPU: the self time of every operator
    (``torch.profiler``) in matrix products (``MATMUL_OPS``), the attention kernel
    (``scaled_dot_product_*``) and everything else (elementwise work, norms, dropout's noise,
    copies, the optimizer), as shares. ``ceiling`` = 1 / (matmul + attention): how many times
    faster the step could become if everything else took no time at all, the two kernels
    unchanged. Python's own time between operators is not in the shares."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(n):
            step()
    parts = {"matmul": 0.0, "attention": 0.0, "other": 0.0}
    for e in prof.key_averages():
        part = ("matmul" if e.key in MATMUL_OPS else
                "attention" if "scaled_dot_product" in e.key else "other")
        parts[part] += e.self_cpu_time_total
    total = sum(parts.values()) or 1.0
    shares = {k: v / total for k, v in parts.items()}
    kernels = shares["matmul"] + shares["attention"]
    return {**shares, "ceiling": 1 / kernels if kernels else None}


def train_throughput(cfg: ModelConfig, device: torch.device, batch: int = 64,
                     seconds: float = 3.0, min_steps: int = 2,
                     compile_backend: str = "off", members: int = 1) -> dict:
    """Samples/s of full training steps (forward, backward, AdamW step) on random data, with the
    trainer's settings: bf16 autocast and fused AdamW on CUDA, the micro-batch planned from the
    memory estimate (gradients accumulated to ``batch``). ``members`` > 1 trains that many models
    together as one stack (:mod:`lib.ensemble`); samples count every model's."""
    from .config import TrainConfig
    from .hardware import available_memory
    from .memory import choose_micro_batch
    from .model import fit_input_stats
    from .trainer import training_step

    torch.manual_seed(0)
    x = torch.randn(batch, cfg.context_len, cfg.n_features, device=device)
    with torch.device(device):  # parameters created on the device (a 2B model: no host copy)
        models = [PatchTST(cfg) for _ in range(members)]
    for m in models:
        fit_input_stats(m, x)
    autocast = device.type == "cuda"
    # the trainer's own step (stack, dropout noise per seed, AdamW, schedule, clipping,
    # accumulation), not a copy of it
    model, _, train_step, _, _ = training_step(
        models, TrainConfig(lr=1e-4, batch_size=batch, compile=compile_backend),
        list(range(members)), device, 10**6, autocast)
    available, _ = available_memory(device)
    micro = (choose_micro_batch(cfg, batch, available / members, autocast) if available
             else batch)
    model.train()
    x = x.unsqueeze(0).expand(members, *x.shape).contiguous()  # each model's batch
    y = torch.randint(0, 2, (members, batch), device=device).float()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()

    def step():
        train_step(x, y, micro)

    t_warm = time.perf_counter()
    step()  # warm-up (and compilation) outside the timed window
    _sync(device)
    warmup_s = time.perf_counter() - t_warm
    steps, t0 = 0, time.perf_counter()
    with Timer(device) as timer:
        while steps < min_steps or time.perf_counter() - t0 < seconds:
            step()
            steps += 1
    sps = steps * batch * members / timer.seconds
    # on CUDA the operators' CPU time says nothing about the kernels: not measured there
    # (one profiled step when a step takes over half a second: 14 s each at 20M independent)
    split = (time_split(step, 3 if timer.seconds / steps < 0.5 else 1) if device.type == "cpu"
             else None)
    out = {"samples_per_s": sps, "time_split": split, "steps": steps, "micro_batch": micro,
           "warmup_s": warmup_s, "models": members, "batch": batch,
           "timing": "cuda events" if device.type == "cuda" else "perf_counter",
           "model_flops_per_s": sps * flops_per_sample(cfg),
           "process_max_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
    if device.type == "cuda":
        out["cuda_peak_mb"] = torch.cuda.max_memory_allocated() / 2**20
    return out


def _row_worker(cfg, seconds, min_steps, compile_backend, threads, q, batch=64, members=1):
    torch.set_num_threads(threads)
    q.put(train_throughput(cfg, torch.device("cpu"), batch=batch, seconds=seconds,
                           min_steps=min_steps, compile_backend=compile_backend, members=members))


def measure_row(cfg: ModelConfig, device: torch.device, seconds: float, min_steps: int,
                compile_backend: str, isolate: bool = True, batch: int = 64,
                members: int = 1) -> dict:
    """One benchmark row. On the CPU it runs in a fresh process of its own (``isolate``), so that
    the peak RSS is this row's (a process's peak never goes down); on CUDA the peak allocation is
    reset."""
    if device.type != "cpu" or not isolate:
        r = train_throughput(cfg, device, batch=batch, seconds=seconds, min_steps=min_steps,
                             compile_backend=compile_backend, members=members)
        if device.type == "cuda":
            torch.cuda.empty_cache()  # the previous model's blocks, before the next size
        return r
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    proc = ctx.Process(target=_row_worker, args=(cfg, seconds, min_steps, compile_backend,
                                                 torch.get_num_threads(), q, batch, members))
    proc.start()
    try:
        return q.get(timeout=600)
    finally:
        proc.join()


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
    from .config import DataConfig
    from .dataset import build_dataset

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
        subprocess.run([sys.executable, "-c", "from lib.config import DataConfig;"
                        "from lib.dataset import build_dataset; build_dataset(DataConfig())"],
                       env=env, check=True, cwd=paths.CODE_ROOT)
        subprocess.run([sys.executable, "-m", "lib.sweep", "run", "--sweep", sweep,
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
    from .cells import cells
    from .sweepfile import load_sweep

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


def run(quick: bool = False, sweep: bool = True, layouts: bool = True,
        device_name: str = "auto", compile_backend: str = "off",
        against: str | None = None) -> dict:
    """Every benchmark of ``make bench``; the result written under outputs/bench/."""
    from .hardware import resolve_device

    device = resolve_device(device_name)
    seconds = 0.5 if quick else 3.0
    # the best of several sizes is the denominator, so MFU is never flattered by an unlucky size
    sizes = (1024,) if quick else (1024, 2048, 3072)
    peak = max(matmul_rate(device, n, seconds=0.5 if quick else 1.5) for n in sizes)
    budgets = ["100k"] if quick else ["10k", "100k", "2M", "20M"]
    if device.type == "cuda" and not quick:
        budgets += ["200M", "2B"]
    rows = []
    for budget in budgets:
        # the default sweep trains its small models with batches of 128-256
        batch = 256 if parse_budget(budget) < 1_000_000 else 64
        for tok, members in (("mixed", 1), ("mixed", TOGETHER), ("independent", 1)):
            if tok == "independent" and device.type == "cpu" and budget == "20M" and not quick:
                seconds_tok = 1.0  # a 20M channel-independent step takes seconds on 2 cores
            else:
                seconds_tok = seconds
            if members > 1 and parse_budget(budget) > 20_000_000:
                continue  # K copies of a 200M/2B model: not what stacking is for
            arch = arch_for(budget, tok)
            cfg = replace(arch.apply(BASE), tokenizer=tok, dropout=0.1, norm="global")
            r = measure_row(cfg, device, seconds_tok, 1 if quick else 2, compile_backend,
                            isolate=not quick, batch=batch, members=members)
            rows.append({"budget": budget, "tokenizer": tok, "arch": arch.id,
                         "n_params": arch.n_params, **r, "mfu": r["model_flops_per_s"] / peak})
            if members > 1:
                alone = next(x for x in rows if x["budget"] == budget and x["models"] == 1
                             and x["tokenizer"] == tok)
                rows[-1]["speedup_vs_alone"] = r["samples_per_s"] / alone["samples_per_s"]
            # one line per row as it is measured: a run cut short by a timeout still shows them
            print(f"measured {budget} {tok} {arch.id} x{members}: {r['samples_per_s']:.1f} "
                  f"samples/s, micro-batch {r['micro_batch']}, MFU {rows[-1]['mfu']:.1%} (first "
                  f"matmul reading)", file=sys.stderr, flush=True)
    # measured again after the rows: the larger of the two readings is the denominator, so a slow
    # phase of a shared machine during the first reading cannot flatter the MFU
    peak_after = max(matmul_rate(device, n, seconds=0.5 if quick else 1.5) for n in sizes)
    if peak_after > peak:
        for r in rows:
            r["mfu"] = r["model_flops_per_s"] / peak_after
    peak_readings = [peak, peak_after]
    peak = max(peak_readings)
    out = {"device": str(device), "hardware": hardware_info(), "threads": torch.get_num_threads(),
           "matmul_readings_flops_per_s": peak_readings,
           "matmul_flops_per_s": peak, "precision": "bf16" if device.type == "cuda" else "fp32",
           "training": rows, "recorded_at": now_iso(), "quick": quick,
           "compile": compile_backend, "last_sweep": last_sweep_stages()}
    if against:
        from .sidebyside import compare

        out["side_by_side"] = compare(against, sizes=("100k",) if quick else
                                      ("10k", "100k", "320k"), repeats=1 if quick else 3)
    if not quick:
        out["data_stage_s"] = data_stage_seconds()
    if sweep and not quick:
        out["orchestration"] = orchestration_overhead()
    if layouts and not quick and device.type == "cpu":
        out["worker_layouts"] = worker_layouts()
    return out


def _split_cells(row: dict) -> str:
    split = row.get("time_split")
    if not split:
        return f"{'-':>14} {'-':>7}"
    shares = "/".join(f"{100 * split[k]:.0f}" for k in ("matmul", "attention", "other"))
    ceiling = f"{split['ceiling']:.2f}x" if split["ceiling"] else "-"
    return f"{shares:>14} {ceiling:>7}"


def table(result: dict) -> str:
    """The benchmark result as the text ``make bench`` prints."""
    readings = " / ".join(f"{v / 1e9:.1f}" for v in result.get("matmul_readings_flops_per_s", []))
    lines = [f"device {result['device']} ({result['precision']}), {result['threads']} threads, "
             f"matmul {result['matmul_flops_per_s'] / 1e9:.1f} GFLOP/s (before / after the rows: "
             f"{readings}); dropout 0.1, global norm",
             f"{'budget':>6} {'tokenizer':>11} {'arch':>16} {'params':>7} {'models':>6} "
             f"{'batch':>5} {'samples/s':>10} {'GFLOP/s':>8} {'MFU':>6} {'vs 1':>5} {'micro':>5} "
             f"{'peak MB':>8} {'mm/attn/rest %':>14} {'ceiling':>7}"]
    for r in result["training"]:
        peak = r.get("cuda_peak_mb", r["process_max_rss_mb"])
        vs = f"{r['speedup_vs_alone']:.2f}x" if "speedup_vs_alone" in r else ""
        lines.append(f"{r['budget']:>6} {r['tokenizer']:>11} {r['arch']:>16} "
                     f"{fmt_count(r['n_params']):>7} {r.get('models', 1):>6} "
                     f"{r.get('batch', 64):>5} {r['samples_per_s']:>10.1f} "
                     f"{r['model_flops_per_s'] / 1e9:>8.1f} {r['mfu']:>6.1%} {vs:>5} "
                     f"{r.get('micro_batch', 64):>5} {peak:>8.0f} {_split_cells(r)}")
    lines.append("models > 1: trained together as one stack (lib/ensemble.py); 'vs 1': samples/s "
                 "against the same model alone")
    lines.append("mm/attn/rest: a step's operator time in matrix products, the attention kernel "
                 "and the rest (elementwise, norms, noise, copies, optimizer); ceiling: the "
                 "speed-up left if the rest took no time (not measured on CUDA)")
    lines.append("peak MB: " + (
        "CUDA max allocated" if result["device"].startswith("cuda") else
        "max RSS of one process, cumulative over the rows (quick mode)" if result["quick"] else
        "max RSS of the row's own process (interpreter included)"))
    if "data_stage_s" in result:
        lines.append(f"data stage (embedded ^GSPC a25): {result['data_stage_s']:.1f} s")
    if "orchestration" in result:
        o = result["orchestration"]
        lines.append(f"{o['sweep']} sweep cells: {o['jobs']} slot(s) x {o['cells_stage_s']:.1f} "
                     f"s, {o['inside_trials_s']:.1f} s inside {o['trials']} trials -> "
                     f"orchestration overhead {o['overhead_share']:.0%} "
                     f"({o['overhead_per_cell_s']:.1f} s a cell)")
    last = result.get("last_sweep")
    if last:
        stages = ", ".join(f"{k[:-2]} {v:.0f} s" for k, v in last["stages"].items())
        lines.append(f"last {last['sweep']} sweep ({last['file']}): wall {last['wall_s']:.0f} s = "
                     f"{stages}; training share {last['training_share']:.0%}")
    for r in result.get("side_by_side", []):
        lines.append(f"side by side {r['size']}: {r['commit']} {r['then_s']:.2f} s, this checkout "
                     f"{r['now_s']:.2f} s -> {r['speedup']:.2f}x (median of "
                     f"{len(r['runs']['now'])}, alternated in one process)")
    for w in result.get("worker_layouts", []):
        mfu = {k: w[k] * w.get("flops_per_sample", 0) / result["matmul_flops_per_s"]
               for k in ("1x2 threads", "2x1 thread")}
        lines.append(f"{w['budget']}: 1 worker x 2 threads {w['1x2 threads']:.0f} samples/s "
                     f"(MFU {mfu['1x2 threads']:.1%}), 2 workers x 1 thread "
                     f"{w['2x1 thread']:.0f} samples/s (MFU {mfu['2x1 thread']:.1%}, as the "
                     f"sweep runs) -> {w['faster']}")
    return "\n".join(lines)


def main(argv=None) -> int:
    """``python -m lib.bench``: run the benchmarks and print their table."""
    p = argparse.ArgumentParser(prog="python -m lib.bench", description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="100k only, short timings (for tests)")
    p.add_argument("--no-sweep", action="store_true", help="skip the orchestration benchmark")
    p.add_argument("--no-layouts", action="store_true", help="skip the worker-layout benchmark")
    p.add_argument("--device", default="auto")
    p.add_argument("--compile", default="off", metavar="BACKEND",
                   help="torch.compile backend for the training benchmark (inductor, ...)")
    p.add_argument("--against", default=None, metavar="COMMIT",
                   help="also time this checkout's trial loop against COMMIT's, side by side")
    a = p.parse_args(argv)
    result = run(a.quick, not a.no_sweep, not a.no_layouts, a.device, a.compile, a.against)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    path = paths.OUTPUTS / "bench" / f"{stamp}.json"
    write_json(path, result)
    print(table(result))
    print(f"written {paths.rel(path)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""``make bench`` (``python -m lib.bench``): every benchmark, the table it prints and the JSON it
writes to ``outputs/bench/<timestamp>.json``.

Rows at 10k, 100k, 2M and 20M (200M and 2B on CUDA), each also with 4 models trained together as
one stack (the speed-up against one model alone); the stage timings of the last default sweep;
with ``--against COMMIT`` the trial loop of this checkout and of COMMIT side by side
(:mod:`lib.bench.sidebyside`).
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace

import torch

from ..core import paths
from ..core.provenance import hardware_info, now_iso, write_json
from ..model.budget import fmt_count, parse_budget
from .stages import (
    arch_for,
    data_stage_seconds,
    last_sweep_stages,
    orchestration_overhead,
    worker_layouts,
)
from .step import BASE, TOGETHER, matmul_rate, measure_row


def run(quick: bool = False, sweep: bool = True, layouts: bool = True,
        device_name: str = "auto", compile_backend: str = "off",
        against: str | None = None) -> dict:
    """Every benchmark of ``make bench``; the result written under outputs/bench/."""
    from ..core.hardware import resolve_device

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
    lines.append("models > 1: trained together as one stack (lib/model/ensemble.py); 'vs 1': "
                 "samples/s against the same model alone")
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

"""Where the final evaluation's training time goes, and the most any faster code could gain.

For every cell of a finished sweep, its selected configuration's first group of seeds is built as
the final evaluation trains it (``final.together`` seeds stacked,
``lib.train.trainer.training_step``), a few steps run on the cell's real training windows with 1
thread (as a job slot runs), and ``lib.bench.step.time_split`` splits a step's operator time into
matrix products, the attention kernel and the rest. Weighted by each cell's training time (step time
x the steps its seeds' records say they trained), the result bounds the final stage's speed-up at
equal work when the two kernels stay as they are. Usage (after ``make sweep``; it reads
``final.json`` of every cell):

    .venv/bin/python bench/final_split.py [SWEEP]
"""

from __future__ import annotations

import math
import sys
import time
from functools import partial

import numpy as np
import torch

from lib.bench.step import time_split
from lib.core.provenance import read_json
from lib.data.cell_data import cell_splits
from lib.model.budget import base_model, budget_grid
from lib.search.cells import cells
from lib.search.sweepfile import load_sweep
from lib.train.trainer import training_step
from lib.train.trial import build, train_config


def main(sweep: str = "default") -> None:
    torch.set_num_threads(1)
    cpu = torch.device("cpu")
    cfg = load_sweep(sweep)
    total = {"matmul": 0.0, "attention": 0.0, "other": 0.0}
    for cell in cells(sweep, cfg):
        final = read_json(cell.dir / "final.json")
        entry = min(final["configs"].values(), key=lambda e: e["rank"])
        params, seeds = entry["params"], [int(s) for s in entry["seeds"]]
        _, _, splits = cell_splits(cfg, cell)
        grid = {a.id: a for a in budget_grid(cell.budget, base_model(cfg, len(splits.columns)),
                                             cfg.grid)}
        size = cfg.final.together or len(seeds)
        group = seeds[:size]
        models = [build(cfg, splits, grid[params["arch"]], params, s)[0] for s in group]
        b = params["batch_size"]
        net, _, step, _, _ = training_step(models, train_config(cfg, params, group[0], 1), group,
                                        cpu, 10**6, False)
        net.train()
        k = len(models)
        X = torch.as_tensor(splits.train.X[:b]).unsqueeze(0).expand(k, -1, -1, -1).contiguous()
        y = torch.as_tensor(splits.train.y[:b]).float().unsqueeze(0).expand(k, -1).contiguous()
        for _ in range(3):
            step(X, y, b)
        t0 = time.perf_counter()
        for _ in range(8):
            step(X, y, b)
        seconds = (time.perf_counter() - t0) / 8
        split = time_split(partial(step, X, y, b), n=5)
        # the steps a seed took (its epochs, passes included, from its record) x the groups
        windows_seen = np.mean([s["compute"]["windows_seen"] for s in entry["seeds"].values()])
        weight = seconds * math.ceil(windows_seen / b) * math.ceil(len(seeds) / size)
        for part in total:
            total[part] += split[part] * weight
        print(f"{cell.id:10s} {params['arch']:16s} batch {b:<4d} {k} stacked: step "
              f"{seconds * 1e3:6.1f} ms, matmul {split['matmul']:.0%}, attention "
              f"{split['attention']:.0%}, rest {split['other']:.0%}", flush=True)
    whole = sum(total.values())
    kernels = total["matmul"] + total["attention"]
    print(f"weighted by each cell's training time: matmul {total['matmul'] / whole:.0%}, attention "
          f"{total['attention'] / whole:.0%}, rest {total['other'] / whole:.0%}; a step at most "
          f"{whole / kernels:.2f}x faster if the rest took no time")


if __name__ == "__main__":
    main(*sys.argv[1:])

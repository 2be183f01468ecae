"""Where the final evaluation's training time goes, and the most any faster code could gain.

For every cell of a finished sweep, its selected configuration's seeds are stacked as the final
evaluation trains them (``final.together``), a few steps run on the cell's real training windows
with 1 thread (as a job slot runs), and ``lib.bench.time_split`` splits a step's operator time into
matrix products, the attention kernel and the rest. Weighted by the steps each cell trains (its
recorded epochs), the result bounds the final stage's speed-up at equal work when the two kernels
stay as they are. Usage (after ``make sweep``; it reads ``final.json`` of every cell):

    .venv/bin/python bench/final_split.py [SWEEP]
"""

from __future__ import annotations

import sys
import time
from functools import partial

import numpy as np
import torch

from lib.bench import time_split
from lib.budget import base_model, budget_grid
from lib.cells import cells
from lib.data_axis import cell_splits
from lib.ensemble import stack
from lib.model import set_noise
from lib.provenance import read_json
from lib.steps import Noise, generators, make_step
from lib.sweepfile import load_sweep
from lib.trial import build, train_config


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
        models = [build(cfg, splits, grid[params["arch"]], params, s)[0] for s in seeds]
        model = stack(models) if len(models) > 1 else models[0]
        model.train()
        set_noise(model, Noise([generators(s, cpu)[1] for s in seeds]))
        step = make_step(model, train_config(cfg, params, seeds[0], 1), cpu, 10**6, False)
        b, k = params["batch_size"], len(models)
        X = torch.as_tensor(splits.train.X[:b]).unsqueeze(0).expand(k, -1, -1, -1).contiguous()
        y = torch.as_tensor(splits.train.y[:b]).float().unsqueeze(0).expand(k, -1).contiguous()
        for _ in range(3):
            step(X, y, b)
        t0 = time.perf_counter()
        for _ in range(8):
            step(X, y, b)
        seconds = (time.perf_counter() - t0) / 8
        split = time_split(partial(step, X, y, b), n=5)
        epochs = np.mean([s["compute"]["epochs"] for s in entry["seeds"].values()])
        weight = seconds * epochs * np.ceil(len(splits.train.y) / b)  # this cell's training time
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

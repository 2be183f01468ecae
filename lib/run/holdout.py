"""The holdout block: scored exactly once, on request, after the test evaluation.

``make holdout SWEEP=...`` (``python -m lib.run.holdout --sweep ...``). A sweep file may declare
``split.holdout_start``, a block after the test block, for data that extend past it (the user's
CSVs, Yahoo Finance). Nothing else ever builds that block. For each cell whose final evaluation is
complete, this stage re-trains the configuration the final evaluation scored first (same
architecture, settings and seeds, on the same training block: the models the test block judged,
up to the floating-point order of the threads),
fits the baselines as the final evaluation does, and scores all of them on the holdout labels,
with the paired comparisons and intervals of the test evaluation. The result goes to
``outputs/sweeps/<sweep>/holdout/<cell>.json`` and the read into the sweep's ledger.

Once written, a cell's holdout result is final: a second call prints it and refuses to score
again (there is no option to override; delete the file by hand and the ledger still shows the
first read). A cell without a complete final evaluation is refused: the holdout comes after the
test block, never instead of it.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import asdict
from pathlib import Path

import numpy as np

from ..analysis import ledger
from ..analysis.final import BASELINES, compare, comparisons, final_seeds, test_probabilities
from ..analysis.panel_eval import per_asset, window_dates
from ..core import paths
from ..core.config import ConfigError
from ..core.provenance import code_version, now_iso, read_json, write_json
from ..data.cell_data import cell_splits
from ..model.budget import base_model, budget_grid
from ..search.cells import Cell, cells
from ..search.sweepfile import load_sweep
from ..train.baselines import run_baselines
from ..train.metrics import evaluate
from ..train.trial import build, fit_many


class HoldoutError(RuntimeError):
    """The holdout cannot be scored (none declared, no final evaluation, already scored)."""


def result_path(sweep: str, cell: Cell) -> Path:
    """Where a cell's holdout result lives."""
    return paths.SWEEPS / Path(sweep).stem / "holdout" / f"{cell.id}.json"


def score_cell(sweep: str, cell: Cell, cfg, threads: int | None = None) -> dict:
    """Score ``cell``'s finally evaluated configuration and its baselines on the holdout block,
    once. Raises :class:`HoldoutError` when that is not allowed."""
    out_path = result_path(sweep, cell)
    if out_path.exists():
        raise HoldoutError(f"{cell.id}: the holdout block was already scored "
                           f"({read_json(out_path).get('scored_at')}, {paths.rel(out_path)}); it "
                           f"is scored once")
    state_path = cell.dir / "final.json"
    state = read_json(state_path) if state_path.exists() else {}
    if not state.get("complete"):
        raise HoldoutError(f"{cell.id}: no complete final evaluation; the holdout is scored "
                           f"after the test evaluation (make final)")
    best = min(state["configs"].values(), key=lambda c: c["rank"])
    seeds = [int(s) for s in best["seeds"]]
    if seeds != final_seeds(cfg)[:len(seeds)]:
        raise HoldoutError(f"{cell.id}: final.json's seeds {seeds} are not this sweep's")
    df, _, splits = cell_splits(cfg, cell, holdout=True)
    base = float(splits.train.y.mean())
    grid = {a.id: a for a in budget_grid(cell.budget, base_model(cfg, len(splits.columns)),
                                         cfg.grid)}
    arch, params = grid[best["params"]["arch"]], best["params"]
    built = [build(cfg, splits, arch, params, seed) for seed in seeds]
    models = [m for m, _ in built]
    fit_many(cfg, splits, models, params, seeds, threads)
    y = splits.test.y  # the holdout block, in the test block's place
    probs = [test_probabilities(m, splits) for m in models]
    b = run_baselines(df, splits, evaluate_test=True, seed=cfg.train.seed)
    baseline_p = {k: v["p_test"] for k, v in b.items()}
    dates = window_dates(splits)  # a panel counts by date
    result = {
        "cell": cell.as_dict(), "trial": best["trial"], "params": params, "seeds": seeds,
        "block": asdict(splits.stats.test),
        "model": {"per_seed": [evaluate(y, p, base) for p in probs],
                  "mean_probability": evaluate(y, np.mean(probs, axis=0), base)},
        "baselines": {k: v["test"] for k, v in b.items()},
        "comparisons": comparisons(y, probs, baseline_p, BASELINES, cell.horizon, dates),
        "test_block_result": {"auc": best["aggregate"]["auc"]["mean"],
                              "logloss": best["aggregate"]["logloss"]["mean"]},
        "scored_at": now_iso(), "code": code_version()}
    if cfg.data.panel:
        result["per_asset"] = per_asset(y, probs, baseline_p, splits, base, cell.horizon,
                                         compare)
    write_json(out_path, result)
    ledger.record(sweep, cell.id, {"first": splits.stats.test.block_start,
                                   "last": splits.stats.test.block_end,
                                   "windows": int(len(y)), "kind": "holdout"},
                  [best["trial"]], {best["trial"]: seeds}, True)
    return result


def line(cell_id: str, r: dict) -> str:
    """One line per cell for people."""
    m, c = r["model"]["mean_probability"], r["comparisons"]["logreg"]["auc_diff"]
    t = r["test_block_result"]
    return (f"{cell_id}: holdout {r['block']['block_start']}..{r['block']['block_end']} "
            f"({r['block']['n_windows']} windows): AUC {m['auc']:.3f} (test block "
            f"{t['auc']:.3f}), log loss {m['logloss']:.4f}; minus logistic regression "
            f"{c['estimate']:+.3f} [{c['ci95'][0]:+.3f}, {c['ci95'][1]:+.3f}]")


def main(argv: list[str] | None = None) -> int:
    """``make holdout``: score every cell's holdout once; exit 2 on a bad request, 1 when a cell
    was refused (not evaluated yet, or already scored)."""
    p = argparse.ArgumentParser(prog="python -m lib.run.holdout",
                                description=__doc__.splitlines()[0])
    p.add_argument("--sweep", default="default")
    p.add_argument("--cell", action="append", help="only these cells (repeatable)")
    p.add_argument("--threads", type=int, default=None)
    a = p.parse_args(argv)
    try:
        cfg = load_sweep(a.sweep)
        if cfg.split.holdout_start is None:
            raise HoldoutError(f"sweep '{a.sweep}' declares no holdout block: add "
                               f"split.holdout_start (a date after test_start) to its sweep file")
        by_id = {c.id: c for c in cells(a.sweep, cfg)}
        unknown = set(a.cell or ()) - set(by_id)
        if unknown:
            raise ConfigError(f"unknown cell(s) {', '.join(sorted(unknown))} in sweep "
                              f"'{a.sweep}'")
    except (ConfigError, HoldoutError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    refused = 0
    for cid in a.cell or list(by_id):
        try:
            r = score_cell(a.sweep, by_id[cid], cfg, a.threads)
            print(line(cid, r), flush=True)
        except HoldoutError as e:
            refused += 1
            print(f"refused: {e}", file=sys.stderr, flush=True)
    print(f"holdout results in {paths.rel(paths.SWEEPS / a.sweep / 'holdout')}; the ledger "
          f"records every read", flush=True)
    return 1 if refused else 0


if __name__ == "__main__":
    raise SystemExit(main())

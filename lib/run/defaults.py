"""One source for the defaults every notebook shows: the default sweep file.

A notebook's parameters cell must hold literal values (papermill injects its own cell after it),
so the values are written there, but they are generated from here: the data, split, model and
training settings of ``params/sweeps/default.yaml`` (and the configuration dataclasses behind
it), plus the few settings that exist only in a notebook. ``python -m lib.run.defaults`` rewrites
the parameters cells; ``tests/test_layout.py`` fails when a notebook and this module disagree, so a
default is never typed twice and never drifts (the data notebook once lost a sweep's dates).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

from ..core import paths
from ..search.sweepfile import load_sweep

TRIAL_BUDGET = "100k"  # the budget `make trial` looks at closely (one of the default sweep's)
# settings that exist only in a notebook
NOTEBOOK_ONLY = {
    "val_frac": 0.15,  # data notebook: share of rows for validation when no dates are given
    "test_frac": 0.15,  # and for test
}


def notebook_defaults() -> dict[str, dict]:
    """Every notebook's parameter defaults, by notebook name (without ``.ipynb``)."""
    cfg = load_sweep("default")
    d, sp, m, t = cfg.data, cfg.split, cfg.model, cfg.train
    if TRIAL_BUDGET not in cfg.budgets:
        raise ValueError(f"TRIAL_BUDGET {TRIAL_BUDGET} is not a budget of the default sweep "
                         f"{cfg.budgets}")
    return {
        "01_data_prep": {
            "source": d.source, "tickers": ",".join(d.tickers), "target": d.target,
            "feature_set": d.feature_set, "csv_dir": d.csv_dir or "", "start": d.start or "",
            "end": d.end or "", "name": d.name, "max_gap_days": d.max_gap_days,
            "val_start": sp.val_start or "",
            "test_start": sp.test_start or "", "val_frac": NOTEBOOK_ONLY["val_frac"],
            "test_frac": NOTEBOOK_ONLY["test_frac"], "context_len": sp.context_len,
            "threshold": sp.threshold, "label": sp.label, "min_price": sp.min_price,
            "smoke": False},
        "02_train_trial": {
            "dataset": d.name, "horizon": cfg.horizons[0], "threshold": sp.threshold,
            "context_len": sp.context_len, "budget": TRIAL_BUDGET, "arch": "",
            "tokenizer": m.tokenizer, "norm": m.norm, "patch_len": m.patch_len,
            "stride": m.stride, "lr": t.lr, "weight_decay": t.weight_decay,
            "warmup_frac": t.warmup_frac, "dropout": m.dropout, "batch_size": t.batch_size,
            "max_epochs": t.max_epochs, "patience": t.patience, "seed": t.seed, "threads": 0,
            "smoke": False},
        "03_hpo_sweep": {
            "sweep": "default", "budget": TRIAL_BUDGET, "horizon": cfg.horizons[0],
            "data_size": "", "n_trials": 0, "workers": 1, "threads": 0, "smoke": False},
        "04_scaling_report": {
            "sweep": "default", "measure": "test_logloss", "resamples": 0, "smoke": False},
        "05_input_ablation": {"sweep": "inputs", "jobs": 0, "smoke": False},
        "06_joint_scaling": {
            "sweep": "scaling_nd", "measure": "test_logloss", "resamples": 0, "smoke": False},
        "07_panel_report": {"sweep": "panel", "smoke": False},
    }


_LINE = re.compile(r"^(?P<name>\w+): (?P<type>\w+) = (?P<value>.+?)(?P<comment>\s+#.*)?$")


def parameters_cell(nb: dict) -> dict:
    """The notebook's cell tagged ``parameters``."""
    cells = [c for c in nb["cells"] if "parameters" in c["metadata"].get("tags", [])]
    if len(cells) != 1:
        raise ValueError(f"expected one cell tagged 'parameters', found {len(cells)}")
    return cells[0]


def written_defaults(path: Path) -> dict:
    """The defaults a notebook's parameters cell holds now."""
    import ast

    out = {}
    for line in "".join(parameters_cell(json.loads(path.read_text()))["source"]).splitlines():
        m = _LINE.match(line)
        if m:
            out[m["name"]] = ast.literal_eval(m["value"])
    return out


def rewrite(path: Path, defaults: dict) -> bool:
    """Write ``defaults`` into the notebook's parameters cell (types and comments kept); True
    when anything changed. A parameter missing on either side is an error."""
    nb = json.loads(path.read_text())
    cell = parameters_cell(nb)
    lines, seen = [], set()
    for line in "".join(cell["source"]).splitlines():
        m = _LINE.match(line)
        if m:
            if m["name"] not in defaults:
                raise ValueError(f"{path.name}: parameter {m['name']!r} has no default in "
                                 f"lib/run/defaults.py")
            seen.add(m["name"])
            value = defaults[m["name"]]
            line = f"{m['name']}: {m['type']} = {json.dumps(value)}{m['comment'] or ''}"
            line = line.replace(" = true", " = True").replace(" = false", " = False")
        lines.append(line)
    missing = set(defaults) - seen
    if missing:
        raise ValueError(f"{path.name}: lib/run/defaults.py has {sorted(missing)}, "
                         "the notebook not")
    source = "\n".join(lines)
    if source == "".join(cell["source"]):
        return False
    cell["source"] = source.splitlines(keepends=True)
    path.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n")
    return True


def main(argv: list[str] | None = None) -> int:
    """``python -m lib.run.defaults [--check]``: rewrite (or only compare) the parameters cells."""
    p = argparse.ArgumentParser(prog="python -m lib.run.defaults",
                                description=__doc__.splitlines()[0])
    p.add_argument("--check", action="store_true", help="only say which notebooks disagree")
    a = p.parse_args(argv)
    bad = []
    for name, defaults in notebook_defaults().items():
        path = paths.NOTEBOOKS / f"{name}.ipynb"
        if a.check:
            if written_defaults(path) != defaults:
                bad.append(name)
        elif rewrite(path, defaults):
            print(f"rewrote the parameters of {paths.rel(path)}")
    if bad:
        print(f"notebook defaults differ from lib/run/defaults.py: {', '.join(bad)} "
              f"(run python -m lib.run.defaults)")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())

"""Search adequacy: did the search reach its selected configuration, or cut it short?

A scaling verdict from models the search stopped early is a verdict about the search. For the
configuration a cell selected on validation this records:

- how deep the search went: the selected trial's index among the trials that count, whether it
  was one of the pruner's never-pruned startup trials, and how many trials completed or were pruned;
- edges of the search: the best epoch at the sampled epoch cap (still improving when training
  stopped), a best epoch of 1 (learned nothing after the first pass), a learning rate at the
  edge of its range, the cap itself at the top of its range, an architecture at an extreme of the
  shapes offered (narrowest or widest, shallowest or deepest).

The final evaluation stores this in ``final.json`` (``adequacy``); the report counts the flags per
horizon and puts a caveat on a verdict when more than ``CAVEAT_SHARE`` of its selected
configurations were cut short (epoch cap or best epoch 1).
"""

from __future__ import annotations

import math

import optuna
from optuna.trial import FrozenTrial, TrialState

from .records import counts_done, is_probe

EDGE = 0.05  # within this share of a range (log scale for the learning rate) counts as its edge
CAVEAT_SHARE = 0.25  # more selected configurations than this cut short: the verdict says so
CUT_SHORT = ("epoch_cap", "best_epoch_1")  # the flags that mean training was stopped too soon


def _near(v: float, lo: float, hi: float, log: bool = False) -> str | None:
    """'low' or 'high' when v sits within EDGE of an end of [lo, hi], else None."""
    if log:
        v, lo, hi = math.log(v), math.log(lo), math.log(hi)
    width = hi - lo
    if width <= 0:
        return None
    if v - lo <= EDGE * width:
        return "low"
    if hi - v <= EDGE * width:
        return "high"
    return None


def _shape_edges(arch_id: str, offered: list[str]) -> list[str]:
    """Which extremes of the offered shapes the architecture sits at (ids read d{D}-L{L}-...)."""
    def parse(a: str) -> dict:
        parts = dict((p[0], p[1:]) for p in a.split("-") if p[:1] in "dL" and p[1:].isdigit())
        return {"d": int(parts.get("d", 0)), "L": int(parts.get("L", 0))}

    shapes = [parse(a) for a in offered]
    me = parse(arch_id)
    out = []
    for key, low, high in (("d", "narrowest", "widest"), ("L", "shallowest", "deepest")):
        values = {s[key] for s in shapes}
        if len(values) < 2:
            continue
        if me[key] == min(values):
            out.append(low)
        elif me[key] == max(values):
            out.append(high)
    return out


def adequacy(study: optuna.Study, chosen: FrozenTrial, cfg, seed_best_epochs: list[int]
             | None = None) -> dict:
    """The selected trial's place in the search and the edges it sits at.

    Args:
        study: the cell's study.
        chosen: the trial selected on validation.
        cfg: the sweep's configuration (ranges and pruner).
        seed_best_epochs: best epochs of the final re-training seeds, when known.
    """
    s = cfg.search
    done = sorted((t for t in study.get_trials(deepcopy=False) if counts_done(t)),
                  key=lambda t: t.number)
    index = next((i for i, t in enumerate(done) if t.number == chosen.number), None)
    sampled = [t for t in done if not is_probe(t)]
    startup = s.pruner_startup_trials if s.pruner == "median" else 0
    rec = chosen.user_attrs.get("record") or {}
    p = chosen.params
    cap = int(p.get("max_epochs") or 0)
    best = rec.get("best_epoch")
    flags: list[str] = []
    if cap and best == cap:
        flags.append("epoch_cap")
    if best == 1:
        flags.append("best_epoch_1")
    if "lr" in p and _near(float(p["lr"]), *s.lr, log=True):
        flags.append(f"lr_{_near(float(p['lr']), *s.lr, log=True)}")
    if cap and cap == max(s.max_epochs):
        flags.append("max_epochs_top")
    shape = _shape_edges(str(p.get("arch", "")), study.user_attrs.get("architectures") or [])
    flags += [f"arch_{e}" for e in shape]
    seeds_at_cap = (sum(int(b) == cap for b in seed_best_epochs) if seed_best_epochs and cap
                    else None)
    return {"trial": chosen.number, "index": index, "counted": len(done),
            "complete": sum(t.state == TrialState.COMPLETE for t in done),
            "pruned": sum(t.state == TrialState.PRUNED for t in done),
            "sampled": len(sampled), "startup_trials": startup,
            "selected_a_startup_trial": index is not None and index < startup,
            "best_epoch": best, "max_epochs": cap or None,
            "final_seeds_at_epoch_cap": seeds_at_cap,
            "final_seeds": len(seed_best_epochs or []), "flags": flags,
            "cut_short": any(f in CUT_SHORT for f in flags)}

"""Run records of a sweep cell, written atomically the moment each trial ends.

Layout of ``outputs/sweeps/<sweep>/<cell>/``: ``trials/trial_NNNN.json`` (one per finished trial),
``best.json`` (after every trial), ``all_trials.json`` (finished trials sorted by objective),
``study_summary.json`` / ``.md`` (when the cell finishes; regenerable), ``preflight.json``,
``hardware.jsonl``, ``sweep.log``. Everything a record holds is also in the Optuna storage (the
trial's user attribute ``record``), so :func:`regenerate` rebuilds the files after a crash between
the storage write and the record write.
"""

from __future__ import annotations

import glob
import json
from pathlib import Path

import optuna
import pandas as pd
from optuna.trial import FrozenTrial, TrialState

from ..core.provenance import now_iso, read_json, write_json

FINISHED = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)


def is_surplus(t: FrozenTrial) -> bool:
    """A trial another worker's progress made unnecessary (never counted)."""
    return bool(t.user_attrs.get("surplus"))


def is_probe(t: FrozenTrial) -> bool:
    """An enqueued architecture probe (extremes, default): extra effort, not a sampled trial."""
    return bool(t.user_attrs.get("enqueued"))


def target(study: optuna.Study, n_trials: int | None = None) -> int:
    """Finished trials a cell needs: ``n_trials`` SAMPLED trials (equal for every budget) plus
    every enqueued probe, which is extra and differs between budgets."""
    sampled = study.user_attrs.get("n_trials", n_trials)
    return int(sampled or 0) + len(study.user_attrs.get("enqueued") or [])


def counts_done(t: FrozenTrial) -> bool:
    """A trial that counts towards the cell's target: complete, pruned, or failed by the objective
    (diverged); not a trial killed with its worker (retried instead) nor a surplus one."""
    if t.state in (TrialState.COMPLETE, TrialState.PRUNED):
        return True
    return t.state == TrialState.FAIL and "fail_reason" in t.user_attrs and not is_surplus(t)


def counts(trials: list[FrozenTrial]) -> dict[str, int]:
    """Trials by state, with sampled and enqueued counted apart."""
    c = {"complete": 0, "pruned": 0, "failed": 0, "running": 0, "waiting": 0, "retried": 0,
         "surplus": 0, "sampled": 0, "enqueued": 0}
    for t in trials:
        if counts_done(t):
            c["enqueued" if is_probe(t) else "sampled"] += 1
        if is_surplus(t):
            c["surplus"] += 1
        elif t.state == TrialState.COMPLETE:
            c["complete"] += 1
        elif t.state == TrialState.PRUNED:
            c["pruned"] += 1
        elif t.state == TrialState.FAIL:
            c["failed" if counts_done(t) else "retried"] += 1
        elif t.state == TrialState.RUNNING:
            c["running"] += 1
        elif t.state == TrialState.WAITING:
            c["waiting"] += 1
    c["finished"] = c["complete"] + c["pruned"] + c["failed"]
    return c


def trial_record(t: FrozenTrial, cell: dict) -> dict:
    """The JSON record of one finished trial (its settings, curve, counts, outcome)."""
    rec = dict(t.user_attrs.get("record", {}))
    rec.update({
        "cell": cell, "number": t.number, "state": t.state.name, "objective": t.value,
        "params": t.params, "fail_reason": t.user_attrs.get("fail_reason"),
        "surplus": is_surplus(t),
        "datetime_start": t.datetime_start.isoformat() if t.datetime_start else None,
        "datetime_complete": t.datetime_complete.isoformat() if t.datetime_complete else None,
        "duration_s": t.duration.total_seconds() if t.duration else None,
        "intermediate": {str(k): v for k, v in sorted(t.intermediate_values.items())},
    })
    return rec


def effort(study: optuna.Study) -> dict:
    """Search effort of a cell: trials sampled and enqueued, pruned and failed, epochs trained,
    seconds and training FLOPs, counted over the trials that count towards the target."""
    done = [t for t in study.get_trials(deepcopy=False) if counts_done(t)]
    recs = [t.user_attrs.get("record") or {} for t in done]
    return {"sampled": sum(not is_probe(t) for t in done),
            "enqueued": sum(is_probe(t) for t in done),
            "pruned": sum(t.state == TrialState.PRUNED for t in done),
            "failed": sum(t.state == TrialState.FAIL for t in done),
            "epochs_trained": int(sum(len(r.get("learning_curve") or []) for r in recs)),
            "trial_seconds": float(sum(r.get("seconds") or 0.0 for r in recs)),
            "train_flops": _train_flops(recs),
            "target_sampled": study.user_attrs.get("n_trials"),
            "architectures_offered": len(study.user_attrs.get("architectures") or [])}


def _train_flops(recs: list[dict]) -> float | None:
    """Training FLOPs of the trials: each record's ``compute``; a trial that ended before
    training (no learning curve) cost none; unavailable when a trained one predates compute
    accounting."""
    total = 0.0
    for r in recs:
        if "compute" in r:
            total += r["compute"]["train_flops"]
        elif r.get("learning_curve"):
            return None
    return total if recs else None


def trial_path(cell_dir: Path, number: int) -> Path:
    """The record file of trial ``number``: <cell>/trials/trial_NNNN.json."""
    return Path(cell_dir) / "trials" / f"trial_{number:04d}.json"


def _brief(t: FrozenTrial) -> dict:
    rec = t.user_attrs.get("record", {})
    val = rec.get("val") or {}
    return {"number": t.number, "state": t.state.name, "objective": t.value,
            "enqueued": is_probe(t), "arch": t.params.get("arch"),
            "n_params": (rec.get("n_params") or {}).get("total"),
            "params": t.params, "best_epoch": rec.get("best_epoch"), "val_auc": val.get("auc"),
            "val_logloss": val.get("logloss"), "val_skill": val.get("skill"),
            "collapsed": val.get("collapsed"), "seconds": rec.get("seconds"),
            "fail_reason": t.user_attrs.get("fail_reason")}


def write_after_trial(cell_dir: Path, study: optuna.Study, t: FrozenTrial, cell: dict) -> None:
    """Per-trial record, then best.json and all_trials.json (each atomically)."""
    write_json(trial_path(cell_dir, t.number), trial_record(t, cell))
    write_best_and_all(cell_dir, study, cell)


def write_best_and_all(cell_dir: Path, study: optuna.Study, cell: dict) -> None:
    """Write best.json and all_trials.json from the study as it is now."""
    trials = study.get_trials(deepcopy=False)
    finished = [t for t in trials if counts_done(t)]
    complete = [t for t in finished if t.state == TrialState.COMPLETE]
    sign = 1 if study.direction == optuna.study.StudyDirection.MINIMIZE else -1
    complete.sort(key=lambda t: sign * t.value)
    best = complete[0] if complete else None
    write_json(Path(cell_dir) / "best.json", {
        "cell": cell, "direction": study.direction.name,
        "objective": (study.metric_names or [None])[0],
        "best_objective": best.value if best else None,
        "best_trial": best.number if best else None, "params": best.params if best else None,
        "architecture": (best.user_attrs.get("record") or {}).get("arch") if best else None,
        "n_params": ((best.user_attrs.get("record") or {}).get("n_params")) if best else None,
        "counts": counts(trials), "target": target(study),
        "target_sampled": study.user_attrs.get("n_trials"), "updated": now_iso()})
    rest = [t for t in finished if t.state != TrialState.COMPLETE]
    write_json(Path(cell_dir) / "all_trials.json", {
        "cell": cell, "direction": study.direction.name,
        "trials": [_brief(t) for t in complete + sorted(rest, key=lambda t: t.number)]})


def regenerate(cell_dir: Path, study: optuna.Study, cell: dict) -> int:
    """Rebuild every record file from storage; returns the number of trial records written."""
    n = 0
    for t in study.get_trials(deepcopy=False):
        if t.state in FINISHED and not is_surplus(t):
            write_json(trial_path(cell_dir, t.number), trial_record(t, cell))
            n += 1
    write_best_and_all(cell_dir, study, cell)
    return n


def trials_frame(study: optuna.Study) -> pd.DataFrame:
    """Finished trials as a table: state, architecture, counts, settings, objective."""
    rows = []
    for t in study.get_trials(deepcopy=False):
        if not counts_done(t):
            continue
        rec = t.user_attrs.get("record", {})
        arch = rec.get("arch") or {}
        rows.append({"number": t.number, "state": t.state.name, "objective": t.value,
                     "enqueued": is_probe(t), "epochs": len(rec.get("learning_curve") or []),
                     "arch": t.params.get("arch"), "d_model": arch.get("d_model"),
                     "n_layers": arch.get("n_layers"), "n_heads": arch.get("n_heads"),
                     "n_params": (rec.get("n_params") or {}).get("total"),
                     **{k: v for k, v in t.params.items() if k != "arch"},
                     "val_auc": (rec.get("val") or {}).get("auc"),
                     "collapsed": (rec.get("val") or {}).get("collapsed"),
                     "seconds": rec.get("seconds")})
    return pd.DataFrame(rows)


def depth_width_style(d_model: float, n_layers: float) -> str:
    """deep-narrow, balanced or shallow-wide by width per layer."""
    ratio = d_model / max(n_layers, 1)
    return "deep-narrow" if ratio < 16 else ("balanced" if ratio < 64 else "shallow-wide")


def study_summary(cell_dir: Path, study: optuna.Study, cell: dict,
                  baselines: dict | None = None) -> dict:
    """The cell's summary (JSON and Markdown), regenerable at any time from storage."""
    from scipy.stats import spearmanr

    df = trials_frame(study)
    comp = df[df["state"] == "COMPLETE"] if len(df) else df
    trials = study.get_trials(deepcopy=False)
    out = {"cell": cell, "counts": counts(trials), "target": target(study),
           "target_sampled": study.user_attrs.get("n_trials"), "effort": effort(study),
           "direction": study.direction.name, "provenance": study.user_attrs.get("provenance"),
           "sampler": study.user_attrs.get("sampler"), "pruner": study.user_attrs.get("pruner"),
           "generated": now_iso()}
    if len(comp):
        obj = comp["objective"]
        out["objective_distribution"] = {
            "n": int(len(obj)), "min": float(obj.min()), "q1": float(obj.quantile(0.25)),
            "median": float(obj.median()), "q3": float(obj.quantile(0.75)),
            "max": float(obj.max()), "mean": float(obj.mean()),
            "std": float(obj.std()) if len(obj) > 1 else None}
        comp = comp.assign(style=[depth_width_style(d, n) for d, n in
                                  zip(comp["d_model"], comp["n_layers"], strict=True)])
        for key in ("d_model", "n_layers", "style"):
            g = comp.groupby(key)["objective"].agg(["count", "mean", "min", "max"])
            out[f"by_{key}"] = {str(k): v for k, v in g.to_dict("index").items()}
        sens = {}
        for p in ("lr", "weight_decay", "warmup_frac", "dropout", "batch_size", "max_epochs",
                  "n_params", "d_model", "n_layers"):
            if p in comp and comp[p].nunique() > 1 and len(comp) > 2:
                rho, pv = spearmanr(comp[p], comp["objective"])
                sens[p] = {"spearman": float(rho), "p_value": float(pv)}
        out["spearman"] = sens
        try:
            out["importances"] = dict(optuna.importance.get_param_importances(study))
        except (RuntimeError, ValueError, ZeroDivisionError) as e:
            out["importances"] = None
            out["importances_unavailable"] = f"{type(e).__name__}: {e}"
        best = study.best_trial
        rec = best.user_attrs.get("record", {})
        val = rec.get("val") or {}
        out["best"] = {"number": best.number, "objective": best.value, "params": best.params,
                       "arch": rec.get("arch"), "n_params": rec.get("n_params"),
                       "confusion": val.get("confusion"), "precision": val.get("precision"),
                       "recall": val.get("recall"), "f1": val.get("f1"), "auc": val.get("auc"),
                       "skill": val.get("skill"), "spread": val.get("spread")}
        out["collapsed_trials"] = [int(n) for n in comp.loc[comp["collapsed"].fillna(False)
                                                             .astype(bool), "number"]]
    out["baselines"] = {k: {m: v["val"][m] for m in ("auc", "logloss", "skill", "f1")}
                        for k, v in (baselines or {}).items()}
    out["trials"] = json.loads(df.to_json(orient="records")) if len(df) else []
    write_json(Path(cell_dir) / "study_summary.json", out)
    (Path(cell_dir) / "study_summary.md").write_text(summary_markdown(out, df))
    return out


def summary_markdown(s: dict, df: pd.DataFrame) -> str:
    """The study summary as Markdown (study_summary.md)."""
    c = s["counts"]
    lines = [f"# Study summary: {s['cell'].get('id')}", "",
             f"Target {s['target']} finished trials ({s.get('target_sampled')} sampled + the "
             f"enqueued probes); sampled {c['sampled']}, enqueued {c['enqueued']}; complete "
             f"{c['complete']}, pruned {c['pruned']}, failed {c['failed']} (retried "
             f"{c['retried']}).", ""]
    if "best" in s:
        b = s["best"]
        cm = b["confusion"] or {}
        lines += [f"Best trial {b['number']}: objective {b['objective']:.4f}, arch "
                  f"{b['params'].get('arch')}, {((b['n_params'] or {}).get('total'))} parameters,"
                  f" val AUC {b['auc']}, skill {b['skill']}.", "",
                  "| | pred 0 | pred 1 |", "|---|---|---|",
                  f"| true 0 | {cm.get('tn')} | {cm.get('fp')} |",
                  f"| true 1 | {cm.get('fn')} | {cm.get('tp')} |", "",
                  f"Precision {b['precision']:.3f}, recall {b['recall']:.3f}, F1 {b['f1']:.3f}.",
                  ""]
        d = s["objective_distribution"]
        lines += ["Objective: " + ", ".join(f"{k} {v:.4g}" for k, v in d.items()
                                          if isinstance(v, float)), ""]
        if s.get("collapsed_trials"):
            lines += [f"Collapsed trials (probability spread below threshold): "
                      f"{s['collapsed_trials']}", ""]
    if s.get("baselines"):
        lines += ["## Baselines (validation)", "", pd.DataFrame(s["baselines"]).T.round(4)
                  .to_markdown(), ""]
    if len(df):
        lines += ["## Trials", "", df.round(5).to_markdown(index=False), ""]
    return "\n".join(lines)


def load_records(pattern: str | Path) -> pd.DataFrame:
    """Glob trial records (e.g. ``outputs/sweeps/default/*/trials/*.json``) into one DataFrame."""
    rows = []
    for f in sorted(glob.glob(str(pattern))):
        r = read_json(f)
        val = r.get("val") or {}
        arch = r.get("arch") or {}
        rows.append({"file": f, "cell": (r.get("cell") or {}).get("id"),
                     "budget": (r.get("cell") or {}).get("budget"),
                     "horizon": r.get("horizon"), "number": r["number"], "state": r["state"],
                     "objective": r["objective"], "arch": arch.get("id"),
                     "d_model": arch.get("d_model"), "n_layers": arch.get("n_layers"),
                     "n_params": (r.get("n_params") or {}).get("total"),
                     **{f"p_{k}": v for k, v in (r.get("params") or {}).items() if k != "arch"},
                     "val_auc": val.get("auc"), "val_logloss": val.get("logloss"),
                     "val_skill": val.get("skill"), "spread": val.get("spread"),
                     "collapsed": val.get("collapsed"), "seconds": r.get("seconds"),
                     "peak_rss_mb": (r.get("peak_memory_mb") or {}).get("process_max_rss_mb"),
                     "fail_reason": r.get("fail_reason")})
    df = pd.DataFrame(rows)
    if len(df):
        df["objective"] = df["objective"].astype(float)
        df["n_params"] = df["n_params"].astype(float)
    return df

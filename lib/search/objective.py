"""The objective of one search trial, as small functions: is it needed, what does it try, train it.

A trial samples an architecture among its budget's grid and the training settings from the sweep
file's ranges; all of them reach training (research rule 2: the record holds the values read back
from the live optimizer, scheduler and model, checked against the sampled ones). The pruner is fed
by the trainer's per-epoch callback; a diverged trial ends FAILED with its reason (rule 13); an
interrupted one is recorded so that the run loop can queue it again.
"""

from __future__ import annotations

import socket
import time

import optuna
from optuna.trial import TrialState

from ..core.provenance import code_version, now_iso
from ..model.budget import Arch
from ..train.trainer import DivergenceError
from ..train.trial import arch_record, build, check_resolved, compute_record, fit, passes_per_epoch
from . import records


class SurplusTrial(RuntimeError):
    """Another worker already covers the cell's target; this trial is not needed."""


class ArchitectureUnavailable(RuntimeError):
    """The sampled architecture was dropped by this machine's pre-flight memory check."""


def sample_params(trial: optuna.Trial, cfg, choices: list[str],
                  archs: list[Arch]) -> tuple[Arch, dict]:
    """The trial's architecture (among the study's ``choices``) and training settings; an
    architecture this machine's pre-flight dropped raises ``ArchitectureUnavailable``."""
    s = cfg.search
    params = {
        "arch": trial.suggest_categorical("arch", choices),
        "lr": trial.suggest_float("lr", *s.lr, log=True),
        "weight_decay": trial.suggest_float("weight_decay", *s.weight_decay, log=True),
        "warmup_frac": trial.suggest_float("warmup_frac", *s.warmup_frac),
        "dropout": trial.suggest_float("dropout", *s.dropout),
        "batch_size": trial.suggest_categorical("batch_size", s.batch_size),
        "max_epochs": trial.suggest_int("max_epochs", *s.max_epochs)}
    if s.norm:
        params["norm"] = trial.suggest_categorical("norm", s.norm)
    by_id = {a.id: a for a in archs}
    if params["arch"] not in by_id:
        raise ArchitectureUnavailable(f"architecture {params['arch']} was dropped by this "
                                      f"machine's pre-flight memory check")
    return by_id[params["arch"]], params


def target_covered(study: optuna.Study, trial: optuna.Trial, n_trials: int) -> bool:
    """True when finished trials and those running ahead of ``trial`` already cover the target."""
    target = records.target(study, n_trials)
    done, ahead = 0, 0
    for t in study.get_trials(deepcopy=False):
        if records.counts_done(t):
            done += 1
        elif (t.state == TrialState.RUNNING and t.number < trial.number
              and not records.is_surplus(t)):
            ahead += 1
    return done + ahead >= target


def objective(trial: optuna.Trial, run) -> float:
    """Train the trial's configuration on the prepared cell ``run`` (a
    ``lib.search.runner.CellRunner`` after ``prepare()``); the trial's record (settings,
    learning curve, counts, hardware, outcome) is attached however it ends."""
    t0 = time.time()
    cfg, cell, splits = run.cfg, run.cell, run.splits
    if target_covered(run.study, trial, cfg.search.n_trials):
        trial.set_user_attr("surplus", True)
        raise SurplusTrial("target already covered by finished and running trials")
    base = {"horizon": cell.horizon, "threshold": cfg.split.threshold,
            "label": cfg.split.label, "context_len": cfg.split.context_len,
            "seed": cfg.train.seed, "split": splits.stats.to_dict(),
            "dataset": {"id": cfg.data.name, "sha256": run.manifest["sha256"]},
            "code": code_version(), "host": socket.gethostname(), "worker": run.worker}
    curve: list[dict] = []
    choices = run.study.user_attrs.get("architectures") or [a.id for a in run.archs_all]
    try:
        arch, params = sample_params(trial, cfg, choices, run.archs)
    except ArchitectureUnavailable as e:
        trial.set_user_attr("fail_reason", str(e))
        trial.set_user_attr("record", base)
        raise
    run.log(f"trial {trial.number} start arch={arch.id} "
            f"params={ {k: v for k, v in params.items() if k != 'arch'} }")

    def on_epoch(epoch: int, row: dict) -> bool:
        curve.append(row)
        trial.report(row["objective"], epoch)
        if trial.should_prune():
            raise optuna.TrialPruned(f"pruned after epoch {epoch} "
                                     f"(objective {row['objective']:.4f})")
        return False

    def finish(extra: dict) -> None:
        seconds = time.time() - t0
        rec = {**base, "learning_curve": curve, "seconds": seconds,
               "compute": compute_record(mcfg, len(splits.train.y), len(curve), seconds,
                                          passes_per_epoch(splits), run.cfg.train.epoch_windows),
               "hardware": run.telemetry.summary(since=t0), **extra}
        trial.set_user_attr("record", rec)

    model, mcfg = build(cfg, splits, arch, params, cfg.train.seed)
    arch_rec, n_params = arch_record(arch, mcfg, model)
    try:
        result = fit(cfg, splits, model, params, cfg.train.seed, run.threads, on_epoch)
    except optuna.TrialPruned as e:
        finish({"arch": arch_rec, "n_params": n_params, "prune_reason": str(e)})
        raise
    except DivergenceError as e:
        trial.set_user_attr("fail_reason", f"diverged: {e}")
        finish({"arch": arch_rec, "n_params": n_params, "diverged_epoch": e.epoch})
        raise
    except KeyboardInterrupt:
        # Ctrl-C: Optuna ends the trial FAILED; without a fail_reason it does not count
        # towards the target, and the run loop still writes its record
        trial.set_user_attr("interrupted", now_iso())
        finish({"arch": arch_rec, "n_params": n_params, "interrupted": True})
        raise
    check = check_resolved(params, result)
    finish({"arch": arch_rec, "n_params": n_params, "resolved": result.resolved,
            "resolved_matches_sampled": check, "best_epoch": result.best_epoch,
            "stop_reason": result.stop_reason, "val": result.val,
            "objective_name": result.objective, "peak_memory_mb": result.peak_memory_mb,
            "oom_retries": result.oom_retries, "memory_plan": result.memory_plan,
            "train_seconds": result.seconds})
    return result.best_objective

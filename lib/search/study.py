"""A cell's Optuna study: sampler, pruner, creation with provenance and enqueued probes, counts.

TPE is seeded (each named worker gets its own seed); the pruner is fed by the trainer's per-epoch
callback. ``n_trials`` is the number of finished SAMPLED trials a cell must have, the same for every
budget; the enqueued probes (the grid's extremes and a default configuration) are extra effort,
recorded as such (``records.effort``). A study created on another dataset is refused.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import optuna
from optuna.trial import TrialState

from ..core import paths
from ..core.config import SweepConfig
from ..core.provenance import provenance
from ..data import dataset as ds
from ..data.splits import feature_columns
from ..model.budget import Arch, base_model, budget_grid, extremes
from . import contract, records
from .cells import Cell, open_storage


def sampler_seed(cfg: SweepConfig, worker: str = "") -> int:
    """The search seed; each named worker gets its own, so two processes on one study never
    propose the same parameters from the same history (the driver's stays reproducible)."""
    import zlib

    return cfg.search.seed if not worker else (cfg.search.seed + zlib.crc32(worker.encode())) \
        % 2**31


def make_sampler(cfg: SweepConfig, worker: str = "") -> optuna.samplers.TPESampler:
    """Seeded multivariate TPE; constant liar so parallel workers do not propose the same."""
    return optuna.samplers.TPESampler(seed=sampler_seed(cfg, worker), multivariate=True,
                                      constant_liar=True)


class DatasetChanged(RuntimeError):
    """A cell's study was created on another dataset than the one there now."""


def make_pruner(cfg: SweepConfig) -> optuna.pruners.BasePruner:
    """The sweep's pruner (median, hyperband or none), fed one value per epoch."""
    s = cfg.search
    if s.pruner == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=s.pruner_startup_trials,
                                           n_warmup_steps=s.pruner_warmup_epochs)
    if s.pruner == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=max(1, s.pruner_warmup_epochs),
                                              max_resource=s.max_epochs[1])
    return optuna.pruners.NopPruner()


def direction(cfg: SweepConfig) -> str:
    """minimize for validation log loss, maximize for validation AUC."""
    return "minimize" if cfg.train.objective == "val_logloss" else "maximize"


def _clip(x, rng):
    """``x`` moved into the closed range ``rng``."""
    return min(max(x, rng[0]), rng[1])


def default_params(cfg: SweepConfig, arch: Arch) -> dict:
    """A probe's settings: the sweep's training defaults clipped into the search ranges."""
    s, t = cfg.search, cfg.train
    out = {"arch": arch.id, "lr": _clip(t.lr, s.lr),
           "weight_decay": _clip(t.weight_decay, s.weight_decay),
           "warmup_frac": _clip(t.warmup_frac, s.warmup_frac),
           "dropout": _clip(cfg.model.dropout, s.dropout),
           "batch_size": t.batch_size if t.batch_size in s.batch_size else s.batch_size[0],
           "max_epochs": int(_clip(t.max_epochs, s.max_epochs))}
    if s.norm:
        out["norm"] = cfg.model.norm if cfg.model.norm in s.norm else s.norm[0]
    return out


def n_inputs(cfg: SweepConfig, entry: dict) -> int:
    """Model inputs of the sweep's dataset (its manifest ``entry``), canary feature included."""
    return len(feature_columns(entry["columns"], cfg.split))


def create_study(cell: Cell, cfg: SweepConfig, storage, archs_all: list[Arch],
                 manifest: dict, worker: str = "") -> optuna.Study:
    """Create (or load) the cell's study; the first creation records provenance and enqueues the
    grid's extremes and a default configuration as ordinary trials. A study created on another
    dataset (checksum) is refused: its trials and new ones would mix two datasets."""
    study = optuna.create_study(study_name=cell.study_name, storage=storage,
                                sampler=make_sampler(cfg, worker), pruner=make_pruner(cfg),
                                direction=direction(cfg), load_if_exists=True)
    recorded = ((study.user_attrs.get("provenance") or {}).get("dataset") or {}).get("sha256")
    if recorded and recorded != manifest["sha256"]:
        raise DatasetChanged(
            f"{cell.id}: its study was created on dataset '{cfg.data.name}' with sha256 "
            f"{recorded[:12]}…, but that dataset is now {manifest['sha256'][:12]}…: new trials "
            f"would mix two datasets. Run the sweep under another name (or delete "
            f"{paths.rel(paths.SWEEPS / cell.name)} to start it again)")
    trials = study.get_trials(deepcopy=False)
    what = contract.check_study(study.user_attrs, records.counts(trials)["sampled"], cfg,
                                cell.id, cell.name, cell.data) if trials else []
    if what:
        raise contract.refusal(cell.id, cell.name, what)
    if "definition" not in study.user_attrs or not trials:
        study.set_user_attr("definition", contract.of_config(cfg, cell.data))
    if study.user_attrs.get("n_trials") != cfg.search.n_trials:
        study.set_user_attr("n_trials", cfg.search.n_trials)
    if "provenance" not in study.user_attrs:
        study.set_user_attr("provenance", provenance({
            "dataset": {"id": cfg.data.name, "sha256": manifest["sha256"]},
            "params": asdict(cfg), "cell": cell.as_dict()}))
        study.set_user_attr("sampler", {"name": "TPESampler", "seed": cfg.search.seed,
                                        "multivariate": True, "constant_liar": True,
                                        "optuna": optuna.__version__})
        study.set_user_attr("pruner", {"name": cfg.search.pruner,
                                       "startup_trials": cfg.search.pruner_startup_trials,
                                       "warmup_epochs": cfg.search.pruner_warmup_epochs})
        study.set_user_attr("architectures", [a.id for a in archs_all])
    if study.metric_names != [cfg.train.objective]:
        import warnings

        with warnings.catch_warnings():  # set_metric_names is marked experimental (Optuna 3.2+);
            # it only names the objective, so optuna-dashboard shows "val_logloss", not
            # "Objective 0": nothing a user could act on
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            study.set_metric_names([cfg.train.objective])
    if cfg.search.enqueue_extremes and not study.user_attrs.get("enqueued"):
        seen: list[str] = []
        for a in [*extremes(archs_all), archs_all[0]]:
            if a.id not in seen:
                seen.append(a.id)
                study.enqueue_trial(default_params(cfg, a), user_attrs={"enqueued": True})
        study.set_user_attr("enqueued", seen)
    return study


def grid_sizes(cfg: SweepConfig) -> dict[str, int]:
    """Architectures each budget's grid offers (equal effort needs comparable numbers); a budget
    that no architecture fits raises ``BudgetError`` naming the nearest counts."""
    base = base_model(cfg, n_inputs(cfg, ds.manifest_entry(cfg.data.name)))
    return {b: len(budget_grid(b, base, cfg.grid)) for b in cfg.budgets}


def init_cell(cell: Cell, cfg: SweepConfig, url: str, force: bool = False) -> optuna.Study:
    """Create a cell's study before any worker starts (no training, no pre-flight). A study the
    sweep file no longer matches is refused (:mod:`lib.search.contract`); with ``force`` its
    records are moved aside (:func:`set_aside`) and its search starts again."""
    entry = ds.manifest_entry(cfg.data.name)
    base = base_model(cfg, n_inputs(cfg, entry))
    storage = open_storage(url, cfg.search.heartbeat_s, cfg.search.max_retry)
    archs = budget_grid(cell.budget, base, cfg.grid)
    try:
        return create_study(cell, cfg, storage, archs, entry)
    except contract.SweepChanged:
        if not force:
            raise
    set_aside(cell, storage, "changed")
    return create_study(cell, cfg, storage, archs, entry)


def set_aside(cell: Cell, storage, why: str) -> Path:
    """Move a cell's records, executed notebook and report page to
    ``outputs/sweeps/<sweep>/.set_aside/<cell>-<why>-<time>/`` and delete its study from the
    storage (every finished trial is in the records moved). Returns the folder."""
    import shutil
    import time

    stamp = time.strftime("%Y%m%d-%H%M%S")
    dest = paths.SWEEPS / cell.name / ".set_aside" / f"{cell.id}-{why}-{stamp}"
    dest.mkdir(parents=True)
    if cell.dir.exists():
        shutil.move(str(cell.dir), str(dest / "records"))
    page = paths.REPORTS / cell.name / f"{cell.id}.html"
    if page.exists():
        shutil.move(str(page), str(dest / page.name))
    try:
        optuna.delete_study(study_name=cell.study_name, storage=storage)
    except KeyError:
        pass
    return dest


def cell_status(cell: Cell, cfg: SweepConfig, url: str) -> dict:
    """Counts of the cell's study, or zeros when it does not exist yet."""
    storage = open_storage(url, cfg.search.heartbeat_s, cfg.search.max_retry)
    try:
        study = optuna.load_study(study_name=cell.study_name, storage=storage)
    except KeyError:
        c = records.counts([])
        c["target"] = cfg.search.n_trials
        return c
    c = records.counts(study.get_trials(deepcopy=False))
    c["target"] = records.target(study, cfg.search.n_trials)
    best = [t for t in study.get_trials(deepcopy=False) if t.state == TrialState.COMPLETE]
    if best:
        b = study.best_trial
        c["best_objective"], c["best_arch"] = b.value, b.params.get("arch")
    return c



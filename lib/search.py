"""One Optuna study per sweep cell (parameter budget x horizon), resumable and shareable.

The architecture is a categorical choice among the budget's grid ids; training settings (learning
rate, weight decay, warm-up, dropout, batch size, max epochs) come from the sweep file's ranges and
all reach training (research rule 2: the record holds the values read back from the live optimizer,
scheduler and model, checked against the sampled ones). The first trials are enqueued: the grid's
extremes and a default configuration. TPE is seeded; the pruner is fed by the trainer's per-epoch
callback. A diverged trial ends FAILED with its reason (rule 13). ``n_trials`` is the number of
finished SAMPLED trials a cell must have, the same for every budget; the enqueued probes are extra
effort, recorded as such (``records.effort``). Every run tops up to the target.

Storage: one SQLite file per sweep (``outputs/sweeps/<sweep>/optuna.db``) or the URL in the
``OPTUNA_STORAGE`` environment variable (PostgreSQL for several machines). The URL is never written
to records; its password is masked in every log line.
"""

from __future__ import annotations

import gc
import os
import socket
import time
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import optuna
from optuna.trial import TrialState
from threadpoolctl import threadpool_limits

from . import dataset as ds
from . import hardware, paths, records
from .baselines import cached_baselines
from .config import ModelConfig, SweepConfig, TrainConfig
from .model import (
    Arch,
    PatchTST,
    budget_grid,
    count_params,
    extremes,
    fit_input_stats,
    measured_breakdown,
    memory_estimate,
    parse_budget,
)
from .provenance import code_version, now_iso, provenance
from .splits import Splits, feature_columns, make_splits
from .trainer import DivergenceError, TrainResult, train

optuna.logging.set_verbosity(optuna.logging.WARNING)  # our sweep.log says what each trial did
warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)


class StorageError(RuntimeError):
    """The study storage cannot be reached or opened."""


class SurplusTrial(RuntimeError):
    """Another worker already covers the cell's target; this trial is not needed."""


class ArchitectureUnavailable(RuntimeError):
    """The sampled architecture was dropped by this machine's pre-flight memory check."""


@dataclass(frozen=True)
class Cell:
    sweep: str  # sweep name (params/sweeps/<sweep>.yaml)
    budget: str  # parameter budget target, e.g. "2M"
    horizon: int  # trading days ahead

    @property
    def id(self) -> str:
        return f"{self.budget}-h{self.horizon}"

    @property
    def name(self) -> str:
        """The sweep's name (a sweep given as a YAML path is named by its file stem)."""
        return Path(self.sweep).stem

    @property
    def dir(self) -> Path:
        return paths.SWEEPS / self.name / self.id

    @property
    def study_name(self) -> str:
        return f"{self.name}:{self.id}"

    def as_dict(self) -> dict:
        return {"id": self.id, "sweep": self.name, "budget": self.budget,
                "budget_n": parse_budget(self.budget), "horizon": self.horizon}


def cells(sweep: str, cfg: SweepConfig) -> list[Cell]:
    return [Cell(sweep, b, h) for b in cfg.budgets for h in cfg.horizons]


def mask_url(url: str) -> str:
    """The URL with its password replaced by ***: any characters in the password (a raw '@'
    included: the host follows the LAST '@'), with or without a scheme."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        scheme, rest = "", url
    at = rest.rfind("@")
    if at < 0:
        return url
    creds, host = rest[:at], rest[at + 1:]
    user, colon, _ = creds.partition(":")
    masked = f"{user}:***" if colon else creds
    return f"{scheme}{sep}{masked}@{host}"


def storage_url(sweep: str) -> str:
    url = os.environ.get("OPTUNA_STORAGE")
    if url:
        return url
    db = paths.SWEEPS / Path(sweep).stem / "optuna.db"
    db.parent.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{db}"


def open_storage(url: str, heartbeat_s: int = 30, max_retry: int = 2) -> optuna.storages.RDBStorage:
    """RDB storage with heartbeat and retry of stale trials; unreachable is an error in seconds."""
    if url.startswith("sqlite"):
        engine = {"connect_args": {"timeout": 60}}
    else:
        engine = {"connect_args": {"connect_timeout": 5}, "pool_pre_ping": True}
    try:
        return optuna.storages.RDBStorage(
            url, engine_kwargs=engine, heartbeat_interval=heartbeat_s,
            grace_period=4 * heartbeat_s,
            heartbeat_stale_trial_callback=optuna.storages.RetryHeartbeatStaleTrialCallback(
                max_retry=max_retry))
    except Exception as e:  # sqlalchemy OperationalError, driver errors, bad URLs
        raise StorageError(f"cannot open study storage {mask_url(url)}: "
                           f"{type(e).__name__}: {str(e).splitlines()[0][:300]}") from None


def sampler_seed(cfg: SweepConfig, worker: str = "") -> int:
    """The search seed; each named worker gets its own, so two processes on one study never
    propose the same parameters from the same history (the driver's stays reproducible)."""
    import zlib

    return cfg.search.seed if not worker else (cfg.search.seed + zlib.crc32(worker.encode())) \
        % 2**31


def make_sampler(cfg: SweepConfig, worker: str = "") -> optuna.samplers.TPESampler:
    return optuna.samplers.TPESampler(seed=sampler_seed(cfg, worker), multivariate=True,
                                      constant_liar=True)


class DatasetChanged(RuntimeError):
    """A cell's study was created on another dataset than the one there now."""


def make_pruner(cfg: SweepConfig) -> optuna.pruners.BasePruner:
    s = cfg.search
    if s.pruner == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=s.pruner_startup_trials,
                                           n_warmup_steps=s.pruner_warmup_epochs)
    if s.pruner == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=max(1, s.pruner_warmup_epochs),
                                              max_resource=s.max_epochs[1])
    return optuna.pruners.NopPruner()


def direction(cfg: SweepConfig) -> str:
    return "minimize" if cfg.train.objective == "val_logloss" else "maximize"


def _clip(x, rng):
    return min(max(x, rng[0]), rng[1])


def default_params(cfg: SweepConfig, arch: Arch) -> dict:
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


def base_model(cfg: SweepConfig, n_features: int) -> ModelConfig:
    """The sweep's fixed model settings with the window length and the number of inputs."""
    return replace(cfg.model, context_len=cfg.split.context_len, n_features=n_features)


def n_inputs(cfg: SweepConfig, entry: dict) -> int:
    """Model inputs of the sweep's dataset (its manifest ``entry``), canary feature included."""
    return len(feature_columns(entry["columns"], cfg.split))


def model_config(cfg: SweepConfig, arch: Arch, dropout: float, n_features: int,
                 norm: str | None = None) -> ModelConfig:
    """The trial's model: the architecture, the sampled dropout and (when searched) norm."""
    return arch.apply(replace(base_model(cfg, n_features), dropout=dropout,
                              norm=norm or cfg.model.norm))


def train_config(cfg: SweepConfig, params: dict, seed: int, threads: int | None) -> TrainConfig:
    return replace(cfg.train, lr=params["lr"], weight_decay=params["weight_decay"],
                   warmup_frac=params["warmup_frac"], batch_size=params["batch_size"],
                   max_epochs=params["max_epochs"], seed=seed, threads=threads)


def check_resolved(params: dict, result: TrainResult) -> dict:
    """Compare sampled values with those read back from the live objects (research rule 2)."""
    r = result.resolved
    tol = 1.0 / max(r["total_steps"], 1)
    checks = {"lr": np.isclose(r["lr"], params["lr"]),
              "weight_decay": np.isclose(r["weight_decay"], params["weight_decay"]),
              "warmup_frac": abs(r["warmup_frac"] - params["warmup_frac"]) <= tol,
              "dropout": all(np.isclose(d, params["dropout"]) for d in r["dropout"]),
              "batch_size": r["batch_size"] == params["batch_size"] or r["batch_size"] < params[
                  "batch_size"],
              "max_epochs": r["max_epochs"] == params["max_epochs"]}
    if "norm" in params:
        checks["norm"] = r.get("norm") == params["norm"]
    bad = [k for k, ok in checks.items() if not ok]
    if bad:
        raise AssertionError(f"sampled settings did not reach training: {bad} (resolved {r})")
    return {k: bool(v) for k, v in checks.items()}


def build(cfg: SweepConfig, splits: Splits, arch: Arch, params: dict,
          seed: int) -> tuple[PatchTST, ModelConfig]:
    """The seeded model for ``arch`` with the sampled dropout and norm; a ``global`` model gets
    the training block's statistics (never validation's or test's)."""
    import torch

    mcfg = model_config(cfg, arch, params["dropout"], len(splits.columns), params.get("norm"))
    torch.manual_seed(seed)
    model = PatchTST(mcfg)
    fit_input_stats(model, splits.train.X)
    return model, mcfg


def fit(cfg: SweepConfig, splits: Splits, model: PatchTST, params: dict, seed: int,
        threads: int | None = None, callback: Callable | None = None) -> TrainResult:
    """Train ``model`` on the training block, early-stopping on validation (test never read)."""
    return train(model, splits.train.X, splits.train.y, splits.val.X, splits.val.y,
                 train_config(cfg, params, seed, threads), callback=callback)


def arch_record(arch: Arch, mcfg: ModelConfig, model) -> tuple[dict, dict]:
    """The architecture and its parameter counts: analytic (total, embedding, encoder, head,
    non-embedding) beside measured total and non-embedding (research rule 4)."""
    counts = count_params(mcfg)
    m = measured_breakdown(model)
    n_params = dict(counts, **m, analytic_matches=m["measured"] == counts["total"]
                    and m["measured_non_embedding"] == counts["non_embedding"])
    return dict(asdict(arch), tokenizer=mcfg.tokenizer, norm=mcfg.norm, patch_len=mcfg.patch_len,
                stride=mcfg.stride, context_len=mcfg.context_len,
                n_features=mcfg.n_features), n_params


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


def init_cell(cell: Cell, cfg: SweepConfig, url: str) -> optuna.Study:
    """Create a cell's study before any worker starts (no training, no pre-flight)."""
    entry = ds.manifest_entry(cfg.data.name)
    base = base_model(cfg, n_inputs(cfg, entry))
    storage = open_storage(url, cfg.search.heartbeat_s, cfg.search.max_retry)
    return create_study(cell, cfg, storage, budget_grid(cell.budget, base, cfg.grid), entry)


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


def storage_failure(e: BaseException) -> str | None:
    """The database error behind ``e`` (a lost connection, a deleted or read-only SQLite file),
    looked for along its chain of causes; None when ``e`` has nothing to do with the storage.
    Optuna can turn such an error into an AssertionError a few frames later."""
    import sqlalchemy.exc

    seen = 0
    while e is not None and seen < 10:
        if isinstance(e, sqlalchemy.exc.SQLAlchemyError):
            return f"{type(e).__name__}: {str(e).splitlines()[0][:200]}"
        e = e.__cause__ or e.__context__
        seen += 1
    return None


class OneInterrupt:
    """SIGINT handler for a search: the first interrupt raises KeyboardInterrupt, later ones are
    ignored until the interrupted trial is recorded and queued again. A driver interrupts its
    kernels repeatedly (one that sits between two cells ignores a single interrupt); a second
    interrupt landing in Optuna's bookkeeping left a trial RUNNING with no record."""

    def __init__(self):
        self.hit = False
        self.previous = None

    def __call__(self, signum, frame):
        if not self.hit:
            self.hit = True
            raise KeyboardInterrupt

    def install(self) -> OneInterrupt:
        import signal
        import threading

        if threading.current_thread() is threading.main_thread():
            self.previous = signal.signal(signal.SIGINT, self)
        return self

    def restore(self) -> None:
        import signal

        if self.previous is not None:
            signal.signal(signal.SIGINT, self.previous)
            self.previous = None


class CellRunner:
    """Prepares a cell (dataset, splits, grid, pre-flight, baselines, study) and runs its trials."""

    def __init__(self, cell: Cell, cfg: SweepConfig, *, threads: int | None = None,
                 worker: str = "", log: Callable[[str], None] | None = None,
                 storage: str | None = None, available_bytes: int | None = None):
        self.cell, self.cfg, self.threads, self.worker = cell, cfg, threads, worker
        self.dir = cell.dir
        self.dir.mkdir(parents=True, exist_ok=True)
        suffix = f".{worker}" if worker else ""
        self.log_path = self.dir / f"sweep{suffix}.log"
        self._print = log or print
        self.url = storage or storage_url(cell.name)
        self.available_bytes = available_bytes
        self.stopped_reason: str | None = None

    def log(self, msg: str) -> None:
        line = f"{now_iso()} {self.cell.id} {msg}"
        self._print(line)
        with open(self.log_path, "a") as f:  # this process is the only writer of this file
            f.write(line + "\n")

    # -- preparation -------------------------------------------------------------------------
    def prepare(self) -> dict:
        if self.threads:
            self._limits = threadpool_limits(self.threads)  # BLAS/OpenMP pools of the baselines
        cfg = self.cfg
        base = base_model(cfg, n_inputs(cfg, ds.manifest_entry(cfg.data.name)))
        self.archs_all = budget_grid(self.cell.budget, base, cfg.grid)
        # an architecture fits when it can train at all: the trainer picks the micro-batch from
        # the same estimate and accumulates gradients, so the need is the footprint at
        # micro-batch 1 (weights, gradients, optimizer state, one sample's activations)
        bf16 = cfg.train.bf16 and hardware.device_type(cfg.train.device) == "cuda"
        needs = {a.id: memory_estimate(a.apply(base), 1, autocast_bf16=bf16)["total"]
                 for a in self.archs_all}
        report = hardware.preflight(
            memory_needs=needs, policy=cfg.search.memory_policy,
            dataset_check=lambda: ds.verify(cfg.data.name), device=cfg.train.device,
            threads=self.threads, outputs=paths.OUTPUTS, min_disk_gb=cfg.guards.min_disk_gb,
            available_bytes=self.available_bytes)
        report["cell"] = self.cell.as_dict()
        self.preflight = report
        self._remove_stale_temporaries()
        for w in report["warnings"]:
            self.log(f"preflight warning: {w}")
        hardware.write_preflight(report, self.dir / "preflight.json")
        self.archs = [a for a in self.archs_all if a.id in set(report["architectures"])]
        self.df, self.manifest = ds.load_dataset(cfg.data.name)
        self.splits = make_splits(self.df, cfg.split, horizon=self.cell.horizon)
        self.baselines = cached_baselines(self.df, self.splits, paths.BASELINE_CACHE,
                                          seed=cfg.train.seed,
                                          collapse_spread=cfg.train.collapse_spread)
        self.storage = open_storage(self.url, cfg.search.heartbeat_s, cfg.search.max_retry)
        self.study = self._study()
        return report

    def _remove_stale_temporaries(self, age_s: float = 300) -> None:
        """Temporary files a killed process left behind (never a record: those are renamed)."""
        now = time.time()
        for tmp in self.dir.rglob(".*.tmp"):
            if now - tmp.stat().st_mtime > age_s:
                tmp.unlink(missing_ok=True)

    def _study(self) -> optuna.Study:
        return create_study(self.cell, self.cfg, self.storage, self.archs_all, self.manifest,
                            self.worker)

    # -- trials ------------------------------------------------------------------------------
    def _sample(self, trial: optuna.Trial) -> tuple[Arch, dict]:
        s = self.cfg.search
        choices = self.study.user_attrs.get("architectures") or [a.id for a in self.archs_all]
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
        by_id = {a.id: a for a in self.archs}
        if params["arch"] not in by_id:
            raise ArchitectureUnavailable(f"architecture {params['arch']} was dropped by this "
                                          f"machine's pre-flight memory check")
        return by_id[params["arch"]], params

    def _surplus(self, trial: optuna.Trial) -> bool:
        target = records.target(self.study, self.cfg.search.n_trials)
        done, ahead = 0, 0
        for t in self.study.get_trials(deepcopy=False):
            if records.counts_done(t):
                done += 1
            elif (t.state == TrialState.RUNNING and t.number < trial.number
                  and not records.is_surplus(t)):
                ahead += 1
        return done + ahead >= target

    def objective(self, trial: optuna.Trial) -> float:
        t0 = time.time()
        if self._surplus(trial):
            trial.set_user_attr("surplus", True)
            raise SurplusTrial("target already covered by finished and running trials")
        base = {"horizon": self.cell.horizon, "threshold": self.cfg.split.threshold,
                "label": self.cfg.split.label, "context_len": self.cfg.split.context_len,
                "seed": self.cfg.train.seed, "split": self.splits.stats.to_dict(),
                "dataset": {"id": self.cfg.data.name, "sha256": self.manifest["sha256"]},
                "code": code_version(), "host": socket.gethostname(), "worker": self.worker}
        curve: list[dict] = []
        try:
            arch, params = self._sample(trial)
        except ArchitectureUnavailable as e:
            trial.set_user_attr("fail_reason", str(e))
            trial.set_user_attr("record", base)
            raise
        self.log(f"trial {trial.number} start arch={arch.id} "
                 f"params={ {k: v for k, v in params.items() if k != 'arch'} }")

        def on_epoch(epoch: int, row: dict) -> bool:
            curve.append(row)
            trial.report(row["objective"], epoch)
            if trial.should_prune():
                raise optuna.TrialPruned(f"pruned after epoch {epoch} "
                                         f"(objective {row['objective']:.4f})")
            return False

        def finish(extra: dict) -> None:
            rec = {**base, "learning_curve": curve, "seconds": time.time() - t0,
                   "hardware": self.telemetry.summary(since=t0), **extra}
            trial.set_user_attr("record", rec)

        model, mcfg = build(self.cfg, self.splits, arch, params, self.cfg.train.seed)
        arch_rec, n_params = arch_record(arch, mcfg, model)
        try:
            result = fit(self.cfg, self.splits, model, params, self.cfg.train.seed, self.threads,
                         on_epoch)
        except optuna.TrialPruned as e:
            finish({"arch": arch_rec, "n_params": n_params, "prune_reason": str(e)})
            raise
        except DivergenceError as e:
            trial.set_user_attr("fail_reason", f"diverged: {e}")
            finish({"arch": arch_rec, "n_params": n_params, "diverged_epoch": e.epoch})
            raise
        except KeyboardInterrupt:
            # Ctrl-C: Optuna ends the trial FAILED; without a fail_reason it does not count
            # towards the target, and run() still writes its record
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

    def _after_trial(self, study: optuna.Study, t: optuna.trial.FrozenTrial) -> None:
        if records.is_surplus(t):
            return
        records.write_after_trial(self.dir, study, t, self.cell.as_dict())
        rec = t.user_attrs.get("record", {})
        hw = rec.get("hardware") or {}
        rss = (hw.get("proc_rss_mb") or {}).get("max")
        value = f"{t.value:.4f}" if t.value is not None else "-"
        reason = t.user_attrs.get("fail_reason") or rec.get("prune_reason") or ""
        self.log(f"trial {t.number} end state={t.state.name} objective={value} "
                 f"seconds={rec.get('seconds', 0):.1f} peak_rss_mb={rss} "
                 f"cpu_temp={(hw.get('cpu_temp_c') or {}).get('max')} {reason}".rstrip())

    def _record_unrecorded_failures(self) -> list:
        """Write the record of every FAILED trial that has none (killed or interrupted: no
        Optuna callback ran for it), so that every finished trial has its file."""
        written = []
        for t in self.study.get_trials(deepcopy=False, states=(TrialState.FAIL,)):
            if not records.is_surplus(t) and not records.trial_path(self.dir, t.number).exists():
                self._after_trial(self.study, t)
                written.append(t)
        return written

    def status(self) -> dict:
        c = records.counts(self.study.get_trials(deepcopy=False))
        c["target"] = records.target(self.study, self.cfg.search.n_trials)
        return c

    def run(self, progress: bool = True) -> dict:
        """Top up the cell to its target of finished trials; returns the final counts."""
        from tqdm.auto import tqdm

        suffix = f".{self.worker}" if self.worker else ""
        self.telemetry = hardware.Telemetry(self.dir / f"hardware{suffix}.jsonl",
                                            self.cfg.guards.interval_s).start()
        g = self.cfg.guards
        guard = hardware.Guard(self.telemetry, g.temp_warn_c, g.temp_critical_c, g.mem_floor_gb,
                               g.max_pause_s, log=self.log)
        target = self.status()["target"]
        waited = False
        bar = tqdm(total=target, initial=min(self.status()["finished"], target),
                   desc=self.cell.id, disable=not progress)
        # The objects alive now (modules, dataset, splits) outlive every trial: freezing them
        # keeps the collection after each trial (gc_after_trial) from rescanning ~450k objects,
        # 0.25 s a trial here (bench/NOTES.md).
        gc.collect()
        gc.freeze()
        interrupt = OneInterrupt().install()
        try:
            while True:
                optuna.storages.fail_stale_trials(self.study)
                self._record_unrecorded_failures()  # e.g. a killed worker's stale trial
                c = self.status()
                bar.n = min(c["finished"], target)
                bar.refresh()
                if c["finished"] >= target:
                    break
                if c["finished"] + c["running"] >= target and c["waiting"] == 0:
                    # the rest is running elsewhere: wait until it ends or its heartbeat goes stale
                    # (then the retry comes back as a waiting trial this worker can take)
                    if not waited:
                        self.log(f"{c['running']} trial(s) running in other workers; waiting")
                    waited = True
                    time.sleep(min(self.cfg.search.heartbeat_s, 5))
                    continue
                ok, why = guard.wait()
                if not ok:
                    self.stopped_reason = why
                    break
                self.study.optimize(self.objective, n_trials=1, callbacks=[self._after_trial],
                                    catch=(DivergenceError, SurplusTrial,
                                           ArchitectureUnavailable),
                                    gc_after_trial=True)
        except Exception as e:
            cause = storage_failure(e)
            if cause is None:
                raise
            raise StorageError(f"the study storage {mask_url(self.url)} failed during the "
                               f"search: {cause} (every trial that finished before is "
                               f"recorded; run again once the storage is back)") from e
        except KeyboardInterrupt:
            # Optuna has ended the interrupted trial FAILED but calls no callback for it: record
            # it, and queue its parameters again (behind the trials already waiting), so the
            # configuration is not lost. Further interrupts are ignored until this is done.
            t0 = time.time()
            for t in self._record_unrecorded_failures():
                if t.user_attrs.get("interrupted") and "arch" in t.params:
                    # a probe's retry is still a probe: effort stays equal per budget
                    self.study.enqueue_trial(dict(t.params), user_attrs={
                        "retry_of": t.number, "enqueued": records.is_probe(t)})
            self.log(f"interrupted: trial recorded and queued again in {time.time() - t0:.1f} s")
            raise
        finally:
            interrupt.restore()
            gc.unfreeze()
            bar.close()
            self.telemetry.stop()
        return self.status()

    def summarize(self) -> dict:
        return records.study_summary(self.dir, self.study, self.cell.as_dict(), self.baselines)

"""Trainer for a binary classifier that outputs logits; knows nothing about the model or Optuna.

Like minGPT's ``trainer.py``: AdamW with decoupled weight decay, linear warm-up then cosine decay,
gradient clipping, micro-batches with gradient accumulation, early stopping on the validation
objective with the best epoch's weights restored before any metric is reported (research rule 9),
a per-epoch callback that may stop training (a search uses it to prune), and a dedicated error when
the loss stops being finite (rule 13). Training settings are read back from the live optimizer,
scheduler and model into the result (rule 2).
"""

from __future__ import annotations

import math
import random
import resource
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from .config import ModelConfig, TrainConfig
from .hardware import available_memory, resolve_device
from .metrics import evaluate, sigmoid
from .model import choose_micro_batch, memory_estimate


class DivergenceError(RuntimeError):
    """The training or validation loss became NaN or infinite."""

    def __init__(self, epoch: int, what: str):
        super().__init__(f"{what} became non-finite in epoch {epoch}")
        self.epoch = epoch


@dataclass
class TrainResult:
    """What training returns: the curve, the restored best epoch and its validation
    metrics, the settings read back."""

    curve: list[dict]  # per epoch: train_loss, val_loss, val_auc, lr, seconds, samples_per_s
    best_epoch: int  # 1-based epoch whose weights were restored
    objective: str  # val_logloss | val_auc
    best_objective: float  # objective at best_epoch, recomputed on the restored weights
    val: dict  # metrics on the validation block with the restored weights
    resolved: dict  # settings read back from the live optimizer, scheduler and model
    stop_reason: str  # early_stopping | max_epochs | callback
    seconds: float  # wall time of training
    peak_memory_mb: dict = field(default_factory=dict)  # device and/or process peaks
    oom_retries: int = 0  # micro-batch halvings after out-of-memory errors
    memory_plan: dict = field(default_factory=dict)  # how the micro-batch was chosen

    def to_dict(self) -> dict:
        return asdict(self)


class WarmupCosine:
    """LR multiplier: linear warm-up over ``warmup_steps``, then cosine decay to 0 at the end."""

    def __init__(self, warmup_steps: int, total_steps: int):
        self.warmup_steps, self.total_steps = warmup_steps, max(total_steps, 1)

    def __call__(self, step: int) -> float:
        if step < self.warmup_steps:
            return (step + 1) / self.warmup_steps
        progress = (step - self.warmup_steps) / max(self.total_steps - self.warmup_steps, 1)
        return 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))


def seed_everything(seed: int) -> None:
    """Seed Python's, NumPy's and torch's global generators."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def param_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """Decay matrices; leave biases, norms, RevIN and positional embeddings undecayed."""
    decay = [p for p in model.parameters() if p.requires_grad and p.dim() >= 2]
    rest = [p for p in model.parameters() if p.requires_grad and p.dim() < 2]
    return [{"params": decay, "weight_decay": weight_decay},
            {"params": rest, "weight_decay": 0.0}]


def eval_batch(micro: int, batch: int) -> int:
    """Samples per inference pass: 1024, or 4 micro-batches when memory forced micro-batching
    (inference keeps no activations for backward)."""
    return 1024 if micro >= batch else max(4 * micro, 1)


@torch.no_grad()
def predict_logits(model: nn.Module, X: torch.Tensor, batch: int = 1024,
                   autocast: bool = False) -> torch.Tensor:
    """Logits of ``model`` in eval mode, ``batch`` samples at a time, without gradients."""
    model.eval()
    out = []
    for i in range(0, len(X), batch):
        with torch.autocast(X.device.type, dtype=torch.bfloat16, enabled=autocast):
            out.append(model(X[i:i + batch]).float())
    return torch.cat(out) if out else torch.zeros(0)


def plan_micro_batch(model: nn.Module, batch: int, cfg: TrainConfig, device: torch.device,
                     autocast: bool) -> tuple[int, dict]:
    """The micro-batch: the requested one, or the largest that the model's memory estimate
    (``model.cfg``, a ModelConfig) fits into the memory available on the device."""
    if cfg.micro_batch_size:
        return min(cfg.micro_batch_size, batch), {"source": "requested"}
    mcfg = getattr(model, "cfg", None)
    available, what = available_memory(device)
    if not isinstance(mcfg, ModelConfig) or available is None:
        why = what if available is None else "model has no memory estimate"
        return batch, {"source": f"full batch ({why})"}
    micro = choose_micro_batch(mcfg, batch, available, autocast, cfg.memory_headroom)
    est = memory_estimate(mcfg, micro, autocast_bf16=autocast)["total"]
    return micro, {"source": "estimate", "available_gb": available / 2**30, "available": what,
                   "estimate_gb": est / 2**30, "headroom": cfg.memory_headroom}


def compiled(model: nn.Module, backend: str) -> nn.Module:
    """``torch.compile(model)`` with ``backend``, or the model itself for ``off``."""
    if backend == "off":
        return model
    import torch._dynamo

    known = torch._dynamo.list_backends(exclude_tags=())
    if backend not in known:
        raise ValueError(f"unknown compile backend {backend!r}; choose off or one of "
                         f"{', '.join(sorted(known))}")
    return torch.compile(model, backend=backend)


def _dropout_rates(model: nn.Module) -> list[float]:
    """Every dropout rate the live model uses (read back for rule 2)."""
    rates = {m.p for m in model.modules() if isinstance(m, nn.Dropout)}
    rates |= {m.dropout for m in model.modules() if hasattr(m, "dropout")
              and isinstance(m.dropout, float)}
    return sorted(rates)


class TrainStep:
    """One optimizer step, as training runs it and ``make bench`` times it: micro-batches with
    gradients accumulated to the batch (bf16 autocast on CUDA), clipping, AdamW, schedule."""

    def __init__(self, model: nn.Module, forward: nn.Module, optimizer: torch.optim.Optimizer,
                 scheduler, loss_fn: nn.Module, device: torch.device, autocast: bool,
                 grad_clip: float):
        self.model, self.forward, self.optimizer, self.scheduler = model, forward, optimizer, \
            scheduler
        self.loss_fn, self.device, self.autocast, self.grad_clip = loss_fn, device, autocast, \
            grad_clip

    def __call__(self, xb: torch.Tensor, yb: torch.Tensor, micro: int) -> float:
        """Sum over the batch of the per-sample losses (before the step)."""
        self.optimizer.zero_grad(set_to_none=True)
        total = 0.0
        for i in range(0, len(xb), micro):
            xm, ym = xb[i:i + micro], yb[i:i + micro]
            with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.autocast):
                logits = self.forward(xm)
            loss = self.loss_fn(logits.float(), ym)
            (loss * (len(xm) / len(xb))).backward()
            total += loss.item() * len(xm)
        if self.grad_clip > 0:
            nn.utils.clip_grad_norm_(self.model.parameters(), self.grad_clip)
        self.optimizer.step()
        if self.scheduler is not None:
            self.scheduler.step()
        return total


def make_step(model: nn.Module, cfg: TrainConfig, device: torch.device, total_steps: int,
              autocast: bool, forward: nn.Module | None = None) -> TrainStep:
    """The step for ``cfg``: AdamW (fused on CUDA) over decayed and undecayed groups, linear
    warm-up then cosine decay over ``total_steps``, BCE on logits (optional pos_weight)."""
    schedule = WarmupCosine(int(round(cfg.warmup_frac * total_steps)), total_steps)
    optimizer = torch.optim.AdamW(param_groups(model, cfg.weight_decay), lr=cfg.lr,
                                  fused=device.type == "cuda")
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)
    pos_weight = None if cfg.pos_weight is None else torch.tensor(cfg.pos_weight, device=device)
    return TrainStep(model, model if forward is None else forward, optimizer, scheduler,
                     nn.BCEWithLogitsLoss(pos_weight=pos_weight), device, autocast,
                     cfg.grad_clip)


def run_epoch(step: TrainStep, Xtr: torch.Tensor, ytr: torch.Tensor, batch: int, micro: int,
              generator: torch.Generator, epoch: int, memory_plan: dict,
              progress: bool = False) -> tuple[float, int, int]:
    """One pass over the shuffled training block; an out-of-memory error halves the micro-batch
    and retries the step. Returns the summed loss, the micro-batch now and the halvings."""
    n, device, halvings = len(Xtr), step.device, 0
    perm = torch.randperm(n, generator=generator).to(device)
    running = 0.0
    bar = tqdm(range(0, n, batch), desc=f"epoch {epoch}", disable=not progress, leave=False)
    for i in bar:
        idx = perm[i:i + batch]
        while True:
            try:
                running += step(Xtr[idx], ytr[idx], micro)
                break
            except torch.OutOfMemoryError:
                if micro <= 1:
                    raise
                micro, halvings = max(micro // 2, 1), halvings + 1
                memory_plan.setdefault("oom_halvings", []).append(
                    {"epoch": epoch, "step": i // batch, "micro_batch": micro})
                if device.type == "cuda":
                    torch.cuda.empty_cache()
        if not math.isfinite(running):
            raise DivergenceError(epoch, "training loss")
    return running, micro, halvings


def resolved_settings(step: TrainStep, cfg: TrainConfig, batch: int, micro: int) -> dict:
    """The settings read back from the live optimizer, scheduler and model (research rule 2)."""
    group = step.optimizer.param_groups[0]
    schedule = step.scheduler.lr_lambdas[0]
    model = step.model
    return {
        "lr": group["initial_lr"], "weight_decay": group["weight_decay"],
        "betas": list(group["betas"]), "warmup_steps": schedule.warmup_steps,
        "total_steps": schedule.total_steps,
        "warmup_frac": schedule.warmup_steps / schedule.total_steps,
        "dropout": _dropout_rates(model), "batch_size": batch, "micro_batch_size": micro,
        "max_epochs": cfg.max_epochs, "grad_clip": step.grad_clip, "patience": cfg.patience,
        "pos_weight": None if step.loss_fn.pos_weight is None else float(step.loss_fn.pos_weight),
        "device": str(step.device), "autocast_bf16": step.autocast,
        "threads": torch.get_num_threads(), "seed": cfg.seed, "objective": cfg.objective,
        "compile": cfg.compile, "norm": getattr(getattr(model, "cfg", None), "norm", None),
    }


class BestEpoch:
    """Early stopping's memory: the best epoch's objective (lower is better) and weights, kept in
    host memory (a second copy of a 2B model's weights on the GPU would cost 8 GB), and the
    epochs since it. ``restore`` puts those weights back (research rule 9)."""

    def __init__(self, min_delta: float):
        self.min_delta, self.value, self.epoch, self.state, self.bad_epochs = \
            min_delta, math.inf, 0, None, 0

    def update(self, value: float, epoch: int, model: nn.Module) -> None:
        """Keep ``model``'s weights when ``value`` improves on the best by more than min_delta."""
        if value < self.value - self.min_delta:
            self.value, self.epoch, self.bad_epochs = value, epoch, 0
            self.state = {k: v.detach().to("cpu", copy=True)
                          for k, v in model.state_dict().items()}
        else:
            self.bad_epochs += 1

    def restore(self, model: nn.Module) -> None:
        """Load the best epoch's weights into ``model`` (nothing when no epoch finished)."""
        if self.state is not None:
            model.load_state_dict(self.state)


def train(model: nn.Module, X_train: np.ndarray, y_train: np.ndarray, X_val: np.ndarray,
          y_val: np.ndarray, cfg: TrainConfig,
          callback: Callable[[int, dict], bool | None] | None = None) -> TrainResult:
    """Train ``model`` in place and restore its best epoch.

    Args:
        X_train, X_val: [n, context_len, n_features] float32 windows; y_*: [n] labels in {0, 1}.
        callback: called after every epoch with (epoch, metrics); returning True stops training;
            an exception it raises (a pruning signal) propagates once the best weights are
            restored.
    """
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    seed_everything(cfg.seed)
    device = resolve_device(cfg.device)
    autocast = cfg.bf16 and device.type == "cuda"
    model.to(device)
    Xtr = torch.as_tensor(X_train, dtype=torch.float32, device=device)
    ytr = torch.as_tensor(y_train, dtype=torch.float32, device=device)
    Xva = torch.as_tensor(X_val, dtype=torch.float32, device=device)
    y_val_np = np.asarray(y_val)
    base_rate = float(np.mean(y_train))
    n = len(Xtr)
    batch = min(cfg.batch_size, n)
    micro, memory_plan = plan_micro_batch(model, batch, cfg, device, autocast)
    forward = compiled(model, cfg.compile)
    step = make_step(model, cfg, device, math.ceil(n / batch) * cfg.max_epochs, autocast, forward)
    generator = torch.Generator(device="cpu").manual_seed(cfg.seed)
    sign = 1.0 if cfg.objective == "val_logloss" else -1.0  # internal: lower is better
    best, curve = BestEpoch(cfg.min_delta), []
    stop_reason, oom_retries = "max_epochs", 0
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    t_start = time.perf_counter()

    def validate() -> dict:
        logits = predict_logits(forward, Xva, eval_batch(micro, batch), autocast)
        if not torch.isfinite(logits).all():
            raise DivergenceError(epoch, "validation logits")
        return evaluate(y_val_np, sigmoid(logits.cpu()), base_rate, cfg.collapse_spread)

    epoch = 0
    try:
        for epoch in range(1, cfg.max_epochs + 1):
            model.train()
            t0 = time.perf_counter()
            lr = step.optimizer.param_groups[0]["lr"]
            running, micro, halvings = run_epoch(step, Xtr, ytr, batch, micro, generator, epoch,
                                                 memory_plan, cfg.progress)
            oom_retries += halvings
            seconds = time.perf_counter() - t0
            m = validate()
            row = {"epoch": epoch, "train_loss": running / n, "val_loss": m["logloss"],
                   "val_auc": m["auc"], "val_skill": m["skill"], "lr": lr, "seconds": seconds,
                   "samples_per_s": n / seconds}
            curve.append(row)
            value = sign * (m["logloss"] if sign > 0 else (m["auc"] or 0.0))
            best.update(value, epoch, model)
            if callback is not None and callback(epoch, dict(row, objective=sign * value)):
                stop_reason = "callback"
                break
            if best.bad_epochs >= cfg.patience:
                stop_reason = "early_stopping"
                break
    finally:
        best.restore(model)
    logits = predict_logits(forward, Xva, eval_batch(micro, batch), autocast)
    val = evaluate(y_val_np, sigmoid(logits.cpu()), base_rate, cfg.collapse_spread)
    peak = {"process_max_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
    if device.type == "cuda":
        peak["cuda_max_allocated_mb"] = torch.cuda.max_memory_allocated(device) / 2**20
    best_objective = val["logloss"] if cfg.objective == "val_logloss" else val["auc"]
    return TrainResult(curve=curve, best_epoch=best.epoch, objective=cfg.objective,
                       best_objective=best_objective, val=val,
                       resolved=resolved_settings(step, cfg, batch, micro),
                       stop_reason=stop_reason, seconds=time.perf_counter() - t_start,
                       peak_memory_mb=peak, oom_retries=oom_retries, memory_plan=memory_plan)

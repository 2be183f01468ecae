"""The pieces of a training run (``lib.train.trainer`` puts them together, ``make bench`` times).

AdamW over decayed and undecayed groups with linear warm-up then cosine decay, one optimizer step
with micro-batches and gradient clipping (:class:`TrainStep`, for one model or a stack of K,
:mod:`lib.model.ensemble`), an epoch with each model's own data order and the out-of-memory
fallback, each seed's two random streams (data order, dropout noise), early stopping's memory of the
best epoch (research rule 9), and the dedicated error for a loss that stops being finite (rule 13).
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from ..core.config import TrainConfig
from ..model.ensemble import clip_per_model


class DivergenceError(RuntimeError):
    """The training or validation loss became NaN or infinite."""

    def __init__(self, epoch: int, what: str):
        super().__init__(f"{what} became non-finite in epoch {epoch}")
        self.epoch = epoch


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
    """Decay matrices; leave biases, norms, RevIN and positional embeddings undecayed (a stack of
    K models, :mod:`lib.model.ensemble`, has one more leading dimension on every parameter)."""
    lead = 1 if getattr(model, "members", 1) > 1 else 0
    decay = [p for p in model.parameters() if p.requires_grad and p.dim() - lead >= 2]
    rest = [p for p in model.parameters() if p.requires_grad and p.dim() - lead < 2]
    return [{"params": decay, "weight_decay": weight_decay},
            {"params": rest, "weight_decay": 0.0}]


class Noise:
    """Dropout's uniform noise, one generator per model (:class:`lib.model.model.Dropout`): the K
    models' samples lie model-major in the first dimension, and model k's share is drawn from
    generator k, so each model draws what it would draw trained alone."""

    def __init__(self, generators: list[torch.Generator]):
        self.generators = generators

    def __call__(self, shape: torch.Size, device: torch.device) -> torch.Tensor:
        if len(self.generators) == 1:
            return torch.rand(shape, generator=self.generators[0], device=device)
        part = (shape[0] // len(self.generators), *shape[1:])
        return torch.cat([torch.rand(part, generator=g, device=device) for g in self.generators])


def generators(seed: int, device: torch.device) -> tuple[torch.Generator, torch.Generator]:
    """A seed's two streams: the data order (CPU) and dropout's noise (on ``device``), apart."""
    noise_seed = int(np.random.SeedSequence([seed, 1]).generate_state(1, dtype=np.uint64)[0])
    return (torch.Generator(device="cpu").manual_seed(seed),
            torch.Generator(device=device).manual_seed(noise_seed % 2**63))


class TrainStep:
    """One optimizer step, as training runs it and ``make bench`` times it: micro-batches with
    gradients accumulated to the batch (bf16 autocast on CUDA), clipping, AdamW, schedule. For K
    models trained together (:mod:`lib.model.ensemble`) each model's loss is its own batch mean and
    its gradient is clipped by its own norm, so each takes the step it would take alone."""

    def __init__(self, model: nn.Module, forward: nn.Module, optimizer: torch.optim.Optimizer,
                 scheduler, loss_fn: nn.Module, device: torch.device, autocast: bool,
                 grad_clip: float):
        self.model, self.forward, self.optimizer, self.scheduler = model, forward, optimizer, \
            scheduler
        self.loss_fn, self.device, self.autocast, self.grad_clip = loss_fn, device, autocast, \
            grad_clip

    def __call__(self, xb: torch.Tensor, yb: torch.Tensor, micro: int) -> torch.Tensor:
        """xb: [K, batch, context_len, n_features], yb: [K, batch] (K = 1 for one model).
        Returns each model's sum over its batch of the per-sample losses (before the step): [K]."""
        self.optimizer.zero_grad(set_to_none=True)
        k, n = yb.shape
        total = torch.zeros(k, device=yb.device)
        for i in range(0, n, micro):
            xm, ym = xb[:, i:i + micro], yb[:, i:i + micro]
            m = ym.shape[1]
            with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.autocast):
                logits = self.forward(xm.reshape(k * m, *xm.shape[2:]))
            loss = self.loss_fn(logits.float().reshape(k, m), ym).mean(dim=1)  # [K]
            (loss.sum() * (m / n)).backward()
            total += loss.detach() * m
        if self.grad_clip > 0:
            if k == 1:
                nn.utils.clip_grad_norm_(self.model.parameters(), self.grad_clip,
                                         foreach=self.device.type in ("cuda", "cpu"))
            else:
                clip_per_model(self.model, self.grad_clip)
        self.optimizer.step()
        if self.scheduler is not None:
            self.scheduler.step()
        return total


def make_step(model: nn.Module, cfg: TrainConfig, device: torch.device, total_steps: int,
              autocast: bool, forward: nn.Module | None = None) -> TrainStep:
    """The step for ``cfg``: AdamW over decayed and undecayed groups, linear warm-up then cosine
    decay over ``total_steps``, BCE on logits (optional pos_weight). AdamW is the fused kernel on
    CUDA and on the CPU: a deep, narrow model has a hundred small parameter tensors, and the
    one-tensor-at-a-time update cost up to a tenth of its step (``bench/NOTES.md`` section 11)."""
    schedule = WarmupCosine(int(round(cfg.warmup_frac * total_steps)), total_steps)
    optimizer = torch.optim.AdamW(param_groups(model, cfg.weight_decay), lr=cfg.lr,
                                  fused=device.type in ("cuda", "cpu"))
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)
    pos_weight = None if cfg.pos_weight is None else torch.tensor(cfg.pos_weight, device=device)
    return TrainStep(model, model if forward is None else forward, optimizer, scheduler,
                     nn.BCEWithLogitsLoss(pos_weight=pos_weight, reduction="none"), device,
                     autocast, cfg.grad_clip)


def run_epoch(step: TrainStep, Xtr: torch.Tensor, ytr: torch.Tensor, batch: int, micro: int,
              orders: list[torch.Generator], epoch: int, memory_plan: dict,
              progress: bool = False, limit: int | None = None) -> tuple[np.ndarray, int, int]:
    """One pass over the training block, shuffled for each model by its own generator in
    ``orders`` (with ``limit``, the first ``limit`` windows of that shuffle: a fresh sample each
    epoch); an out-of-memory error halves the micro-batch and retries the step. Returns
    each model's summed loss, the micro-batch now and the halvings."""
    n, device, halvings = len(Xtr), step.device, 0
    perm = torch.stack([torch.randperm(n, generator=g) for g in orders]).to(device)  # [K, n]
    if limit is not None and limit < n:
        perm, n = perm[:, :limit], limit
    running = torch.zeros(len(orders), device=device)
    bar = tqdm(range(0, n, batch), desc=f"epoch {epoch}", disable=not progress, leave=False)
    for i in bar:
        idx = perm[:, i:i + batch]
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
        if not torch.isfinite(running).all():  # stop at the step that diverged, not the epoch end
            raise DivergenceError(epoch, "training loss")
    return running.cpu().numpy(), micro, halvings


class BestEpoch:
    """Early stopping's memory: the best epoch's objective (lower is better) and weights, kept in
    host memory (a second copy of a 2B model's weights on the GPU would cost 8 GB), and the
    epochs since it. ``restore`` puts those weights back (research rule 9)."""

    def __init__(self, min_delta: float):
        self.min_delta, self.value, self.epoch, self.state, self.bad_epochs = \
            min_delta, math.inf, 0, None, 0

    def update(self, value: float, epoch: int, snapshot: Callable[[], dict]) -> None:
        """Keep the weights ``snapshot()`` returns when ``value`` improves on the best by more
        than min_delta."""
        if value < self.value - self.min_delta:
            self.value, self.epoch, self.bad_epochs = value, epoch, 0
            self.state = snapshot()
        else:
            self.bad_epochs += 1

    def restore(self, model: nn.Module) -> None:
        """Load the best epoch's weights into ``model`` (nothing when no epoch finished)."""
        if self.state is not None:
            model.load_state_dict(self.state)


def host_copy(model: nn.Module) -> Callable[[], dict]:
    """A snapshot of ``model``'s ``state_dict`` in host memory, for :class:`BestEpoch`."""
    return lambda: {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}

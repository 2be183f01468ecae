"""K models of one architecture as one module, trained together (``lib.train.trainer.train_many``).

:func:`stack` turns K :class:`~lib.model.model.PatchTST` models that differ only in their weights
(the seeds of a final evaluation) into one module whose every parameter is the stack ``[K, ...]`` of
theirs: a linear layer becomes one batched matrix product (``baddbmm``) over the K models, a layer
norm normalises once and applies each model's affine weights, the positional embedding and
RevIN's weights broadcast per model (:func:`lib.model.model.per_model`). The input holds the K
models' samples model-major, ``[K * batch, ...]``; every other operation of the forward pass acts
per sample, so model k sees only its own samples and weights. Buffers (a ``global`` model's training
statistics) must be equal across the K models and are kept once. :func:`unstack` gives model k's
``state_dict`` back, :func:`keep` drops the models that stopped early (and their optimizer state).
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn

from .model import PatchTST, RevIN


class StackedLinear(nn.Module):
    """K linear layers of one shape: ``weight [K, out, in]``, ``bias [K, out]``."""

    def __init__(self, layers: list[nn.Linear]):
        super().__init__()
        self.weight = nn.Parameter(torch.stack([m.weight.detach() for m in layers]))
        self.bias = nn.Parameter(torch.stack([m.bias.detach() for m in layers]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        k = self.weight.shape[0]
        xk = x.reshape(k, -1, x.shape[-1])  # xk: [K, rows per model, in]
        y = torch.baddbmm(self.bias.unsqueeze(1), xk, self.weight.transpose(1, 2))
        return y.reshape(*x.shape[:-1], -1)  # y: [..., out]


class StackedLayerNorm(nn.Module):
    """K layer norms over the last dimension: normalise once, then each model's weight and bias."""

    def __init__(self, layers: list[nn.LayerNorm]):
        super().__init__()
        self.shape, self.eps = layers[0].normalized_shape, layers[0].eps
        self.weight = nn.Parameter(torch.stack([m.weight.detach() for m in layers]))
        self.bias = nn.Parameter(torch.stack([m.bias.detach() for m in layers]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        k = self.weight.shape[0]
        y = F.layer_norm(x, self.shape, eps=self.eps).reshape(k, -1, x.shape[-1])
        return (y * self.weight.unsqueeze(1) + self.bias.unsqueeze(1)).reshape(x.shape)


def _check_same(models: list[PatchTST]) -> None:
    first = models[0]
    for m in models[1:]:
        if m.cfg != first.cfg:
            raise ValueError(f"models trained together need one architecture: {m.cfg} differs "
                             f"from {first.cfg}")
        for (name, b), (_, b0) in zip(m.named_buffers(), first.named_buffers(), strict=True):
            if not torch.equal(b, b0):
                raise ValueError(f"models trained together need equal buffers; {name} differs "
                                 f"(fit_input_stats on the same training block)")


def stack(models: list[PatchTST]) -> PatchTST:
    """One module holding the K models; ``members`` says how many. The models are not changed."""
    _check_same(models)
    out = copy.deepcopy(models[0])
    by_name = [dict(m.named_modules()) for m in models]
    for name, module in list(out.named_modules()):
        for child_name, child in list(module.named_children()):
            full = f"{name}.{child_name}" if name else child_name
            same = [mods[full] for mods in by_name]
            if isinstance(child, nn.Linear):
                setattr(module, child_name, StackedLinear(same))
            elif isinstance(child, nn.LayerNorm):
                setattr(module, child_name, StackedLayerNorm(same))
            elif isinstance(child, RevIN):
                child.weight = nn.Parameter(torch.stack([m.weight.detach() for m in same]))
                child.bias = nn.Parameter(torch.stack([m.bias.detach() for m in same]))
    out.pos = nn.Parameter(torch.stack([m.pos.detach() for m in models]))
    out.members = len(models)
    return out


def unstack(stacked: PatchTST, k: int) -> dict[str, torch.Tensor]:
    """Model k's ``state_dict`` (parameters sliced, buffers shared), copied to the CPU."""
    state = {n: p.detach()[k].to("cpu", copy=True) for n, p in stacked.named_parameters()}
    state.update({n: b.detach().to("cpu", copy=True) for n, b in stacked.named_buffers()})
    return state


def keep(stacked: PatchTST, optimizer: torch.optim.Optimizer, index: list[int]) -> None:
    """Keep only models ``index`` (in that order): every stacked parameter, its gradient-free
    optimizer state (AdamW's moments; the step count is shared) and ``members`` shrink in place;
    the optimizer keeps its learning-rate schedule."""
    idx = torch.as_tensor(index, device=next(stacked.parameters()).device)
    swap = {}
    for module in stacked.modules():
        for name, p in list(module.named_parameters(recurse=False)):
            new = nn.Parameter(p.detach().index_select(0, idx))
            setattr(module, name, new)
            swap[p] = new
    for group in optimizer.param_groups:
        group["params"] = [swap[p] for p in group["params"]]
    state = {}
    for old, st in optimizer.state.items():
        state[swap[old]] = {key: (v.index_select(0, idx) if torch.is_tensor(v) and v.dim() > 0
                                  else v) for key, v in st.items()}
    optimizer.state.clear()
    optimizer.state.update(state)
    stacked.members = len(index)


def clip_per_model(stacked: PatchTST, max_norm: float) -> torch.Tensor:
    """Clip each model's gradient to ``max_norm`` by its own total norm, as
    ``nn.utils.clip_grad_norm_`` does for one model; returns the K norms."""
    grads = [p.grad for p in stacked.parameters() if p.grad is not None]
    k = grads[0].shape[0]
    norms = torch.stack([g.reshape(k, -1).norm(dim=1) for g in grads]).norm(dim=0)  # [K]
    coef = (max_norm / (norms + 1e-6)).clamp(max=1.0)
    for g in grads:
        g.mul_(coef.reshape(k, *([1] * (g.dim() - 1))))
    return norms

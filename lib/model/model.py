"""PatchTST-style binary classifier with an exact analytic parameter count and budget grids.

References:
- Nie et al., "A Time Series is Worth 64 Words: Long-term Forecasting with Transformers"
  (PatchTST), ICLR 2023: patching with end padding (repeat the last step ``stride`` times), channel
  independence, a flatten head; https://github.com/yuqinie98/PatchTST
- Kim et al., "Reversible Instance Normalization for Accurate Time-Series Forecasting" (RevIN),
  ICLR 2022.
- Kaplan et al., "Scaling Laws for Neural Language Models", 2020: non-embedding parameter counts,
  6N FLOPs per token for training.

Two tokenizers: ``mixed`` (one token per patch across all features; cheap) and ``independent``
(one shared backbone per feature channel; the head reads every channel). The model returns ONE
LOGIT per sample; probabilities are computed elsewhere, with one sigmoid (research rule 8).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..core.config import NORMS, ModelConfig


def per_model(x: torch.Tensor, t: torch.Tensor, dims: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``x`` and a parameter ``t`` of ``dims`` dimensions as views that broadcast together. When
    ``t`` is a stack ``[K, ...]`` of K models' parameters (:mod:`lib.model.ensemble`), ``x`` holds
    the K models' samples model-major in its first dimension and is viewed as ``[K, -1, ...]``."""
    if t.dim() == dims:
        return x, t
    k = t.shape[0]
    xv = x.reshape(k, -1, *x.shape[1:])
    return xv, t.reshape(k, *([1] * (xv.dim() - 1 - dims)), *t.shape[1:])


def affine(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """``x * weight + bias`` over the last dimension, per model when the weights are stacked."""
    xv, w = per_model(x, weight, 1)
    _, b = per_model(x, bias, 1)
    return (xv * w + b).reshape(x.shape)


class Dropout(nn.Dropout):
    """Inverted dropout whose uniform noise comes from ``noise`` (a callable ``(shape, device)``
    the trainer sets: one generator per model, so K models trained together draw exactly what
    each would draw alone), or from torch's global generator when none is set. ``torch.rand``
    and a comparison also run about 3x faster than ``bernoulli_`` on the CPU, and turning the
    noise into the scaled mask in place (no boolean tensor, no converted copy) made a 100k
    model's training step 1.11x faster there (``bench/NOTES.md`` section 11)."""

    noise = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0:
            return x
        u = (self.noise(x.shape, x.device) if self.noise is not None
             else torch.rand(x.shape, device=x.device))
        if x.is_cuda:  # keeps a one-byte mask for backward
            return torch.where(u >= self.p, x * (1.0 / (1.0 - self.p)), 0.0)
        # on the CPU a product is about 20x faster than where(); it keeps the mask as a float,
        # made from the noise in place: u becomes 1/(1-p) where kept and 0 where dropped
        u = u if u.dtype == x.dtype else u.to(x.dtype)  # a float64 model gets a float64 scale
        return x * u.ge_(self.p).mul_(1.0 / (1.0 - self.p))


def set_noise(model: nn.Module, noise) -> None:
    """Give every :class:`Dropout` of ``model`` the noise source ``noise`` (None: global RNG)."""
    for m in model.modules():
        if isinstance(m, Dropout):
            m.noise = noise


class RevIN(nn.Module):
    """Per-window, per-channel standardisation with affine weights (nothing crosses windows)."""

    def __init__(self, n_features: int, eps: float = 1e-5):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(n_features))
        self.bias = nn.Parameter(torch.zeros(n_features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # centre on the newest step first: series like OBV (~1e11) lose float32 precision otherwise
        x = x - x[:, -1:, :].detach()  # x: [batch, context_len, n_features]
        mean = x.mean(dim=1, keepdim=True)  # [batch, 1, n_features]
        std = torch.sqrt(x.var(dim=1, keepdim=True, unbiased=False) + self.eps)
        return affine((x - mean) / std, self.weight, self.bias)


def symlog(x: torch.Tensor) -> torch.Tensor:
    """sign(x) * log(1 + |x|): a log scale that keeps the sign and 0."""
    return torch.sign(x) * torch.log1p(x.abs())


class RevINStats(RevIN):
    """RevIN that also returns what it removed: per channel symlog(window mean) and
    log(window standard deviation)."""

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        last = x[:, -1:, :].detach()
        xc = x - last  # x: [batch, context_len, n_features], centred on the newest step
        mean = xc.mean(dim=1, keepdim=True)  # [batch, 1, n_features]
        var = xc.var(dim=1, keepdim=True, unbiased=False)
        std = torch.sqrt(var + self.eps)
        z = affine((xc - mean) / std, self.weight, self.bias)
        stats = torch.stack([symlog(mean + last), 0.5 * torch.log(var + self.eps)], dim=-1)
        return z, stats.squeeze(1)  # stats: [batch, n_features, 2]


class GlobalNorm(nn.Module):
    """Standardisation with fixed per-channel statistics of the training block (buffers, not
    parameters: nothing is learned, and nothing crosses into validation or test)."""

    def __init__(self, n_features: int):
        super().__init__()
        self.register_buffer("mean", torch.zeros(n_features))
        self.register_buffer("std", torch.ones(n_features))
        self.register_buffer("fitted", torch.zeros((), dtype=torch.bool))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not bool(self.fitted):
            raise RuntimeError("norm 'global' needs the training block's statistics: call "
                               "lib.model.model.fit_input_stats(model, X_train) before training")
        return (x - self.mean) / self.std


_STATS: dict[int, tuple] = {}  # id(array) -> (weak reference, mean, std): one pass per block


def input_stats(X_train) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel mean and standard deviation (float64, every day of every window) of the
    training windows, computed once per array: every trial and seed of a cell normalises with
    the same block, and the pass over it cost about 0.1 s each time."""
    import weakref

    key = id(X_train)
    hit = _STATS.get(key)
    if hit is not None and hit[0]() is X_train:
        return hit[1], hit[2]
    X = torch.as_tensor(X_train, dtype=torch.float64)  # float64: OBV-sized values
    flat = X.reshape(-1, X.shape[-1])  # flat: [windows * context_len, n_features]
    mean, std = flat.mean(0).float(), flat.std(0).clamp_min(1e-8).float()
    try:
        ref = weakref.ref(X_train)
    except TypeError:  # not weakly referable (a list): not cached
        return mean, std
    for k in [k for k, v in _STATS.items() if v[0]() is None]:
        del _STATS[k]
    _STATS[key] = (ref, mean, std)
    return mean, std


def fit_input_stats(model: nn.Module, X_train) -> None:
    """Set a ``global`` model's per-channel mean and standard deviation from the training windows
    (:func:`input_stats`); a no-op for the other normalisations."""
    norm = getattr(model, "norm", None)
    if not isinstance(norm, GlobalNorm):
        return
    mean, std = input_stats(X_train)
    norm.mean.copy_(mean)
    norm.std.copy_(std)
    norm.fitted.fill_(True)


class Block(nn.Module):
    """Pre-norm encoder block: self-attention (scaled_dot_product_attention), GELU feed-forward.

    Dropout acts on the residual branches and the feed-forward's hidden layer, not on the
    attention weights (PatchTST's default ``attn_dropout=0``): the fused attention kernel then
    serves training too, about twice as fast on the CPU as the one that drops attention weights."""

    def __init__(self, d_model: int, n_heads: int, d_ff: int, dropout: float):
        super().__init__()
        self.n_heads = n_heads
        self.ln1 = nn.LayerNorm(d_model)
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.proj = nn.Linear(d_model, d_model)
        self.ln2 = nn.LayerNorm(d_model)
        self.ff1 = nn.Linear(d_model, d_ff)
        self.ff2 = nn.Linear(d_ff, d_model)
        self.drop = Dropout(dropout)

    def attention(self, x: torch.Tensor) -> torch.Tensor:
        """Multi-head self-attention over the tokens (scaled dot product)."""
        b, t, d = x.shape  # x: [batch, tokens, d_model]
        qkv = self.qkv(x).view(b, t, 3, self.n_heads, d // self.n_heads)
        q, k, v = qkv.permute(2, 0, 3, 1, 4)  # each: [batch, n_heads, tokens, head_dim]
        y = F.scaled_dot_product_attention(q, k, v)
        y = y.transpose(1, 2).reshape(b, t, d)  # y: [batch, tokens, d_model]
        return self.proj(y)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.drop(self.attention(self.ln1(x)))
        return x + self.drop(self.ff2(self.drop(F.gelu(self.ff1(self.ln2(x))))))


def n_patches(cfg: ModelConfig) -> int:
    """Patches after end padding by ``stride``: the last patch always contains the newest day."""
    return (cfg.context_len + cfg.stride - cfg.patch_len) // cfg.stride + 1


def check_config(cfg: ModelConfig) -> None:
    """Refuse impossible model settings (tokenizer, norm, heads, patching) with the reason."""
    if cfg.tokenizer not in ("mixed", "independent"):
        raise ValueError(f"tokenizer must be 'mixed' or 'independent', got {cfg.tokenizer!r}")
    if cfg.norm not in NORMS:
        raise ValueError(f"norm must be one of {', '.join(NORMS)}, got {cfg.norm!r}")
    if not 1 <= cfg.stride <= cfg.patch_len <= cfg.context_len:
        raise ValueError(f"need 1 <= stride ({cfg.stride}) <= patch_len ({cfg.patch_len}) <= "
                         f"context_len ({cfg.context_len}) so every day, the newest included, "
                         f"lies in a patch")
    if cfg.d_model % cfg.n_heads:
        raise ValueError(f"n_heads ({cfg.n_heads}) must divide d_model ({cfg.d_model})")


def n_tokens(cfg: ModelConfig) -> int:
    """Tokens per sequence: the patches, plus the statistics token of ``revin_stats``."""
    return n_patches(cfg) + (1 if cfg.norm == "revin_stats" else 0)


def window_tokens(cfg: ModelConfig) -> int:
    """Tokens one input window makes: every channel's for the channel-independent tokenizer (the
    D of a scaling law counted in tokens)."""
    return n_tokens(cfg) * (cfg.n_features if cfg.tokenizer == "independent" else 1)


class PatchTST(nn.Module):
    """PatchTST-style classifier: normalise, patch (end padding), encode, one logit each."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        check_config(cfg)
        self.cfg = cfg
        self.n_patches = n_patches(cfg)
        c = cfg.n_features
        in_dim = cfg.patch_len * (c if cfg.tokenizer == "mixed" else 1)
        self.norm = {"revin": lambda: RevIN(c), "revin_stats": lambda: RevINStats(c),
                     "global": lambda: GlobalNorm(c), "none": lambda: None}[cfg.norm]()
        self.embed = nn.Linear(in_dim, cfg.d_model)
        self.pos = nn.Parameter(torch.randn(self.n_patches, cfg.d_model) * 0.02)
        if cfg.norm == "revin_stats":  # the window's statistics as one more token
            self.stats_embed = nn.Linear(2 * (c if cfg.tokenizer == "mixed" else 1), cfg.d_model)
        self.drop = Dropout(cfg.dropout)
        self.blocks = nn.ModuleList(Block(cfg.d_model, cfg.n_heads, cfg.d_ff, cfg.dropout)
                                    for _ in range(cfg.n_layers))
        self.final_norm = nn.LayerNorm(cfg.d_model)
        channels = c if cfg.tokenizer == "independent" else 1
        self.head = nn.Linear(channels * n_tokens(cfg) * cfg.d_model, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: [batch, context_len, n_features] raw features -> logits [batch]."""
        cfg, b = self.cfg, x.shape[0]
        stats = None
        if cfg.norm == "revin_stats":
            x, stats = self.norm(x)  # stats: [batch, n_features, 2]
        elif self.norm is not None:
            x = self.norm(x)
        # end padding: the newest day repeated stride times -> x: [batch, L + stride, n_features]
        x = torch.cat([x, x[:, -1:, :].expand(b, cfg.stride, x.shape[2])], dim=1)
        p = x.unfold(1, cfg.patch_len, cfg.stride)  # p: [batch, n_patches, n_features, patch_len]
        if cfg.tokenizer == "mixed":
            p = p.reshape(b, self.n_patches, -1)  # [batch, n_patches, C*P]
        else:
            p = p.transpose(1, 2).reshape(b * cfg.n_features, self.n_patches, -1)  # [batch*C, ...]
        zv, pos = per_model(self.embed(p), self.pos, 2)
        z = (zv + pos).reshape(-1, self.n_patches, cfg.d_model)  # z: [batch', n_patches, d_model]
        if stats is not None:
            s = stats.reshape(b, -1) if cfg.tokenizer == "mixed" else stats.reshape(
                b * cfg.n_features, 2)  # s: [batch', 2C] or [batch*C, 2]
            z = torch.cat([z, self.stats_embed(s).unsqueeze(1)], dim=1)  # [batch', tokens, d]
        z = self.drop(z)
        for block in self.blocks:
            z = block(z)
        z = self.final_norm(z).reshape(b, -1)  # z: [batch, channels * tokens * d_model]
        return self.head(self.drop(z)).squeeze(-1)  # logits: [batch]


def count_params(cfg: ModelConfig) -> dict[str, int]:
    """Exact parameter count, equal to ``sum(p.numel())``; split as embedding/encoder/head.

    ``non_embedding`` = encoder + head: everything after the input embedding (input projection,
    positional embedding, normalisation weights), the count scaling laws use (Kaplan et al. 2020):
    the embedding is 60-70% of a 10k model and ~10% of a 320k one, so counting it bends the
    exponent."""
    d, ff, c, n = cfg.d_model, cfg.d_ff, cfg.n_features, n_patches(cfg)
    in_dim = cfg.patch_len * (c if cfg.tokenizer == "mixed" else 1)
    embedding = (2 * c if cfg.norm in ("revin", "revin_stats") else 0) + in_dim * d + d + n * d
    if cfg.norm == "revin_stats":  # the statistics token's projection
        embedding += 2 * (c if cfg.tokenizer == "mixed" else 1) * d + d
    per_layer = 2 * d + (3 * d * d + 3 * d) + (d * d + d) + 2 * d + (d * ff + ff) + (ff * d + d)
    encoder = cfg.n_layers * per_layer + 2 * d  # + final LayerNorm
    head = (c if cfg.tokenizer == "independent" else 1) * n_tokens(cfg) * d + 1
    return {"embedding": embedding, "encoder": encoder, "head": head,
            "non_embedding": encoder + head, "total": embedding + encoder + head}


EMBEDDING_MODULES = ("norm", "embed", "pos", "stats_embed")  # count_params' "embedding"


def measured_params(model: nn.Module) -> int:
    """Total parameters, counted on the live module."""
    return sum(p.numel() for p in model.parameters())


def measured_breakdown(model: nn.Module) -> dict[str, int]:
    """``sum(p.numel())`` of the whole model and of its non-embedding part, by parameter name."""
    total = embedding = 0
    for name, p in model.named_parameters():
        total += p.numel()
        if name.split(".")[0] in EMBEDDING_MODULES:
            embedding += p.numel()
    return {"measured": total, "measured_non_embedding": total - embedding}


def flops_per_sample(cfg: ModelConfig, training: bool = True, attention: bool = True) -> float:
    """Analytic matmul FLOPs per sample (2 per multiply-add); training = 3x forward (Kaplan).

    ``attention=False`` leaves out the QK^T and AV products (torch's FLOP counter does not see the
    CPU kernel of scaled_dot_product_attention, so tests compare that part separately).
    """
    d, ff, n, t = cfg.d_model, cfg.d_ff, n_patches(cfg), n_tokens(cfg)
    seqs = cfg.n_features if cfg.tokenizer == "independent" else 1
    in_dim = cfg.patch_len * (cfg.n_features if cfg.tokenizer == "mixed" else 1)
    embed = n * in_dim * d + (t - n) * 2 * (cfg.n_features if seqs == 1 else 1) * d
    layers = t * cfg.n_layers * (4 * d * d + 2 * d * ff)
    attn = cfg.n_layers * 2 * t * t * d if attention else 0  # QK^T and AV, per sequence
    forward = 2 * (seqs * (embed + layers) + seqs * attn + seqs * t * d)
    return float(3 * forward if training else forward)

"""Memory of a training run: the bytes a model's weights, gradients, AdamW state and saved
activations take (:func:`memory_estimate`, checked against what autograd keeps in
``tests/model/test_model.py``), and the largest micro-batch that fits the memory available
(:func:`choose_micro_batch`); gradients are accumulated up to the batch.
"""

from __future__ import annotations

from ..core.config import ModelConfig
from .model import count_params, n_tokens


def memory_estimate(cfg: ModelConfig, batch: int, bytes_per_act: int = 4,
                    autocast_bf16: bool = False) -> dict[str, int]:
    """Bytes for fp32 weights, gradients, AdamW state and the activations kept for backward.

    Activations count what autograd saves (checked against ``saved_tensors_hooks`` in
    ``tests/model/test_model.py``): RevIN's copies of the window, the patches, per layer and token
    about 13 d + 3 d_ff + 2 h floats (the fused attention kernel keeps its output and a log-sum-exp
    per head, not the attention matrix), the head's inputs, and dropout's masks.
    With bf16 autocast the weights' bf16 copies are added (activations stay counted at
    ``bytes_per_act``).
    """
    p = count_params(cfg)["total"]
    d, ff, n, h, c = cfg.d_model, cfg.d_ff, n_tokens(cfg), cfg.n_heads, cfg.n_features
    tokens = batch * n * (c if cfg.tokenizer == "independent" else 1)
    in_dim = cfg.patch_len * (c if cfg.tokenizer == "mixed" else 1)
    floats = batch * 4 * (cfg.context_len + cfg.stride) * c  # RevIN and padding copies
    floats += tokens * (in_dim + cfg.n_layers * (13 * d + 3 * ff + 2 * h) + 4 * d)
    # dropout keeps its mask (residual branches, feed-forward hidden layer): one byte on CUDA
    # (bf16 autocast), a float on the CPU; its output replaces its input among what the next
    # layer keeps
    dropped = tokens * (cfg.n_layers * (2 * d + ff) + 2 * d) if cfg.dropout > 0 else 0
    out = {"weights": 4 * p, "gradients": 4 * p, "optimizer": 8 * p,
           "activations": bytes_per_act * floats + dropped * (1 if autocast_bf16 else 4)}
    if autocast_bf16:
        out["bf16_weight_copies"] = 2 * p
    out["total"] = sum(out.values())
    return out


def fixed_memory(cfg: ModelConfig, autocast_bf16: bool = False) -> int:
    """Bytes that do not shrink with the micro-batch (weights, gradients, optimizer state)."""
    m = memory_estimate(cfg, 0, autocast_bf16=autocast_bf16)
    return m["total"] - m["activations"]


def choose_micro_batch(cfg: ModelConfig, batch: int, available_bytes: float,
                       autocast_bf16: bool = False, headroom: float = 0.85) -> int:
    """The largest micro-batch (``batch`` halved until it fits) whose estimated total stays
    within ``headroom`` of ``available_bytes``; gradients are accumulated up to ``batch``.

    Raises MemoryError naming the sizes when even one sample does not fit.
    """
    budget = headroom * available_bytes
    micro = batch
    while micro > 1 and memory_estimate(cfg, micro, autocast_bf16=autocast_bf16)["total"] > budget:
        micro = (micro + 1) // 2
    need = memory_estimate(cfg, micro, autocast_bf16=autocast_bf16)["total"]
    if need > budget:
        raise MemoryError(
            f"model of {count_params(cfg)['total']:,} parameters needs {need / 2**30:.2f} GiB "
            f"at micro-batch 1 ({fixed_memory(cfg, autocast_bf16) / 2**30:.2f} GiB for weights, "
            f"gradients and optimizer state); {available_bytes / 2**30:.2f} GiB available "
            f"({headroom:.0%} usable)")
    return micro

"""`make bench`'s account of where a training step's time goes (lib.bench.step.time_split)."""

from dataclasses import replace

import pytest
import torch

from lib.bench.step import BASE, time_split, train_throughput


def test_time_split_tells_matrix_products_from_the_rest():
    """A step of matrix products only lands in 'matmul', one of elementwise work only in 'other',
    one that only attends in 'attention'; the ceiling is 1 / (matmul + attention)."""
    a, b = torch.randn(256, 256), torch.randn(256, 256)
    mm = time_split(lambda: a @ b, n=5)
    assert mm["matmul"] > 0.9 and mm["ceiling"] == pytest.approx(
        1 / (mm["matmul"] + mm["attention"]))
    x = torch.randn(200_000)
    ew = time_split(lambda: (x * 2 + 1).exp(), n=5)
    assert ew["other"] > 0.9 and ew["matmul"] < 0.05
    q = torch.randn(64, 4, 10, 8)
    att = time_split(lambda: torch.nn.functional.scaled_dot_product_attention(q, q, q), n=5)
    assert att["attention"] > 0.5
    for s in (mm, ew, att):
        assert sum(s[k] for k in ("matmul", "attention", "other")) == pytest.approx(1.0)


def test_benchmark_rows_carry_the_split_of_a_real_training_step():
    """A training row of the benchmark: forward, backward and AdamW all show up, so the split has
    matrix products, attention and the rest, and the ceiling is above 1."""
    cfg = replace(BASE, d_model=16, n_layers=1, n_heads=2, d_ff=32, dropout=0.1, norm="global")
    r = train_throughput(cfg, torch.device("cpu"), batch=32, seconds=0.05, min_steps=1)
    split = r["time_split"]
    assert split["matmul"] > 0 and split["attention"] > 0 and split["other"] > 0
    assert split["ceiling"] > 1

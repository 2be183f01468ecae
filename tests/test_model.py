"""SCIENCE rules 4, 6, 8: exact parameter counts, the newest bar always reaches the logit."""

import random

import pytest
import torch

from lib.config import GridConfig, ModelConfig
from lib.model import (
    BudgetError,
    PatchTST,
    budget_grid,
    count_params,
    extremes,
    flops_per_sample,
    measured_params,
    memory_estimate,
    n_patches,
    parse_budget,
)


def random_configs(n, seed=0):
    rng = random.Random(seed)
    out = []
    while len(out) < n:
        patch = rng.choice([2, 4, 7, 8, 16])
        d, heads = rng.choice([(8, 1), (8, 2), (16, 4), (24, 3), (32, 8)])
        out.append(ModelConfig(context_len=rng.choice([16, 30, 64, 80, 97]),
                               n_features=rng.choice([1, 3, 25]), patch_len=patch,
                               stride=rng.randint(1, patch), d_model=d, n_heads=heads,
                               n_layers=rng.randint(0, 3), d_ff=rng.choice([8, 40, 64]),
                               tokenizer=rng.choice(["mixed", "independent"]),
                               revin=rng.random() < 0.7, dropout=0.0))
    return out


@pytest.mark.parametrize("cfg", random_configs(40))
def test_analytic_count_equals_measured(cfg):
    model = PatchTST(cfg)
    counts = count_params(cfg)
    assert counts["total"] == measured_params(model)
    assert counts["embedding"] + counts["encoder"] + counts["head"] == counts["total"]


@pytest.mark.parametrize("cfg", random_configs(25, seed=1))
def test_newest_day_changes_the_logit(cfg):
    torch.manual_seed(0)
    model = PatchTST(cfg).eval()
    x = torch.randn(2, cfg.context_len, cfg.n_features)
    x2 = x.clone()
    x2[:, -1, :] += 3.0
    assert not torch.allclose(model(x), model(x2)), "the newest bar does not reach the output"


def test_every_day_lies_in_a_patch():
    for L, P, S in [(80, 16, 8), (81, 16, 8), (83, 16, 8), (30, 7, 5), (20, 4, 4)]:
        cfg = ModelConfig(context_len=L, patch_len=P, stride=S)
        covered = set()
        for i in range(n_patches(cfg)):
            covered |= set(range(i * S, i * S + P))
        assert set(range(L)) <= covered


@pytest.mark.parametrize("tokenizer", ["mixed", "independent"])
def test_output_is_one_logit_per_sample(tokenizer):
    cfg = ModelConfig(d_model=16, n_heads=2, d_ff=32, tokenizer=tokenizer)
    out = PatchTST(cfg)(torch.randn(5, 80, 25) * 1000)
    assert out.shape == (5,)
    assert (out.abs() > 0).any() and not ((out > 0) & (out < 1)).all(), "looks like probabilities"


def test_invalid_configs():
    with pytest.raises(ValueError, match="n_heads \\(3\\) must divide d_model \\(16\\)"):
        PatchTST(ModelConfig(d_model=16, n_heads=3))
    with pytest.raises(ValueError, match="stride"):
        PatchTST(ModelConfig(patch_len=4, stride=8))


def test_budget_parsing():
    assert parse_budget("25k") == 25_000 and parse_budget("2M") == 2_000_000
    assert parse_budget("2B") == 2_000_000_000 and parse_budget("1.5m") == 1_500_000
    for bad in ("2X", "", "-3k", "0"):
        with pytest.raises(ValueError):
            parse_budget(bad)


def test_grid_within_tolerance_and_sorted():
    grid = GridConfig()
    archs = budget_grid("100k", ModelConfig(), grid)
    assert all(abs(a.n_params - 100_000) <= 0.25 * 100_000 for a in archs)
    assert all(count_params(a.apply(ModelConfig()))["total"] == a.n_params for a in archs)
    ex = extremes(archs)
    assert ex[0].d_model == min(a.d_model for a in archs)
    assert ex[3].n_layers == max(a.n_layers for a in archs)


def test_impossible_budget_names_nearest_counts():
    with pytest.raises(BudgetError, match=r"no architecture fits budget 100 .*nearest: d\d+-L"):
        budget_grid("100", ModelConfig(), GridConfig())


def test_flops_and_memory_grow_with_size():
    small, big = ModelConfig(d_model=32, d_ff=64, n_heads=2), ModelConfig(d_model=128, d_ff=256)
    assert flops_per_sample(big) > flops_per_sample(small) > 0
    m = memory_estimate(big, 64)
    assert m["optimizer"] == 2 * m["weights"] and m["total"] == sum(
        v for k, v in m.items() if k != "total")
    assert memory_estimate(big, 128)["activations"] == 2 * m["activations"]


def test_flop_count_against_torch_counter():
    from torch.utils.flop_counter import FlopCounterMode

    for tok in ("mixed", "independent"):
        cfg = ModelConfig(d_model=32, n_heads=4, d_ff=64, n_layers=2, tokenizer=tok, dropout=0.0)
        model = PatchTST(cfg)
        x = torch.randn(4, cfg.context_len, cfg.n_features)
        with FlopCounterMode(display=False) as fc:
            model(x)
        measured = fc.get_total_flops() / 4
        analytic = flops_per_sample(cfg, training=False, attention=False)
        assert abs(measured - analytic) / measured < 0.01, (tok, measured, analytic)
        n, seqs = n_patches(cfg), (cfg.n_features if tok == "independent" else 1)
        attention = flops_per_sample(cfg, training=False) - analytic
        assert attention == 2 * seqs * cfg.n_layers * 2 * n * n * cfg.d_model

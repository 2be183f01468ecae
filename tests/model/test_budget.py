"""Budgets and grids: parsing, architectures within the tolerance, extremes, impossible budgets,
equal grids per budget, the research grid."""

import pytest

from lib.core.config import GridConfig, ModelConfig
from lib.model.budget import BudgetError, budget_grid, extremes, parse_budget
from lib.model.model import count_params
from lib.search.sweepfile import load_sweep


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


@pytest.mark.parametrize("name", ["default", "phase6a", "smoke"])
def test_every_budget_offers_the_same_number_of_architectures(name):
    """Equal search effort: each budget's grid holds max_candidates architectures (the old
    default grid offered 3 at 10k and 12 at 320k)."""
    from lib.model.budget import base_model, budget_grid
    from lib.search.sweepfile import n_inputs_of

    cfg = load_sweep(name)
    base = base_model(cfg, n_inputs_of(cfg))
    sizes = {b: len(budget_grid(b, base, cfg.grid)) for b in cfg.budgets}
    assert set(sizes.values()) == {cfg.grid.max_candidates}, sizes


def test_research_grid_covers_the_original_architecture_space():
    """phase6a reaches d_model 64..2048+ and 2..256 layers, and its 2M grid holds the deep and
    narrow models (d_model 64, 32-48 layers) the original study found best."""
    from lib.model.budget import base_model, budget_grid

    cfg = load_sweep("phase6a")
    assert min(cfg.grid.d_model) <= 64 and max(cfg.grid.d_model) >= 2048
    assert min(cfg.grid.n_layers) <= 2 and max(cfg.grid.n_layers) >= 256
    base = base_model(cfg, 25)
    small = budget_grid("2M", base, cfg.grid)
    assert any(a.d_model == 64 and 32 <= a.n_layers <= 48 for a in small), [a.id for a in small]
    deep = [a for b in cfg.budgets for a in budget_grid(b, base, cfg.grid) if a.n_layers >= 128]
    assert deep

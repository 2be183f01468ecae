import pytest

from lib.config import ConfigError, SweepConfig, TrainConfig, from_dict
from lib.sweepfile import load_sweep


def write(tmp_path, text):
    p = tmp_path / "s.yaml"
    p.write_text(text)
    return p


@pytest.mark.parametrize("name", ["default", "smoke", "phase6a"])
def test_shipped_sweeps_load(name):
    cfg = load_sweep(name)
    assert cfg.budgets and cfg.horizons


def test_unknown_key_names_key_and_file(tmp_path):
    p = write(tmp_path, "budgets: ['10k']\nsearch:\n  n_trails: 3\n")
    with pytest.raises(ConfigError, match=r"s\.yaml: search: unknown key 'n_trails'"):
        load_sweep(p)


def test_wrong_type_names_key_and_file(tmp_path):
    p = write(tmp_path, "budgets: ['10k']\nsearch:\n  n_trials: three\n")
    with pytest.raises(ConfigError, match=r"s\.yaml: search\.n_trials: expected an integer, got "
                                          r"str 'three'"):
        load_sweep(p)


def test_bool_is_not_an_int():
    with pytest.raises(ConfigError, match="max_epochs: expected an integer"):
        from_dict(TrainConfig, {"max_epochs": True})


def test_impossible_values_rejected(tmp_path):
    with pytest.raises(ConfigError, match="horizon must be >= 1"):
        load_sweep(write(tmp_path, "horizons: [0, 1]\n"))
    with pytest.raises(ConfigError, match="budgets: budget 'lots'"):
        load_sweep(write(tmp_path, "budgets: [lots]\n"))
    with pytest.raises(ConfigError, match="search.pruner"):
        load_sweep(write(tmp_path, "search:\n  pruner: sometimes\n"))


def test_missing_file_and_bad_yaml(tmp_path):
    with pytest.raises(ConfigError, match="sweep file not found"):
        load_sweep(tmp_path / "nope.yaml")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_sweep(write(tmp_path, "budgets: [10k\n"))


def test_nested_defaults_fill_in():
    cfg = from_dict(SweepConfig, {"budgets": ["10k"], "train": {"lr": 0.01}})
    assert cfg.train.lr == 0.01 and cfg.train.patience == TrainConfig().patience


@pytest.mark.parametrize("name", ["default", "phase6a", "smoke"])
def test_every_budget_offers_the_same_number_of_architectures(name):
    """Equal search effort: each budget's grid holds max_candidates architectures (the old
    default grid offered 3 at 10k and 12 at 320k)."""
    from lib.budget import base_model, budget_grid
    from lib.sweepfile import n_inputs_of

    cfg = load_sweep(name)
    base = base_model(cfg, n_inputs_of(cfg))
    sizes = {b: len(budget_grid(b, base, cfg.grid)) for b in cfg.budgets}
    assert set(sizes.values()) == {cfg.grid.max_candidates}, sizes


def test_research_grid_covers_the_original_architecture_space():
    """phase6a reaches d_model 64..2048+ and 2..256 layers, and its 2M grid holds the deep and
    narrow models (d_model 64, 32-48 layers) the original study found best."""
    from lib.budget import base_model, budget_grid

    cfg = load_sweep("phase6a")
    assert min(cfg.grid.d_model) <= 64 and max(cfg.grid.d_model) >= 2048
    assert min(cfg.grid.n_layers) <= 2 and max(cfg.grid.n_layers) >= 256
    base = base_model(cfg, 25)
    small = budget_grid("2M", base, cfg.grid)
    assert any(a.d_model == 64 and 32 <= a.n_layers <= 48 for a in small), [a.id for a in small]
    deep = [a for b in cfg.budgets for a in budget_grid(b, base, cfg.grid) if a.n_layers >= 128]
    assert deep

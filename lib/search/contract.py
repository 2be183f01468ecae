"""A sweep file is a contract: what defines each cell's search, fingerprinted into its study, and
how an edited file is applied in full or refused.

A cell's *definition* is every setting that shapes its search: the data and split sections, the
model's fixed settings, the training settings, the architecture grid, the search space and
pruner, and the cell's data size (with a data axis). It is stored in the study (user attribute
``definition``) when the study is created; a study created before this was recorded is read from
its provenance (the resolved parameters it was created with).

Running a sweep whose file no longer matches a cell's definition is refused with one line naming
each changed key and the two ways forward (restore the file, or run it under a new name /
``FORCE=1``, which moves the cell's old records aside and starts its search again): trials of two
search spaces never mix in one study, and every budget keeps the same effort. Changes that only
add effort are applied in full: more trials per cell (``search.n_trials``) top every study up,
and the final evaluation then follows the new validation choice (:func:`final_is_current`); more
final seeds or configurations, or any other ``final`` setting, re-run the final evaluation.
Fewer trials than a study already holds is refused: its choice was made among more trials than
the file says. The sweep's cells themselves (budgets, horizons, data sizes) are the file's too:
cells it no longer names are orphans, left out of the reports and listed by ``make status``.
"""

from __future__ import annotations

from dataclasses import asdict

import optuna
from optuna.trial import TrialState

from ..core.config import ConfigError, SweepConfig

SECTIONS = ("data", "split", "model", "train", "grid", "search")  # what defines a search
# settings of those sections that change how a run goes, not what it searches
NOT_DEFINING = {"train.threads", "train.progress", "train.memory_headroom", "search.n_trials",
                "search.heartbeat_s", "search.max_retry",
                "split.fold_years"}  # the final evaluation's folds: the search never sees them


class SweepChanged(ConfigError):
    """The sweep file no longer matches what a cell's study searched."""


def flatten(d: dict, prefix: str = "") -> dict:
    """Nested dicts as one level of dotted keys (lists stay values)."""
    out = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(flatten(v, key + "."))
        else:
            out[key] = v
    return out


def definition(params: dict, data: str = "") -> dict:
    """A cell's definition from resolved sweep parameters (``asdict`` of a ``SweepConfig``) and
    its data size id: the defining settings as dotted keys."""
    flat = flatten({k: params.get(k, {}) for k in SECTIONS})
    out = {k: v for k, v in flat.items() if k not in NOT_DEFINING}
    if data:
        from ..data.data_axis import size_id

        for size in params.get("data_sizes") or []:
            if size_id(_size(size)) == data:
                out.update(flatten(size, "data_size."))
    return out


def _size(d: dict):
    from ..core.config import DataSizeConfig

    return DataSizeConfig(**d)


def of_config(cfg: SweepConfig, data: str = "") -> dict:
    """The definition of a cell of ``cfg`` with data size ``data``."""
    return definition(asdict(cfg), data)


def recorded(user_attrs: dict, data: str = "") -> dict | None:
    """The definition a study was created with: its own record, else rebuilt from the
    parameters in its provenance; None when it has neither."""
    if "definition" in user_attrs:
        return user_attrs["definition"]
    params = (user_attrs.get("provenance") or {}).get("params")
    return definition(params, data) if params else None


def changes(old: dict, new: dict) -> list[str]:
    """``key: old -> new`` for every key that differs. A key the old definition lacks (a setting
    added to the code since) counts as its default, so an upgrade alone changes nothing."""
    from ..core.config import DataSizeConfig

    default = of_config(SweepConfig()) | flatten(asdict(DataSizeConfig()), "data_size.")
    out = []
    for k in sorted(set(old) | set(new)):
        was = old.get(k, default.get(k, "(unset)"))
        now = new.get(k, "(unset)")
        if was != now:
            out.append(f"{k}: {was!r} -> {now!r}")
    return out


def check_study(user_attrs: dict, finished_sampled: int, cfg: SweepConfig, cell_id: str,
                sweep: str, data: str = "") -> list[str]:
    """What stands between a study and the sweep file: its definition's changed keys, and a
    target of sampled trials below what it already finished. Empty when the file may run."""
    old = recorded(user_attrs, data)
    what = changes(old, of_config(cfg, data)) if old is not None else []
    if finished_sampled > cfg.search.n_trials:
        what.append(f"search.n_trials: {user_attrs.get('n_trials')!r} -> "
                    f"{cfg.search.n_trials!r}, below the {finished_sampled} sampled trials the "
                    f"study already finished")
    return what


def refusal(cell_id: str, sweep: str, what: list[str]) -> SweepChanged:
    """The one-line error for a cell whose study no longer matches the file."""
    return SweepChanged(
        f"sweep '{sweep}' changed since cell {cell_id} was searched ({'; '.join(what)}): restore "
        f"the file, or run it under a new sweep name, or with FORCE=1 to move this cell's "
        f"records aside and search it again")


def validation_choice(study: optuna.Study, k: int) -> list[optuna.trial.FrozenTrial]:
    """The cell's validation choice: its ``k`` best complete trials by the validation objective,
    best first (ties by trial number)."""
    done = [t for t in study.get_trials(deepcopy=False) if t.state == TrialState.COMPLETE]
    sign = 1 if study.direction == optuna.study.StudyDirection.MINIMIZE else -1
    return sorted(done, key=lambda t: (sign * t.value, t.number))[:k]


def final_settings(cfg: SweepConfig) -> dict:
    """What a final evaluation was run with; a change re-runs it. Rolling-origin folds are named
    only when used, so records written before they existed stay current."""
    out = asdict(cfg.final)
    if cfg.split.fold_years:
        out["fold_years"] = cfg.split.fold_years
    return out


def final_is_current(state: dict, chosen: list[int], cfg: SweepConfig) -> bool:
    """Whether a complete ``final.json`` evaluated exactly the current validation choice
    (trial numbers, best first) with the current final settings."""
    evaluated = [c.get("trial") for c in state.get("evaluated", [])]
    return (bool(state.get("complete")) and "interval" in state and evaluated == chosen
            and state.get("final_settings") == final_settings(cfg))

"""Parameter budgets and the architecture grid that fits each one.

A budget ('25k', '2M', '2B') is a target total parameter count; :func:`budget_grid` lists the
architectures (width, depth, heads, feed-forward ratio) of the sweep's grid whose exact analytic
count lies within the tolerance, and :func:`base_model` is the one place where the sweep's fixed
model settings meet the dataset (window length, number of inputs).
"""

from __future__ import annotations

import itertools
import math
import re
from dataclasses import dataclass, replace

from ..core.config import GridConfig, ModelConfig, SweepConfig
from .model import count_params

_BUDGET = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kKmMbB]?)\s*$")


def parse_budget(budget: str | int) -> int:
    """'25k' -> 25_000, '2M' -> 2_000_000, '2B' -> 2_000_000_000."""
    if isinstance(budget, int) and not isinstance(budget, bool):
        if budget <= 0:
            raise ValueError(f"budget must be positive, got {budget}")
        return budget
    m = _BUDGET.match(str(budget))
    if not m:
        raise ValueError(f"budget {budget!r} is not a count like '25k', '2M' or '2B'")
    value = float(m.group(1)) * {"": 1, "k": 1e3, "m": 1e6, "b": 1e9}[m.group(2).lower()]
    if value < 1:
        raise ValueError(f"budget must be positive, got {budget!r}")
    return int(round(value))


def fmt_count(n: float) -> str:
    """A count for people: 1234 -> '1.23k', 2e6 -> '2M'."""
    for unit, scale in (("B", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(n) >= scale:
            return f"{n / scale:.3g}{unit}"
    return f"{n:.0f}"


@dataclass(frozen=True)
class Arch:
    """One architecture of a budget's grid and its exact parameter count."""

    id: str  # e.g. d128-L4-h8-ff4
    d_model: int
    n_layers: int
    n_heads: int
    d_ff: int
    n_params: int  # exact total for the grid's fixed settings

    def apply(self, base: ModelConfig) -> ModelConfig:
        """``base`` with this architecture's width, depth, heads and feed-forward width."""
        return replace(base, d_model=self.d_model, n_layers=self.n_layers, n_heads=self.n_heads,
                       d_ff=self.d_ff)


HEAD_DIM = 16  # preferred width of one attention head when a grid is trimmed


class BudgetError(ValueError):
    """No architecture of the grid fits the budget's tolerance."""


def arch_id(d: int, layers: int, heads: int, ratio: int) -> str:
    """The architecture's name, e.g. ``d128-L4-h8-ff4``."""
    return f"d{d}-L{layers}-h{heads}-ff{ratio}"


def budget_grid(budget: str | int, base: ModelConfig, grid: GridConfig) -> list[Arch]:
    """Architectures whose exact count lies within ``grid.tolerance`` of the budget.

    Sorted by distance to the target. When more than ``max_candidates`` fit, the closest are kept
    together with the extremes (narrowest, widest, shallowest, deepest).
    """
    target = parse_budget(budget)
    fits, all_counts = [], []
    for d, layers, heads, ratio in itertools.product(grid.d_model, grid.n_layers, grid.n_heads,
                                                     grid.ff_ratio):
        if d % heads or (heads > 1 and d // heads < 8):
            continue
        arch = Arch(arch_id(d, layers, heads, ratio), d, layers, heads, ratio * d, 0)
        n = count_params(arch.apply(base))["total"]
        arch = replace(arch, n_params=n)
        all_counts.append(arch)
        if abs(n - target) <= grid.tolerance * target:
            fits.append(arch)
    if not fits:
        near = sorted(all_counts, key=lambda a: abs(math.log(a.n_params / target)))[:3]
        names = ", ".join(f"{a.id} = {fmt_count(a.n_params)}" for a in near)
        raise BudgetError(f"no architecture fits budget {budget} ({fmt_count(target)} "
                          f"+/-{grid.tolerance:.0%}); nearest: {names}")
    fits.sort(key=lambda a: (abs(a.n_params - target), a.id))
    if len(fits) > grid.max_candidates:
        # heads do not change the count: take one head choice of every shape before a second
        # one, first the one whose head width is closest to HEAD_DIM (ties: more heads)
        rank: dict[tuple, int] = {}
        order = []
        for a in sorted(fits, key=lambda a: (abs(math.log(a.d_model / a.n_heads / HEAD_DIM)),
                                             -a.n_heads)):
            shape = (a.d_model, a.n_layers, a.d_ff)
            rank[shape] = rank.get(shape, -1) + 1
            order.append((rank[shape], abs(a.n_params - target), a.id, a))
        order.sort(key=lambda r: r[:3])
        keep: dict[str, Arch] = {}
        for a in extremes([r[3] for r in order if r[0] == 0]):  # first, up to the limit
            if len(keep) < grid.max_candidates:
                keep.setdefault(a.id, a)
        for *_, a in order:
            if len(keep) >= grid.max_candidates:
                break
            keep.setdefault(a.id, a)
        fits = sorted(keep.values(), key=lambda a: (abs(a.n_params - target), a.id))
    return fits


def extremes(archs: list[Arch]) -> list[Arch]:
    """Narrowest, widest, shallowest and deepest architectures (ties: closest to the budget)."""
    return [min(archs, key=lambda a: a.d_model), max(archs, key=lambda a: a.d_model),
            min(archs, key=lambda a: a.n_layers), max(archs, key=lambda a: a.n_layers)]


def base_model(cfg: SweepConfig, n_features: int) -> ModelConfig:
    """The sweep's fixed model settings with the window length and the number of inputs: the
    only place a sweep's model configuration is put together (architectures are applied on it)."""
    return replace(cfg.model, context_len=cfg.split.context_len, n_features=n_features)

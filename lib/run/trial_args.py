"""``make trial``'s arguments, checked before a kernel starts (``python -m lib.run.trial_args``).

A bad ``BUDGET`` or ``HORIZON`` used to start a kernel, print some 60 lines of stacked tracebacks
before the clear message and leave a failed notebook behind. This prints one ``error:`` line
naming the argument and exits 2; the notebook's own checks stay for JupyterLab users.
"""

from __future__ import annotations

import argparse
import sys

from ..core.config import ConfigError


def check(budget: str, horizon: str, sweep: str = "default") -> None:
    """Raise :class:`ConfigError` naming the first bad argument: a budget that is no count or that
    no architecture of the sweep's grid fits, a horizon that is no whole number of days >= 1."""
    from ..model.budget import BudgetError, base_model, budget_grid, parse_budget
    from ..search.sweepfile import load_sweep, n_inputs_of

    try:
        h = int(horizon)
    except ValueError:
        raise ConfigError(f"HORIZON={horizon!r}: not a whole number of trading days") from None
    if h < 1:
        raise ConfigError(f"HORIZON={horizon}: must be at least 1 trading day")
    try:
        parse_budget(budget)
    except ValueError as e:
        raise ConfigError(f"BUDGET={budget}: {e}") from None
    cfg = load_sweep(sweep)
    try:
        budget_grid(budget, base_model(cfg, n_inputs_of(cfg)), cfg.grid)
    except BudgetError as e:
        raise ConfigError(f"BUDGET={budget}: {e} (the grid of params/sweeps/{sweep}.yaml)") \
            from None


def main(argv: list[str] | None = None) -> int:
    """Exit 0 when the arguments are good, else one ``error:`` line and exit 2."""
    p = argparse.ArgumentParser(prog="python -m lib.run.trial_args",
                                description=__doc__.splitlines()[0])
    p.add_argument("--budget", required=True)
    p.add_argument("--horizon", required=True)
    a = p.parse_args(argv)
    try:
        check(a.budget, a.horizon)
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

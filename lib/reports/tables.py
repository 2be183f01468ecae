"""Tables for people: what the rendered reports show instead of raw DataFrames.

Numbers to 3 decimals (counts as 12.3k), an interval beside its estimate as
``0.829 [0.777, 0.880]``, no index column, units in the headers, ids that do not wrap, and
provenance as a two-column table. Everything returns a pandas ``Styler`` (rendered as HTML by
nbconvert) built from a plain DataFrame, so the notebooks keep the data and the reader gets a
table.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import pandas as pd

from ..model.budget import fmt_count

NOWRAP = [{"selector": "td", "props": [("white-space", "nowrap"), ("padding", "2px 8px"),
                                        ("text-align", "left")]},
          {"selector": "th", "props": [("text-align", "left"), ("vertical-align", "bottom"),
                                       ("max-width", "9em"), ("padding", "2px 8px")]},
          {"selector": "caption", "props": [("text-align", "left"), ("font-weight", "bold")]}]


def num(v, digits: int = 3) -> str:
    """A number for a table: 3 decimals, '-' when unavailable, +/- kept for differences."""
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "-"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, int):
        return f"{v:,}"
    return f"{v:.{digits}f}"


def signed(v, digits: int = 3) -> str:
    """A number with its sign, or '-' when missing."""
    return "-" if v is None or (isinstance(v, float) and not math.isfinite(v)) else \
        f"{v:+.{digits}f}"


def interval(v, ci, digits: int = 3, sign: bool = False) -> str:
    """``0.829 [0.777, 0.880]``; the estimate alone when there is no interval."""
    head = signed(v, digits) if sign else num(v, digits)
    if not ci or ci[0] is None or ci[1] is None:
        return head
    f = signed if sign else num
    return f"{head} [{f(ci[0], digits)}, {f(ci[1], digits)}]"


def span(values) -> str:
    """A range of counts: '8' when every value is 8, '6-8' when they differ."""
    lo, hi = int(min(values)), int(max(values))
    return f"{lo}" if lo == hi else f"{lo}-{hi}"


def flops(v) -> str:
    """A FLOP count for people (3.1e14), or '-' when unavailable."""
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "-"
    return f"{v:.2g}" if v < 1000 else f"{v:.1e}".replace("e+", "e")


def count(n) -> str:
    """A parameter count for people (12.3k), or '-'."""
    return "-" if n is None or (isinstance(n, float) and not math.isfinite(n)) else fmt_count(n)


def pvalue(p) -> str:
    """A p-value with three decimals, '< 0.001' below that, or '-'."""
    if p is None or (isinstance(p, float) and not math.isfinite(p)):
        return "-"
    return "< 0.001" if p < 0.001 else f"{p:.3f}"


def show(df: pd.DataFrame, caption: str | None = None):
    """A Styler: no index, no wrapping, left-aligned headers, an optional caption."""
    styler = df.style.hide(axis="index").set_table_styles(NOWRAP)
    if caption:
        styler = styler.set_caption(caption)
    return styler


def two_columns(items: Iterable[tuple[str, object]], caption: str | None = None):
    """Provenance and similar facts as a two-column table (nested dicts flattened to text)."""
    rows = []
    for key, value in items:
        if isinstance(value, dict):
            value = ", ".join(f"{k} {v}" for k, v in value.items() if v is not None)
        rows.append({"": key, "value": "-" if value is None else str(value)})
    return show(pd.DataFrame(rows), caption)


def say(text: str):
    """A sentence for the rendered page (Markdown), where a bare string would show its quotes."""
    from IPython.display import Markdown

    return Markdown(text)

"""Running and checking parameterized notebooks (papermill, nbconvert).

Papermill only warns on an unknown parameter, so each notebook's first code cell after the
parameters calls :func:`validate`: declared parameters are the annotated names of the parameters
cell (``horizon: int = 1  # trading days ahead``); an injected name without an annotation is
unknown, and a value of the wrong type is an error naming the parameter.
"""

from __future__ import annotations

import os
from pathlib import Path

from .config import ConfigError


def validate(namespace: dict, start: set[str] | None = None) -> dict:
    """Check the notebook's parameters in ``namespace`` (its ``globals()``); returns them."""
    declared = dict(namespace.get("__annotations__", {}))
    before = start if start is not None else namespace.get("_names_before_parameters", set())
    params = {}
    for name in set(namespace) - set(before):
        if name.startswith("_") or name in ("In", "Out", "get_ipython", "exit", "quit"):
            continue
        if callable(namespace[name]) or type(namespace[name]).__name__ == "module":
            continue
        if name not in declared:
            raise ConfigError(f"unknown notebook parameter '{name}' (declared: "
                              f"{', '.join(sorted(declared))})")
    for name, tp in declared.items():
        tp = eval(tp, {}) if isinstance(tp, str) else tp  # noqa: S307 -- annotations are builtins
        value = namespace[name]
        ok = (isinstance(value, tp) and not (tp is int and isinstance(value, bool))) or (
            tp is float and isinstance(value, int) and not isinstance(value, bool))
        if not ok:
            raise ConfigError(f"notebook parameter '{name}' must be {tp.__name__}, got "
                              f"{type(value).__name__} {value!r}")
        params[name] = float(value) if tp is float else value
    return params


def execute(notebook: Path, output: Path, parameters: dict, cwd: Path | None = None,
            log_output: bool = False) -> None:
    """Execute ``notebook`` headless with papermill, writing the executed copy to ``output``."""
    import papermill as pm

    output.parent.mkdir(parents=True, exist_ok=True)
    pm.execute_notebook(str(notebook), str(output), parameters=parameters,
                        cwd=str(cwd or notebook.parent.parent), log_output=log_output,
                        progress_bar=False, kernel_name="python3")


def render_html(executed: Path, html: Path, hide_code: bool = True) -> Path:
    """Self-contained HTML (images embedded as data URIs), code hidden by default."""
    import nbformat
    from nbconvert import HTMLExporter

    nb = nbformat.read(str(executed), as_version=4)
    exporter = HTMLExporter(exclude_input=hide_code, exclude_input_prompt=hide_code,
                            exclude_output_prompt=hide_code)
    body, _ = exporter.from_notebook_node(nb)
    html.parent.mkdir(parents=True, exist_ok=True)
    tmp = html.with_suffix(".html.tmp")
    tmp.write_text(body)
    os.replace(tmp, html)
    return html


def errors(executed: Path) -> list[str]:
    """Error outputs of an executed notebook (empty when it ran cleanly)."""
    import nbformat

    nb = nbformat.read(str(executed), as_version=4)
    return [f"{o.get('ename')}: {o.get('evalue')}" for c in nb.cells if c.cell_type == "code"
            for o in c.get("outputs", []) if o.get("output_type") == "error"]

"""Running and checking parameterized notebooks (papermill, nbconvert).

Papermill only warns on an unknown parameter, so each notebook's first code cell after the
parameters calls :func:`validate`: declared parameters are the annotated names of the parameters
cell (``horizon: int = 1  # trading days ahead``); an injected name without an annotation is
unknown, and a value of the wrong type is an error naming the parameter.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..core.config import ConfigError


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


RESET_TAG = "kernel-reset"
RESET_SOURCE = """\
# injected by lib.run.notebook.Kernel: this kernel ran earlier notebooks of the sweep. Empty the
# namespace (imported modules stay loaded). Unlike %reset -f this skips a full garbage
# collection, which cost about 1 s a notebook here.
for _name in [n for n in globals() if (not n.startswith("_") or n[1:].isdigit())
              and n not in ("In", "Out", "get_ipython", "exit", "quit", "open")]:
    del globals()[_name]
globals().get("__annotations__", {}).clear()  # the parameters cell's declarations
Out.clear()"""


PARTIAL = ".partial.ipynb"  # suffix of a notebook being executed (papermill saves as it goes)


def partial_path(output: Path) -> Path:
    """The hidden temporary a notebook is executed into before it is published."""
    return output.with_name(f".{output.stem}.{os.getpid()}{PARTIAL}")


# A kernel on the loopback interface warns "running over TCP without encryption" at every start
# (once per notebook): nothing a user can act on, and it buried the run's own lines. Only the
# kernel application's log is quietened; errors and everything a cell prints still show.
KERNEL_ARGS = ["--IPKernelApp.log_level=ERROR"]


def execute(notebook: Path, output: Path, parameters: dict, cwd: Path | None = None,
            log_output: bool = False, kernel: Kernel | None = None) -> None:
    """Execute ``notebook`` headless with papermill, writing the executed copy to ``output``.

    Papermill saves the copy after every cell, so it is executed under a temporary name and
    renamed when papermill is done: ``output`` is either the previous copy or a complete new one
    (one that ran to the end, or stopped at a failing cell it shows), never a torn file. With
    ``kernel`` the notebook runs in that long-lived kernel (see :class:`Kernel`); otherwise
    papermill starts and stops a kernel of its own."""
    import papermill as pm

    output.parent.mkdir(parents=True, exist_ok=True)
    tmp = partial_path(output)
    try:
        if kernel is not None:
            kernel.execute(notebook, tmp, parameters, log_output=log_output)
        else:
            pm.execute_notebook(str(notebook), str(tmp), parameters=parameters,
                                cwd=str(cwd or notebook.parent.parent), log_output=log_output,
                                progress_bar=False, kernel_name="python3",
                                extra_arguments=KERNEL_ARGS)
    except pm.PapermillExecutionError:
        _publish(tmp, output)  # a cell failed: the copy that shows where is worth keeping
        raise
    except BaseException:
        tmp.unlink(missing_ok=True)  # interrupted, or the copy could not be written
        raise
    _publish(tmp, output)


def _publish(tmp: Path, output: Path) -> None:
    """Rename a complete executed copy into place, if it parses."""
    import nbformat

    try:
        nbformat.read(str(tmp), as_version=4)
    except Exception:  # noqa: BLE001 -- a torn copy (disk full) must not replace a good one
        tmp.unlink(missing_ok=True)
        raise OSError(f"{tmp.name}: the executed notebook could not be written "
                      f"completely") from None
    os.replace(tmp, output)


def is_complete(executed: Path) -> bool:
    """An executed notebook that exists, parses and shows no error."""
    try:
        return executed.exists() and not errors(executed)
    except Exception:  # noqa: BLE001 -- unreadable counts as not done
        return False


class Kernel:
    """One Jupyter kernel that executes several notebooks in turn (one per sweep job slot).

    A fresh kernel per grid cell cost about 5 s of start-up and imports (torch, optuna, pandas,
    scikit-learn, TA-Lib) on the 2-core machine, as much as a small cell's trials. Here each
    notebook starts with an injected, tagged cell that empties the namespace while the
    imported modules stay loaded; the executed copy shows that cell. Nothing the notebooks
    compute depends on leftover state: every trial seeds itself and the parameters are injected.
    The kernel is restarted after ``max_uses`` notebooks (bounding slow growth of memory and
    open sockets) and whenever it has died.
    """

    def __init__(self, cwd: Path, max_uses: int = 12):
        self.cwd, self.max_uses = Path(cwd), max_uses
        self.km = None
        self.uses = 0
        self.starts = 0

    def _ensure(self) -> None:
        from jupyter_client.manager import KernelManager

        if self.km is not None and (self.uses >= self.max_uses or not self.km.is_alive()):
            self.close()
        if self.km is None:
            self.km = KernelManager(kernel_name="python3")
            self.km.start_kernel(cwd=str(self.cwd), extra_arguments=KERNEL_ARGS)
            self.uses = 0
            self.starts += 1

    def execute(self, notebook: Path, output: Path, parameters: dict,
                log_output: bool = False) -> None:
        """Execute ``notebook`` with ``parameters`` here, published atomically to ``output``."""
        import nbformat
        import papermill as pm

        self._ensure()
        self.uses += 1
        nb = nbformat.read(str(notebook), as_version=4)
        nb.cells.insert(0, nbformat.v4.new_code_cell(RESET_SOURCE,
                                                     metadata={"tags": [RESET_TAG]}))
        output.parent.mkdir(parents=True, exist_ok=True)
        pm.execute_notebook(nb, str(output), parameters=parameters, cwd=str(self.cwd),
                            log_output=log_output, progress_bar=False, kernel_name="python3",
                            km=self.km)

    def interrupt(self) -> None:
        """Send the running notebook a keyboard interrupt (SIGINT to the kernel)."""
        if self.km is not None and self.km.is_alive():
            self.km.interrupt_kernel()

    def close(self) -> None:
        if self.km is not None:
            try:
                self.km.shutdown_kernel(now=True)
            except Exception:  # noqa: BLE001 -- a dead kernel cannot be shut down twice
                pass
            self.km = None

    def __enter__(self) -> Kernel:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


HIDE_OUTPUT = "hide-output"  # a cell whose output stays in the executed notebook only (logs)


def render_html(executed: Path, html: Path, hide_code: bool = True) -> Path:
    """Self-contained HTML (images embedded as data URIs), code hidden by default; the outputs
    of cells tagged ``hide-output`` (the search's log and progress bars) and of the injected
    kernel-reset cell are left out, as is any stderr stream."""
    import nbformat
    from nbconvert import HTMLExporter
    from traitlets.config import Config

    nb = nbformat.read(str(executed), as_version=4)
    heading = _page_heading(nb, html)
    nb.metadata["title"] = heading  # the page's <title> (nbconvert's default: "Notebook")
    from ..core import paths

    index = os.path.relpath(paths.REPORTS / "index.html", Path(html).parent)
    nb.cells.insert(0, nbformat.v4.new_markdown_cell(
        f"[All reports]({index}) · {heading}"))
    for c in nb.cells:
        tags = c.get("metadata", {}).get("tags", [])
        if c.cell_type == "code" and (HIDE_OUTPUT in tags or RESET_TAG in tags):
            c.outputs = []
        elif c.cell_type == "code" and hide_code:
            c.outputs = [o for o in c.get("outputs", []) if not (
                o.get("output_type") == "stream" and o.get("name") == "stderr")]
    conf = Config()
    conf.HTMLExporter.exclude_input = hide_code
    conf.HTMLExporter.exclude_input_prompt = hide_code
    conf.HTMLExporter.exclude_output_prompt = hide_code
    body, _ = HTMLExporter(config=conf).from_notebook_node(nb)
    from ..core.provenance import atomic_write_bytes

    atomic_write_bytes(html, body.encode())
    return html


SWEEP_PAGES = ("scaling_report", "joint_scaling", "panel_report", "ablation")


def page_subject(html: Path) -> str:
    """What a page is about: its sweep for a sweep's report (``default``), the sweep and cell for
    a cell's page (``default, 100k-h1``), the trial for a trial's (``30k-h1``, ``8k-h1 smoke``)."""
    stem, folder = html.stem, html.parent.name
    if stem in SWEEP_PAGES:
        return folder
    if folder == "trials":
        return stem.removeprefix("02_train_trial_").replace("_", "-").replace("-smoke", " smoke")
    return f"{folder}, {stem}"


def _page_heading(nb, html: Path) -> str:
    """'Scaling report: default' from the notebook's first heading ('# 04 Scaling report'), its
    number dropped, and the page's folder; the heading cell is rewritten to match."""
    import re

    first = next((c for c in nb.cells if c.cell_type == "markdown"), None)
    m = re.match(r"#\s+(?:\d+\s+)?(.+)", (first.source if first else "").splitlines()[0]
                 if first and first.source else "")
    name = m.group(1).strip() if m else Path(html).stem.replace("_", " ")
    heading = f"{name}: {page_subject(Path(html))}"
    if m:
        lines = first.source.splitlines()
        first.source = "\n".join([f"# {heading}"] + lines[1:])
    return heading


def remove_stale(folder: Path, patterns=(f"*{PARTIAL}", ".*.tmp", "*.html.tmp")) -> list[Path]:
    """Temporary files a killed or failed run left under ``folder`` (call only when no other
    process of this sweep runs: the sweep lock is held)."""
    gone = []
    for pattern in patterns:
        for f in Path(folder).rglob(pattern):
            f.unlink(missing_ok=True)
            gone.append(f)
    return gone


def errors(executed: Path) -> list[str]:
    """Error outputs of an executed notebook (empty when it ran cleanly)."""
    import nbformat

    nb = nbformat.read(str(executed), as_version=4)
    return [f"{o.get('ename')}: {o.get('evalue')}" for c in nb.cells if c.cell_type == "code"
            for o in c.get("outputs", []) if o.get("output_type") == "error"]

import signal
import time

import pytest

from lib.core.config import ConfigError
from lib.run.notebook import validate


def ns(**extra):
    g = {"__annotations__": {"horizon": int, "budget": "str", "lr": float, "smoke": bool},
         "horizon": 1, "budget": "1M", "lr": 1e-3, "smoke": False}
    g.update(extra)
    return g


def test_declared_parameters_pass():
    assert validate(ns(), start=set()) == {"horizon": 1, "budget": "1M", "lr": 0.001,
                                           "smoke": False}


def test_unknown_parameter_is_an_error():
    with pytest.raises(ConfigError, match="unknown notebook parameter 'horizn'"):
        validate(ns(horizn=3), start=set())


def test_wrong_type_is_an_error():
    with pytest.raises(ConfigError, match="'horizon' must be int, got str '3'"):
        validate(ns(horizon="3"), start=set())
    with pytest.raises(ConfigError, match="'horizon' must be int, got bool"):
        validate(ns(horizon=True), start=set())


def test_int_accepted_for_float():
    assert validate(ns(lr=1), start=set())["lr"] == 1.0


# -- one kernel for several notebooks (the sweep's job slots) ---------------------------------
def _nb(tmp_path, name, *sources):
    import nbformat

    nb = nbformat.v4.new_notebook(metadata={
        "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
        "language_info": {"name": "python"}})
    nb.cells = [nbformat.v4.new_code_cell("_names_before_parameters = set(globals())"),
                nbformat.v4.new_code_cell(sources[0], metadata={"tags": ["parameters"]}),
                *[nbformat.v4.new_code_cell(s) for s in sources[1:]]]
    path = tmp_path / name
    nbformat.write(nb, str(path))
    return path


def _outputs(path):
    import nbformat

    nb = nbformat.read(str(path), as_version=4)
    return nb, "".join(o.get("text", "") for c in nb.cells for o in c.get("outputs", []))


def test_kernel_runs_notebooks_in_turn_from_an_empty_namespace(tmp_path):
    """A reused kernel: same process, leftovers of the previous notebook gone, parameters of
    each notebook validated on their own, the injected reset cell visible in the copy."""
    from papermill.exceptions import PapermillExecutionError

    from lib.run.notebook import RESET_TAG, Kernel

    first = _nb(tmp_path, "a.ipynb", "horizon: int = 1",
                "from lib.run import notebook\nnotebook.validate(globals())\n"
                "import os\nleftover = 42\nprint('pid', os.getpid(), 'h', horizon)")
    second = _nb(tmp_path, "b.ipynb", "budget: str = 'x'",
                 "from lib.run import notebook\nprint('params', notebook.validate(globals()))\n"
                 "import os\nprint('pid', os.getpid(), 'leftover' in globals())")
    with Kernel(tmp_path, max_uses=2) as k:
        k.execute(first, tmp_path / "a.out.ipynb", {"horizon": 3})
        k.execute(second, tmp_path / "b.out.ipynb", {"budget": "1M"})
        nb_a, out_a = _outputs(tmp_path / "a.out.ipynb")
        nb_b, out_b = _outputs(tmp_path / "b.out.ipynb")
        assert "h 3" in out_a
        assert "params {'budget': '1M'}" in out_b  # horizon (of the first) is not declared here
        assert out_a.split("pid ")[1].split()[0] == out_b.split("pid ")[1].split()[0]
        assert out_b.rstrip().endswith("False")  # the first notebook's variable is gone
        assert RESET_TAG in nb_b.cells[0].metadata.tags
        assert k.starts == 1
        # the third notebook exceeds max_uses: a fresh kernel (another process)
        k.execute(second, tmp_path / "c.out.ipynb", {"budget": "2M"})
        assert k.starts == 2
        # an unknown parameter still fails in a reused kernel
        with pytest.raises(PapermillExecutionError, match="unknown notebook parameter 'horizn'"):
            k.execute(second, tmp_path / "d.out.ipynb", {"horizn": 2})
        # a kernel that died is replaced
        k.km.signal_kernel(signal.SIGKILL)
        for _ in range(100):
            if not k.km.is_alive():
                break
            time.sleep(0.05)
        k.execute(second, tmp_path / "e.out.ipynb", {"budget": "3M"})
        assert k.starts == 3 and "params {'budget': '3M'}" in _outputs(tmp_path / "e.out.ipynb")[1]


def test_kernels_start_without_the_unencrypted_tcp_warning(tmp_path):
    """Every kernel start used to print '[IPKernelApp] WARNING | Kernel is running over TCP
    without encryption', once per notebook; a cell's own output still shows."""
    import subprocess
    import sys

    src = _nb(tmp_path, "w.ipynb", "horizon: int = 1", "print('cell says', horizon)")
    script = (f"from pathlib import Path\nfrom lib.run import notebook\n"
              f"k = notebook.Kernel(Path({str(tmp_path)!r}))\n"
              f"k.execute(Path({str(src)!r}), Path({str(tmp_path / 'a.ipynb')!r}), "
              f"{{'horizon': 2}})\n"
              f"k.close()\n"
              f"notebook.execute(Path({str(src)!r}), Path({str(tmp_path / 'b.ipynb')!r}), "
              f"{{'horizon': 3}}, cwd=Path({str(tmp_path)!r}))\n")
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "without encryption" not in r.stderr + r.stdout
    assert "cell says 2" in (tmp_path / "a.ipynb").read_text()
    assert "cell says 3" in (tmp_path / "b.ipynb").read_text()


def test_a_rendered_page_has_a_title_a_heading_and_a_link_to_the_index(fresh_root):
    """Every page was titled "Notebook" and headed "04 Scaling report", with no way back."""
    import nbformat

    from lib.core import paths
    from lib.run.notebook import render_html

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("# 04 Scaling report\nThe answer first."),
                nbformat.v4.new_code_cell("1")]
    src = fresh_root / "nb.ipynb"
    nbformat.write(nb, str(src))
    html = paths.REPORTS / "default" / "scaling_report.html"
    html.parent.mkdir(parents=True)
    text = render_html(src, html).read_text()
    assert "<title>Scaling report: default</title>" in text
    assert 'href="../index.html"' in text and "04 Scaling report" not in text


def test_a_page_says_what_it_is_about():
    from pathlib import Path

    from lib.run.notebook import page_subject

    assert page_subject(Path("reports/default/scaling_report.html")) == "default"
    assert page_subject(Path("reports/panel/panel_report.html")) == "panel"
    assert page_subject(Path("reports/default/100k-h1.html")) == "default, 100k-h1"
    assert page_subject(Path("reports/trials/02_train_trial_30k_h1.html")) == "30k-h1"
    assert page_subject(Path("reports/trials/02_train_trial_8k_h1_smoke.html")) == "8k-h1 smoke"

import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_setup_is_a_no_op_the_second_time():
    r = subprocess.run(["make", "-q", "setup"], cwd=REPO)
    assert r.returncode == 0, "make setup would rebuild .venv although nothing changed"


def test_help_lists_every_target():
    out = subprocess.run(["make", "help"], cwd=REPO, capture_output=True, text=True).stdout
    for t in ("setup", "data", "trial", "sweep", "test", "lab", "bench", "report", "clean"):
        assert t in out


def test_committed_notebooks_have_no_outputs():
    import nbformat

    for nb in (REPO / "notebooks").glob("*.ipynb"):
        cells = nbformat.read(nb, as_version=4).cells
        assert not any(c.get("outputs") for c in cells if c.cell_type == "code"), nb.name
        tagged = [c for c in cells if "parameters" in c.get("metadata", {}).get("tags", [])]
        assert len(tagged) == 1, f"{nb.name} needs one cell tagged 'parameters'"

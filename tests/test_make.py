import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def test_setup_is_a_no_op_the_second_time():
    r = subprocess.run(["make", "-q", "setup"], cwd=REPO)
    assert r.returncode == 0, "make setup would rebuild .venv although nothing changed"


def test_help_lists_every_target():
    out = subprocess.run(["make", "help"], cwd=REPO, capture_output=True, text=True).stdout
    for t in ("setup", "data", "trial", "sweep", "test", "lab", "bench", "report", "clean"):
        assert t in out


def test_committed_notebooks_have_no_outputs():
    import json

    import nbformat

    for nb in (REPO / "notebooks").glob("*.ipynb"):
        cells = nbformat.read(nb, as_version=4).cells
        assert not any(c.get("outputs") for c in cells if c.cell_type == "code"), nb.name
        tagged = [c for c in cells if "parameters" in c.get("metadata", {}).get("tags", [])]
        assert len(tagged) == 1, f"{nb.name} needs one cell tagged 'parameters'"
        # a cell without an id is given one by JupyterLab on opening: the notebook then shows as
        # modified before anyone touched it, and nbformat warns on every read
        raw = json.loads(nb.read_text())
        assert all("id" in c for c in raw["cells"]), f"{nb.name}: cells without an id"


def test_gpu_check_script_runs_its_cpu_path_and_the_quick_benchmark(tmp_path):
    """bench/gpu_check.sh on a machine without CUDA: the CUDA tests skip, the benchmark runs in
    quick mode and prints its table last."""
    import json
    import os

    env = dict(os.environ, WORKBENCH_ROOT=str(tmp_path))
    r = subprocess.run(["bash", str(REPO / "bench/gpu_check.sh")], cwd=REPO, env=env,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    if "no CUDA device" not in r.stdout:
        pytest.skip("a CUDA device is present: the script took its GPU path")
    assert "skipped" in r.stdout and "MFU" in r.stdout
    assert r.stdout.rstrip().splitlines()[-1].startswith("written outputs/bench/")
    (out,) = (tmp_path / "outputs" / "bench").glob("*.json")
    res = json.loads(out.read_text())
    assert res["matmul_flops_per_s"] == max(res["matmul_readings_flops_per_s"]) > 0
    assert all(0 < row["mfu"] < 1.5 and row["samples_per_s"] > 0
               and row["micro_batch"] == row["batch"] and row["timing"] == "perf_counter"
               for row in res["training"])
    stacked = [row for row in res["training"] if row["models"] > 1]
    assert stacked and all(row["speedup_vs_alone"] > 0 for row in stacked)


def test_make_data_then_make_trial_on_a_fresh_root(tmp_path):
    import os

    env = dict(os.environ, WORKBENCH_ROOT=str(tmp_path))
    for target in (["data"], ["trial", "SMOKE=1", "BUDGET=8k", "HORIZON=3"]):
        r = subprocess.run(["make", *target], cwd=REPO, env=env, capture_output=True, text=True,
                           timeout=600)
        assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    assert (tmp_path / "data" / "processed" / "gspc_sf.parquet").exists()
    assert (tmp_path / "outputs" / "data_prep" / "01_data_prep.ipynb").exists()
    # a smoke trial trains a tiny model: named as such, it can never pass for (or overwrite) a
    # real 8k trial
    assert (tmp_path / "reports" / "trials" / "02_train_trial_8k_h3_smoke.html").exists()
    assert not (tmp_path / "reports" / "trials" / "02_train_trial_8k_h3.html").exists()
    index = (tmp_path / "reports" / "index.html").read_text()
    assert 'href="trials/02_train_trial_8k_h3_smoke.html"' in index


def test_lab_opens_in_notebooks_and_works_as_root():
    out = subprocess.run(["make", "-n", "lab"], cwd=REPO, capture_output=True, text=True).stdout
    assert "--LabApp.default_url=/lab/tree/notebooks" in out and "--ip 127.0.0.1" in out
    import os

    if os.geteuid() == 0:
        assert "--allow-root" in out and "running as root" in out


@pytest.mark.parametrize("args, words", [
    (["BUDGET=abc"], "error: BUDGET=abc: budget 'abc' is not a count"),
    (["HORIZON=x"], "error: HORIZON='x': not a whole number of trading days"),
    (["BUDGET=5"], "error: BUDGET=5: no architecture fits budget 5"),
])
def test_bad_trial_arguments_fail_in_one_line_before_a_kernel_starts(tmp_path, args, words):
    import os

    env = dict(os.environ, WORKBENCH_ROOT=str(tmp_path))
    r = subprocess.run(["make", "trial", *args], cwd=REPO, env=env, capture_output=True,
                       text=True, timeout=120)
    assert r.returncode != 0 and words in r.stderr
    assert "Traceback" not in r.stdout + r.stderr
    assert not (tmp_path / "outputs" / "trials").exists()  # no kernel, no failed notebook

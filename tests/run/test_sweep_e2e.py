"""`make sweep SWEEP=smoke` end to end: real papermill, SQLite, training, final evaluation and
report."""

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import optuna
import pytest

from lib.core import paths
from lib.run import notebook
from lib.search import records
from lib.search.cells import cells, open_storage, storage_url
from lib.search.sweepfile import load_sweep
from tests.conftest import THREADS

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("e2e")
    env = dict(os.environ, WORKBENCH_ROOT=str(root))
    t0 = time.time()
    r = subprocess.run(["make", "sweep", "SWEEP=smoke"], cwd=REPO, env=env, capture_output=True,
                       text=True, timeout=900)
    return root, r, time.time() - t0, env


def test_sweep_succeeds_with_a_status_table(smoke_run):
    root, r, _, _ = smoke_run
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert re.search(r"cell\s+finished\s+sampled\s+enqueued\s+complete\s+pruned\s+failed",
                     r.stdout)
    # a run you can watch: every finished cell and final evaluation says where the stage is
    assert re.search(r"\[search 4/4\] \S+: done in \d+ s \| 4/4 done, elapsed \d+:\d\d", r.stdout)
    assert re.search(r"\[search 1/4\] .* ~\d+:\d\d left", r.stdout)
    assert re.search(r"\[final \d/4\] \S+: evaluated", r.stdout)
    assert "final.<slot>.log" in r.stdout and "report: rendering" in r.stdout


def test_run_records_how_much_slot_time_went_into_training(smoke_run):
    """last_run.json: stage timings and the training share of jobs x wall, from the records."""
    root, r, _, _ = smoke_run
    use = json.loads((root / "outputs/sweeps/smoke/last_run.json").read_text())
    assert set(use["stages"]) == {"data_s", "cells_s", "final_s", "report_s"}
    assert use["trial_s"] > 0 and use["final_train_s"] > 0
    assert 0 < use["training_share"] < 1 and 0 < use["cells_stage_trial_share"] < 1
    assert f"filled {use['training_share']:.0%} of 2 slot(s)" in r.stdout
    # every cell ran in one of the 2 job slots' kernels: the reset cell shows the reuse
    paths.set_root(root)
    reused = [c for c in cells("smoke", load_sweep("smoke"))
              if "kernel-reset" in nbformat.read(str(c.dir / "03_hpo_sweep.ipynb"), 4)
              .cells[0].metadata.get("tags", [])]
    assert len(reused) == 4


def test_final_of_an_unknown_cell_is_a_clear_error(smoke_run, capsys):
    from lib.run import sweep

    root, _, _, _ = smoke_run
    paths.set_root(root)
    assert sweep.main(["final", "--sweep", "smoke", "--cell", "8k-h9"]) == 2
    assert "unknown cell(s) 8k-h9 in sweep 'smoke'" in capsys.readouterr().out


def test_every_record_exists_and_agrees_with_storage(smoke_run):
    root, _, _, _ = smoke_run
    paths.set_root(root)
    cfg = load_sweep("smoke")
    storage = open_storage(storage_url("smoke"))
    for cell in cells("smoke", cfg):
        d = cell.dir
        for f in ("best.json", "all_trials.json", "study_summary.json", "study_summary.md",
                  "preflight.json", "hardware.jsonl", "sweep.log", "final.json",
                  "03_hpo_sweep.ipynb"):
            assert (d / f).exists(), f"{cell.id}: {f} missing"
        study = optuna.load_study(study_name=cell.study_name, storage=storage)
        best = json.loads((d / "best.json").read_text())
        assert best["counts"] == records.counts(study.get_trials())
        # equal effort: n_trials SAMPLED trials in every cell, the probes on top
        assert best["counts"]["sampled"] == cfg.search.n_trials
        assert best["counts"]["enqueued"] == len(study.user_attrs["enqueued"]) >= 1
        for t in study.get_trials():
            if records.counts_done(t):
                json.loads(records.trial_path(d, t.number).read_text())
        assert notebook.errors(d / "03_hpo_sweep.ipynb") == []
        assert (paths.REPORTS / "smoke" / f"{cell.id}.html").exists()
        final = json.loads((d / "final.json").read_text())
        assert final["complete"] and final["n_trials_searched"] >= cfg.search.n_trials
        assert len(next(iter(final["configs"].values()))["seeds"]) == cfg.final.seeds


def test_final_json_states_method_seeds_counts_and_effort(smoke_run):
    root, _, _, _ = smoke_run
    paths.set_root(root)
    cfg = load_sweep("smoke")
    for cell in cells("smoke", cfg):
        final = json.loads((cell.dir / "final.json").read_text())
        iv = final["interval"]
        assert iv["method"] == "stationary" and iv["block_length"] >= cell.horizon
        assert "Politis-White" in iv["rule"] and iv["resamples"] == cfg.final.bootstrap
        assert final["seeds_differ_from_search_seed"] and final["search_seed"] not in \
            final["seeds"] and final["seeds"] == [1000, 1001]
        best = next(iter(final["configs"].values()))
        n = best["n_params"]
        assert n["analytic_matches"] and n["measured_non_embedding"] < n["measured"]
        assert set(best["seeds"]) == {"1000", "1001"}
        agg = best["aggregate"]["auc"]
        assert agg["ci95"][0] < agg["mean"] < agg["ci95"][1] and agg["ci95_iid"][0] is not None
        e = final["effort"]
        assert e["sampled"] == cfg.search.n_trials and e["enqueued"] >= 1
        assert e["epochs_trained"] >= e["sampled"] + e["enqueued"]
        assert e["train_flops"] > 0  # compute of the search, from every trial's record
        assert all(s["compute"]["train_flops"] > 0 and s["trained_together"] == 2
                   for s in best["seeds"].values())
        for k in ("logreg", "hgb", "prior"):
            c = final["comparisons"][k]
            assert c["auc_diff"]["ci95"][0] is not None and c["delong_iid"]["p_value"] is not None


def test_records_hold_labels_of_their_own_horizon(smoke_run):
    """Rule 1 end to end: every trial record's and final evaluation's labels are those built for
    the cell's own horizon (positive rates and test labels), not another horizon's."""
    import numpy as np

    from lib.data import dataset
    from lib.data.splits import make_splits

    root, _, _, _ = smoke_run
    paths.set_root(root)
    cfg = load_sweep("smoke")
    df, _ = dataset.load_dataset(cfg.data.name)
    built = {h: make_splits(df, cfg.split, horizon=h) for h in cfg.horizons}
    rates = {h: s.stats.train.positive_rate for h, s in built.items()}
    assert len(set(rates.values())) == len(rates)
    for cell in cells("smoke", cfg):
        recs = [json.loads(f.read_text()) for f in (cell.dir / "trials").glob("trial_*.json")]
        assert recs
        for rec in recs:
            assert rec["horizon"] == rec["split"]["horizon"] == cell.horizon
            assert rec["split"]["train"]["positive_rate"] == rates[cell.horizon]
        final = json.loads((cell.dir / "final.json").read_text())
        assert final["split"]["train"]["positive_rate"] == rates[cell.horizon]
        np.testing.assert_array_equal(final["y_test"], built[cell.horizon].test.y)


def test_report_choices_are_made_on_validation_only(smoke_run):
    """Poison the test block of every final evaluation (perfect test predictions for the cells
    validation did not choose, inverted ones for those it chose): every choice in the
    conclusions stays the same."""
    import copy

    import numpy as np

    from lib.reports import report

    root, _, _, _ = smoke_run
    paths.set_root(root)
    cfg = load_sweep("smoke")
    finals = report.load_finals("smoke", cfg)
    results = report.results_table(finals)
    assert (results["search_train_flops"] > 0).all() and (results["final_train_flops"] > 0).all()
    before = report.choices(results)
    chosen = set(before["best_budget"].values())
    poisoned = copy.deepcopy(finals)
    for s in poisoned:
        y = np.asarray(s["y_test"], dtype=float)
        fake = (1 - y) if s["cell"]["id"] in chosen else y
        for conf in s["configs"].values():
            for seed in conf["seeds"].values():
                seed["p_test"] = (0.02 + 0.96 * fake).tolist()
            auc = conf["aggregate"]["auc"]
            auc["mean"] = 0.0 if s["cell"]["id"] in chosen else 1.0
            conf["aggregate"]["skill_own"]["mean"] = -1.0 if s["cell"]["id"] in chosen else 1.0
    after_results = report.results_table(poisoned)
    after = report.choices(after_results)
    assert after == before
    from lib.reports.conclusions import conclusions

    lines = conclusions(after_results, report.scaling_fits(poisoned, cfg, resamples=20),
                               cfg)
    for h, cell in before["best_budget"].items():
        budget = cell.split("-")[0]
        assert any(f"Horizon {h}: validation chose {budget} " in line for line in lines), lines
    assert any(f"the best horizon is h={before['best_horizon']} " in line for line in lines)


def test_report_html_is_self_contained_and_error_free(smoke_run):
    root, _, _, _ = smoke_run
    html = (root / "reports" / "smoke" / "scaling_report.html").read_text()
    assert "data:image/png;base64" in html
    assert "Traceback" not in html and 'class="output_error"' not in html
    nb = nbformat.read(root / "outputs" / "sweeps" / "smoke" / "04_scaling_report.ipynb", 4)
    assert not [o for c in nb.cells for o in c.get("outputs", []) if o["output_type"] == "error"]
    assert "alpha" in html and "Conclusions" in html
    assert "block-bootstrap" in html and "Holm" in html and "validation chose" in html


def test_every_read_of_the_test_block_is_in_the_ledger(smoke_run):
    """Rule 26: each cell's final evaluation left a ledger entry naming the configurations it
    scored on the test block, and the report quotes how often the block was read."""
    root, _, _, _ = smoke_run
    folder = root / "outputs" / "sweeps" / "smoke"
    reads = [json.loads(f.read_text()) for f in sorted((folder / "test_reads").glob("*.json"))]
    for cell in ("8k-h1", "8k-h3", "30k-h1", "30k-h3"):
        final = json.loads((folder / cell / "final.json").read_text())
        mine = [r for r in reads if r["cell"] == cell and any(r["new_predictions"].values())]
        assert mine and mine[0]["trials"] == [e["trial"] for e in final["evaluated"]]
        assert mine[0]["block"]["first"] == final["test_dates"][0] and mine[0]["baselines_scored"]
    html = (root / "reports" / "smoke" / "scaling_report.html").read_text()
    assert re.search(r"was read \d+ time\(s\) by the final evaluation", html)
    assert "not an untouched holdout" in html


def test_second_run_has_nothing_to_do(smoke_run):
    root, _, first, env = smoke_run
    last = root / "outputs/sweeps/smoke/last_run.json"
    before = last.read_bytes()
    t0 = time.time()
    r = subprocess.run(["make", "sweep", "SWEEP=smoke"], cwd=REPO, env=env, capture_output=True,
                       text=True, timeout=600)
    assert r.returncode == 0
    assert "0 of 4 cells to run" in r.stdout
    assert time.time() - t0 < first / 2
    # the run that did the work keeps its timings, and the status shows recorded seconds
    assert last.read_bytes() == before and "keeps the last working run's timings" in r.stdout
    rows = [ln.split() for ln in r.stdout.splitlines() if re.match(r"\s*\d+k-h\d", ln)]
    header = next(ln.split() for ln in r.stdout.splitlines() if "trials_s" in ln)
    col = header.index("trials_s")
    assert rows and all(float(row[col]) > 0 for row in rows), rows


def test_final_evaluation_resumes_only_what_is_missing(smoke_run):
    root, _, _, env = smoke_run
    path = root / "outputs" / "sweeps" / "smoke" / "8k-h1" / "final.json"
    state = json.loads(path.read_text())
    cfg = next(iter(state["configs"].values()))
    kept = cfg["seeds"]["1000"]["p_test"]
    del cfg["seeds"]["1001"]
    state["complete"] = False
    path.write_text(json.dumps(state))
    r = subprocess.run([str(REPO / ".venv/bin/python"), "-m", "lib.run.sweep", "final", "--sweep",
                        "smoke", "--cell", "8k-h1", "--threads", str(THREADS)], cwd=REPO, env=env,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    after = json.loads(path.read_text())
    seeds = next(iter(after["configs"].values()))["seeds"]
    assert after["complete"] and set(seeds) == {"1000", "1001"}
    assert seeds["1000"]["p_test"] == kept
    last = json.loads(sorted((path.parent.parent / "test_reads").glob("*-8k-h1.json"))[-1]
                      .read_text())
    assert list(last["new_predictions"].values()) == [[1001]]  # the read is in the ledger


def kernels_of(root) -> list[int]:
    """Jupyter kernels started for this workbench root (other tests run in parallel)."""
    import psutil

    found = []
    for proc in psutil.process_iter(["cmdline"]):
        try:
            if "ipykernel_launcher" in " ".join(proc.info["cmdline"] or []) and \
                    proc.environ().get("WORKBENCH_ROOT") == str(root):
                found.append(proc.pid)
        except (psutil.Error, OSError):
            continue
    return found


def test_ctrl_c_stops_the_sweep_and_the_next_run_finishes_it(smoke_run, tmp_path):
    """SIGINT to `lib.run.sweep run` (what Ctrl-C delivers: the kernels run in sessions of their
    own): it stops within seconds, leaves no kernel behind, records the interrupted trial
    (FAILED, not counted, parameters queued again), and the same command then completes it."""
    import signal

    root, _, _, env = smoke_run
    sweep = tmp_path / "t_ctrlc.yaml"
    sweep.write_text((REPO / "params/sweeps/smoke.yaml").read_text()
                     .replace('budgets: ["8k", "30k"]', 'budgets: ["8k"]')
                     .replace("horizons: [1, 3]", "horizons: [1]")
                     .replace("n_trials: 1", "n_trials: 2")
                     .replace("enqueue_extremes: true", "enqueue_extremes: false"))
    cmd = [str(REPO / ".venv/bin/python"), "-m", "lib.run.sweep", "run", "--sweep", str(sweep),
           "--no-final", "--no-report"]
    # SIGINT as a terminal delivers it: a test runner started in the background (`cmd &` in a
    # script) passes SIGINT on ignored, and Python then never raises KeyboardInterrupt
    p = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, text=True,
                         preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    log = root / "outputs/sweeps/t_ctrlc/8k-h1/sweep.log"
    deadline = time.time() + 120
    while time.time() < deadline and not (log.exists() and "trial 0 start" in log.read_text()):
        time.sleep(0.2)
    time.sleep(1.0)  # inside the first trial's training
    t0 = time.time()
    p.send_signal(signal.SIGINT)
    out, _ = p.communicate(timeout=60)
    assert p.returncode == 130 and "interrupted" in out, out[-2000:]
    assert "Traceback" not in out, out[-3000:]
    assert time.time() - t0 < 15
    assert not kernels_of(root), "a kernel outlived the interrupted sweep"
    first = json.loads((log.parent / "trials" / "trial_0000.json").read_text())
    assert first["state"] == "FAIL" and first["interrupted"]
    paths.set_root(root)
    study = optuna.load_study(study_name="t_ctrlc:8k-h1", storage=open_storage(
        storage_url("t_ctrlc")))
    states = [t.state.name for t in study.trials]
    assert "RUNNING" not in states, states  # nothing for the next run to wait out
    assert [t.user_attrs.get("retry_of") for t in study.trials if t.state.name == "WAITING"] \
        == [0]  # queued again at once
    assert "interrupted: trial recorded and queued again" in log.read_text()
    r = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout[-2000:]
    paths.set_root(root)
    study = optuna.load_study(study_name="t_ctrlc:8k-h1", storage=open_storage(
        storage_url("t_ctrlc")))
    counted = [t for t in study.get_trials() if records.counts_done(t)]
    assert len(counted) == 2
    retry = [t for t in study.trials if t.user_attrs.get("retry_of") == 0]
    assert len(retry) == 1  # waiting behind the enqueued extremes, or already run
    assert (retry[0].params or retry[0].system_attrs["fixed_params"]) == study.trials[0].params
    assert notebook.errors(log.parent / "03_hpo_sweep.ipynb") == []


def test_rendered_reports_are_for_people(smoke_run):
    """Every rendered page: no Python reprs, no absolute paths, no tracebacks or stderr blocks,
    every figure embedded; the scaling report opens with its summary; the cell pages show no
    search log; the index links every report."""
    root, _, _, _ = smoke_run
    pages = sorted((root / "reports").rglob("*.html"))
    assert root / "reports" / "index.html" in pages and len(pages) >= 6
    for page in pages:
        html = page.read_text()
        name = page.relative_to(root).as_posix()
        for bad in ("<matplotlib", "{'", "Traceback", str(root), str(REPO), "output_stderr"):
            assert bad not in html, f"{name} shows {bad!r}"
        imgs = re.findall(r"<img[^>]*>", html)
        assert all('src="data:image/' in i for i in imgs), f"{name}: a figure is not embedded"
    report = (root / "reports" / "smoke" / "scaling_report.html").read_text()
    order = [report.index(h) for h in ("Summary", "Conclusions, in full", "Results per cell",
                                       "Assertions")]
    assert order == sorted(order)
    assert "Verdict per horizon" in report and "Caveats" in report
    cell = (root / "reports" / "smoke" / "8k-h1.html").read_text()
    assert "Summary" in cell and " start arch=" not in cell and "Pre-flight checks" in cell
    index = (root / "reports" / "index.html").read_text()
    assert 'href="smoke/scaling_report.html"' in index and 'href="smoke/8k-h1.html"' in index


def test_final_split_bounds_the_final_stage_on_a_finished_sweep(smoke_run):
    """bench/final_split.py reads every cell's final.json, profiles its selected configuration
    stacked as the final evaluation trains it, and states the ceiling (bench/NOTES.md §11)."""
    root, _, _, env = smoke_run
    r = subprocess.run([sys.executable, str(REPO / "bench/final_split.py"),
                        "smoke"], cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    per_cell = [ln for ln in r.stdout.splitlines() if " stacked: step " in ln]
    assert len(per_cell) == len(cells("smoke", load_sweep("smoke")))
    ceiling = re.search(r"a step at most ([0-9.]+)x faster", r.stdout)
    assert ceiling and float(ceiling.group(1)) > 1


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
REPR_SIGNS = ("<matplotlib", "object at 0x", "np.float64(", "array([", "Styler object", "{'",
              "dtype:", "Traceback", "output_stderr", "CLIPPED FIGURE")


def browser_problems(dom: str, root: Path, min_figures: int) -> list[str]:
    """What a reader must never see in a rendered page: a Python repr, a traceback, an absolute
    path of this machine, a figure missing or not a real image, a figure that clips what it draws
    (the scaling report prints ``CLIPPED FIGURE`` under it, :func:`lib.reports.plots.clipped`)."""
    import base64

    out = [f"shows {s!r}" for s in REPR_SIGNS if s in dom]
    out += [f"shows the path {p}" for p in (str(root), str(REPO), "/tmp/", "/home/") if p in dom]
    figures = re.findall(r'<img[^>]*src="data:image/png;base64,([^"]+)"', dom)
    if len(figures) < min_figures:
        out.append(f"{len(figures)} figure(s), expected at least {min_figures}")
    out += ["a figure that is not a PNG" for f in figures
            if not base64.b64decode(f[:24] + "=" * (-len(f[:24]) % 4)).startswith(b"\x89PNG")]
    return out


def test_the_browser_check_goes_red_on_a_repr_a_path_a_missing_figure_or_a_clipped_band():
    png = 'src="data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAA"'
    root = Path("/srv/wb")
    assert not browser_problems(f"<p>0.610</p><img {png}>", root, 1)
    assert browser_problems(f"<p>np.float64(0.61)</p><img {png}>", root, 1)
    assert browser_problems(f"<p>/srv/wb/outputs</p><img {png}>", root, 1)
    assert browser_problems("<p>0.610</p>", root, 1)  # the figure was removed
    clipped = "<pre>CLIPPED FIGURE: h=5: drawn beyond the y axis [0.6, 0.7]</pre>"
    assert browser_problems(f"<p>0.610</p><img {png}>{clipped}", root, 1)


@pytest.mark.skipif(not CHROMIUM, reason="no Chromium here (.ci/run installs it)")
def test_reports_render_in_a_browser_without_reprs_paths_or_missing_figures(smoke_run):
    """The index, the scaling report and a cell report, rendered by headless Chromium (the DOM
    after the page loaded), read as pages for people."""
    root = smoke_run[0]
    pages = {"reports/index.html": 0, "reports/smoke/scaling_report.html": 4,
             "reports/smoke/8k-h1.html": 1}
    for page, figures in pages.items():
        r = subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu",
                            "--dump-dom", (root / page).as_uri()], capture_output=True,
                           text=True, timeout=120)
        assert r.returncode == 0 and "</html>" in r.stdout, r.stderr[-1000:]
        assert not browser_problems(r.stdout, root, figures), (page, browser_problems(
            r.stdout, root, figures))

"""The search: enqueued extremes, pruning, divergence, resume, records, pre-flight, isolation."""

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import optuna

from lib.core import paths
from lib.core.provenance import read_json
from lib.data import dataset as ds
from lib.search import objective as objective_mod
from lib.search import records
from lib.search.cells import Cell, open_storage, storage_url
from lib.search.runner import CellRunner
from lib.search.sweepfile import load_sweep
from lib.train import trial as trial_mod
from tests.conftest import THREADS

REPO = Path(__file__).resolve().parents[2]


def tiny_cfg(**search_kw):
    cfg = load_sweep("smoke")
    cfg.search = replace(cfg.search, **{"max_epochs": [1, 2], "enqueue_extremes": False,
                                        **search_kw})
    cfg.guards = replace(cfg.guards, interval_s=0.5)
    return cfg


def runner(root, name, cfg, budget="8k", horizon=1, **kw):
    r = CellRunner(Cell(name, budget, horizon), cfg, threads=THREADS, log=lambda m: None, **kw)
    r.prepare()
    return r


def test_enqueued_extremes_run_first_and_are_extra_effort(root):
    """The probes run first, as ordinary trials, and do NOT count towards n_trials: every budget
    gets n_trials sampled trials however many probes its grid has."""
    cfg = tiny_cfg(n_trials=2, enqueue_extremes=True)
    r = runner(root, "t_enqueue", cfg, budget="30k")
    enq = r.study.user_attrs["enqueued"]
    assert len(enq) >= 2
    status = r.run(progress=False)
    assert status["sampled"] == 2 and status["enqueued"] == len(enq)
    assert status["finished"] == status["target"] == 2 + len(enq)
    effort = records.effort(r.study)
    assert effort["sampled"] == 2 and effort["enqueued"] == len(enq)
    assert effort["epochs_trained"] >= status["finished"]
    trials = sorted(r.study.get_trials(), key=lambda t: t.number)
    first = [t.params["arch"] for t in trials[:len(enq)] if t.state.is_finished()]
    assert first == enq[:len(first)]
    narrow = min(r.archs_all, key=lambda a: a.d_model)
    assert trials[0].params["arch"] == narrow.id
    assert set(trials[0].params) == {"arch", "lr", "weight_decay", "warmup_frac", "dropout",
                                     "batch_size", "max_epochs"}


def test_records_counts_and_rule2_readback(root):
    cfg = tiny_cfg(n_trials=3)
    r = runner(root, "t_records", cfg)
    status = r.run(progress=False)
    r.summarize()
    assert status["finished"] == 3
    best = read_json(r.dir / "best.json")
    stored = records.counts(r.study.get_trials())
    assert best["counts"] == stored and best["best_trial"] == r.study.best_trial.number
    files = sorted((r.dir / "trials").glob("trial_*.json"))
    assert len(files) == 3
    for f in files:
        rec = json.loads(f.read_text())
        assert rec["horizon"] == 1 and rec["split"]["horizon"] == 1
        assert rec["dataset"]["sha256"] and rec["code"]["commit"] is not None or "reason" in \
            rec["code"]
        if rec["state"] == "COMPLETE":
            assert rec["n_params"]["analytic_matches"]
            assert all(rec["resolved_matches_sampled"].values())
            assert rec["resolved"]["lr"] == rec["params"]["lr"]
            assert rec["resolved"]["weight_decay"] == rec["params"]["weight_decay"]
            assert rec["resolved"]["dropout"] == [rec["params"]["dropout"]]
            assert rec["val"]["confusion"] and "spread" in rec["val"]
        # compute: the arch's analytic training FLOPs per window x windows seen, and wall time
        from lib.model.model import flops_per_sample

        arch = {a.id: a for a in r.archs_all}[rec["params"]["arch"]]
        c = rec["compute"]
        mcfg = trial_mod.model_config(cfg, arch, rec["params"]["dropout"],
                                      rec["arch"]["n_features"])
        assert c["train_windows"] == rec["split"]["train"]["n_windows"] and c["epochs"] == len(
            rec["learning_curve"])
        assert c["train_flops"] == flops_per_sample(mcfg) * c["epochs"] * c["train_windows"] > 0
        assert c["tokens_seen"] == c["windows_seen"] * c["tokens_per_window"]
        assert 0 < c["wall_s"] <= rec["seconds"] + 1e-6
    summary = read_json(r.dir / "study_summary.json")
    assert summary["provenance"]["dataset"]["sha256"] and summary["baselines"]["logreg"]["auc"]
    prov = summary["provenance"]  # rule 16: data, code, packages, hardware, resolved parameters
    assert {"commit", "dirty"} <= set(prov["code"]) and prov["packages"]["torch"]
    assert prov["hardware"]["logical_cpus"] >= 1 and prov["params"]["search"]["n_trials"] == 3
    assert isinstance(summary["collapsed_trials"], list)  # rule 12: collapse flagged in summaries
    assert (r.dir / "study_summary.md").read_text().startswith("# Study summary")
    log = (r.dir / "sweep.log").read_text()
    assert log.count(" start ") == 3 and log.count(" end state=") == 3
    hw = [json.loads(line) for line in (r.dir / "hardware.jsonl").read_text().splitlines()]
    assert hw and hw[0]["proc_rss_mb"] > 0


def test_rerun_tops_up_and_never_starts_over(root):
    cfg = tiny_cfg(n_trials=2)
    r = runner(root, "t_topup", cfg)
    r.run(progress=False)
    numbers = {t.number for t in r.study.get_trials()}
    r2 = runner(root, "t_topup", tiny_cfg(n_trials=3))
    assert r2.run(progress=False)["finished"] == 3
    after = [t.number for t in r2.study.get_trials() if records.counts_done(t)]
    assert numbers <= set(after) and len(after) == len(set(after)) == 3
    r3 = runner(root, "t_topup", tiny_cfg(n_trials=3))
    t0 = time.time()
    r3.run(progress=False)
    assert len(r3.study.get_trials()) == len(r2.study.get_trials()) and time.time() - t0 < 5


def test_pruning_prunes(root):
    cfg = tiny_cfg(n_trials=4, pruner="median", pruner_startup_trials=1, pruner_warmup_epochs=0,
                   lr=[1e-7, 1e-6], enqueue_extremes=False)
    r = runner(root, "t_prune", cfg)
    r.run(progress=False)
    pruned = [t for t in r.study.get_trials() if t.state == optuna.trial.TrialState.PRUNED]
    assert pruned, "no trial was pruned"
    rec = read_json(records.trial_path(r.dir, pruned[0].number))
    assert rec["state"] == "PRUNED" and "pruned after epoch" in rec["prune_reason"]
    assert rec["learning_curve"]


def test_diverged_trial_fails_and_study_goes_on(root, monkeypatch):
    cfg = tiny_cfg(n_trials=3)
    r = runner(root, "t_diverge", cfg)
    real_forward = trial_mod.PatchTST.forward

    def forward(self, x):
        out = real_forward(self, x)
        return out * float("nan") if getattr(self, "poison", False) else out

    real_build = objective_mod.build

    def build(*a, **kw):
        model, mcfg = real_build(*a, **kw)
        model.poison = len(r.study.get_trials()) == 2  # the second trial diverges
        return model, mcfg

    monkeypatch.setattr(trial_mod.PatchTST, "forward", forward)
    monkeypatch.setattr(objective_mod, "build", build)
    status = r.run(progress=False)
    assert status["finished"] == 3 and status["failed"] == 1
    failed = [t for t in r.study.get_trials() if t.state == optuna.trial.TrialState.FAIL][0]
    assert failed.value is None and "diverged" in failed.user_attrs["fail_reason"]
    rec = read_json(records.trial_path(r.dir, failed.number))
    assert rec["state"] == "FAIL" and rec["objective"] is None and rec["diverged_epoch"] == 1
    assert all(t.value is None or t.value < 10 for t in r.study.get_trials())


def test_regenerate_rebuilds_records_from_storage(root):
    cfg = tiny_cfg(n_trials=2)
    r = runner(root, "t_regen", cfg)
    r.run(progress=False)
    before = {f.name: f.read_text() for f in (r.dir / "trials").glob("*.json")}
    for f in (r.dir / "trials").glob("*.json"):
        f.unlink()
    (r.dir / "best.json").unlink()
    n = records.regenerate(r.dir, r.study, r.cell.as_dict())
    assert n == 2 and (r.dir / "best.json").exists()
    after = {f.name: json.loads(f.read_text()) for f in (r.dir / "trials").glob("*.json")}
    assert set(after) == set(before)
    for k, v in after.items():
        assert v["objective"] == json.loads(before[k])["objective"]


def test_search_never_reads_the_test_block(root, monkeypatch):
    """Poison every test-block row: the search's trials come out identical."""
    from lib.data import dataset

    cfg = tiny_cfg(n_trials=2)
    a = runner(root, "t_clean", cfg)
    a.run(progress=False)
    clean = [(t.params, t.value) for t in sorted(a.study.get_trials(), key=lambda t: t.number)]
    real_load = dataset.load_dataset

    def poisoned(name):
        df, entry = real_load(name)
        df = df.copy()
        test = df.index >= "2017-01-01"
        df.loc[test] = df.loc[test].to_numpy()[::-1] * 3.7  # garbage, still positive and finite
        return df, entry

    monkeypatch.setattr(ds, "load_dataset", poisoned)
    b = runner(root, "t_poisoned", cfg)
    b.run(progress=False)
    dirty = [(t.params, t.value) for t in sorted(b.study.get_trials(), key=lambda t: t.number)]
    assert clean == dirty


def test_resume_after_interrupt_loses_no_trial(root):
    """SIGINT a worker mid-search (like Ctrl-C), run again: target reached, no duplicates."""
    sweep = Path(root) / "t_resume.yaml"
    sweep.write_text((REPO / "params/sweeps/smoke.yaml").read_text()
                     .replace("n_trials: 1", "n_trials: 2"))
    env = dict(os.environ, WORKBENCH_ROOT=str(root), PYTHONUNBUFFERED="1")
    cmd = [sys.executable, "-m", "lib.run.sweep", "worker", "--sweep", str(sweep), "--cell",
           "8k-h1", "--threads", "1"]
    p = subprocess.Popen(cmd, env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    trials_dir = paths.SWEEPS / "t_resume" / "8k-h1" / "trials"
    deadline = time.time() + 120
    while time.time() < deadline and not (trials_dir.exists() and any(trials_dir.iterdir())):
        time.sleep(0.2)
    time.sleep(0.5)
    p.send_signal(signal.SIGINT)
    p.wait(timeout=60)
    done_before = len(list(trials_dir.glob("trial_*.json")))
    assert done_before >= 1
    subprocess.run(cmd, env=env, cwd=REPO, check=True, capture_output=True, timeout=300)
    storage = open_storage(storage_url("t_resume"))
    study = optuna.load_study(study_name="t_resume:8k-h1", storage=storage)
    counted = [t.number for t in study.get_trials() if records.counts_done(t)]
    sampled = [t for t in study.get_trials() if records.counts_done(t)
               and not records.is_probe(t)]
    assert len(sampled) == 2 and len(counted) == records.target(study) == len(set(counted))
    files = {int(f.stem.split("_")[1]) for f in trials_dir.glob("trial_*.json")}
    assert set(counted) <= files
    for f in trials_dir.glob("trial_*.json"):
        json.loads(f.read_text())


def test_the_search_can_sample_the_input_normalisation(root):
    """model.norm as a searched setting: every trial samples one, it reaches the live model
    (rule 2: read back and compared), and a 'global' trial trains on training statistics."""
    cfg = tiny_cfg(n_trials=4, norm=["revin", "revin_stats", "global", "none"])
    r = runner(root, "t_norm", cfg)
    r.run(progress=False)
    done = [t for t in r.study.get_trials() if t.state == optuna.trial.TrialState.COMPLETE]
    assert done and all("norm" in t.params for t in done)
    for t in done:
        rec = read_json(records.trial_path(r.dir, t.number))
        assert rec["resolved"]["norm"] == rec["arch"]["norm"] == t.params["norm"]
        assert rec["resolved_matches_sampled"]["norm"] and rec["n_params"]["analytic_matches"]
    assert len({t.params["norm"] for t in r.study.get_trials()}) > 1

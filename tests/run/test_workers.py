"""Workers sharing studies (SQLite and PostgreSQL), and a worker killed in the middle of a trial."""

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import optuna
import pytest

from lib.search import cells, records
from lib.search.study import init_cell
from lib.search.sweepfile import load_sweep

REPO = Path(__file__).resolve().parents[2]


def make_sweep(root: Path, n_trials: int, heartbeat: int = 2, epochs=(2, 3)) -> Path:
    name = f"w{uuid.uuid4().hex[:8]}"
    text = (REPO / "params/sweeps/smoke.yaml").read_text()
    text = text.replace("n_trials: 1", f"n_trials: {n_trials}")
    text = text.replace("enqueue_extremes: true", "enqueue_extremes: false")
    text = text.replace("heartbeat_s: 10", f"heartbeat_s: {heartbeat}")
    text = text.replace("max_epochs: [2, 3]", f"max_epochs: [{epochs[0]}, {epochs[1]}]")
    path = root / f"{name}.yaml"
    path.write_text(text)
    return path


def start(sweep: Path, env: dict, wid: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "lib.run.sweep", "worker", "--sweep", str(sweep),
                             "--cell", "8k-h1", "--threads", "1", "--worker-id", wid],
                            cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def check_cell(sweep: Path, url: str, target: int) -> optuna.Study:
    cfg = load_sweep(sweep)
    cell = cells.Cell(str(sweep), "8k", 1)
    study = optuna.load_study(study_name=cell.study_name, storage=cells.open_storage(url))
    done = [t.number for t in study.get_trials() if records.counts_done(t)]
    assert len(done) == target == cfg.search.n_trials, records.counts(study.get_trials())
    assert len(set(done)) == len(done)
    files = list((cell.dir / "trials").glob("trial_*.json"))
    for f in files:
        json.loads(f.read_text())
    assert {int(f.stem.split("_")[1]) for f in files} >= set(done)
    assert not list(cell.dir.rglob("*.tmp")), "a temporary file was left behind"
    best = json.loads((cell.dir / "best.json").read_text())
    assert best["counts"]["finished"] >= target - 0  # written by the last worker to finish
    return study


def run_workers(root, sweep, url, n_workers, target):
    env = dict(os.environ, WORKBENCH_ROOT=str(root))
    if url.startswith("postgresql"):
        env["OPTUNA_STORAGE"] = url
    cfg = load_sweep(sweep)
    init_cell(cells.Cell(str(sweep), "8k", 1), cfg, url)
    procs = [start(sweep, env, f"w{i}") for i in range(n_workers)]
    outs = [p.communicate(timeout=600)[0].decode() for p in procs]
    assert all(p.returncode == 0 for p in procs), outs
    study = check_cell(sweep, url, target)
    per_worker = {}
    for t in study.get_trials():
        if records.counts_done(t):
            w = t.user_attrs.get("record", {}).get("worker")
            per_worker[w] = per_worker.get(w, 0) + 1
    print(f"finished trials per worker: {per_worker}, total {sum(per_worker.values())} of "
          f"target {target}")
    return per_worker


def test_two_workers_on_sqlite_reach_exactly_the_target(root):
    sweep = make_sweep(root, n_trials=5)
    url = cells.storage_url(sweep.stem)
    per_worker = run_workers(root, sweep, url, 2, 5)
    assert sum(per_worker.values()) == 5


@pytest.mark.postgres
def test_three_workers_on_postgres_reach_exactly_the_target(root):
    url = os.environ["OPTUNA_TEST_POSTGRES_URL"]
    sweep = make_sweep(root, n_trials=6)
    per_worker = run_workers(root, sweep, url, 3, 6)
    assert sum(per_worker.values()) == 6 and len(per_worker) >= 2


def test_killed_worker_trial_is_failed_by_heartbeat_and_retried(root):
    sweep = make_sweep(root, n_trials=3, heartbeat=1, epochs=(5, 6))
    url = cells.storage_url(sweep.stem)
    env = dict(os.environ, WORKBENCH_ROOT=str(root))
    cfg = load_sweep(sweep)
    cell = cells.Cell(str(sweep), "8k", 1)
    init_cell(cell, cfg, url)
    victim = start(sweep, env, "victim")
    log = cell.dir / "sweep.victim.log"
    deadline = time.time() + 120
    while time.time() < deadline:
        text = log.read_text() if log.exists() else ""
        if " start " in text and text.count(" start ") > text.count(" end state="):
            break
        time.sleep(0.1)
    time.sleep(1.0)  # inside the trial's training
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    storage = cells.open_storage(url)
    study = optuna.load_study(study_name=cell.study_name, storage=storage)
    killed = [t for t in study.get_trials() if t.state == optuna.trial.TrialState.RUNNING]
    assert len(killed) == 1
    t0 = time.time()
    rescuer = start(sweep, env, "rescuer")
    out = rescuer.communicate(timeout=600)[0].decode()
    assert rescuer.returncode == 0, out
    study = check_cell(sweep, url, 3)
    dead = study.trials[killed[0].number]
    assert dead.state == optuna.trial.TrialState.FAIL and "fail_reason" not in dead.user_attrs
    retried = [t for t in study.get_trials()
               if optuna.storages.RetryHeartbeatStaleTrialCallback.retried_trial_number(t)
               == dead.number]
    assert retried and retried[0].params == dead.params
    assert retried[0].state in (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
    reclaimed = retried[0].datetime_start.timestamp() - t0
    print(f"resumed worker reclaimed the killed trial {reclaimed:.1f} s after it started")

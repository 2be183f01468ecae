"""The catalogue of bad inputs and faults: each gets one clear ``error:`` line (exit 2) naming the
problem, and no existing data, record or report changes. Cases that need a finished sweep share
one tiny sweep (one cell, one trial)."""

import hashlib
import json
import os
import re
import stat
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from lib.core import paths
from lib.core.config import ConfigError, DataConfig
from lib.data import dataset, sources
from lib.run import notebook, sweep, upkeep
from lib.search.cells import mask_url
from lib.search.study import sampler_seed
from lib.search.sweepfile import load_sweep
from tests.conftest import synthetic_bars

REPO = Path(__file__).resolve().parents[1]
SMOKE = (REPO / "params/sweeps/smoke.yaml").read_text()


def snapshot(root: Path) -> dict[str, str]:
    """sha256 of every file under the workbench root but the driver lock."""
    out = {}
    for f in sorted(Path(root).rglob("*")):
        if f.is_file() and f.name != ".driver.lock":
            out[str(f.relative_to(root))] = hashlib.sha256(f.read_bytes()).hexdigest()
    return out


def sweep_file(tmp_path, name, **subs) -> Path:
    text = SMOKE
    for old, new in subs.items():
        assert old in text or old.startswith("+"), old
        text = text + new + "\n" if old.startswith("+") else text.replace(old, new)
    p = tmp_path / f"{name}.yaml"
    p.write_text(text)
    return p


def run_main(capsys, *args) -> tuple[int, str]:
    rc = sweep.main(list(args))
    return rc, capsys.readouterr().out


def error_line(out: str) -> str:
    lines = [ln for ln in out.splitlines() if ln.startswith("error: ")]
    assert len(lines) == 1, out
    return lines[0]


# ---- data identity ------------------------------------------------------------------------

def write_csv(folder: Path, ticker: str, n: int, seed: int = 0) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    synthetic_bars(n, seed=seed).reset_index().to_csv(folder / f"{ticker}.csv", index=False)
    return folder


def test_a_csv_raw_cache_is_keyed_by_folder_and_content(fresh_root, tmp_path):
    """Issue: after a short CSV was loaded, a full-history CSV for the same ticker in another
    folder was ignored (the stale raw file was reused)."""
    short = write_csv(tmp_path / "a", "X", 300)
    full = write_csv(tmp_path / "b", "X", 900, seed=1)
    frames, _ = sources.get_raw("csv", ["X"], csv_dir=str(short))
    assert len(frames["X"]) == 300
    frames, digests = sources.get_raw("csv", ["X"], csv_dir=str(full))
    assert len(frames["X"]) == 900
    entry = json.loads(paths.RAW_MANIFEST.read_text())["files"]["data/raw/csv/X.parquet"]
    assert entry["request"]["csv_file"] == str((full / "X.csv").resolve())
    assert entry["sha256"] == digests["X"] and entry["rows"] == 900
    write_csv(full, "X", 700, seed=2)  # same folder, new content
    assert len(sources.get_raw("csv", ["X"], csv_dir=str(full))[0]["X"]) == 700


def test_a_sweeps_data_section_must_match_the_existing_dataset(fresh_root, tmp_path, capsys):
    """Issue: a sweep with source csv and name gspc_a25 trained silently on the embedded data."""
    dataset.build_dataset(DataConfig())
    folder = write_csv(tmp_path / "csv", "^GSPC", 900)
    write_csv(folder, "^IXIC", 900, seed=3)
    p = sweep_file(tmp_path, "t_mismatch", **{
        "data:\n  name: gspc_a25": f"data:\n  name: gspc_a25\n  source: csv\n  csv_dir: {folder}"})
    before = snapshot(fresh_root)
    rc, out = run_main(capsys, "run", "--sweep", str(p))
    line = error_line(out)
    assert rc == 2 and "dataset 'gspc_a25' exists but was built from another request" in line
    assert "data.source: the dataset has 'embedded', the request asks for 'csv'" in line
    assert snapshot(fresh_root) == before
    assert not (paths.SWEEPS / "t_mismatch" / "optuna.db").exists()


def test_a_changed_feature_code_or_csv_makes_the_dataset_stale(fresh_root, tmp_path, monkeypatch):
    folder = write_csv(tmp_path / "csv", "T", 900)
    cfg = DataConfig(source="csv", tickers=["T"], target="T", csv_dir=str(folder), name="t")
    dataset.build_dataset(cfg)
    assert dataset.check_request(cfg)["rows"] > 0
    write_csv(folder, "T", 800, seed=5)
    with pytest.raises(sources.DataError, match="T.csv: the file changed since the dataset"):
        dataset.check_request(cfg)
    dataset.build_dataset(cfg)
    monkeypatch.setattr(dataset, "features_code", lambda: "other")
    with pytest.raises(sources.DataError, match="the feature code .* changed"):
        dataset.check_request(cfg)


def test_a_failed_feature_stage_caches_no_raw_file_and_files_are_readable(fresh_root, tmp_path):
    folder = write_csv(tmp_path / "csv", "S", 60)  # too short for a 200-day moving average
    with pytest.raises(sources.DataError, match="history too short"):
        dataset.build_dataset(DataConfig(source="csv", tickers=["S"], target="S",
                                         csv_dir=str(folder), name="s"))
    assert not paths.RAW_MANIFEST.exists() and not (paths.RAW / "csv" / "S.parquet").exists()
    dataset.build_dataset(DataConfig(name="ok"))
    mask = os.umask(0)
    os.umask(mask)
    for f in (dataset.dataset_path("ok"), paths.PROCESSED_MANIFEST, paths.RAW_MANIFEST):
        assert stat.S_IMODE(f.stat().st_mode) == 0o666 & ~mask, f


@pytest.mark.parametrize("value, rule", [(np.inf, "infinite 'close'"), (np.nan, "NaN in 'close'")])
def test_non_finite_prices_are_named_by_row(value, rule):
    df = synthetic_bars(30)
    df.iloc[7, df.columns.get_loc("close")] = value
    with pytest.raises(sources.DataError, match=f"row {df.index[7].date()}: {rule}"):
        sources.validate_ohlcv(df, "t")


# ---- sweep files checked before anything is written ----------------------------------------

@pytest.mark.parametrize("old, new, message", [
    ("jobs: 2", "jobs: 0", "jobs: must be >= 1"),
    ("jobs: 2", "jobs: -1", "jobs: must be >= 1"),
    ('budgets: ["8k", "30k"]', 'budgets: ["8k", "50"]', "budgets: no architecture fits budget 50"),
    ("lr: [0.0003, 0.003]", "lr: [0.0, 0.003]", "search.lr: a log-uniform range must be positive"),
    ("min_eval_windows: 250", 'min_eval_windows: 250\n  val_start: "2017-06-01"\n'
     '  test_start: "2016-01-01"', "blocks out of order: val_start 2017-06-01 must come before"),
    ("dropout: [0.0, 0.2]", "dropout: [0.0, 1.5]", "search.dropout: must lie in [0, 1)"),
])
def test_bad_sweep_files_are_one_error_line_and_write_nothing(root, tmp_path, capsys, old, new,
                                                             message):
    p = sweep_file(tmp_path, "t_bad", **{old: new})
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_sweep(p)
    before = snapshot(root)
    rc, out = run_main(capsys, "run", "--sweep", str(p))
    assert rc == 2 and message in error_line(out) and "t_bad.yaml" in error_line(out)
    assert snapshot(root) == before and not (paths.SWEEPS / "t_bad").exists()


def test_jobs_and_workers_on_the_command_line(root, capsys):
    rc, out = run_main(capsys, "run", "--sweep", "smoke", "--jobs", "0")
    assert rc == 2 and "JOBS must be >= 1" in error_line(out)
    rc, out = run_main(capsys, "run", "--sweep", "smoke", "--workers", "0")
    assert rc == 2 and "WORKERS must be >= 1" in error_line(out)


def test_blocks_past_the_data_are_an_error_before_any_study(root, tmp_path, capsys):
    p = sweep_file(tmp_path, "t_late", **{"min_eval_windows: 250": 'min_eval_windows: 250\n'
                                          '  val_start: "2017-01-01"\n  test_start: "2030-01-01"'})
    rc, out = run_main(capsys, "run", "--sweep", str(p))
    line = error_line(out)
    assert rc == 2 and "test 0 rows" in line and "rows (" in line and "2030-01-01" in line
    assert not (paths.SWEEPS / "t_late" / "optuna.db").exists()


def test_a_bad_csv_through_make_sweep_is_one_line_naming_file_and_row(fresh_root, tmp_path,
                                                                      capsys):
    folder = write_csv(tmp_path / "csv", "B", 900)
    text = (folder / "B.csv").read_text().splitlines()
    text[400] = text[400].split(",")[0] + ",1,1,1,-5,100"
    (folder / "B.csv").write_text("\n".join(text) + "\n")
    p = sweep_file(tmp_path, "t_badcsv", **{"data:\n  name: gspc_a25": f"data:\n  name: b\n  "
                                            f"source: csv\n  csv_dir: {folder}\n  tickers: [B]\n"
                                            f"  target: B"})
    rc, out = run_main(capsys, "run", "--sweep", str(p))
    line = error_line(out)
    assert rc == 2 and "B.csv: row" in line and "non-positive 'close'" in line
    assert "Traceback" not in out and not (paths.SWEEPS / "t_badcsv" / "optuna.db").exists()


# ---- secrets --------------------------------------------------------------------------------

@pytest.mark.parametrize("url, shown", [
    ("postgresql+psycopg://me:s3cret@db:5432/optuna", "postgresql+psycopg://me:***@db:5432/optuna"),
    ("postgresql://me:p@ss:w@rd@db/optuna", "postgresql://me:***@db/optuna"),
    ("me:pa/ss@db:5432/optuna", "me:***@db:5432/optuna"),
    ("postgresql://me@db/optuna", "postgresql://me@db/optuna"),
    ("sqlite:///outputs/x.db", "sqlite:///outputs/x.db")])
def test_passwords_are_masked_whatever_they_contain(url, shown):
    assert mask_url(url) == shown


def test_the_dashboard_gets_its_storage_without_a_command_line(tmp_path):
    import subprocess

    out = subprocess.run(["make", "-n", "dashboard", "SWEEP=smoke"], cwd=REPO, text=True,
                         capture_output=True, env=dict(os.environ, OPTUNA_STORAGE=
                                                       "postgresql://u:topsecret@h/db")).stdout
    assert "topsecret" not in out and "lib.run.sweep dashboard" in out
    readme = " ".join((REPO / "docs" / "scaling-out.md").read_text().split())
    assert "The dashboard has no login and listens on 127.0.0.1 only" in readme


# ---- concurrent drivers -------------------------------------------------------------------

def test_a_second_driver_is_refused_while_one_runs(root, capsys):
    with upkeep.SweepLock("smoke"):
        rc, out = run_main(capsys, "run", "--sweep", "smoke")
    assert rc == 2 and "sweep 'smoke' is being driven by pid" in error_line(out)
    assert "make worker SWEEP=smoke" in error_line(out)


def test_workers_sample_with_their_own_seeds():
    import optuna

    cfg = load_sweep("smoke")
    seeds = {sampler_seed(cfg, w) for w in ("", "w1", "w2")}
    assert len(seeds) == 3 and sampler_seed(cfg, "") == cfg.search.seed
    firsts = []
    for w in ("w1", "w2"):
        from lib.search.study import make_sampler

        study = optuna.create_study(sampler=make_sampler(cfg, w))
        firsts.append(study.ask().suggest_float("lr", 1e-4, 1e-2, log=True))
    assert firsts[0] != firsts[1]


# ---- atomic artefacts and disk full -------------------------------------------------------

def test_a_notebook_write_that_fails_leaves_the_previous_copy(tmp_path, monkeypatch):
    import nbformat

    src = tmp_path / "nb.ipynb"
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("x = 1")]
    nbformat.write(nb, src)
    out = tmp_path / "out" / "nb.ipynb"
    notebook.execute(src, out, {})
    good = out.read_bytes()
    import papermill.engines
    import papermill.execute

    def full(nb, path, *a, **kw):  # the disk fills halfway through the file
        Path(path).write_text(nbformat.writes(nb)[:40])
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(papermill.execute, "write_ipynb", full)
    monkeypatch.setattr(papermill.engines, "write_ipynb", full)
    with pytest.raises(OSError, match="No space left"):
        notebook.execute(src, out, {})
    assert out.read_bytes() == good and sorted(p.name for p in out.parent.iterdir()) == ["nb.ipynb"]


def test_a_report_write_that_fails_leaves_no_torn_file(tmp_path, full_disk):
    import nbformat

    executed = tmp_path / "nb.ipynb"
    nbformat.write(nbformat.v4.new_notebook(), executed)
    html = tmp_path / "r.html"
    notebook.render_html(executed, html)
    good = html.read_bytes()
    full_disk()
    with pytest.raises(OSError, match="No space left"):
        notebook.render_html(executed, html)
    assert html.read_bytes() == good and [p.name for p in tmp_path.iterdir()
                                          if p.name.endswith(".tmp")] == []


# ---- faults on a finished sweep -----------------------------------------------------------

@pytest.fixture(scope="module")
def tiny(tmp_path_factory, wb_root):
    """One finished cell (8k-h1, one sampled trial), final evaluation included, no report."""
    import shutil
    import subprocess
    import sys

    root = tmp_path_factory.mktemp("faults")
    shutil.copytree(wb_root / "data", root / "data")
    p = root / "t_tiny.yaml"
    p.write_text(SMOKE.replace('budgets: ["8k", "30k"]', 'budgets: ["8k"]')
                 .replace("horizons: [1, 3]", "horizons: [1]")
                 .replace("enqueue_extremes: true", "enqueue_extremes: false"))
    env = dict(os.environ, WORKBENCH_ROOT=str(root))
    r = subprocess.run([sys.executable, "-m", "lib.run.sweep", "run", "--sweep", str(p)], cwd=REPO,
                       env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    return root, p, env


def test_a_corrupt_trial_record_is_named_and_regenerate_repairs_it(tiny, capsys):
    root, p, _ = tiny
    old = paths.ROOT
    paths.set_root(root)
    try:
        cell = paths.SWEEPS / "t_tiny" / "8k-h1"
        rec = cell / "trials" / "trial_0000.json"
        good = json.loads(rec.read_text())
        summary = json.loads((cell / "study_summary.json").read_text())
        assert summary["baselines"]["logreg"]["auc"]
        rec.write_bytes(rec.read_bytes()[:40] + b"\x00\xff garbage")
        rc, out = run_main(capsys, "run", "--sweep", str(p))
        line = error_line(out)
        assert rc == 2 and "outputs/sweeps/t_tiny/8k-h1/trials/trial_0000.json" in line
        assert "make regenerate SWEEP=t_tiny" in line
        rc, out = run_main(capsys, "regenerate", "--sweep", str(p))
        assert rc == 0 and json.loads(rec.read_text())["objective"] == good["objective"]
        after = json.loads((cell / "study_summary.json").read_text())
        assert after["baselines"] == summary["baselines"]  # regenerate keeps the baselines
        assert "Baselines" in (cell / "study_summary.md").read_text()
    finally:
        paths.set_root(old)


def test_a_corrupt_final_json_is_set_aside_and_re_run(tiny, capsys):
    root, p, _ = tiny
    old = paths.ROOT
    paths.set_root(root)
    try:
        final = paths.SWEEPS / "t_tiny" / "8k-h1" / "final.json"
        seeds = json.loads(final.read_text())["seeds"]
        final.write_bytes(final.read_bytes()[:-300])
        rc, out = run_main(capsys, "run", "--sweep", str(p), "--no-report")
        assert rc == 2 and "final.json" in error_line(out)
        rc, out = run_main(capsys, "regenerate", "--sweep", str(p))
        assert rc == 0 and "moved to final.json.corrupt-" in out
        cfg = replace(load_sweep(p))
        from lib.search.cells import Cell

        assert not upkeep.final_done(Cell(str(p), "8k", 1), cfg)
        rc, out = run_main(capsys, "final", "--sweep", str(p))
        assert rc == 0 and json.loads(final.read_text())["seeds"] == seeds
        assert cfg.final.seeds == len(seeds)
    finally:
        paths.set_root(old)


def test_a_cell_with_a_missing_report_or_torn_notebook_is_not_done(tiny):
    from lib.search.cells import Cell, storage_url
    from lib.search.study import cell_status

    root, p, _ = tiny
    old = paths.ROOT
    paths.set_root(root)
    try:
        cfg = load_sweep(p)
        cell = Cell(str(p), "8k", 1)
        counts = cell_status(cell, cfg, storage_url("t_tiny"))
        assert upkeep.cell_done(cell, counts)
        html = paths.REPORTS / "t_tiny" / "8k-h1.html"
        kept = html.read_bytes()
        html.write_bytes(kept[:100])  # torn
        assert not upkeep.cell_done(cell, counts)
        html.write_bytes(kept)
        nb = cell.dir / "03_hpo_sweep.ipynb"
        kept = nb.read_bytes()
        nb.write_bytes(b"")  # what a full disk left
        assert not upkeep.cell_done(cell, counts)
        nb.write_bytes(kept)
        (cell.dir / ".03_hpo_sweep.123.partial.ipynb").write_text("{")
        assert [f.name for f in notebook.remove_stale(paths.SWEEPS / "t_tiny")] == [
            ".03_hpo_sweep.123.partial.ipynb"]
    finally:
        paths.set_root(old)


# ---- a sweep file is a contract: data holes, secrets, one line for every bad input -----------

def test_a_gap_of_years_in_a_csv_is_an_error_naming_its_dates(fresh_root, tmp_path, capsys):
    """Issue: a CSV with 2004-2009 missing was accepted; labels, indicators and windows ran
    across the gap as if the days were adjacent."""
    folder = tmp_path / "csv"
    folder.mkdir()
    bars = synthetic_bars(3000, start="2001-01-02")
    holed = bars[(bars.index < "2004-01-01") | (bars.index >= "2009-06-01")]
    holed.reset_index().to_csv(folder / "G.csv", index=False)
    p = sweep_file(tmp_path, "t_gap", **{"data:\n  name: gspc_a25": f"data:\n  name: g\n  "
                                         f"source: csv\n  csv_dir: {folder}\n  tickers: [G]\n"
                                         f"  target: G"})
    rc, out = run_main(capsys, "run", "--sweep", str(p))
    line = error_line(out)
    assert rc == 2 and "between 2003-12-31 and 2009-06-01" in line and "max_gap_days" in line
    assert not (paths.SWEEPS / "t_gap" / "optuna.db").exists()


def test_weekends_and_holidays_are_no_gap_and_the_limit_is_the_users():
    bars = synthetic_bars(60)
    sources.check_gaps(bars.drop(bars.index[10:14]), "X", 10)  # 4 weekdays: as after 9/11
    with pytest.raises(sources.DataError, match="11 weekdays without a bar"):
        sources.check_gaps(bars.drop(bars.index[10:21]), "X", 10)
    sources.check_gaps(bars.drop(bars.index[10:21]), "X", 11)


def test_a_short_series_says_how_many_rows_it_has_and_the_split_needs(fresh_root, tmp_path,
                                                                      capsys):
    """Issue: a 300-row ticker got 'blocks out of order or empty: train rows [0, 0)'."""
    folder = write_csv(tmp_path / "csv", "S", 300)
    p = sweep_file(tmp_path, "t_short", **{"data:\n  name: gspc_a25": f"data:\n  name: s\n  "
                                           f"source: csv\n  csv_dir: {folder}\n  tickers: [S]\n"
                                           f"  target: S"})
    rc, out = run_main(capsys, "run", "--sweep", str(p))
    line = error_line(out)
    assert rc == 2 and re.search(r"the series has \d+ rows", line) and "about 330 each" in line


@pytest.mark.parametrize("years, says", [
    ("-2", "data_sizes[0].years: must be > 0, got -2.0"),
    ("50", "asks for the last 50 years"),
    ("0.01", "training window")])
def test_data_sizes_years_out_of_range_is_one_line(root, tmp_path, capsys, years, says):
    """Issue: years 50 silently used the whole history, 0.01 failed inside scikit-learn, -2
    complained about the id format."""
    p = sweep_file(tmp_path, "t_years", **{"+": f"data_sizes:\n  - years: {years}"})
    rc, out = run_main(capsys, "run", "--sweep", str(p))
    line = error_line(out)
    assert rc == 2 and says in line and "Traceback" not in out
    if years == "0.01":
        assert "both classes" in line or "no training window" in line
    assert not (paths.SWEEPS / "t_years" / "optuna.db").exists()


def test_a_read_only_outputs_folder_is_one_line_with_its_cause(root, capsys, monkeypatch):
    """Issue: a read-only outputs/ gave a 27-line traceback. The file system refuses the first
    write (the driver's lock), as a read-only mount does even for root."""
    import errno

    def refuse(self):
        raise OSError(errno.EROFS, "Read-only file system", str(self.path))

    monkeypatch.setattr(upkeep.SweepLock, "__enter__", refuse)
    rc, out = run_main(capsys, "run", "--sweep", "smoke")
    line = error_line(out)
    assert rc == 2 and "Read-only file system" in line and ".driver.lock" in line
    assert "WORKBENCH_ROOT" in line and "Traceback" not in out


def test_a_raw_at_sign_in_a_password_is_refused_without_showing_it(root, capsys, monkeypatch):
    """Issue: the URL was masked, but the driver's 'failed to resolve host
    '2secret@127.0.0.1'' showed the rest of the password."""
    monkeypatch.setenv("OPTUNA_STORAGE", "postgresql+psycopg://me:pa@2secret@127.0.0.1:1/db")
    rc, out = run_main(capsys, "status", "--sweep", "smoke")
    line = error_line(out)
    assert rc == 2 and "percent-encode it as %40" in line and "2secret" not in out


def test_driver_messages_are_scrubbed_and_the_error_log_is_private(tiny, capsys, monkeypatch):
    """A storage error's text never shows the password, nor a piece of it a driver quotes; the
    traceback kept in last_error.log is scrubbed too and readable by its owner only."""
    from lib.search.cells import scrub

    url = "postgresql+psycopg://me:pw%40s3cr3tpart@127.0.0.1:1/db"
    msg = scrub(f"could not connect to {url}: failed to resolve host 's3cr3tpart@127.0.0.1'",
                url)
    assert "s3cr3tpart" not in msg and "me:***@127.0.0.1:1/db" in msg
    root, p, _ = tiny
    old = paths.ROOT
    paths.set_root(root)
    try:
        monkeypatch.setenv("OPTUNA_STORAGE", "postgresql+psycopg://me:s3cr3tpw@127.0.0.1:1/db")
        rc, out = run_main(capsys, "run", "--sweep", str(p))
        assert rc == 2 and "cannot open study storage" in error_line(out)
        log = paths.SWEEPS / "t_tiny" / "last_error.log"
        assert "s3cr3tpw" not in out and "s3cr3tpw" not in log.read_text()
        assert stat.S_IMODE(log.stat().st_mode) == 0o600
    finally:
        paths.set_root(old)


def test_make_status_says_when_the_report_is_incomplete_or_out_of_date(tiny, capsys,
                                                                       monkeypatch):
    """Issue: a kill -9 while the report rendered left `make status` saying 'done'."""
    root, p, _ = tiny
    old = paths.ROOT
    paths.set_root(root)
    monkeypatch.setenv("WORKBENCH_ROOT", str(root))  # the report's kernel reads the same root
    try:
        cfg = load_sweep(p)
        pages = sweep.report_pages(str(p))
        rc, out = run_main(capsys, "report", "--sweep", str(p))
        assert rc == 0 and upkeep.report_state(str(p), cfg, pages) == "done"
        rc, out = run_main(capsys, "status", "--sweep", str(p))
        assert "report: done" in out
        executed = paths.SWEEPS / "t_tiny" / pages[0][0]
        good = executed.read_bytes()
        executed.write_bytes(good[: len(good) // 2])  # killed while writing
        assert upkeep.report_state(str(p), cfg, pages) == "incomplete"
        executed.write_bytes(good)
        inputs = paths.SWEEPS / "t_tiny" / "report_inputs.json"
        inputs.write_text(inputs.read_text().replace('"sweep_file": "', '"sweep_file": "x'))
        rc, out = run_main(capsys, "status", "--sweep", str(p))
        assert "report: out of date" in out
    finally:
        paths.set_root(old)

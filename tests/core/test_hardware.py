"""Hardware: pre-flight checks (memory per architecture, dataset checksum), telemetry that says
"unavailable" with a reason instead of a placeholder, guards that pause and stop, devices and
thread pools."""

import json
import time

import pytest

from lib.core import hardware
from lib.core.provenance import read_json
from lib.model.budget import base_model
from lib.search.cells import Cell
from lib.search.runner import CellRunner
from tests.search.test_search import tiny_cfg


def test_preflight_refuses_too_little_memory(root):
    cfg = tiny_cfg(memory_policy="fail")
    r = CellRunner(Cell("t_pre", "30k", 1), cfg, log=lambda m: None, available_bytes=10_000)
    with pytest.raises(hardware.PreflightError, match="memory"):
        r.prepare()
    report = read_json(r.dir / "preflight.json")
    assert not report["ok"] and not report["checks"]["memory"]["ok"]
    assert not (r.dir / "trials").exists()


def test_preflight_drops_architectures_that_do_not_fit(root):
    from lib.model.memory import memory_estimate

    cfg = tiny_cfg(memory_policy="drop")
    r0 = CellRunner(Cell("t_drop", "30k", 1), cfg, log=lambda m: None)
    r0.prepare()
    needs = sorted(memory_estimate(a.apply(base_model(cfg, 25)), 1)["total"]
                   for a in r0.archs_all)
    r = CellRunner(Cell("t_drop", "30k", 1), cfg, log=lambda m: None,
                   available_bytes=int(needs[-1] / 0.9) - 1)
    report = r.prepare()
    assert report["ok"] and report["checks"]["memory"]["dropped"]
    assert len(r.archs) == len(r0.archs_all) - len(report["checks"]["memory"]["dropped"])


def test_preflight_refuses_missing_or_corrupt_dataset(fresh_root):
    cfg = tiny_cfg()
    r = CellRunner(Cell("t_nodata", "8k", 1), cfg, log=lambda m: None)
    with pytest.raises(Exception, match="not in data/processed_manifest.json"):
        r.prepare()


def test_preflight_refuses_bad_checksum(fresh_root):
    from lib.core.config import DataConfig
    from lib.data import dataset

    dataset.build_dataset(DataConfig())
    p = dataset.dataset_path("gspc_a25")
    p.write_bytes(p.read_bytes() + b"x")
    r = CellRunner(Cell("t_badsum", "8k", 1), tiny_cfg(), log=lambda m: None)
    with pytest.raises(hardware.PreflightError, match="checksum mismatch"):
        r.prepare()
    assert not read_json(r.dir / "preflight.json")["checks"]["dataset"]["ok"]


def test_telemetry_reports_unavailable_with_reasons(tmp_path):
    t = hardware.Telemetry(tmp_path / "hw.jsonl", interval_s=0.2).start()
    time.sleep(0.5)
    t.stop()
    rows = [json.loads(x) for x in (tmp_path / "hw.jsonl").read_text().splitlines()]
    assert len(rows) >= 2
    import torch

    if not torch.cuda.is_available():
        assert all(r["gpu_temp_c"] is None and r["gpu_util"] is None for r in rows)
        assert "gpu_temp_c" in rows[0]["unavailable"] and rows[0]["unavailable"]["gpu_temp_c"]
    if rows[0]["cpu_temp_c"] is None:
        assert rows[0]["unavailable"]["cpu_temp_c"]
    s = t.summary()
    assert s["proc_rss_mb"]["max"] > 0


def test_guard_pauses_then_stops_on_low_memory(tmp_path):
    t = hardware.Telemetry(None, interval_s=1)
    said = []
    g = hardware.Guard(t, temp_warn_c=85, temp_critical_c=95, mem_floor_gb=1e9,
                       max_pause_s=0.2, log=said.append, poll_s=0.05)
    ok, why = g.wait()
    assert not ok and "available memory" in why
    assert any("pausing" in s for s in said)
    g2 = hardware.Guard(t, 85, 95, 0.0, 1, log=said.append)
    assert g2.wait() == (True, "")


def test_guard_acts_on_a_readable_temperature(monkeypatch):
    t = hardware.Telemetry(None)
    g = hardware.Guard(t, temp_warn_c=50, temp_critical_c=60, mem_floor_gb=0, max_pause_s=1,
                       log=lambda m: None)
    row = dict(t.read(), cpu_temp_c=70.0)
    assert g.status(row)[0] == "critical"
    assert g.status(dict(row, cpu_temp_c=55.0))[0] == "pause"
    assert g.status(dict(row, cpu_temp_c=None, gpu_temp_c=None))[0] == "ok"


def test_threads_are_divided_among_parallel_cells(monkeypatch):
    monkeypatch.setattr(hardware.os, "cpu_count", lambda: 8)
    assert hardware.threads_per_job(None, 2) == 4
    assert hardware.threads_per_job(6, 4) == 1  # never below one thread
    assert hardware.threads_per_job(None, 16) == 1


def test_device_names_resolve_and_cuda_without_a_gpu_is_an_error():
    import torch

    assert hardware.resolve_device("cpu").type == "cpu"
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="no CUDA device"):
            hardware.resolve_device("cuda")
    available, what = hardware.available_memory(torch.device("cpu"))
    assert available > 0 and "memory" in what

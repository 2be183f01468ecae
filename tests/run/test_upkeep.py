"""`collect` merges per-trial records written by several machines into one sweep view."""

import json

from lib.core import paths
from lib.core.provenance import write_json
from lib.run import repair


def test_collect_merges_other_machines_records(fresh_root, tmp_path):
    other = tmp_path / "machineB" / "outputs" / "sweeps" / "s"
    write_json(other / "8k-h1" / "trials" / "trial_0003.json", {"number": 3, "state": "COMPLETE"})
    write_json(other / "8k-h3" / "trials" / "trial_0001.json", {"number": 1, "state": "PRUNED"})
    mine = paths.SWEEPS / "s" / "8k-h1" / "trials" / "trial_0000.json"
    write_json(mine, {"number": 0, "state": "COMPLETE"})
    assert repair.collect("s", [str(other)]) == 0
    merged = sorted(p.relative_to(paths.SWEEPS / "s").as_posix()
                    for p in (paths.SWEEPS / "s").glob("*/trials/*.json"))
    assert merged == ["8k-h1/trials/trial_0000.json", "8k-h1/trials/trial_0003.json",
                      "8k-h3/trials/trial_0001.json"]
    assert json.loads(mine.read_text())["number"] == 0
    # a second collect changes nothing
    before = {p: p.read_text() for p in (paths.SWEEPS / "s").glob("*/trials/*.json")}
    repair.collect("s", [str(other)])
    assert before == {p: p.read_text() for p in (paths.SWEEPS / "s").glob("*/trials/*.json")}

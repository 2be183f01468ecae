"""`collect` merges per-trial records written by several machines into one sweep view; the
dashboard's storage is read-only."""

import json
import os

import pytest

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


def _delete_through_the_dashboard_storage(url: str) -> tuple[int, int]:
    """Create a study at ``url``, try to delete it through the dashboard's storage; the number
    of studies before and after."""
    import optuna

    optuna.create_study(study_name="keep-me", storage=url, load_if_exists=True)
    ro = repair.read_only_storage(url)
    before = len(ro.get_all_studies())
    try:
        ro.delete_study(ro.get_study_id_from_name("keep-me"))
    except Exception:  # the storage refuses the write: what the dashboard's button meets
        pass
    after = len(optuna.storages.RDBStorage(url).get_all_studies())
    return before, after


def test_the_dashboard_cannot_delete_a_study_from_sqlite(tmp_path):
    before, after = _delete_through_the_dashboard_storage(f"sqlite:///{tmp_path / 'o.db'}")
    assert before == after == 1


@pytest.mark.postgres
def test_the_dashboard_cannot_delete_a_study_from_postgres():
    import optuna

    url = os.environ["OPTUNA_TEST_POSTGRES_URL"]
    try:
        before, after = _delete_through_the_dashboard_storage(url)
        assert before == after and after >= 1
    finally:
        optuna.delete_study(study_name="keep-me", storage=url)

"""Provenance (research rule 16: records name the code that ran, commit and dirty flag, and the
data) and record files written atomically: a crash or a full disk keeps the previous version."""

import json
import subprocess

import pytest

from lib.core import paths
from lib.core.provenance import code_version


def git(cwd, *args):
    who = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@t", "PATH": "/usr/bin:/bin"}
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, env=who)


def test_commit_comes_from_the_code_root_when_data_lives_elsewhere(fresh_root):
    """WORKBENCH_ROOT moves data and outputs (here to a folder outside git); the commit is still
    the code's, read from paths.CODE_ROOT."""
    assert paths.ROOT != paths.CODE_ROOT
    here = code_version()
    expected = subprocess.run(["git", "rev-parse", "HEAD"], cwd=paths.CODE_ROOT,
                              capture_output=True, text=True)
    if expected.returncode == 0:  # the tests run from a git checkout (CI: a clean clone)
        assert here["commit"] == expected.stdout.strip()
    else:
        assert here["commit"] is None and "reason" in here


def test_untracked_source_files_make_the_code_dirty(tmp_path):
    git(tmp_path, "init", "-q")
    (tmp_path / ".gitignore").write_text("outputs/\n")
    (tmp_path / "model.py").write_text("x = 1\n")
    git(tmp_path, "add", ".")
    git(tmp_path, "commit", "-qm", "first")
    assert code_version(tmp_path)["dirty"] is False
    (tmp_path / "outputs").mkdir()
    (tmp_path / "outputs" / "run.json").write_text("{}")  # ignored: not code
    assert code_version(tmp_path)["dirty"] is False
    (tmp_path / "new_module.py").write_text("y = 2\n")
    v = code_version(tmp_path)
    assert v["dirty"] is True and "new_module.py" in v["changed"]


def test_record_write_is_atomic(tmp_path, monkeypatch):
    from lib.core import provenance

    path = tmp_path / "best.json"
    provenance.write_json(path, {"v": 1})

    def crash(src, dst):
        raise OSError("simulated crash between write and rename")

    monkeypatch.setattr(provenance.os, "replace", crash)
    with pytest.raises(OSError, match="simulated crash"):
        provenance.write_json(path, {"v": 2})
    assert json.loads(path.read_text()) == {"v": 1}
    assert list(tmp_path.iterdir()) == [path], "temporary file left behind"


def test_full_or_read_only_disk_gives_a_clear_error_and_keeps_records(tmp_path, monkeypatch,
                                                                      full_disk):
    from lib.core import provenance

    path = tmp_path / "best.json"
    provenance.write_json(path, {"v": 1})
    full_disk()
    with pytest.raises(OSError, match=r"cannot write .*best\.json: No space left on device \(the "
                                      r"previous version, if any, is intact\)"):
        provenance.write_json(path, {"v": 2})
    assert json.loads(path.read_text()) == {"v": 1} and list(tmp_path.iterdir()) == [path]

    def read_only(**kw):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(provenance.tempfile, "mkstemp", read_only)
    with pytest.raises(OSError, match="cannot write .*best.json: Permission denied"):
        provenance.write_json(path, {"v": 3})
    assert json.loads(path.read_text()) == {"v": 1}

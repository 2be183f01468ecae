"""research rule 16: provenance names the code that ran (commit, dirty flag) and the data."""

import subprocess

from lib import paths
from lib.provenance import code_version


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

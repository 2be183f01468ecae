"""The house's layout, checked: modules a newcomer can read alone, no import cycles, one place for
the base model configuration, one source for notebook defaults, nothing pointing outside the
repository."""

import ast
import re
import subprocess
from pathlib import Path

from lib import LAYERS
from lib.core import paths
from lib.run import defaults

REPO = Path(__file__).resolve().parents[1]
LIB = REPO / "lib"
MAX_LINES = 350  # a module longer than this says why in its docstring ("on purpose")


def modules(lib: Path = LIB) -> dict[str, Path]:
    """``package.module`` -> file, for every module of the stage packages below ``lib``."""
    return {f"{f.parent.name}.{f.stem}": f for f in sorted(lib.glob("*/*.py"))
            if f.stem not in ("__init__", "__main__")}


def imports_of(name: str, path: Path, mods: set[str]) -> list[tuple[str, list[str]]]:
    """(imported lib module, names taken from it) for every import of ``path`` (module ``name``),
    at any depth of the file: function-level imports are imports too, only hidden."""
    pkg = name.split(".")[0]
    found = []
    for n in ast.walk(ast.parse(path.read_text())):
        if isinstance(n, ast.ImportFrom):
            if n.level:  # . is this package, .. is lib
                base = pkg if n.level == 1 else ""
                target = ".".join(x for x in (base, n.module or "") if x)
            elif n.module == "lib" or (n.module or "").startswith("lib."):
                target = n.module[4:]
            else:
                continue
            found += _resolve(target, n, mods)
        elif isinstance(n, ast.Import):
            found += [(a.name[4:], []) for a in n.names if a.name[4:] in mods]
    return [(m, names) for m, names in found if m != name]


def _resolve(target: str, node: ast.ImportFrom, mods: set[str]) -> list[tuple[str, list[str]]]:
    """``from <target> import a, b``: the module itself with the names it gives, or, when
    ``target`` is a package, each name that is one of its modules."""
    names = [a.name for a in node.names]
    if target in mods:
        return [(target, names)]
    return [(f"{target}.{a}", []) for a in names if f"{target}.{a}" in mods]


def import_graph(lib: Path = LIB) -> dict[str, set[str]]:
    """lib module (``package.module``) -> lib modules it imports."""
    mods = modules(lib)
    return {m: {t for t, _ in imports_of(m, f, set(mods))} for m, f in mods.items()}


def layering_violations(lib: Path = LIB) -> list[str]:
    """Imports that break the layering rule of lib/__init__.py: into a package later in
    ``LAYERS``, or of another package's private (``_``) name."""
    mods = modules(lib)
    bad = []
    for m, f in mods.items():
        pkg = m.split(".")[0]
        for target, names in imports_of(m, f, set(mods)):
            tpkg = target.split(".")[0]
            if tpkg == pkg:
                continue
            if LAYERS.index(tpkg) > LAYERS.index(pkg):
                bad.append(f"{m} imports {target}: {tpkg} comes after {pkg}")
            bad += [f"{m} imports the private name {target}.{x}" for x in names
                    if x.startswith("_")]
    return bad


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}

    def visit(n, path):
        state[n] = 1
        for m in sorted(graph[n]):
            if state.get(m) == 1:
                return path[path.index(m):] + [m]
            if m not in state:
                found = visit(m, path + [m])
                if found:
                    return found
        state[n] = 2
        return None

    for n in sorted(graph):
        if n not in state:
            found = visit(n, [n])
            if found:
                return found
    return None


def test_lib_is_stage_packages_only():
    """lib/ holds no module of its own but ``__init__``; its folders are the stages of ``LAYERS``,
    each saying in its docstring what it holds and what it may import."""
    assert {p.name for p in LIB.glob("*.py")} == {"__init__.py"}
    folders = {p.name for p in LIB.iterdir() if p.is_dir() and p.name != "__pycache__"}
    assert folders == set(LAYERS)
    for pkg in LAYERS:
        doc = (ast.get_docstring(ast.parse((LIB / pkg / "__init__.py").read_text())) or "").lower()
        assert len(doc) > 80 and ("may import" in doc or "imports nothing" in doc), pkg


def test_every_import_goes_down_the_layers():
    assert layering_violations() == []


def test_the_layering_check_catches_an_upward_import(tmp_path):
    """A planted import of a later stage (a model module reading the search), of another
    package's private name, and a relative import of a later package are each caught."""
    for pkg, mod, src in (("model", "net", "from ..search.cells import Cell\n"),
                          ("model", "size", "from ..core.paths import _secret\n"),
                          ("data", "axis", "def f():\n    from ..train import trainer\n"),
                          ("search", "cells", "Cell = 1\n"), ("core", "paths", "_secret = 1\n"),
                          ("train", "trainer", "")):
        (tmp_path / pkg).mkdir(exist_ok=True)
        (tmp_path / pkg / f"{mod}.py").write_text(src)
    assert sorted(layering_violations(tmp_path)) == [
        "data.axis imports train.trainer: train comes after data",
        "model.net imports search.cells: search comes after model",
        "model.size imports the private name core.paths._secret"]


def test_no_import_cycle_among_lib_modules():
    assert find_cycle(import_graph()) is None, " -> ".join(find_cycle(import_graph()))


def test_the_cycle_finder_finds_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_modules_are_short_or_say_why():
    long = []
    for p in sorted(LIB.rglob("*.py")):
        n = len(p.read_text().splitlines())
        doc = ast.get_docstring(ast.parse(p.read_text())) or ""
        if n > MAX_LINES and "on purpose" not in doc:
            long.append(f"{p.name} ({n} lines)")
    assert not long, f"modules over {MAX_LINES} lines without a reason in their docstring: {long}"


def test_the_base_model_configuration_is_built_in_one_place():
    """Window length and number of inputs meet the sweep's model settings in
    lib.model.budget.base_model only (it was written four times)."""
    pattern = re.compile(r"replace\([^)]*\b(context_len|n_features)=", re.S)
    offenders = [p.name for p in LIB.rglob("*.py") if p.name != "budget.py"
                 and pattern.search(p.read_text())]
    assert not offenders, offenders


def test_every_notebook_parameter_default_comes_from_one_source():
    want = defaults.notebook_defaults()
    assert set(want) == {p.stem for p in paths.NOTEBOOKS.glob("*.ipynb")}
    for name, values in want.items():
        got = defaults.written_defaults(paths.NOTEBOOKS / f"{name}.ipynb")
        differ = {k: (got.get(k), v) for k, v in values.items() if got.get(k) != v}
        assert got == values, (f"{name}: the notebook's defaults differ from lib/run/defaults.py "
                               f"(run python -m lib.run.defaults): {differ}")


def test_the_defaults_follow_the_default_sweep_file(tmp_path, monkeypatch):
    """Change the default sweep's feature set: every notebook default that shows it follows."""
    text = (paths.SWEEP_FILES / "default.yaml").read_text()
    (tmp_path / "default.yaml").write_text(text.replace("feature_set: sf", "feature_set: a25")
                                           .replace("name: gspc_sf", "name: gspc_x"))
    monkeypatch.setattr(paths, "SWEEP_FILES", tmp_path)
    d = defaults.notebook_defaults()
    assert d["01_data_prep"]["feature_set"] == "a25" and d["01_data_prep"]["name"] == "gspc_x"
    assert d["02_train_trial"]["dataset"] == "gspc_x"


def test_make_trial_defaults_agree_with_the_trial_notebook():
    make = (REPO / "Makefile").read_text()
    budget = re.search(r"^BUDGET\s*\?=\s*(\S+)", make, re.M).group(1)
    horizon = int(re.search(r"^HORIZON\s*\?=\s*(\S+)", make, re.M).group(1))
    d = defaults.notebook_defaults()["02_train_trial"]
    assert (budget, horizon) == (d["budget"], d["horizon"])


def test_nothing_in_the_repository_points_outside_it():
    files = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True,
                           check=True).stdout.split()
    outside = re.compile(r"\.\./shared|SCIENCE\.md|STYLE\.md")
    hits = [f for f in files if not f.endswith((".parquet", ".png", ".gz"))
            and (REPO / f).is_file() and f != "tests/test_layout.py"
            and outside.search((REPO / f).read_text(errors="ignore"))]
    assert not hits, hits


def test_readme_is_short_and_links_the_docs():
    readme = (REPO / "README.md").read_text()
    assert len(readme.splitlines()) <= 120
    for page in sorted((REPO / "docs").glob("*.md")):
        assert f"docs/{page.name}" in readme, f"README does not link docs/{page.name}"


def test_every_test_the_docs_cite_exists():
    """docs/ names the test behind each research rule (`test_x.py::test_y`): moving or renaming a
    test must not leave a rule pointing at nothing."""
    names = {p.name: {n.name for n in ast.parse(p.read_text()).body
                      if isinstance(n, ast.FunctionDef)}
             for p in (REPO / "tests").rglob("test_*.py")}
    missing = []
    for page in (REPO / "docs").glob("*.md"):
        for line in page.read_text().splitlines():
            current = None
            for m in re.finditer(r"`(test_\w+\.py)?::(test_\w+)`", line):
                current = m.group(1) or current
                if current is None or m.group(2) not in names.get(current, set()):
                    missing.append(f"{page.name}: {current}::{m.group(2)}")
    assert not missing, missing


# names that say what they do; every other public function, class and method has a docstring
SELF_EXPLANATORY = {"forward", "close", "start", "stop", "now_iso", "sha256_file", "dataset_path",
                    "read_manifest", "raw_path", "parquet_bytes", "to_dict", "block"}


def test_public_functions_and_classes_say_what_they_do():
    missing = []
    for p in sorted(LIB.rglob("*.py")):
        tree = ast.parse(p.read_text())
        for n in tree.body:
            if not isinstance(n, (ast.FunctionDef, ast.ClassDef)):
                continue
            items = [(n.name, n)]
            if isinstance(n, ast.ClassDef):
                items += [(f"{n.name}.{m.name}", m) for m in n.body
                          if isinstance(m, ast.FunctionDef)]
            for name, node in items:
                short = name.rsplit(".", 1)[-1]
                if short.startswith("_") or short in SELF_EXPLANATORY:
                    continue
                if not ast.get_docstring(node):
                    missing.append(f"{p.name}:{name}")
    assert not missing, f"public names without a docstring: {missing}"

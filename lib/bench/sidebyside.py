"""Side by side (``make bench AGAINST=<commit>``): the trial loop of this checkout and of an earlier
commit, run alternately in one process on the same data, so that their ratio, not an absolute
time on a shared machine, is the figure of merit.

The earlier commit's ``lib`` is extracted with ``git archive`` into a temporary folder and imported
as a package of another name (its modules import each other relatively). Both sides train the same
architectures (``model.PatchTST``, ``model.fit_input_stats``, ``trainer.train``) on the same random
windows for the same epochs without early stopping, so both do equal work.
"""

from __future__ import annotations

import importlib.util
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from ..core import paths
from ..core.config import ModelConfig

SIZES = {"10k": (16, 1, 1), "100k": (32, 4, 2), "320k": (64, 5, 4)}  # d_model, layers, heads


def load_lib(commit: str, into: Path, name: str = "lib_then"):
    """Package ``lib`` of ``commit``, imported as ``name`` from a copy under ``into``."""
    try:
        archive = subprocess.run(["git", "archive", commit, "lib"], cwd=paths.CODE_ROOT,
                                 capture_output=True, check=True).stdout
    except subprocess.CalledProcessError as e:
        raise ValueError(f"cannot read lib/ of commit {commit!r}: "
                         f"{e.stderr.decode().strip()}") from None
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    spec = importlib.util.spec_from_file_location(
        name, into / "lib" / "__init__.py", submodule_search_locations=[str(into / "lib")])
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def _module(lib, dotted: str):
    """``lib``'s module ``dotted`` (``model.model``), or its flat name (``model``) in a commit from
    before lib/ was split into stage packages."""
    try:
        return importlib.import_module(f"{lib.__name__}.{dotted}")
    except ModuleNotFoundError:
        return importlib.import_module(f"{lib.__name__}.{dotted.split('.')[-1]}")


def _one_run(lib, size: str, data, epochs: int, batch: int) -> float:
    model_mod = _module(lib, "model.model")
    trainer = _module(lib, "train.trainer")
    config = _module(lib, "core.config")
    d, layers, heads = SIZES[size]
    X, y, Xv, yv = data
    cfg = config.ModelConfig(context_len=X.shape[1], n_features=X.shape[2], patch_len=16, stride=8,
                             d_model=d, n_layers=layers, n_heads=heads, d_ff=2 * d, dropout=0.1,
                             norm="global")
    torch.manual_seed(0)
    model = model_mod.PatchTST(cfg)
    model_mod.fit_input_stats(model, X)
    tc = config.TrainConfig(max_epochs=epochs, batch_size=batch, patience=epochs + 1, lr=1e-3,
                            threads=torch.get_num_threads())
    t0 = time.perf_counter()
    trainer.train(model, X, y, Xv, yv, tc)
    return time.perf_counter() - t0


def compare(commit: str, sizes=("10k", "100k", "320k"), repeats: int = 3, epochs: int = 2,
            batch: int = 256, n_train: int = 3500) -> list[dict]:
    """Median seconds of the same training (``epochs`` over ``n_train`` windows) with this
    checkout's and ``commit``'s code, alternated ``repeats`` times per size; ratio = then / now."""
    import lib as now

    rng = np.random.default_rng(0)
    shape = (n_train, ModelConfig.context_len, 20)
    data = (rng.normal(size=shape).astype(np.float32),
            (rng.random(n_train) < 0.4).astype(np.float32),
            rng.normal(size=(500, *shape[1:])).astype(np.float32),
            (rng.random(500) < 0.4).astype(np.float32))
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        then = load_lib(commit, Path(tmp))
        for size in sizes:
            for lib in (now, then):  # warm-up: first-call costs outside the timed runs
                _one_run(lib, size, tuple(a[:600] for a in data), 1, batch)
            times = {"now": [], "then": []}
            for _ in range(repeats):
                times["then"].append(_one_run(then, size, data, epochs, batch))
                times["now"].append(_one_run(now, size, data, epochs, batch))
            med = {k: statistics.median(v) for k, v in times.items()}
            rows.append({"size": size, "commit": commit, "then_s": med["then"],
                         "now_s": med["now"], "speedup": med["then"] / med["now"],
                         "runs": times})
            print(f"side by side {size}: {commit} {med['then']:.2f} s, now {med['now']:.2f} s "
                  f"-> {med['then'] / med['now']:.2f}x", file=sys.stderr, flush=True)
    return rows

"""Scaling-law workbench for transformers on daily market data.

The package is split by stage, in the order data flows through a study; each stage is a package
whose ``__init__`` says what it holds. A package imports only from the packages listed before it
(``LAYERS``), never from one after it, and never another package's private (``_``) names;
``tests/test_layout.py`` checks this on every module, function-level imports included.

- ``core``: paths, configuration dataclasses, provenance and atomic writes, hardware;
- ``model``: the PatchTST classifier, budgets and architecture grids, memory, stacked models;
- ``data``: OHLCV sources, features, processed datasets, labels and splits, the data axis;
- ``train``: training steps, the trainer, one trial's pieces, metrics, baselines;
- ``search``: sweep files, cells and storage, Optuna studies, the objective, the cell runner,
  run records;
- ``analysis``: the final test evaluation, bootstrap statistics, scaling-law fits;
- ``reports``: what the report notebooks compute, say, tabulate and draw, and the index;
- ``run``: the command line of a sweep and its stages, notebook execution, the input ablation;
- ``bench``: ``make bench`` and side-by-side timing against an earlier commit.
"""

__version__ = "0.1.0"

LAYERS = ("core", "model", "data", "train", "search", "analysis", "reports", "run", "bench")

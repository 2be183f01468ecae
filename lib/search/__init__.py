"""The search of each cell: reading and checking sweep files (``sweepfile``), the cells and where
their studies live (``cells``), the Optuna study (``study``), the objective of one trial
(``objective``), the loop that tops a study up (``runner``) and the per-trial run records
(``records``). Computes validation metrics only. May import ``core``, ``model``, ``data`` and
``train``."""

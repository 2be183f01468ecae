"""Scaling-law workbench for transformers on daily market data.

Modules, one concern each: ``paths`` (where things live), ``config`` (dataclasses and strict YAML),
``provenance`` (checksums, atomic writes, code and package versions), ``sources`` (OHLCV loaders),
``features`` (TA-Lib indicator sets), ``dataset`` (processed datasets and manifests), ``splits``
(labels, windows, purged date blocks), ``model`` (PatchTST classifier, exact parameter counts,
budget grids), ``metrics``, ``trainer``, ``baselines``, ``search`` (Optuna), ``records`` (run
records), ``hardware`` (pre-flight and telemetry), ``sweep`` (grid orchestration), ``final``
(multi-seed test evaluation) and ``scaling`` (law fits).
"""

__version__ = "0.1.0"

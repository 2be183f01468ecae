"""What every other stage may use: where things live (``paths``), the configuration dataclasses
(``config``), checksums, atomic writes and code and package versions (``provenance``), and devices,
pre-flight checks and telemetry (``hardware``). Imports nothing else of ``lib``."""

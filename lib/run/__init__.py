"""The command line and the stages of a run: ``python -m lib.run.sweep`` (``sweep``), the driver's
lock, status and upkeep (``upkeep``), the data stage (``data_stage``), notebook execution and
rendering (``notebook``), notebook parameter defaults (``defaults``) and the input ablation
(``ablation``). May import every stage up to ``reports``."""

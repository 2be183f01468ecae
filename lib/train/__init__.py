"""Training and scoring one configuration: the pieces of a step (``steps``), the trainer
(``trainer``; it knows nothing of Optuna), one trial's build, fit and read-back (``trial``), metrics
with one sigmoid (``metrics``) and the baselines (``baselines``). May import ``core``, ``model`` and
``data``."""

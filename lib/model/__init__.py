"""The model and its size: the PatchTST-style classifier with exact parameter and FLOP counts
(``model``), parameter budgets and the architectures that fit them (``budget``), the memory a run
needs (``memory``) and K models stacked into one module (``ensemble``). Knows nothing of data,
training or search; may import ``core``."""

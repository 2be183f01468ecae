"""``python -m lib.bench``: see :mod:`lib.bench.cli`."""

import sys

from .cli import main

sys.exit(main())

"""From raw bars to windows: OHLCV sources (``sources``), feature sets (``features``), processed
datasets with manifests (``dataset``), labels from raw prices and purged date blocks (``splits``),
and the data axis, a cell's training block for its data size (``data_axis``). May import ``core``
and ``model`` (tokens per window count D in tokens)."""

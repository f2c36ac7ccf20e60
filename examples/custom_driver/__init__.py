"""An example custom composite driver, importable from a config file beside it (examples/board.yaml)."""

"""A lab relay board: switchable channels, for jumpstarter-jupyter."""

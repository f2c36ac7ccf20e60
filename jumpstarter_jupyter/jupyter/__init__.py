"""Jupyter glue: the ``%jmp`` magics, the device panel, the generic widget and the widget base."""

"""How a client shows itself in Jupyter: its widget when it has one, else text."""

from __future__ import annotations

import importlib
from typing import Any


def mimebundle(client: Any, include=None, exclude=None) -> dict:
    path = type(client).widget
    if path:
        module, _, name = path.rpartition(".")
        try:
            widget = getattr(importlib.import_module(module), name).for_client(client)
        except (ImportError, AttributeError):
            widget = None
        if widget is not None:
            return widget._repr_mimebundle_(include=include, exclude=exclude)
    return {"text/plain": repr(client)}

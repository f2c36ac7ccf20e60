"""How a client shows itself in Jupyter: its widget when it has one, else text."""

from __future__ import annotations

import importlib
from typing import Any


def widget_for(client: Any) -> Any:
    """The widget of ``client`` (its class's ``widget`` dotted path), or None without one."""
    path = type(client).widget
    if not path:
        return None
    module, _, name = path.rpartition(".")
    try:
        return getattr(importlib.import_module(module), name).for_client(client)
    except (ImportError, AttributeError):
        return None


def mimebundle(client: Any, include=None, exclude=None) -> dict:
    widget = widget_for(client)
    if widget is not None:
        return widget._repr_mimebundle_(include=include, exclude=exclude)
    return {"text/plain": repr(client)}

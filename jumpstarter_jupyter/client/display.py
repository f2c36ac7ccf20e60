"""How a client shows itself in Jupyter: its widget when it has one, else text."""

from __future__ import annotations

import html
import importlib
from typing import Any


class WidgetUnavailable(RuntimeError):
    """A client names a widget that cannot be imported or built (the widget module is broken)."""


def widget_for(client: Any) -> Any:
    """The widget of ``client`` (its class's ``widget`` dotted path); None when it names none.

    Raises ``WidgetUnavailable`` when the widget is named but cannot be imported or built:
    a broken widget module is an error to show, not a client without a widget.
    """
    path = type(client).widget
    if not path:
        return None
    module, _, name = path.rpartition(".")
    try:
        return getattr(importlib.import_module(module), name).for_client(client)
    except Exception as exc:  # any failure of someone's widget code: reported, never swallowed
        raise WidgetUnavailable(
            f"{client.display_path}: widget {path} failed: {type(exc).__name__}: {exc}"
        ) from exc


def mimebundle(client: Any, include=None, exclude=None) -> dict:
    """What displaying ``client`` shows: its widget, its repr without one, the error with a broken one."""
    try:
        widget = widget_for(client)
    except WidgetUnavailable as exc:
        return {"text/plain": f"{client!r}\n{exc}", "text/html": f"<pre>{html.escape(str(exc))}</pre>"}
    if widget is not None:
        return widget._repr_mimebundle_(include=include, exclude=exclude)
    return {"text/plain": repr(client)}

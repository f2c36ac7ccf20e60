"""``DevicePanel``: every driver of a composite as its widget, nested like the tree.

Plain ipywidgets boxes do the nesting; each driver brings its own widget (the dotted path in
its client class's ``widget`` attribute), so the panel needs no front end of its own and a
composite's saved state holds no JS bundle. The root's panel starts with the board's lease
bar (``jupyter/lease.py``), shown when the exporter has leases.
"""

from __future__ import annotations

import html
import threading
import weakref
from typing import Any, ClassVar

import ipywidgets

from jumpstarter_jupyter.client import DriverClient
from jumpstarter_jupyter.client.display import WidgetUnavailable, widget_for

INDENT = "14px"  # how far a nested composite's panel sits right of its parent's


def part_for(client: DriverClient) -> ipywidgets.Widget:
    """The widget showing one child in the panel: its text form without a widget, the error
    in its place when its widget fails, so one broken widget never breaks the panel; a driver
    whose device could not be opened shows why."""
    if client.failed:
        row = ipywidgets.HTML(
            f"<code>{html.escape(client.display_path)}</code>: <b>failed</b>: "
            f"<span>{html.escape(client.failed)}</span>"
        )
        row.add_class("jmp-failed")
        return row
    try:
        widget = widget_for(client)
    except WidgetUnavailable as exc:
        row = ipywidgets.HTML(
            f"<code>{html.escape(repr(client))}</code>: <span>{html.escape(str(exc))}</span>"
        )
        row.add_class("jmp-broken")
        return row
    if widget is None:
        widget = ipywidgets.HTML(f"<code>{html.escape(repr(client))}</code>")
    return widget


class DevicePanel(ipywidgets.VBox):
    """A composite's header (name, endpoint) over its children's widgets, composites nested."""

    _instances: ClassVar[weakref.WeakKeyDictionary] = weakref.WeakKeyDictionary()
    _lock: ClassVar[threading.RLock] = threading.RLock()  # re-entered: a panel makes its nested panels

    def __init__(self, client: DriverClient, **kwargs: Any):
        self.client = client
        self.parts = [part_for(child) for child in client.children.values()]
        self.lease_bar = None
        if not client.path:
            from jumpstarter_jupyter.jupyter.lease import LeaseWidget

            self.lease_bar = LeaseWidget.for_client(client)
        header = ipywidgets.HTML(self._header_html())
        header.add_class("jmp-panel-header")
        super().__init__([header, *filter(None, [self.lease_bar]), *self.parts], **kwargs)
        self.add_class("jmp-panel")
        if client.path:  # nested composite: indent under its parent, with a guide line
            self.layout = ipywidgets.Layout(
                margin=f"0 0 0 {INDENT}", border_left="2px solid #ccc", padding="0 0 0 6px"
            )

    @classmethod
    def for_client(cls, client: DriverClient) -> DevicePanel:
        """The panel of ``client``: the same one each time it is displayed."""
        with cls._lock:
            panel = cls._instances.get(client)
            if panel is None or panel.comm is None:
                panel = cls._instances[client] = cls(client)
            return panel

    def _header_html(self) -> str:
        client = self.client
        where = (
            ""
            if client.path
            else (
                " — private virtual board"
                if client.private_board is not None
                else f" — {client.connection.endpoint}"
            )
        )
        about = f": {client.description}" if client.description else ""
        return f"<b>{html.escape(client.display_path)}</b>{html.escape(where + about)}"

    def __repr__(self) -> str:
        return f"<DevicePanel {self.client.display_path}>"

    def _repr_mimebundle_(self, **kwargs: Any) -> dict | None:
        bundle = super()._repr_mimebundle_(**kwargs)
        if bundle:  # what viewers without widgets show (nbconvert, GitHub): the tree as text
            bundle["text/plain"] = "\n".join(tree_lines(self.client))
        return bundle

    def close(self) -> None:
        """Close every widget of the tree, then the panel (``%jmp disconnect``)."""
        # also called by ipywidgets' __del__ on a panel whose __init__ raised before ``parts``
        for part in [*self.__dict__.get("parts", []), self.__dict__.get("lease_bar")]:
            if part is not None:
                part.close()
        super().close()


def close_widgets(root: DriverClient) -> None:
    """Close the panel and every driver widget made for ``root``'s tree (before it disconnects)."""
    from jumpstarter_jupyter.jupyter.widget import DriverWidget

    tree = set(root.walk())
    for client in tree:
        panel = DevicePanel._instances.get(client)
        if panel is not None and panel.comm is not None:
            panel.close()
    # the base keeps one widget per (class, client); close those that exist, never make new ones
    for (_cls, client), widget in list(DriverWidget._instances.items()):
        if client in tree:
            widget.close()


def tree_lines(root: DriverClient) -> list[str]:
    """The client tree drawn with box characters: name, client class, description."""
    lines = [_node_text(root)]

    def walk(node: DriverClient, prefix: str) -> None:
        children = list(node.children.values())
        for index, child in enumerate(children):
            last = index == len(children) - 1
            lines.append(f"{prefix}{'└─' if last else '├─'} {_node_text(child)}")
            walk(child, prefix + ("   " if last else "│  "))

    walk(root, "")
    return lines


def _node_text(client: DriverClient) -> str:
    text = f"{client.name}  ({type(client).__name__})"
    if client.failed:
        text += f"  FAILED: {client.failed}"
    return f"{text}  {client.description}" if client.description else text

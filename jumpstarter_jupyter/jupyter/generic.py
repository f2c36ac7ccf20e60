"""``GenericWidget``: a button per exported method, with a field per argument.

For drivers without a widget of their own (``GenericClient``). The methods come from the
exporter's published descriptions (``client.methods``); against an exporter that publishes
none (upstream), the widget offers a free-form method name. Streaming methods show their first
``STREAM_ITEMS`` results; byte-stream methods are left to cells.
"""

from __future__ import annotations

import itertools
import threading
from typing import Any

import traitlets

from jumpstarter_jupyter.client import DriverClient
from jumpstarter_jupyter.jupyter.widget import DriverWidget

STREAM_ITEMS = 20
RESULT_CHARS = 2000  # longer results are cut in the widget (the cell API returns them whole)


class GenericWidget(DriverWidget):
    """Call any exported method of a client from buttons (the widget of ``GenericClient``)."""

    bundle = "generic"
    methods = traitlets.List().tag(sync=True)  # [{"name", "kind", "params": [{"name", "type", "default"}], "doc"}]
    described = traitlets.Bool(True).tag(sync=True)  # False: no method list, call by name
    results = traitlets.Dict().tag(sync=True)  # method name -> text of its last result or error
    running = traitlets.List().tag(sync=True)  # names of methods being called now
    summarized = ("methods", "results")

    def summarize(self) -> str:
        """Each method, with the text of its last result when it has one."""
        lines = []
        for method in self.methods:
            result = self.results.get(method["name"])
            lines.append(f"{method['name']}()" + (f": {result}" if result else ""))
        return "\n".join(lines)

    def __init__(self, client: DriverClient, **kwargs: Any):
        listed = [m for m in (client.methods or {}).values() if m.get("kind") != "stream"]
        super().__init__(client, methods=listed, described=client.methods is not None, **kwargs)
        # calls run concurrently on worker threads: the truth is here, traits are copies
        self._lock = threading.Lock()
        self._running: set[str] = set()
        self._results: dict[str, str] = {}

    def action_call(self, name: str, args: list) -> None:
        name = str(name)
        with self._lock:
            self._running.add(name)
            self.update(running=sorted(self._running))
        try:
            text = self._result_text(self._invoke(name, args))
        except Exception as exc:  # the error belongs next to the method's button
            text = f"error: {exc}"
        with self._lock:
            self._running.discard(name)
            self._results[name] = text[:RESULT_CHARS]
            self.update(running=sorted(self._running), results=dict(self._results))

    def _invoke(self, name: str, args: list) -> Any:
        """Call by the method's published kind (unary when the exporter publishes none)."""
        if self.client.require_method(name).get("kind") == "streaming":
            return self.client.streamingcall(name, *args)
        return self.client.call(name, *args)

    def _result_text(self, result: Any) -> str:
        if hasattr(result, "__next__"):  # a streaming method: show its first items
            items = list(itertools.islice(result, STREAM_ITEMS))
            result.close()
            return "\n".join(map(repr, items)) + (f"\n… (first {STREAM_ITEMS})" if len(items) == STREAM_ITEMS else "")
        return "None (done)" if result is None else repr(result)

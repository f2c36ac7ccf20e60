"""``GenericWidget``: a button per exported method, with a field per argument.

For drivers without a widget of their own (``GenericClient``). The methods come from the
exporter's published descriptions (``client.methods``); against an exporter that publishes
none (upstream), the widget offers a free-form method name. Streaming methods show their first
``STREAM_ITEMS`` results as they arrive; byte-stream methods are left to cells.
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
    methods = traitlets.List().tag(
        sync=True
    )  # [{"name", "kind", "params": [{"name", "type", "default"}], "doc"}]
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
        shown: list[str] = []
        try:
            result = self._invoke(name, args)
            if hasattr(result, "__next__"):  # a streaming method: each result shown as it arrives
                for item in itertools.islice(result, STREAM_ITEMS):
                    shown.append(repr(item))
                    self._show(name, "\n".join(shown), done=False)
                more = next(result, StopIteration) is not StopIteration
                result.close()
                text = "\n".join(shown) + (f"\n… (first {STREAM_ITEMS})" if more else "")
            else:
                text = "None (done)" if result is None else repr(result)
        except Exception as exc:  # the error belongs next to the method's button, after what arrived
            text = "\n".join([*shown, f"error: {exc}"])
        self._show(name, text, done=True)

    def _show(self, name: str, text: str, done: bool) -> None:
        with self._lock:
            if done:
                self._running.discard(name)
            self._results[name] = text[:RESULT_CHARS]
            self.update(running=sorted(self._running), results=dict(self._results))

    def _invoke(self, name: str, args: list) -> Any:
        """Call by the method's published kind (unary when the exporter publishes none)."""
        if self.client.require_method(name).get("kind") == "streaming":
            return self.client.streamingcall(name, *args)
        return self.client.call(name, *args)

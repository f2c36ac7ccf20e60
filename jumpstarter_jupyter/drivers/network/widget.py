"""``NetworkWidget``: open local forwards to the network driver's service and show their addresses.

Each forward is ``dut.network.forward(port)`` held open until closed from the widget (or the
client disconnects), exactly what a ``with`` block in a cell does.
"""

from __future__ import annotations

import contextlib
import threading
from typing import Any

import traitlets

from jumpstarter_jupyter.drivers.network.client import NetworkClient
from jumpstarter_jupyter.errors import JumpstarterError
from jumpstarter_jupyter.jupyter.widget import DriverWidget


class NetworkWidget(DriverWidget):
    """The service's address and a button opening a local forward to it."""

    bundle = "network"
    summarized = ("address", "forwards")
    address = traitlets.Unicode("").tag(sync=True)  # the service, as the exporter sees it
    forwards = traitlets.List().tag(sync=True)  # local "127.0.0.1:PORT" addresses open now

    def summarize(self) -> str:
        """The service's address and the forwards open to it, a line each."""
        forwards = [f"forwarded to {local}" for local in self.forwards]
        return "\n".join([f"service at {self.address or '(unknown)'}", *forwards])

    def __init__(self, client: NetworkClient, **kwargs: Any):
        super().__init__(client, **kwargs)
        self._open: dict[str, contextlib.ExitStack] = {}
        self._lock = threading.Lock()
        self.submit("address", self._read_address)

    def _read_address(self) -> None:
        self.update(address=self.client.address())

    def action_open(self, port: int = 0) -> None:
        stack = contextlib.ExitStack()
        local = stack.enter_context(self.client.forward(int(port)))
        with self._lock:
            self._open[local] = stack
            self.update(forwards=list(self._open))

    def action_close(self, local: str) -> None:
        with self._lock:
            stack = self._open.pop(local, None)
            self.update(forwards=list(self._open))
        if stack is not None:
            stack.close()

    def stop(self) -> None:
        with self._lock:
            stacks, self._open = list(self._open.values()), {}
        for stack in stacks:
            # a forward that lost bytes raises on close; the widget is going away regardless
            with contextlib.suppress(JumpstarterError):
                stack.close()

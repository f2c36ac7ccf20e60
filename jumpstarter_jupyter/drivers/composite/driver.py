"""Composite drivers: a node that only groups children, and ``ref`` proxies."""

from __future__ import annotations

from dataclasses import dataclass

from jumpstarter_jupyter.driver import Driver, runtime
from jumpstarter_jupyter.drivers.composite.common import CLIENT, UPSTREAM_CLIENT


@dataclass
class Composite(Driver):
    """A group of child drivers (also the implicit root of every exporter)."""

    client = CLIENT
    upstream_client = UPSTREAM_CLIENT


@dataclass
class Proxy(Driver):
    """``ref: a.b`` in a config: the same driver reported again under another name."""

    ref: str = ""
    target: Driver | None = runtime(None)

    def teardown(self) -> None:
        pass  # the target closes itself

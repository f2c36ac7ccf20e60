"""The client base class: one object per driver, addressed by path, children as attributes."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import IO, Any, ClassVar

import click

from jumpstarter_jupyter.client.connection import Connection
from jumpstarter_jupyter.client.lease import Lease
from jumpstarter_jupyter.client.streams import ClientStream, Progress, download, upload
from jumpstarter_jupyter.errors import DriverInvalidArgument, DriverMethodNotFound
from jumpstarter_jupyter.protocol.metadata import FAILED_LABEL, METHODS_LABEL, NAME_LABEL
from jumpstarter_jupyter.protocol.v1 import jumpstarter_pb2 as pb


class DriverClient:
    """Python front end of one driver.

    Children are attributes and items (``dut.power``, ``dut["power"]``) and iterate in
    report order. Subclasses add typed methods for their interface and a click group
    (``cli()``) for ``jumpstarter-jupyter j``.
    """

    widget: ClassVar[str | None] = None  # dotted path of the widget class that displays this client
    private_board: Any = None  # the root's private virtual board, when connect() started one

    def __init__(self, connection: Connection, path: str, entry: pb.DriverInstanceReport):
        self.connection, self.path = connection, path
        self.name = entry.labels.get(NAME_LABEL) or connection.name
        self.description = entry.description if entry.HasField("description") else None
        self.labels = dict(entry.labels)
        self.methods_description = dict(entry.methods_description)
        self.children: dict[str, DriverClient] = {}
        described = json.loads(self.labels.get(METHODS_LABEL, "null"))
        # None: the exporter publishes no method list (upstream); calls go by name
        self.methods: dict[str, dict] | None = (
            None if described is None else {m["name"]: m for m in described}
        )
        # why the driver's device could not be opened when the exporter started (its calls fail so)
        self.failed: str | None = self.labels.get(FAILED_LABEL)

    # tree
    def __getattr__(self, name: str) -> DriverClient:
        children = self.__dict__.get("children", {})
        if name in children:
            return children[name]
        raise AttributeError(
            f"{self.display_path} has no child or attribute {name!r}"
            + (f"; children: {', '.join(children)}" if children else "")
        )

    def __getitem__(self, name: str) -> DriverClient:
        node = self
        for part in name.split("."):
            if part not in node.children:
                raise KeyError(
                    f"{node.display_path} has no child {part!r}; children: {', '.join(node.children) or 'none'}"
                )
            node = node.children[part]
        return node

    def __iter__(self) -> Iterator[DriverClient]:
        return iter(self.children.values())

    def __dir__(self) -> list[str]:
        return sorted({*super().__dir__(), *self.children})

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.display_path}>"

    @property
    def display_path(self) -> str:
        """``dut.power``: how errors and the CLI name this driver."""
        return self.connection.display(self.path)

    @property
    def lease(self) -> Lease | None:
        """The board's lease this connection holds (``extend()``, ``release()``), or None."""
        return self.connection.lease

    def walk(self) -> Iterator[DriverClient]:
        """This client and every descendant, depth first."""
        yield self
        for child in self.children.values():
            yield from child.walk()

    # lifetime
    def close(self) -> None:
        """Close the connection, stopping every client's background work (and a private board)."""
        for client in self.walk():
            client.release()
        self.connection.close()
        if self.private_board is not None:
            self.private_board.stop()

    def release(self) -> None:
        """Stop this client's background work; ``close()`` calls it on every client."""

    def __enter__(self) -> DriverClient:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # calls
    def call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        """Call an exported unary method; keyword arguments are sent by position."""
        self._check_kind(method, "call")
        return self.connection.call(self.path, method, self._positional(method, args, kwargs))

    def streamingcall(self, method: str, *args: Any, **kwargs: Any) -> Iterator[Any]:
        """Call an exported server-streaming method, yielding each result."""
        self._check_kind(method, "streaming")
        return self.connection.streaming_call(self.path, method, self._positional(method, args, kwargs))

    def stream(self, method: str = "connect") -> ClientStream:
        """Open a byte stream on an exported stream method: acknowledged (``flush()``, lost
        bytes raise) against our exporters, upstream's best-effort ``RouterService.Stream`` otherwise."""
        return ClientStream(
            self.connection,
            self.path,
            {"kind": "driver", "uuid": self.connection.uuid(self.path), "method": method},
            method,
        )

    def upload(
        self,
        method: str,
        source: IO[bytes],
        *args: Any,
        encoding: str | None = None,
        total: int | None = None,
        progress: Progress | None = None,
        handle_index: int = 0,
    ) -> Any:
        """Stream ``source`` to the driver as a resource passed to ``method(handle, *args)``; the
        handle goes at position ``handle_index`` instead (``file_write(fd, handle)``: 1)."""
        return upload(
            self.connection, self.path, method, source, list(args), encoding, total, progress, handle_index
        )

    def download(
        self,
        method: str,
        sink: IO[bytes],
        *args: Any,
        progress: Progress | None = None,
        handle_index: int = 0,
    ) -> Any:
        """Call ``method(handle, *args)`` (the handle at ``handle_index``) and write the resource it
        fills into ``sink``."""
        return download(self.connection, self.path, method, sink, list(args), progress, handle_index)

    def _positional(self, method: str, args: tuple, kwargs: dict) -> list[Any]:
        if not kwargs:
            return list(args)
        described = (self.methods or {}).get(method)
        if described is None:
            raise DriverInvalidArgument(
                self.display_path,
                method,
                "keyword arguments need the method's signature, which this exporter does not publish; "
                "pass them by position",
            )
        names = [p["name"] for p in described["params"]]
        out = list(args)
        for name in names[len(args) :]:
            if name in kwargs:
                out.append(kwargs.pop(name))
            elif any(n in kwargs for n in names[len(out) :]):
                default = next((p for p in described["params"] if p["name"] == name), {}).get("default")
                out.append(default)
            else:
                break
        if kwargs:
            raise DriverInvalidArgument(
                self.display_path,
                method,
                f"unexpected keyword argument {next(iter(kwargs))!r}; parameters: {', '.join(names) or 'none'}",
            )
        return out

    def _check_kind(self, method: str, kind: str) -> None:
        """Refuse locally what the published method list says cannot work (clearer than the wire's text)."""
        described = self.require_method(method)
        if described["kind"] not in (kind, "any"):
            use = {"call": "call()", "streaming": "streamingcall()", "stream": "stream()"}[described["kind"]]
            raise DriverMethodNotFound(
                self.display_path, method, f"is a {described['kind']} method: use {use}"
            )

    def require_method(self, method: str) -> dict:
        """The published description of ``method``; raises if the driver does not export it."""
        if self.methods is not None and method not in self.methods:
            raise DriverMethodNotFound(
                self.display_path, method, f"no such method; exported: {', '.join(self.methods) or 'none'}"
            )
        return (self.methods or {}).get(method) or {"name": method, "kind": "any", "params": []}

    # command line
    def cli(self) -> click.Group:
        """The click group for this driver; subclasses add their commands."""
        group = click.Group(self.name, help=self.description or f"{type(self).__name__} {self.display_path}")
        for child in self.children.values():
            group.add_command(child.cli(), child.name)
        return group

    # display
    def _repr_mimebundle_(self, include=None, exclude=None):
        from jumpstarter_jupyter.client.display import mimebundle

        return mimebundle(self, include, exclude)

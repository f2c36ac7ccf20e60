"""Build the client tree from an exporter's report."""

from __future__ import annotations

import fnmatch
import functools
import importlib
import importlib.util
import logging
import os
import pkgutil
from collections.abc import Iterator

from jumpstarter_jupyter.client.base import DriverClient
from jumpstarter_jupyter.client.connection import Connection
from jumpstarter_jupyter.client.generic import GenericClient
from jumpstarter_jupyter.protocol.metadata import CLIENT_LABEL, NAME_LABEL, OUR_CLIENT_LABEL

log = logging.getLogger(__name__)
ALLOW_VARIABLE = "JMP_DRIVERS_ALLOW"  # upstream's name: `jmp shell` sets it


@functools.cache
def upstream_clients() -> dict[str, str]:
    """Upstream client class names -> ours, as each interface declares them (``UPSTREAM_CLIENTS``
    in its ``common.py``); read when an exporter names only upstream's classes."""
    from jumpstarter_jupyter import drivers  # as late as allowed(): `import jumpstarter_jupyter` stays small

    table: dict[str, str] = {}
    for interface in pkgutil.iter_modules(drivers.__path__):
        name = f"{drivers.__name__}.{interface.name}.common"
        if interface.ispkg and importlib.util.find_spec(name) is not None:
            table.update(getattr(importlib.import_module(name), "UPSTREAM_CLIENTS", {}))
    return table


def allowed(path: str) -> bool:
    """May a connection make this kernel import client class ``path``?

    An exporter names its drivers' client classes, so importing them unchecked would let any
    exporter run any module here. Allowed: our drivers, packages registered in the
    ``jumpstarter_jupyter.drivers`` entry-point group, and what ``JMP_DRIVERS_ALLOW`` allows,
    read as upstream's client reads it (comma-separated glob patterns; ``UNSAFE`` allows all).
    """
    from jumpstarter_jupyter.drivers import registry

    package = path.partition(".")[0]
    if package == "jumpstarter_jupyter" or package in registry.entry_point_packages():
        return True
    patterns = [p for p in os.environ.get(ALLOW_VARIABLE, "").split(",") if p]
    return "UNSAFE" in patterns or any(fnmatch.fnmatchcase(path, pattern) for pattern in patterns)


def client_class(labels: dict[str, str]) -> type[DriverClient]:
    """Our class if the exporter names one we may import, else the upstream mapping, else generic."""
    for path in _client_paths(labels):
        if not allowed(path):
            log.warning(
                "%s: client class %s not allowed, using the generic client (allow it with %s)",
                labels.get(NAME_LABEL, "driver"),
                path,
                ALLOW_VARIABLE,
            )
            continue
        module, _, name = path.rpartition(".")
        try:
            cls = getattr(importlib.import_module(module), name)
        except (ImportError, AttributeError):
            log.debug("client class %s not importable; trying the next", path)
            continue
        if isinstance(cls, type) and issubclass(cls, DriverClient):
            return cls
    return GenericClient


def _client_paths(labels: dict[str, str]) -> Iterator[str]:
    """Our class named by our exporter, then ours for the upstream class named (looked up only
    when needed: an exporter of ours names its class)."""
    if labels.get(OUR_CLIENT_LABEL):
        yield labels[OUR_CLIENT_LABEL]
    ours = upstream_clients().get(labels.get(CLIENT_LABEL, ""))
    if ours:
        yield ours


def build(connection: Connection) -> DriverClient:
    """Instantiate a client per report entry and attach children by name."""
    by_path: dict[str, DriverClient] = {}
    for path, entry in connection.entries:
        client = client_class(dict(entry.labels))(connection, path, entry)
        by_path[path] = client
        if path:
            parent = by_path[path.rpartition(".")[0]]
            parent.children[client.name] = client
    return by_path[""]

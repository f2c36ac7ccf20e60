"""Build the client tree from an exporter's report."""

from __future__ import annotations

import fnmatch
import importlib
import logging
import os

from jumpstarter_jupyter.client.base import DriverClient
from jumpstarter_jupyter.client.connection import Connection
from jumpstarter_jupyter.client.generic import GenericClient
from jumpstarter_jupyter.protocol.metadata import CLIENT_LABEL, NAME_LABEL, OUR_CLIENT_LABEL

log = logging.getLogger(__name__)
ALLOW_VARIABLE = "JMP_DRIVERS_ALLOW"  # upstream's name: `jmp shell` sets it
_OURS = "jumpstarter_jupyter.drivers"

# Upstream client class names -> ours, for upstream exporters (and our own drivers' labels).
UPSTREAM_CLIENTS = {
    "jumpstarter_driver_composite.client.CompositeClient": f"{_OURS}.composite.client.CompositeClient",
    "jumpstarter_driver_power.client.PowerClient": f"{_OURS}.power.client.PowerClient",
    "jumpstarter_driver_power.client.VirtualPowerClient": f"{_OURS}.power.client.PowerClient",
    "jumpstarter_driver_pyserial.client.PySerialClient": f"{_OURS}.serial.client.SerialClient",
    "jumpstarter_driver_network.client.NetworkClient": f"{_OURS}.network.client.NetworkClient",
    "jumpstarter_driver_opendal.client.StorageMuxClient": f"{_OURS}.storage.client.StorageMuxClient",
    "jumpstarter_driver_opendal.client.StorageMuxFlasherClient": f"{_OURS}.storage.client.StorageMuxClient",
    "jumpstarter_driver_gpiod.client.DigitalOutputClient": f"{_OURS}.gpio.client.DigitalOutputClient",
    "jumpstarter_driver_gpiod.client.DigitalInputClient": f"{_OURS}.gpio.client.DigitalInputClient",
    "jumpstarter_driver_can.client.CanClient": f"{_OURS}.can.client.CanClient",
}


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
    for path in (labels.get(OUR_CLIENT_LABEL), UPSTREAM_CLIENTS.get(labels.get(CLIENT_LABEL, ""))):
        if not path:
            continue
        if not allowed(path):
            log.warning("%s: client class %s not allowed, using the generic client (allow it with %s)",
                        labels.get(NAME_LABEL, "driver"), path, ALLOW_VARIABLE)
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

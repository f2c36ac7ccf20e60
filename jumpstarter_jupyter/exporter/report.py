"""The driver tree as ``GetReport`` entries, and the UUID index calls are dispatched by."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass

from jumpstarter_jupyter.driver.base import Driver
from jumpstarter_jupyter.drivers.composite.driver import Proxy
from jumpstarter_jupyter.protocol.metadata import (
    CLIENT_LABEL,
    METHODS_LABEL,
    NAME_LABEL,
    OUR_CLIENT_LABEL,
    TYPE_LABEL,
)
from jumpstarter_jupyter.protocol.v1 import jumpstarter_pb2 as pb


@dataclass
class Node:
    """One driver as the exporter serves it."""

    uuid: str
    path: str  # "power", "debug.serial"; "" for the root
    driver: Driver


class Tree:
    """Assigns UUIDs (new on every start, as upstream) and builds the report once, with the
    exporter's ``labels`` (upstream fills them only in controller mode; its clients ignore them)."""

    def __init__(self, root: Driver, labels: dict[str, str] | None = None):
        self.uuid = str(uuid.uuid4())
        self.root = root
        self.nodes: dict[str, Node] = {}
        self._by_driver: dict[int, Node] = {}
        entries: list[pb.DriverInstanceReport] = []
        self._walk(root, "", None, None, entries)
        self.report = pb.GetReportResponse(uuid=self.uuid, labels=labels or {}, reports=entries)

    def _walk(self, driver: Driver, path: str, name: str | None, parent: str | None, out: list) -> None:
        target = driver.target if isinstance(driver, Proxy) else driver
        node = self._by_driver.get(id(target))
        if node is None:
            node = self._by_driver[id(target)] = Node(str(uuid.uuid4()), path, target)
            self.nodes[node.uuid] = node
        out.append(_entry(node, name, parent))
        if isinstance(driver, Proxy):
            return  # a proxy repeats its target's entry, not its subtree
        for child_name, child in driver.children.items():
            self._walk(child, f"{path}.{child_name}" if path else child_name, child_name, node.uuid, out)


def _entry(node: Node, name: str | None, parent: str | None) -> pb.DriverInstanceReport:
    driver = node.driver
    cls = type(driver)
    labels = {
        **driver.labels,
        CLIENT_LABEL: cls.upstream_client or cls.client,
        OUR_CLIENT_LABEL: cls.client,
        TYPE_LABEL: f"{cls.__module__}.{cls.__qualname__}",
        METHODS_LABEL: json.dumps([m.describe() for m in cls.exports.values()], separators=(",", ":")),
    }
    if name is not None:
        labels[NAME_LABEL] = name
    entry = pb.DriverInstanceReport(
        uuid=node.uuid, labels=labels, methods_description=driver.methods_description
    )
    if parent is not None:
        entry.parent_uuid = parent
    if driver.description:
        entry.description = driver.description
    return entry

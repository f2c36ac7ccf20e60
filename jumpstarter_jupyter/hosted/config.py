"""Which entries of a config run hosted, in which Python, and their drivers once the process serves.

An entry runs hosted when it says ``hosted: true``, or when its ``type`` is an upstream driver
package's (``jumpstarter_driver_…``) that we do not implement ourselves; everything under it is
upstream's too. ``readonly: [METHOD, …]`` beside ``type:`` marks methods a watcher may call
without the board's lease. The top-level ``hosted: {python: PATH}`` names the Python of another
environment holding upstream's packages; without it, this exporter's own Python is used when
upstream's ``jumpstarter`` is installed here.
"""

from __future__ import annotations

import importlib.metadata
import logging
import os
import sys
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from jumpstarter_jupyter.driver.base import Driver
from jumpstarter_jupyter.drivers import registry
from jumpstarter_jupyter.errors import ConfigError
from jumpstarter_jupyter.hosted.drivers import failed_class, hosted_class
from jumpstarter_jupyter.hosted.process import HostedProcess
from jumpstarter_jupyter.protocol.metadata import HOSTED_LABEL
from jumpstarter_jupyter.yamlfile import YamlReader, mapping

if TYPE_CHECKING:
    from jumpstarter_jupyter.exporter.config import DriverSpec, ExporterConfig

log = logging.getLogger("jumpstarter_jupyter.hosted")

UPSTREAM_PACKAGES = "jumpstarter_driver_"
SETTINGS_KEYS = {"python"}
Error = Callable[[str, str], ConfigError]  # (YAML path, message) -> the error naming file and line


def hosted_python(reader: YamlReader, value: Any) -> str | None:
    """The top-level ``hosted:`` mapping: ``python``, another environment's interpreter."""
    settings = mapping(reader, value, "hosted", SETTINGS_KEYS)
    python = settings.get("python")
    if python is None:
        return None
    if not isinstance(python, str) or not (os.path.isfile(python) and os.access(python, os.X_OK)):
        raise reader.error(
            "hosted.python",
            f"expected the path of a Python interpreter (e.g. /opt/upstream/bin/python), "
            f"got {python!r}, which is not an executable file",
        )
    return python


def is_hosted(spec: DriverSpec) -> bool:
    """Does ``spec`` ask for upstream's driver (explicitly, or by a type we do not implement)?"""
    if spec.hosted:
        return True
    return bool(
        spec.type and spec.type.startswith(UPSTREAM_PACKAGES) and not registry.is_registered(spec.type)
    )


def our_path(spec: DriverSpec) -> str:
    """``export.board.children.sh`` -> ``board.sh``: the driver's path in the served tree."""
    return spec.yaml_path.removeprefix("export.").replace(".children.", ".")


def start(config: ExporterConfig, error: Error) -> tuple[HostedProcess | None, dict[str, Driver]]:
    """Start the process serving the hosted entries of ``config``; returns it and the drivers
    standing for those entries, by YAML path. Configuration mistakes raise ``error(...)``."""
    specs = list(_hosted_specs(config.export.values()))
    if not specs:
        return None, {}
    for spec in specs:
        if spec.type is None:
            raise error(f"{spec.yaml_path}.type", "a hosted entry needs `type:`, upstream's driver class")
    every = {our_path(spec): spec for top in specs for spec in _subtree(top)}
    host = HostedProcess(
        _python(config, specs[0], error),
        [_entry(spec) for spec in specs],
        {path: spec.type or "Composite" for path, spec in every.items()},
    )
    answer = host.start()
    if "nodes" not in answer:
        host.stop()
        if "errors" in answer:
            mistake = answer["errors"][0]
            raise error(mistake["yaml_path"], mistake["message"])
        raise error(
            specs[0].yaml_path,
            f"cannot start upstream's exporter for the hosted drivers: {answer['failure']}",
        )
    try:
        drivers = _drivers(host, answer["nodes"], every, error)
    except ConfigError:
        host.stop()
        raise
    for spec in specs:
        drivers[our_path(spec)].stops = host
    return host, {spec.yaml_path: drivers[our_path(spec)] for spec in specs}


def _hosted_specs(specs) -> Iterator[DriverSpec]:
    for spec in specs:
        if is_hosted(spec):
            yield spec
        else:
            yield from _hosted_specs(spec.children.values())


def _subtree(spec: DriverSpec) -> Iterator[DriverSpec]:
    yield spec
    for child in spec.children.values():
        yield from _subtree(child)


def _entry(spec: DriverSpec) -> dict:
    return {
        "path": our_path(spec),
        "yaml_path": spec.yaml_path,
        "type": spec.type or "jumpstarter_driver_composite.driver.Composite",
        "config": spec.config,
        "description": spec.description,
        "methods_description": spec.methods_description,
        "children": {name: _entry(child) for name, child in spec.children.items()},
    }


def _python(config: ExporterConfig, first: DriverSpec, error: Error) -> str:
    if config.hosted_python:
        return config.hosted_python
    try:
        importlib.metadata.distribution("jumpstarter")
        return sys.executable
    except importlib.metadata.PackageNotFoundError:
        raise error(
            f"{first.yaml_path}.type",
            f"{first.type} is an upstream Jumpstarter driver, which runs in upstream's Python: install its "
            f"package in this environment, or name another environment's Python with a top-level "
            f"`hosted: {{python: /path/to/venv/bin/python}}` (scripts/setup-upstream-peer.sh makes one)",
        ) from None


def _drivers(
    host: HostedProcess, nodes: list[dict], specs: dict[str, DriverSpec], error: Error
) -> dict[str, Driver]:
    from jumpstarter_jupyter.client.tree import upstream_clients

    drivers: dict[str, Driver] = {}
    for node in nodes:
        path, spec = node["path"], specs.get(node["path"])
        readonly = set(spec.readonly if spec else ())
        exported = {method["name"] for method in node["methods"]}
        if readonly - exported:
            raise error(
                f"{spec.yaml_path}.readonly",
                f"{node['type']} exports no method "
                f"{min(readonly - exported)!r}; it exports {', '.join(sorted(exported)) or 'none'}",
            )
        our_client = upstream_clients().get(node["client"])
        if node["failed"]:
            log.error("%s (%s) failed: %s; the rest of the tree serves", path, node["type"], node["failed"])
            cls = failed_class(node["type"], node["client"], node["methods"], our_client)
            drivers[path] = cls(node["failed"], {HOSTED_LABEL: node["type"]})
        else:
            drivers[path] = hosted_class(node, readonly, our_client)(host, path, node)
    for path in sorted(drivers, key=lambda p: p.count(".")):
        parent, _, name = path.rpartition(".")
        if parent in drivers:
            drivers[parent].children[name] = drivers[path]
    return drivers

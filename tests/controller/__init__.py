"""The test controller and router (``server.TestController``) and the upstream-format config files
that point clients and exporters at it. The session fixture ``controller`` (tests/conftest.py)
starts one; each test makes its own identities with ``new_exporter``/``new_client``."""

from __future__ import annotations

import base64
import contextlib
import itertools
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from controller.server import TestController

_serial = itertools.count(1)


def unique(prefix: str) -> str:
    """A name no other test of the session uses."""
    return f"{prefix}-{next(_serial)}"


def tls(controller: TestController) -> dict[str, Any]:
    """The ``tls`` key of a config trusting the controller's self-signed certificate."""
    return {"ca": base64.b64encode(controller.ca_pem).decode(), "insecure": False}


def new_exporter(
    controller: TestController, labels: dict[str, str], prefix: str = "exporter"
) -> tuple[str, str]:
    """A fresh Exporter object with ``labels``: (name, token)."""
    name = unique(prefix)
    token = controller.issue_token("Exporter", name)
    controller.add_exporter(name, labels, token)
    return name, token


def new_client(controller: TestController, prefix: str = "client") -> tuple[str, str]:
    """A fresh Client object: (name, token)."""
    name = unique(prefix)
    token = controller.issue_token("Client", name)
    controller.add_client(name, token)
    return name, token


def client_config(controller: TestController, path: Path, name: str, token: str, **extra: Any) -> Path:
    """Write an upstream ClientConfig for ``name`` at ``path``."""
    config = {
        "apiVersion": "jumpstarter.dev/v1alpha1",
        "kind": "ClientConfig",
        "metadata": {"namespace": "default", "name": name},
        "endpoint": controller.endpoint,
        "token": token,
        "tls": tls(controller),
        "grpcOptions": {},
        "drivers": {"allow": [], "unsafe": True},
        "leases": {"acquisition_timeout": 60},
        **extra,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def exporter_config(
    controller: TestController, path: Path, name: str, token: str, export: dict[str, Any]
) -> Path:
    """Write an upstream ExporterConfig for ``name`` at ``path`` that joins the controller."""
    config = {
        "apiVersion": "jumpstarter.dev/v1alpha1",
        "kind": "ExporterConfig",
        "metadata": {"namespace": "default", "name": name},
        "endpoint": controller.endpoint,
        "token": token,
        "tls": tls(controller),
        "grpcOptions": {},
        "export": export,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


@contextlib.contextmanager
def joined_exporter(
    controller: TestController, directory: Path, labels: dict[str, str], export: dict[str, Any], **extra: Any
) -> Iterator[str]:
    """Our exporter (``jumpstarter-jupyter run``, its own process) joined to the controller with a
    fresh Exporter object carrying ``labels`` (``extra``: more config keys, e.g. ``lease``); yields
    its name once the controller can lease it."""
    from support import start_exporter, wait_for

    name, token = new_exporter(controller, labels, "joined")
    config = exporter_config(controller, directory / f"{name}.yaml", name, token, export)
    config.write_text(yaml.safe_dump({**yaml.safe_load(config.read_text()), **extra}, sort_keys=False))
    process = start_exporter("run", config, log=str(directory / f"{name}.log"))
    try:
        record = controller.exporter(name)
        wait_for(lambda: record.devices and record.online, what=f"{name} registered and online")
        yield name
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)

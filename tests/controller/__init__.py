"""The test controller and router (``server.TestController``) and the upstream-format config files
that point clients and exporters at it. The session fixture ``controller`` (tests/conftest.py)
starts one; each test makes its own identities with ``new_exporter``/``new_client``."""

from __future__ import annotations

import base64
import itertools
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

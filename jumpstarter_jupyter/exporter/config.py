"""Load upstream's ExporterConfig YAML and build the driver tree from it.

Every error is a :class:`ConfigError` naming the file, the YAML path and line, and what was
expected, e.g. ``board.yaml: export.power.config.voltage (line 7): expected float, got text 'x'``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import sys
import typing
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jumpstarter_jupyter.controller_channel import ControllerSettings, read_connection
from jumpstarter_jupyter.driver.base import RUNTIME, Driver
from jumpstarter_jupyter.drivers import registry
from jumpstarter_jupyter.drivers.composite.driver import Composite, Proxy
from jumpstarter_jupyter.durations import parse_duration
from jumpstarter_jupyter.errors import ConfigError
from jumpstarter_jupyter.exporter.arguments import convert
from jumpstarter_jupyter.exporter.hooks import AFTER, BEFORE, DEFAULT_TIMEOUT, FAILURE_POLICIES, Hook
from jumpstarter_jupyter.exporter.identity import hub_api_url
from jumpstarter_jupyter.exporter.leases import LeasePolicy
from jumpstarter_jupyter.hosted import config as hosted
from jumpstarter_jupyter.hosted.drivers import failed_driver
from jumpstarter_jupyter.selector import check_label
from jumpstarter_jupyter.yamlfile import YamlReader, mapping, read_secret, read_yaml

API_VERSION = "jumpstarter.dev/v1alpha1"
KIND = "ExporterConfig"
ENTRY_KEYS = {"type", "config", "children", "description", "methods_description", "ref", "hosted", "readonly"}


@dataclass
class DriverSpec:
    """One entry of the ``export:`` tree, before it is built."""

    yaml_path: str
    line: int
    type: str | None = None
    config: dict[str, Any] = field(default_factory=dict)
    children: dict[str, DriverSpec] = field(default_factory=dict)
    description: str | None = None
    methods_description: dict[str, str] = field(default_factory=dict)
    ref: str | None = None
    hosted: bool = (
        False  # run upstream's driver of this type, in a hosted process (jumpstarter_jupyter.hosted)
    )
    readonly: list[str] = field(default_factory=list)  # a hosted driver's methods a watcher may call


@dataclass
class ExporterConfig:
    """A whole exporter configuration file."""

    source: str
    export: dict[str, DriverSpec]
    description: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    endpoint: str | None = None
    token: str | None = None
    controller: ControllerSettings | None = None  # endpoint, token, tls, grpcOptions and metadata together
    hooks: dict[str, Hook] = field(default_factory=dict)
    lease: LeasePolicy = field(default_factory=LeasePolicy)
    labels: dict[str, str] = field(default_factory=dict)  # reported in GetReport; selectors match them
    lines: dict[str, int] = field(default_factory=dict)
    hosted_python: str | None = None  # top-level `hosted: {python: PATH}`


def load_config(path: str | Path) -> ExporterConfig:
    """Read and validate an ExporterConfig file (nothing is built yet)."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
    return parse_config(text, str(path))


def parse_config(text: str, source: str = "<config>") -> ExporterConfig:
    """Validate ExporterConfig YAML given as text; ``source`` names it in errors."""
    data, reader = read_yaml(text, source)
    if not isinstance(data, dict):
        raise reader.error("", "expected a mapping with apiVersion, kind and export")
    if data.get("apiVersion", API_VERSION) != API_VERSION:
        raise reader.error("apiVersion", f"expected {API_VERSION!r}, got {data['apiVersion']!r}")
    if data.get("kind", KIND) != KIND:
        raise reader.error("kind", f"expected {KIND!r}, got {data['kind']!r}")
    export = data.get("export")
    if not isinstance(export, dict):
        raise reader.error("export", "expected a mapping of driver names to entries")
    config = ExporterConfig(
        source=source,
        export={name: _entry(reader, value, f"export.{name}") for name, value in export.items()},
        description=data.get("description"),
        metadata=_metadata(reader, data.get("metadata")),
        endpoint=data.get("endpoint"),
        token=data.get("token"),
        controller=_controller(reader, data),
        hooks=_hooks(reader, data.get("hooks")),
        lease=_lease(reader, data.get("lease"), source),
        labels=parse_labels(reader, data.get("labels"), "labels"),
        lines=reader.lines,
        hosted_python=hosted.hosted_python(reader, data.get("hosted")),
    )
    return config


HOOK_KEYS = {"script", "exec", "timeout", "onFailure"}


def _metadata(reader: YamlReader, value: Any) -> dict[str, Any]:
    if value is not None and not isinstance(value, dict):
        raise reader.error("metadata", f"expected a mapping with namespace and name, got {value!r}")
    return value or {}


def _controller(reader: YamlReader, data: dict) -> ControllerSettings | None:
    """``endpoint``, ``token``, ``tls``, ``grpcOptions`` and ``metadata``: the upstream controller this
    exporter registers with (None without an endpoint; the seed's ``endpoint: ""`` means none)."""
    text = {}
    for key in ("endpoint", "token"):
        value = data.get(key)
        if value is not None and not isinstance(value, str):
            raise reader.error(key, f"expected text, got {value!r}")
        text[key] = value or ""
    ca, insecure, options = read_connection(reader, data)
    if not text["endpoint"]:
        return None
    host, colon, port = text["endpoint"].rpartition(":")
    if not (colon and host and port.isdigit()):
        raise reader.error("endpoint", f"expected the controller's HOST:PORT, got {text['endpoint']!r}")
    if not text["token"]:
        raise reader.error(
            "token", "expected the Exporter object's token (`jmp admin create exporter` prints it)"
        )
    metadata = data.get("metadata") or {}
    names = {}
    for key in ("namespace", "name"):
        value = metadata.get(key) or os.environ.get(f"JMP_{key.upper()}")  # upstream reads JMP_NAME too
        if not isinstance(value, str) or not value:
            raise reader.error(
                f"metadata.{key}" if "metadata" in data else "metadata",
                f"expected the Exporter object's {key} (the controller needs it with the token; "
                f"or set JMP_{key.upper()}), got {metadata.get(key)!r}",
            )
        names[key] = value
    return ControllerSettings(
        text["endpoint"], text["token"], names["namespace"], names["name"], ca, insecure, options
    )


LEASE_KEYS = {
    "required",
    "max_duration",
    "default_duration",
    "heartbeat",
    "warning",
    "admin_passphrase_file",
    "hub_api_url",
}


def _hooks(reader: YamlReader, value: Any) -> dict[str, Hook]:
    """``hooks:`` in upstream's format: ``beforeLease`` / ``afterLease``, each a script."""
    hooks = {}
    for name, spec in mapping(reader, value, "hooks", {BEFORE, AFTER}).items():
        path = f"hooks.{name}"
        spec = mapping(reader, spec, path, HOOK_KEYS)
        script, interpreter = spec.get("script"), spec.get("exec")
        if not isinstance(script, str) or not script.strip():
            raise reader.error(
                f"{path}.script", f"expected the script (inline text or a file path), got {script!r}"
            )
        if interpreter is not None and not isinstance(interpreter, str):
            raise reader.error(
                f"{path}.exec", f"expected an interpreter such as /bin/bash, got {interpreter!r}"
            )
        policy = spec.get("onFailure", "warn")
        if policy not in FAILURE_POLICIES:
            raise reader.error(
                f"{path}.onFailure", f"expected one of {', '.join(FAILURE_POLICIES)}, got {policy!r}"
            )
        timeout = _seconds(reader, spec.get("timeout", DEFAULT_TIMEOUT), f"{path}.timeout")
        hooks[name] = Hook(name, script, interpreter, timeout, policy)
    return hooks


def parse_labels(reader: YamlReader, value: Any, path: str) -> dict[str, str]:
    """A ``labels:`` map (``soc: imx8mp``) of names a label selector can match; numbers become text."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise reader.error(path, f"expected a mapping of label names to values, got {value!r}")
    labels = {}
    for key, item in value.items():
        if isinstance(item, bool) or not isinstance(item, (str, int, float)):
            raise reader.error(f"{path}.{key}", f"expected a text or number value, got {item!r}")
        labels[key] = str(item)
        if why := check_label(key, labels[key]):
            raise reader.error(f"{path}.{key}", why)
    return labels


def _lease(reader: YamlReader, value: Any, source: str) -> LeasePolicy:
    """``lease:``: whether control needs a lease, its limits, the admin credential and the
    JupyterHub that vouches for holders (``hub_api_url``)."""
    spec = mapping(reader, value, "lease", LEASE_KEYS)
    fields = {}
    if "required" in spec:
        if not isinstance(spec["required"], bool):
            raise reader.error("lease.required", f"expected true or false, got {spec['required']!r}")
        fields["required"] = spec["required"]
    for key in ("max_duration", "default_duration", "heartbeat", "warning"):
        if key in spec:
            fields[key] = _seconds(reader, spec[key], f"lease.{key}")
    if fields.get("heartbeat") == 0:
        raise reader.error("lease.heartbeat", "expected a period above 0 seconds")
    if "admin_passphrase_file" in spec:
        path = Path(source).parent / str(spec["admin_passphrase_file"])
        try:
            fields["admin_passphrase"] = read_secret(path)
        except (OSError, ValueError) as exc:
            raise reader.error("lease.admin_passphrase_file", str(exc)) from None
    if "hub_api_url" in spec:
        try:
            fields["hub_api_url"] = hub_api_url(spec["hub_api_url"])
        except ValueError as exc:
            raise reader.error("lease.hub_api_url", str(exc)) from None
    return LeasePolicy(**fields)


def _seconds(reader: YamlReader, value: Any, path: str) -> float:
    try:
        return parse_duration(value)
    except ValueError as exc:
        raise reader.error(path, str(exc)) from None


def _entry(reader: YamlReader, value: Any, path: str) -> DriverSpec:
    if not isinstance(value, dict):
        raise reader.error(path, f"expected a driver entry (type/config/children or ref), got {value!r}")
    unknown = set(value) - ENTRY_KEYS
    if unknown:
        raise reader.error(
            f"{path}.{sorted(unknown)[0]}", f"unknown key; an entry has {', '.join(sorted(ENTRY_KEYS))}"
        )
    spec = DriverSpec(yaml_path=path, line=reader.lines.get(path, 0))
    for key, kind in (("type", str), ("ref", str), ("description", str)):
        if value.get(key) is not None and not isinstance(value[key], kind):
            raise reader.error(f"{path}.{key}", f"expected text, got {value[key]!r}")
        setattr(spec, key, value.get(key))
    for key in ("config", "methods_description", "children"):
        if value.get(key) is not None and not isinstance(value[key], dict):
            raise reader.error(f"{path}.{key}", f"expected a mapping, got {value[key]!r}")
    if not isinstance(value.get("hosted", False), bool):
        raise reader.error(f"{path}.hosted", f"expected true or false, got {value['hosted']!r}")
    spec.hosted = value.get("hosted", False)
    readonly = value.get("readonly") or []
    if not (isinstance(readonly, list) and all(isinstance(name, str) for name in readonly)):
        raise reader.error(f"{path}.readonly", f"expected a list of method names, got {readonly!r}")
    spec.readonly = readonly
    spec.config = value.get("config") or {}
    spec.methods_description = {str(k): str(v) for k, v in (value.get("methods_description") or {}).items()}
    spec.children = {
        name: _entry(reader, child, f"{path}.children.{name}")
        for name, child in (value.get("children") or {}).items()
    }
    if spec.ref is None and spec.type is None and not spec.children:
        raise reader.error(
            path, "expected `type:` (a driver class), `children:` (a composite) or `ref:` (a proxy)"
        )
    return spec


def build_tree(config: ExporterConfig) -> Driver:
    """Instantiate every driver of ``config`` under an implicit composite root.

    A ``type:`` may also name a module in the config file's directory, so a custom driver
    kept beside its YAML runs without being installed (``examples/board.yaml``).
    """
    root = Composite()
    root.description = config.description
    process, standing = hosted.start(config, lambda path, message: _error(config, path, message))
    try:
        with _importable_beside(config.source):
            root.children = {name: _build(config, spec, standing) for name, spec in config.export.items()}
        _resolve_proxies(config, root, root)
    except BaseException:
        if process is not None:
            process.stop()
        raise
    return root


@contextlib.contextmanager
def _importable_beside(source: str) -> Iterator[None]:
    directory = os.path.dirname(os.path.abspath(source))
    if not os.path.isfile(source) or directory in sys.path:
        yield
        return
    sys.path.append(directory)  # appended: installed packages keep precedence
    try:
        yield
    finally:
        sys.path.remove(directory)


def _error(config: ExporterConfig, path: str, message: str) -> ConfigError:
    line = _nearest_line(config.lines, path)
    return ConfigError(f"{config.source}: {path}{f' (line {line})' if line else ''}: {message}")


def _build(config: ExporterConfig, spec: DriverSpec, standing: dict[str, Driver]) -> Driver:
    def error(path: str, message: str) -> ConfigError:
        return _error(config, path, message)

    if spec.yaml_path in standing:  # a hosted entry: the hosted process serves its subtree
        return standing[spec.yaml_path]
    if spec.readonly:
        raise error(
            f"{spec.yaml_path}.readonly",
            "`readonly:` marks a hosted driver's methods; our drivers "
            "declare theirs in code (@export(readonly=True))",
        )
    if spec.ref is not None:
        return Proxy(ref=spec.ref)
    cls = (
        Composite
        if spec.type is None
        else registry.resolve(spec.type, lambda msg: error(f"{spec.yaml_path}.type", msg))
    )
    driver = instantiate(
        cls, spec.config, lambda key, msg: error(f"{spec.yaml_path}.config{'.' + key if key else ''}", msg)
    )
    children = {name: _build(config, child, standing) for name, child in spec.children.items()}
    if children:
        driver.children = {**driver.children, **children}
    try:
        driver.check_children()
    except (ValueError, TypeError) as exc:
        raise error(f"{spec.yaml_path}.children", f"{cls.__name__}: {exc}") from None
    if spec.description:
        driver.description = spec.description
    if spec.methods_description:
        driver.methods_description = spec.methods_description
    return driver


def instantiate(cls: type[Driver], values: dict[str, Any], error: Any) -> Driver:
    """Create ``cls`` from a ``config`` mapping, checking names and types of its fields."""
    if not dataclasses.is_dataclass(cls):
        if values:
            raise error("", f"{cls.__name__} takes no config, got {', '.join(values)}")
        return cls()
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    hints = typing.get_type_hints(cls)
    runtime = [key for key in values if key in fields and fields[key].metadata.get(RUNTIME)]
    if runtime:
        raise error(
            runtime[0],
            f"{cls.__name__}.{runtime[0]} is not configuration: the driver sets it as it "
            "runs (or its parent passes it in code)",
        )
    unknown = [key for key in values if key not in fields]
    if unknown:
        settable = ", ".join(name for name, f in fields.items() if not f.metadata.get(RUNTIME)) or "none"
        raise error(unknown[0], f"{cls.__name__} has no config field {unknown[0]!r}; fields: {settable}")
    missing = [
        f.name
        for f in fields.values()
        if f.name not in values
        and f.default is dataclasses.MISSING
        and f.default_factory is dataclasses.MISSING
    ]
    passed_in_code = [name for name in missing if fields[name].metadata.get(RUNTIME)]
    if passed_in_code:
        raise error(
            "",
            f"{cls.__name__} is built in code, not from a config: it needs {passed_in_code[0]} "
            f"({_type_name(hints.get(passed_in_code[0]))})",
        )
    if missing:
        raise error(
            missing[0],
            f"{cls.__name__} needs config field {missing[0]!r} ({_type_name(hints.get(missing[0]))})",
        )
    kwargs = {}
    for key, value in values.items():
        try:
            kwargs[key] = convert(value, hints.get(key, Any), key)
        except ValueError as exc:
            raise error(key, str(exc).split(": ", 1)[-1]) from None
    try:
        return cls(**kwargs)
    except OSError as exc:  # the device cannot be opened: reported failed, the rest of the tree serves
        return failed_driver(cls, exc)
    except (ValueError, TypeError) as exc:
        raise error("", f"{cls.__name__}: {exc}") from None


def _nearest_line(lines: dict[str, int], path: str) -> int | None:
    """The line of ``path``, or of its closest ancestor written in the file."""
    while path:
        if path in lines:
            return lines[path]
        path = path.rpartition(".")[0]
    return None


def _type_name(hint: Any) -> str:
    return getattr(hint, "__name__", str(hint))


def _resolve_proxies(config: ExporterConfig, root: Driver, node: Driver) -> None:
    for child in node.children.values():
        if isinstance(child, Proxy):
            child.target = _lookup(config, root, child.ref)
        else:
            _resolve_proxies(config, root, child)


def _lookup(config: ExporterConfig, root: Driver, ref: str) -> Driver:
    node = root
    for part in ref.split("."):
        if part not in node.children:
            raise ConfigError(
                f"{config.source}: ref {ref!r}: no driver {part!r} (have {', '.join(node.children) or 'none'})"
            )
        node = node.children[part]
    return node

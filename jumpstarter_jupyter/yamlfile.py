"""YAML files whose every error names the file, the YAML path and the line.

``board.yaml: export.power.config.voltage (line 7): expected float, got text 'high'``: the
exporter config and the pool file read their YAML through here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from jumpstarter_jupyter.errors import ConfigError


class YamlReader:
    """Plain data from YAML nodes, remembering the line of every YAML path."""

    def __init__(self, source: str):
        self.source, self.lines = source, {}

    def error(self, path: str, message: str) -> ConfigError:
        line = self.lines.get(path)
        where = f"{path} (line {line})" if line else path or "top level"
        return ConfigError(f"{self.source}: {where}: {message}")

    def value(self, node: yaml.Node, path: str) -> Any:
        self.lines[path] = node.start_mark.line + 1
        if isinstance(node, yaml.MappingNode):
            out = {}
            for key_node, value_node in node.value:
                # keys are read as written: YAML 1.1 would turn an unquoted `on:` into True
                if not isinstance(key_node, yaml.ScalarNode):
                    raise self.error(path, "mapping keys must be plain names")
                key = key_node.value
                out[key] = self.value(value_node, f"{path}.{key}" if path else key)
            return out
        if isinstance(node, yaml.SequenceNode):
            return [self.value(item, f"{path}[{i}]") for i, item in enumerate(node.value)]
        try:
            return yaml.constructor.SafeConstructor().construct_object(node, deep=True)
        except (
            yaml.YAMLError,
            ValueError,
        ) as exc:  # e.g. an impossible date: the value, not the syntax, is wrong
            raise self.error(path, f"invalid value: {getattr(exc, 'problem', exc)}") from None


def read_yaml(text: str, source: str) -> tuple[Any, YamlReader]:
    """The document's data (None when empty) and the reader that knows its lines."""
    reader = YamlReader(source)
    try:
        node = yaml.compose(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        raise ConfigError(f"{source}: {where}YAML syntax error: {getattr(exc, 'problem', exc)}") from None
    return (reader.value(node, "") if node is not None else None), reader


def mapping(reader: YamlReader, value: Any, path: str, keys: set[str]) -> dict:
    """``value`` as a mapping holding only ``keys`` (None: empty), else an error at ``path``."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise reader.error(path, f"expected a mapping with {', '.join(sorted(keys))}, got {value!r}")
    unknown = sorted(set(value) - keys)
    if unknown:
        key = f"{path}.{unknown[0]}" if path else unknown[0]
        raise reader.error(key, f"unknown key; expected one of {', '.join(sorted(keys))}")
    return value


def read_secret(path: str | Path) -> str:
    """A passphrase kept in a file (so it never shows in ``ps``); surrounding white space dropped."""
    try:
        text = Path(path).read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise OSError(f"cannot read {path}: {exc.strerror}") from None
    if not text:
        raise ValueError(f"{path} is empty")
    return text

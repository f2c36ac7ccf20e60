"""The exporter: config loading, the gRPC services and the server."""

from jumpstarter_jupyter.exporter.config import build_tree, load_config, parse_config
from jumpstarter_jupyter.exporter.server import Exporter, serve

__all__ = ["Exporter", "build_tree", "load_config", "parse_config", "serve"]

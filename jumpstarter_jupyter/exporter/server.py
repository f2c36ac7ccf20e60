"""Serve a driver tree over gRPC on TCP or a unix socket."""

from __future__ import annotations

import hmac
import logging
import os
import socket as stdlib_socket
from concurrent import futures
from pathlib import Path

import grpc

from jumpstarter_jupyter.driver.base import Driver
from jumpstarter_jupyter.exporter.logs import LogHub
from jumpstarter_jupyter.exporter.report import Tree
from jumpstarter_jupyter.exporter.service import ConsoleServicer, ExporterServicer, RouterServicer
from jumpstarter_jupyter.protocol.v1 import console_pb2_grpc, jumpstarter_pb2_grpc, router_pb2_grpc

log = logging.getLogger("jumpstarter_jupyter.exporter")

PASSPHRASE_KEY = "x-jumpstarter-passphrase"
SERVER_OPTIONS = [
    # upstream clients ping every 20 s even when idle: permit it, or grpc sends GOAWAY
    # "too_many_pings" after ~100 s and every open stream dies
    ("grpc.http2.min_ping_interval_without_data_ms", 10_000),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.max_ping_strikes", 0),
    ("grpc.so_reuseport", 0),  # a port clash must fail, not silently split connections
]
# Each open stream (console, byte stream, log stream) holds a worker thread.
MAX_WORKERS = 256


class _PassphraseCheck(grpc.ServerInterceptor):
    """Refuse every RPC without the right ``x-jumpstarter-passphrase`` (as upstream does)."""

    def __init__(self, passphrase: str):
        self.expected = passphrase.encode()

    def intercept_service(self, continuation, details):
        handler = continuation(details)
        if handler is None:
            return None  # unknown method: stays UNIMPLEMENTED
        given = dict(details.invocation_metadata).get(PASSPHRASE_KEY, "")
        if hmac.compare_digest(given.encode(), self.expected):
            return handler
        return _refusing(handler)


def _refusing(handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler:
    def refuse(request, context):
        context.abort(grpc.StatusCode.UNAUTHENTICATED, "invalid or missing passphrase")

    kinds = {
        (False, False): grpc.unary_unary_rpc_method_handler,
        (False, True): grpc.unary_stream_rpc_method_handler,
        (True, False): grpc.stream_unary_rpc_method_handler,
        (True, True): grpc.stream_stream_rpc_method_handler,
    }
    make = kinds[(handler.request_streaming, handler.response_streaming)]
    return make(refuse, handler.request_deserializer, handler.response_serializer)


def _claim_socket_path(path: str) -> None:
    """Remove a stale socket file, but never one another exporter is listening on."""
    if not os.path.exists(path):
        return
    with stdlib_socket.socket(stdlib_socket.AF_UNIX) as probe:
        try:
            probe.connect(path)
        except OSError:
            os.unlink(path)  # nobody listens: left over from a process that died
            return
    raise OSError(f"cannot listen on unix:{path}: the socket is in use by another exporter")


class Exporter:
    """A running exporter: ``address`` to connect to, ``stop()`` to end it."""

    def __init__(self, root: Driver, server: grpc.Server, address: str, tree: Tree, logs: LogHub):
        self.root, self.server, self.address, self.tree, self.logs = root, server, address, tree, logs

    def wait(self) -> None:
        self.server.wait_for_termination()

    def stop(self, grace: float | None = 1.0) -> None:
        self.server.stop(grace).wait()
        logging.getLogger().removeHandler(self.logs)
        self.root.shutdown()
        if self.address.startswith("unix:"):
            Path(self.address[5:]).unlink(missing_ok=True)

    def __enter__(self) -> Exporter:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def serve(
    root: Driver,
    listen: str | None = None,
    socket: str | None = None,
    passphrase: str | None = None,
    tls_cert: str | None = None,
    tls_key: str | None = None,
) -> Exporter:
    """Start serving ``root``; returns at once. ``listen`` is ``HOST:PORT`` (port 0 = any free)."""
    if (listen is None) == (socket is None):
        raise ValueError("serve() needs exactly one of listen='HOST:PORT' or socket='PATH'")
    hub = LogHub()
    logging.getLogger().addHandler(hub)
    logging.getLogger("driver").setLevel(logging.INFO)
    tree = Tree(root)
    interceptors = [_PassphraseCheck(passphrase)] if passphrase else []
    server = grpc.server(futures.ThreadPoolExecutor(MAX_WORKERS, thread_name_prefix="exporter"),
                         options=SERVER_OPTIONS, interceptors=interceptors)
    jumpstarter_pb2_grpc.add_ExporterServiceServicer_to_server(ExporterServicer(tree, hub), server)
    router_pb2_grpc.add_RouterServiceServicer_to_server(RouterServicer(tree), server)
    console_pb2_grpc.add_ConsoleServiceServicer_to_server(ConsoleServicer(tree), server)
    target = listen if listen is not None else f"unix:{os.path.abspath(socket)}"
    if socket is not None:
        _claim_socket_path(socket)
    credentials = None
    if tls_cert or tls_key:
        if not (tls_cert and tls_key):
            raise ValueError("TLS needs both --tls-cert and --tls-key")
        credentials = grpc.ssl_server_credentials([(Path(tls_key).read_bytes(), Path(tls_cert).read_bytes())])
    try:
        port = server.add_secure_port(target, credentials) if credentials else server.add_insecure_port(target)
    except RuntimeError as exc:
        raise OSError(f"cannot listen on {target}: {exc} (is the port in use?)") from None
    if listen is not None:
        target = f"{listen.rpartition(':')[0]}:{port}"
    server.start()
    log.info("exporter serving %d drivers on %s", len(tree.nodes), target)
    return Exporter(root, server, target, tree, hub)

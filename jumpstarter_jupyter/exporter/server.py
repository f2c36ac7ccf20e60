"""Serve a driver tree over gRPC (grpc.aio) on TCP or a unix socket.

The server runs on one event loop thread per process (shared by every exporter the process
serves). Handlers are coroutines: waits and open streams cost no thread; plain driver
methods run on each exporter's bounded worker pool (``calls``).
"""

from __future__ import annotations

import hmac
import logging
import os
import socket as stdlib_socket
import threading
from collections.abc import Callable
from pathlib import Path

import grpc

from jumpstarter_jupyter.aio_loop import run as run_on_loop
from jumpstarter_jupyter.controller_channel import ControllerSettings
from jumpstarter_jupyter.driver.base import Driver
from jumpstarter_jupyter.exporter.bulk import BulkListener
from jumpstarter_jupyter.exporter.calls import Calls
from jumpstarter_jupyter.exporter.console_service import ConsoleServicer
from jumpstarter_jupyter.exporter.controller import ControllerLink, RoutedCalls
from jumpstarter_jupyter.exporter.exporter_service import ExporterServicer, RoutedSession
from jumpstarter_jupyter.exporter.hooks import Hook, HookRunner
from jumpstarter_jupyter.exporter.lease_service import LeaseServicer
from jumpstarter_jupyter.exporter.leases import LeasePolicy, Leases
from jumpstarter_jupyter.exporter.logs import LogHub
from jumpstarter_jupyter.exporter.report import Tree
from jumpstarter_jupyter.exporter.router_service import RouterServicer, add_router_to_server
from jumpstarter_jupyter.exporter.stream_service import StreamServicer
from jumpstarter_jupyter.protocol.bulk import is_loopback
from jumpstarter_jupyter.protocol.metadata import PASSPHRASE_KEY
from jumpstarter_jupyter.protocol.v1 import (
    console_pb2_grpc,
    jumpstarter_pb2_grpc,
    lease_pb2_grpc,
    stream_pb2_grpc,
)

log = logging.getLogger("jumpstarter_jupyter.exporter")

SERVER_OPTIONS = [
    # upstream clients ping every 20 s even when idle: permit it, or grpc sends GOAWAY
    # "too_many_pings" after ~100 s and every open stream dies
    ("grpc.http2.min_ping_interval_without_data_ms", 10_000),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.max_ping_strikes", 0),
    ("grpc.so_reuseport", 0),  # a port clash must fail, not silently split connections
]
# grpcio's asyncio server mishandles calls their clients abandon from 1.80 on (1.85.4 the newest
# tried): 1.80 and 1.81 keep memory of each, 1.82.0 to 1.85.4 end other clients' calls CANCELLED
# before their handler runs, so a notebook giving up waits would fail another person's call.
# pyproject.toml keeps grpcio below; the exporter warns when it runs on one anyway.
MISHANDLES_ABANDONED_CALLS = (1, 80)
STOP_TIMEOUT = 1.0  # seconds plain driver methods get to notice their cancellation at stop


class _PassphraseCheck(grpc.aio.ServerInterceptor):
    """Refuse every RPC without the right ``x-jumpstarter-passphrase`` (as upstream does).

    A lease's token (or a running hook's credential) is accepted too: upstream clients act
    under a lease by passing its token as their passphrase.
    """

    def __init__(self, passphrase: str, leases: Leases):
        self.expected, self.leases = passphrase.encode(), leases

    async def intercept_service(self, continuation, details):
        handler = await continuation(details)
        if handler is None:
            return None  # unknown method: stays UNIMPLEMENTED
        metadata = dict(details.invocation_metadata)
        given = metadata.get(PASSPHRASE_KEY, "")
        if hmac.compare_digest(given.encode(), self.expected) or (given and self.leases.accepts(given)):
            return handler
        return _refusing(handler)


def _refusing(handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler:
    async def refuse(request, context):  # a coroutine serves every kind of RPC in grpc.aio
        await context.abort(grpc.StatusCode.UNAUTHENTICATED, "invalid or missing passphrase")

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

    def __init__(
        self,
        root: Driver,
        server: grpc.aio.Server,
        address: str,
        tree: Tree,
        logs: LogHub,
        calls: Calls,
        leases: Leases,
        controller: ControllerLink | None = None,
        bulk: BulkListener | None = None,
    ):
        self.root, self.server, self.address, self.tree, self.logs = root, server, address, tree, logs
        self.calls, self.leases, self.controller, self.bulk = calls, leases, controller, bulk
        self._stopped = threading.Event()

    def wait(self) -> None:
        """Block until :meth:`stop` has finished."""
        self._stopped.wait()

    def stop(self, grace: float | None = 1.0) -> list[str]:
        """Stop serving: calls get ``grace`` seconds to end, then are cancelled; drivers are torn down.

        Returns the plain driver methods that were still running (ignoring their
        cancellation) when teardown began, ``STOP_TIMEOUT`` seconds later at most.
        """
        if self._stopped.is_set():
            return []
        self.leases.stopping = True  # no afterLease hook: nothing could reach the exporter any more
        if self.controller is not None:
            run_on_loop(self.controller.stop())  # OFFLINE and Unregister, STOP_TIMEOUT at most
        run_on_loop(self.server.stop(grace))  # cancels every RPC still running after the grace
        if self.bulk is not None:
            self.bulk.close()
        stuck = self.calls.stop(STOP_TIMEOUT)
        if stuck:
            log.warning("driver calls that ignored their cancellation: %s", ", ".join(stuck))
        logging.getLogger().removeHandler(self.logs)
        self.root.teardown()
        if self.address.startswith("unix:"):
            Path(self.address[5:]).unlink(missing_ok=True)
        if self.leases.hooks is not None:
            self.leases.hooks.close()
        self._stopped.set()
        return stuck

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
    lease: LeasePolicy | None = None,
    hooks: dict[str, Hook] | None = None,
    on_exit: Callable[[int], None] | None = None,
    labels: dict[str, str] | None = None,
    controller: ControllerSettings | None = None,
    bulk_port: int | None = 0,
) -> Exporter:
    """Start serving ``root``; returns at once. ``listen`` is ``HOST:PORT`` (port 0 = any free).

    ``lease`` says whether control needs a lease (and its limits); ``hooks`` are run around
    leases; ``on_exit(code)`` is called when a hook's ``onFailure: exit`` asks the exporter to
    stop (the command line exits with that code). ``labels`` are the exporter's (in its report).
    With ``controller``, it also registers there and serves that controller's leases through its
    router (``controller.py``); then ``listen`` and ``socket`` may both be None. Uploads to this
    exporter's own clients may come on a bulk connection beside it (``protocol/bulk.py``): on
    TCP port ``bulk_port`` (0: any free port) or ``SOCKET.bulk``; None: uploads use gRPC only.
    """
    if (listen is not None and socket is not None) or (listen is None and socket is None and not controller):
        raise ValueError("serve() needs one of listen='HOST:PORT' or socket='PATH' (or a controller alone)")
    credentials = None
    if tls_cert or tls_key:
        if not (tls_cert and tls_key):
            raise ValueError("TLS needs both --tls-cert and --tls-key")
        credentials = grpc.ssl_server_credentials([(Path(tls_key).read_bytes(), Path(tls_cert).read_bytes())])
    if listen is not None and not passphrase and credentials is None and not _is_loopback(listen):
        log.warning(
            "listening on %s without a passphrase or TLS: anyone who can reach this address controls the "
            "hardware; use --passphrase-file and --tls-cert/--tls-key",
            listen,
        )
    target = listen if listen is not None else f"unix:{os.path.abspath(socket)}" if socket else ""
    if socket is not None:
        _claim_socket_path(socket)
    _warn_about_grpcio(grpc.__version__)
    tree = Tree(root, labels)
    hub = LogHub()
    calls = Calls()
    runner = HookRunner(hooks) if hooks else None
    leases = Leases(lease or LeasePolicy(), runner, on_exit, _log_hook_line)
    ports = [(target, credentials)] if target else []
    if runner is not None:  # hooks reach the exporter on a private socket, whatever the clients use
        ports.append((f"unix:{runner.socket_path}", None))
    bulk = (
        BulkListener.beside(target, bulk_port, tls_cert, tls_key)
        if target and bulk_port is not None
        else None
    )
    try:
        server, port, link = run_on_loop(
            _start(tree, hub, calls, leases, ports, passphrase, controller, bulk)
        )
    except BaseException:
        if bulk is not None:
            bulk.close()
        raise
    logging.getLogger().addHandler(hub)
    logging.getLogger("driver").setLevel(logging.INFO)
    if listen is not None:
        target = f"{listen.rpartition(':')[0]}:{port}"
    log.info(
        "exporter up: %d drivers on %s%s%s%s",
        len(tree.nodes),
        target or "no listener of its own",
        f" (uploads also on {bulk.describe()})" if bulk else "",
        f"; registering with the controller at {controller.endpoint}" if controller else "",
        "; control needs a lease" if leases.policy.required else "",
    )
    return Exporter(root, server, target, tree, hub, calls, leases, link, bulk)


def _warn_about_grpcio(version: str) -> None:
    if tuple(int(part) for part in version.split(".")[:2]) >= MISHANDLES_ABANDONED_CALLS:
        log.warning(
            "grpcio %s: its asyncio server mishandles abandoned calls (1.80 and 1.81 keep their memory, "
            "1.82.0 to at least 1.85.4 cancel other clients' calls); install grpcio<1.80",
            version,
        )


def _log_hook_line(hook: str, line: str) -> None:
    logging.getLogger("jumpstarter_jupyter.exporter.hooks").info("[%s] %s", hook, line, extra={"hook": hook})


def _server(
    tree: Tree,
    hub: LogHub,
    calls: Calls,
    leases: Leases,
    interceptors: list,
    routed: RoutedSession | None = None,
    bulk: BulkListener | None = None,
) -> grpc.aio.Server:
    """A server with every service (not started); ``routed``: it serves one controller lease;
    ``bulk``: uploads may come there instead."""
    server = grpc.aio.server(options=SERVER_OPTIONS, interceptors=interceptors)
    jumpstarter_pb2_grpc.add_ExporterServiceServicer_to_server(
        ExporterServicer(tree, hub, calls, leases, routed), server
    )
    router = RouterServicer(tree, calls, leases, bulk)
    add_router_to_server(router, server)
    stream_pb2_grpc.add_StreamServiceServicer_to_server(StreamServicer(router), server)
    console_pb2_grpc.add_ConsoleServiceServicer_to_server(ConsoleServicer(tree, leases), server)
    lease_pb2_grpc.add_LeaseServiceServicer_to_server(LeaseServicer(leases), server)
    return server


async def _start(
    tree: Tree,
    hub: LogHub,
    calls: Calls,
    leases: Leases,
    ports: list,
    passphrase: str | None,
    controller: ControllerSettings | None,
    bulk: BulkListener | None,
) -> tuple[grpc.aio.Server, int, ControllerLink | None]:
    interceptors = [_PassphraseCheck(passphrase, leases)] if passphrase else []
    server = _server(tree, hub, calls, leases, interceptors, bulk=bulk)
    link = None
    if controller is not None:
        # the controller authenticated a lease's client; its calls need no passphrase
        link = ControllerLink(
            controller,
            tree,
            leases,
            lambda session: _server(tree, hub, calls, leases, [RoutedCalls(session)], session),
        )
    bound = []
    for target, credentials in ports:
        try:
            bound.append(
                server.add_secure_port(target, credentials)
                if credentials
                else server.add_insecure_port(target)
            )
        except RuntimeError as exc:
            raise OSError(f"cannot listen on {target}: {exc} (is the port in use?)") from None
    await server.start()
    if link is not None:
        link.start()
    return server, bound[0] if bound else 0, link


def _is_loopback(listen: str) -> bool:
    return is_loopback(listen.rpartition(":")[0].strip("[]"))

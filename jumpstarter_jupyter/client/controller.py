"""Boards leased from an upstream Jumpstarter controller, reached through its router.

A client config in upstream's format names the controller and who we are to it, in
``$JMP_CLIENT_CONFIG_HOME/clients/NAME.yaml``, else ``~/.config/jumpstarter/clients/NAME.yaml``
(``$XDG_CONFIG_HOME``), as ``jmp`` reads them::

    apiVersion: jumpstarter.dev/v1alpha1
    kind: ClientConfig
    metadata: {namespace: lab, name: alice}        # the Client object
    endpoint: jumpstarter.example.com:443           # the controller (TLS)
    token: eyJhbGciOi...                            # the Client object's token
    tls: {ca: "", insecure: false}                  # base64 PEM roots; or trust what it presents
    grpcOptions: {}                                 # gRPC channel options over upstream's defaults
    leases: {acquisition_timeout: 7200}             # seconds to wait for a lease

``connect(controller="NAME", selector="board=rpi4")`` asks the controller for a lease on any
exporter whose labels match (``ClientService.CreateLease``), polls it (``GetLease``) until it is
``Ready`` (telling ``on_wait`` why it waits), then serves a private unix socket: each connection
to it is ``Dial``-ed and carried as DATA frames of one ``RouterService.Stream`` to the exporter,
as upstream's ``jmp`` does. The lease is deleted on ``close()`` and at process exit.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import datetime
import logging
import os
import shutil
import tempfile
import time
import uuid
import weakref
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc

from jumpstarter_jupyter.aio_loop import run as run_on_loop
from jumpstarter_jupyter.controller_channel import (
    ControllerSettings,
    carry,
    controller_channel,
    read_connection,
    router_channel,
    why,
)
from jumpstarter_jupyter.durations import format_duration
from jumpstarter_jupyter.errors import ConfigError, ConnectionFailed, LeaseTimeout, LeaseUnsatisfiable
from jumpstarter_jupyter.protocol.client.v1 import client_pb2, client_pb2_grpc
from jumpstarter_jupyter.protocol.v1 import jumpstarter_pb2, jumpstarter_pb2_grpc, router_pb2_grpc
from jumpstarter_jupyter.selector import parse
from jumpstarter_jupyter.yamlfile import mapping, read_yaml

log = logging.getLogger("jumpstarter_jupyter.controller")

CONFIG_KEYS = {
    "apiVersion", "kind", "metadata", "endpoint", "token", "refresh_token", "tls", "grpcOptions",
    "drivers", "shell", "leases",
}  # fmt: skip
RPC_TIMEOUT = 10.0  # seconds for one call to the controller: an unreachable one fails, never hangs
POLL_SECONDS = 1.0  # between GetLease polls (upstream's jmp polls every 5 s)
DIAL_TIMEOUT = 30.0  # seconds Dial is retried while the exporter is not ready or not listening
DEFAULT_DURATION = 30 * 60.0  # upstream's jmp asks for 30 minutes


# client configs ------------------------------------------------------------------------------


@dataclass(frozen=True)
class ClientConfig:
    """An upstream client config: ``alias`` (its file name), ``source`` (the file), the controller
    ``settings`` and ``acquisition_timeout`` (seconds to wait for a lease)."""

    alias: str
    source: str
    settings: ControllerSettings
    acquisition_timeout: float = 7200.0


def client_config_dir() -> Path:
    """Where upstream's client configs live: ``$JMP_CLIENT_CONFIG_HOME/clients``, else
    ``$XDG_CONFIG_HOME/jumpstarter/clients`` (``~/.config/jumpstarter/clients``)."""
    home = os.environ.get("JMP_CLIENT_CONFIG_HOME")
    if home:
        return Path(home) / "clients"
    config_home = os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config"
    return Path(config_home) / "jumpstarter" / "clients"


def load_client_config(alias: str) -> ClientConfig:
    """The client config named ``alias``; an unknown one lists the configs there are."""
    directory = client_config_dir()
    path = directory / f"{alias}.yaml"
    if not path.is_file():
        found = sorted(p.stem for p in directory.glob("*.yaml")) if directory.is_dir() else []
        raise ConfigError(
            f"no client config named {alias!r} in {directory} (configs there: {', '.join(found) or 'none'}; "
            "`jmp config client create` or your lab's admin makes one)"
        )
    return parse_client_config(path.read_text(encoding="utf-8"), str(path), alias)


def parse_client_config(text: str, source: str, alias: str = "default") -> ClientConfig:
    """A client config's text; a bad one names the file, the YAML path (and line) and what was expected."""
    data, reader = read_yaml(text, source)
    data = mapping(reader, data, "", CONFIG_KEYS)
    if data.get("kind", "ClientConfig") != "ClientConfig":
        raise reader.error("kind", f"expected ClientConfig, got {data['kind']!r}")
    strings = {}
    for key in ("endpoint", "token"):
        if not isinstance(data.get(key), str) or not data[key]:
            what = "the controller's HOST:PORT" if key == "endpoint" else "the Client object's token"
            raise reader.error(key, f"expected {what}, got {data.get(key)!r}")
        strings[key] = data[key]
    metadata = mapping(reader, data.get("metadata"), "metadata", {"namespace", "name"})
    for key in ("namespace", "name"):
        if not isinstance(metadata.get(key), str) or not metadata[key]:
            raise reader.error(
                f"metadata.{key}" if key in metadata else "metadata",
                f"expected the Client object's {key} (the controller checks it with the token)",
            )
    ca, insecure, options = read_connection(reader, data)
    leases = data.get("leases") or {}
    if not isinstance(leases, dict):
        raise reader.error("leases", f"expected a mapping with acquisition_timeout, got {leases!r}")
    timeout = leases.get("acquisition_timeout", 7200)
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout <= 0:
        raise reader.error("leases.acquisition_timeout", f"expected seconds (> 0), got {timeout!r}")
    settings = ControllerSettings(
        strings["endpoint"],
        strings["token"],
        metadata["namespace"],
        metadata["name"],
        ca,
        insecure,
        options,
    )
    return ClientConfig(alias, source, settings, float(timeout))


# leases -------------------------------------------------------------------------------------

# every controller lease of this process, deleted at exit (a kernel shut down or restarted)
_held: weakref.WeakSet[ControllerLease] = weakref.WeakSet()


@atexit.register
def _release_all() -> None:
    for lease in list(_held):
        lease.release()


def _condition(lease: client_pb2.Lease, type_: str) -> Any:
    """The lease's condition ``type_`` when it is True, else None."""
    return next((c for c in lease.conditions if c.type == type_ and c.status == "True"), None)


class ControllerLease:
    """A lease on one exporter matching ``selector``, from the controller ``config`` names.

    :meth:`acquire` waits until the controller assigns an exporter; then ``socket`` is a private
    unix socket whose every connection reaches the exporter through the router (one ``Dial`` and
    one router stream per connection). :meth:`release` deletes the lease and closes the socket.
    """

    def __init__(self, config: ClientConfig, selector: str, duration: float = 0):
        parse(selector)  # a bad selector fails here, naming the column, not at the controller
        self.config, self.selector = config, selector
        self.duration = duration or DEFAULT_DURATION
        self.name: str | None = None  # namespaces/NS/leases/ID once created
        self.exporter: str | None = None  # the exporter's name once Ready
        self.socket: str | None = None
        self.dials = 0
        self._channel: grpc.aio.Channel | None = None
        self._server: asyncio.AbstractServer | None = None
        self._directory: str | None = None
        self._streams: set[asyncio.Task] = set()
        self._released = False

    @property
    def where(self) -> str:
        return f"controller {self.config.alias} ({self.config.settings.endpoint})"

    # acquisition
    def acquire(self, wait: float | None = None, on_wait: Callable[[str], None] | None = None) -> None:
        """Create the lease and wait until it is Ready (at most ``wait`` seconds, else the config's
        ``leases.acquisition_timeout``); ``on_wait(reason)`` hears why it waits, when that changes."""
        limit = wait if wait is not None else self.config.acquisition_timeout
        try:
            run_on_loop(self._connect(), RPC_TIMEOUT + 5)
            self.name = self._call(self._create()).name
            _held.add(self)
            self._wait_ready(limit, on_wait)
            self.socket = run_on_loop(self._serve(), RPC_TIMEOUT)
        except BaseException:
            self.release()
            raise

    async def _connect(self) -> None:
        try:  # no call yet: the first one (CreateLease) says whether the controller answers
            self._channel = await controller_channel(self.config.settings, "Client")
        except (OSError, TimeoutError) as exc:  # tls.insecure fetches the certificate first
            raise ConnectionFailed(
                f"{self.where} is not reachable ({exc or 'no TLS answer'}); is the endpoint in "
                f"{self.config.source} right, and the controller up?"
            ) from None

    def _call(self, coroutine: Coroutine) -> Any:
        """A controller call from this thread; its failure in words that name the controller."""
        try:
            return run_on_loop(coroutine, RPC_TIMEOUT + 5)
        except grpc.aio.AioRpcError as error:
            if error.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
                raise ConnectionFailed(
                    f"{self.where} is not reachable ({why(error)}); check the endpoint and tls in "
                    f"{self.config.source}, and that the controller is up, then try again"
                ) from None
            if error.code() in (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED):
                raise ConfigError(
                    f"{self.where} refused client {self.config.settings.namespace}/"
                    f"{self.config.settings.name} ({why(error)}); check token and metadata in "
                    f"{self.config.source}"
                ) from None
            raise

    def _client_service(self) -> client_pb2_grpc.ClientServiceStub:
        return client_pb2_grpc.ClientServiceStub(self._channel)

    async def _create(self) -> client_pb2.Lease:
        request = client_pb2.CreateLeaseRequest(
            parent=f"namespaces/{self.config.settings.namespace}",
            lease_id=str(uuid.uuid4()),
            lease=client_pb2.Lease(selector=self.selector),
        )
        request.lease.duration.FromTimedelta(datetime.timedelta(seconds=self.duration))
        return await self._client_service().CreateLease(request, timeout=RPC_TIMEOUT)

    async def _get(self) -> client_pb2.Lease:
        return await self._client_service().GetLease(
            client_pb2.GetLeaseRequest(name=self.name), timeout=RPC_TIMEOUT
        )

    def _wait_ready(self, limit: float, on_wait: Callable[[str], None] | None) -> None:
        deadline = time.monotonic() + limit
        said = None
        while True:
            try:
                reason = self._pending_reason(self._call(self._get()))
            except ConnectionFailed:  # a controller restarting keeps the lease: poll on until the deadline
                reason = "the controller is not reachable; trying again"
            if reason is None:
                return
            if reason != said:
                said = reason
                log.info("lease %s for %r: %s", self.name, self.selector, reason)
                if on_wait is not None:
                    on_wait(reason)
            if time.monotonic() + POLL_SECONDS > deadline:
                raise LeaseTimeout(
                    f"no exporter matching {self.selector!r} at {self.where} within "
                    f"{format_duration(limit)} (last: {reason})"
                )
            time.sleep(POLL_SECONDS)

    def _pending_reason(self, lease: client_pb2.Lease) -> str | None:
        """None once the lease is Ready (noting its exporter), else why it waits; raises
        :class:`LeaseUnsatisfiable` when the controller will never grant it."""
        if _condition(lease, "Ready"):
            self.exporter = lease.exporter.rsplit("/", 1)[-1]
            log.info("lease %s: exporter %s, at %s", self.name, self.exporter, self.where)
            return None
        for type_ in ("Unsatisfiable", "Invalid"):
            condition = _condition(lease, type_)
            if condition:
                raise LeaseUnsatisfiable(
                    f"{self.where} cannot lease an exporter matching {self.selector!r}: "
                    f"{condition.reason}{': ' + condition.message if condition.message else ''}"
                )
        ended = next((c for c in lease.conditions if c.type == "Ready" and c.status == "False"), None)
        if ended:
            raise LeaseUnsatisfiable(f"lease {self.name} at {self.where} ended: {ended.reason}")
        pending = _condition(lease, "Pending")
        return (
            f"{pending.reason}: {pending.message}"
            if pending and pending.message
            else "waiting for the controller"
        )

    # the router bridge
    async def _serve(self) -> str:
        self._directory = tempfile.mkdtemp(prefix="jumpstarter-controller-")  # mode 0700: ours alone
        path = os.path.join(self._directory, "exporter.sock")
        self._server = await asyncio.start_unix_server(self._bridge, path=path)
        return path

    async def _dial(self) -> jumpstarter_pb2.DialResponse:
        """Dial the lease, retrying while the exporter is not ready or not listening yet."""
        controller = jumpstarter_pb2_grpc.ControllerServiceStub(self._channel)
        lease_id = self.name.rsplit("/", 1)[-1]  # upstream dials with the bare name
        deadline = time.monotonic() + DIAL_TIMEOUT
        delay = 0.2
        while True:
            try:
                return await controller.Dial(
                    jumpstarter_pb2.DialRequest(lease_name=lease_id), timeout=RPC_TIMEOUT
                )
            except grpc.aio.AioRpcError as error:
                retry = error.code() == grpc.StatusCode.UNAVAILABLE or (
                    error.code() == grpc.StatusCode.FAILED_PRECONDITION
                    and "not ready" in (error.details() or "")
                )
                if not retry or time.monotonic() + delay > deadline:
                    raise
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)

    async def _bridge(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """One local connection: Dial, then its bytes both ways as one router stream's DATA frames."""
        task = asyncio.current_task()
        self._streams.add(task)
        channel = None
        try:
            try:
                dial = await self._dial()
            except grpc.aio.AioRpcError as error:
                log.error(
                    "lease %s at %s: cannot reach exporter %s (%s): the lease may have ended; "
                    "connect again for a new one",
                    self.name, self.where, self.exporter, why(error),
                )  # fmt: skip
                return
            self.dials += 1
            channel = await router_channel(dial.router_endpoint, dial.router_token, self.config.settings)
            call = router_pb2_grpc.RouterServiceStub(channel).Stream()
            try:
                await carry(reader, writer, call)
            finally:
                call.cancel()
        except grpc.aio.AioRpcError as error:
            log.warning("lease %s: the router stream to %s ended: %s", self.name, self.exporter, why(error))
        except (OSError, ConnectionError) as error:
            log.warning("lease %s: the connection to %s ended: %s", self.name, self.exporter, error)
        except (
            asyncio.CancelledError
        ):  # release() ends the streams; asyncio would log the cancellation as an error
            pass
        finally:
            self._streams.discard(task)
            writer.close()
            if channel is not None:
                await channel.close()

    # release
    def release(self) -> None:
        """Delete the lease (the exporter is free at once) and close the socket; idempotent."""
        if self._released:
            return
        self._released = True
        _held.discard(self)
        with contextlib.suppress(Exception):
            run_on_loop(self._release(), RPC_TIMEOUT + 5)
        if self._directory:
            shutil.rmtree(self._directory, ignore_errors=True)

    async def _release(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._streams):
            task.cancel()
        if self._channel is None:
            return
        if self.name:
            try:
                await self._client_service().DeleteLease(
                    client_pb2.DeleteLeaseRequest(name=self.name), timeout=RPC_TIMEOUT
                )
                log.info("lease %s released at %s", self.name, self.where)
            except grpc.aio.AioRpcError as error:  # already ended (expired), or the controller is gone
                log.warning("lease %s: DeleteLease at %s failed: %s", self.name, self.where, why(error))
        await self._channel.close()

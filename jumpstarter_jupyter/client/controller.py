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
from dataclasses import asdict, dataclass, replace
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
WATCH_SECONDS = 2.0  # between GetLease polls of a granted lease someone watches (the lease bar)
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


def where(config: ClientConfig) -> str:
    """``controller lab (HOST:PORT)``: how messages name the controller."""
    return f"controller {config.alias} ({config.settings.endpoint})"


def call_controller(config: ClientConfig, coroutine: Coroutine) -> Any:
    """A controller call from this thread; its failure in words that name the controller."""
    try:
        return run_on_loop(coroutine, RPC_TIMEOUT + 5)
    except grpc.aio.AioRpcError as error:
        if error.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
            raise ConnectionFailed(
                f"{where(config)} is not reachable ({why(error)}); check the endpoint and tls in "
                f"{config.source}, and that the controller is up, then try again"
            ) from None
        if error.code() in (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED):
            raise ConfigError(
                f"{where(config)} refused client {config.settings.namespace}/{config.settings.name} "
                f"({why(error)}); check token and metadata in {config.source}"
            ) from None
        raise


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


@dataclass(frozen=True)
class LeaseState:
    """What the controller says of a lease now (plain data, as the lease bar shows it).

    ``state`` is ``pending``, ``ready`` or ``ended``; ``reason`` the condition's reason
    (``NotAvailable``, ``Offline``, ``Ready``, ``Expired``, ``Released``, ...) and ``message`` its
    words; ``holder`` the Client object's name; ``end`` the effective end time (unix seconds, 0
    while pending)."""

    name: str
    controller: str
    selector: str
    holder: str = ""
    exporter: str = ""
    state: str = "pending"
    reason: str = ""
    message: str = ""
    end: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _end_time(lease: client_pb2.Lease) -> float:
    """The lease's effective end (unix seconds): when it ended, else begin plus duration; 0 before."""
    if lease.HasField("effective_end_time"):
        return lease.effective_end_time.ToDatetime(datetime.UTC).timestamp()
    if lease.HasField("end_time"):
        return lease.end_time.ToDatetime(datetime.UTC).timestamp()
    if lease.HasField("effective_begin_time"):
        duration = lease.effective_duration if lease.HasField("effective_duration") else lease.duration
        return (
            lease.effective_begin_time.ToDatetime(datetime.UTC).timestamp()
            + duration.ToTimedelta().total_seconds()
        )
    return 0.0


def lease_state(lease: client_pb2.Lease, controller: str) -> LeaseState:
    """A GetLease answer as a :class:`LeaseState`."""
    ended = next((c for c in lease.conditions if c.type == "Ready" and c.status == "False"), None)
    ready = _condition(lease, "Ready")
    refused = _condition(lease, "Unsatisfiable") or _condition(lease, "Invalid")
    pending = _condition(lease, "Pending")
    state, condition = (
        ("ended", ended or refused) if ended or refused
        else ("ready", ready) if ready
        else ("pending", pending)
    )  # fmt: skip
    return LeaseState(
        name=lease.name.rsplit("/", 1)[-1],
        controller=controller,
        selector=lease.selector,
        holder=lease.client.rsplit("/", 1)[-1],
        exporter=lease.exporter.rsplit("/", 1)[-1],
        state=state,
        reason=condition.reason if condition else "",
        message=condition.message if condition else "",
        end=_end_time(lease),
    )


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
        self.state: LeaseState | None = None  # the controller's last answer about it
        self._listeners: list[Callable[[LeaseState], None]] = []
        self._watch: asyncio.Task | None = None

    @property
    def where(self) -> str:
        return where(self.config)

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
            if self._listeners:  # watched while it waited (the notebook's wait widget): go on watching
                self._start_watching()
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
        return call_controller(self.config, coroutine)

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
                reason = self._pending_reason(self._note(self._call(self._get())))
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

    def _note(self, lease: client_pb2.Lease) -> client_pb2.Lease:
        """Keep the controller's answer as ``state`` and tell the listeners when it changed."""
        self._tell(lease_state(lease, self.where))
        return lease

    def _tell(self, state: LeaseState) -> None:
        if state == self.state:
            return
        self.state = state
        for listener in list(self._listeners):
            try:
                listener(state)
            except Exception:  # one broken listener must not starve the others
                log.exception("controller lease listener %r failed", listener)

    def refresh(self) -> LeaseState | None:
        """Ask the controller about the lease now; None when it does not answer (or there is none)."""
        if self.name is None or self._channel is None or self._released:
            return self.state
        try:
            self._note(self._call(self._get()))
        except (ConnectionFailed, ConfigError, grpc.aio.AioRpcError):
            return None
        return self.state

    def ended(self) -> str | None:
        """Why the lease is over (``Released`` by us, ``Expired``, ...), asking the controller;
        None while it holds (or the controller does not answer)."""
        state = self.state if self._released else self.refresh()
        if state is not None and state.state == "ended":
            return state.reason or "ended"
        return "Released" if self._released else None

    @property
    def id(self) -> str:
        """The lease's name without ``namespaces/NS/leases/`` (what ``jmp get leases`` lists)."""
        return (self.name or "").rsplit("/", 1)[-1]

    def end_notice(self) -> str | None:
        """``the controller lease ID of EXPORTER ended (Expired) ...; connect again ...``, asking
        the controller; None while the lease holds."""
        ended = self.ended()
        if ended is None:
            return None
        alias = self.config.alias
        return (
            f"the controller lease {self.id} of {self.exporter} ended ({ended}) at {self.where}; "
            f"connect again for a new one: jj.connect(controller={alias!r}, selector={self.selector!r}) "
            f"or %jmp connect --controller {alias} --selector {self.selector}"
        )

    def watch(self, listener: Callable[[LeaseState], None]) -> Callable[[], None]:
        """Call ``listener(state)`` whenever the controller's answer about the lease changes: while
        :meth:`acquire` waits (each poll), then every ``WATCH_SECONDS`` from the client's loop until
        the lease ends; returns the function that stops the calls."""
        self._listeners.append(listener)
        if self.state is not None:
            listener(self.state)
        if self.socket is not None:  # granted; else acquire() starts it once the lease is Ready
            self._start_watching()
        return lambda: self._listeners.remove(listener) if listener in self._listeners else None

    def _start_watching(self) -> None:
        if (self._watch is None or self._watch.done()) and not self._released:
            self._watch = run_on_loop(self._start_watch(), RPC_TIMEOUT)

    async def _start_watch(self) -> asyncio.Task:
        return asyncio.get_running_loop().create_task(self._poll())

    async def _poll(self) -> None:
        # until the lease ends, or nobody watches (a closed widget); watch() starts it again
        while self._listeners and not self._released and (self.state is None or self.state.state != "ended"):
            try:
                self._note(await self._get())
            except grpc.aio.AioRpcError as error:  # a controller restarting: ask again later
                log.info("lease %s: GetLease at %s failed: %s", self.name, self.where, why(error))
            await asyncio.sleep(WATCH_SECONDS)

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
        if self.state is not None and self.state.state != "ended":
            self._tell(
                replace(self.state, state="ended", reason="Released", message="released by this client")
            )

    async def _release(self) -> None:
        if self._watch is not None:
            self._watch.cancel()
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


# the client's leases at the controller (``jumpstarter-jupyter lease status/release`` on a pool board
# that names a controller): what ``jmp get leases`` and ``jmp delete leases NAME`` do


def client_leases(config: ClientConfig) -> list[LeaseState]:
    """The leases the config's Client object holds or waits for at its controller (``ListLeases``)."""
    request = client_pb2.ListLeasesRequest(parent=f"namespaces/{config.settings.namespace}", only_active=True)
    answer = _client_call(config, lambda stub: stub.ListLeases(request, timeout=RPC_TIMEOUT))
    return [lease_state(lease, where(config)) for lease in answer.leases]


def delete_lease(config: ClientConfig, lease_id: str) -> None:
    """End the Client object's lease ``lease_id`` at its controller (``DeleteLease``)."""
    name = f"namespaces/{config.settings.namespace}/leases/{lease_id}"
    _client_call(
        config, lambda stub: stub.DeleteLease(client_pb2.DeleteLeaseRequest(name=name), timeout=RPC_TIMEOUT)
    )


def _client_call(config: ClientConfig, call: Callable[[client_pb2_grpc.ClientServiceStub], Any]) -> Any:
    """One ``ClientService`` call on a channel of its own; failures name the controller."""

    async def once() -> Any:
        channel = await controller_channel(config.settings, "Client")
        try:
            return await call(client_pb2_grpc.ClientServiceStub(channel))
        finally:
            await channel.close()

    try:
        return call_controller(config, once())
    except grpc.aio.AioRpcError as error:
        raise ConnectionFailed(f"{where(config)}: {why(error)}") from None
    except (OSError, TimeoutError) as exc:  # tls.insecure fetches the certificate first
        raise ConnectionFailed(f"{where(config)} is not reachable ({exc or 'no TLS answer'})") from None

"""One gRPC channel to an exporter, its report, and calls addressed by driver path.

UUIDs change whenever the exporter restarts, so clients address drivers by path and the
connection maps paths to UUIDs. After the exporter was unreachable, or answers that it no
longer knows a UUID, the connection re-reads the report and rebinds before calling again.
"""

from __future__ import annotations

import json
import logging
import os
import re
import threading
from collections.abc import Callable, Iterator
from typing import Any

import grpc
from google.protobuf import empty_pb2

from jumpstarter_jupyter.client.controller import ControllerLease
from jumpstarter_jupyter.client.errors import is_unknown_driver, translate
from jumpstarter_jupyter.client.lease import BoardLease, Lease, LeaseWatch, exporter_status, request_handover
from jumpstarter_jupyter.errors import ConnectionFailed, JumpstarterError, LeaseRequired
from jumpstarter_jupyter.protocol.codec import EncodeError, decode, encode
from jumpstarter_jupyter.protocol.metadata import LEASE_KEY, NAME_LABEL, OUR_CLIENT_LABEL, PASSPHRASE_KEY
from jumpstarter_jupyter.protocol.v1 import console_pb2_grpc, jumpstarter_pb2_grpc, lease_pb2, router_pb2
from jumpstarter_jupyter.protocol.v1 import jumpstarter_pb2 as pb

REPORT_TIMEOUT = 10.0
ROUTER_STREAM = "/jumpstarter.v1.RouterService/Stream"
OUR_UPLOAD_FRAME = (4 << 20) - 64  # payload bytes of a resource frame to ours: a 4 MiB message
CHANNEL_OPTIONS = [
    ("grpc.keepalive_time_ms", 20_000),  # upstream exporters permit pings every >= 10 s
    ("grpc.keepalive_timeout_ms", 20_000),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.max_pings_without_data", 0),
    # reconnect quickly once a restarted exporter is back (grpc's default backoff grows to 120 s);
    # not min_reconnect_backoff_ms: grpc also takes it as the connect timeout, and 100 ms
    # failed 32 clients connecting at once on a busy machine ("connect() timed out")
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 1_000),
    # a fresh channel must not inherit a shared subchannel still in reconnect backoff
    ("grpc.use_local_subchannel_pool", 1),
]
TCP_ENDPOINT = re.compile(r"^(?P<host>.+):(?P<port>\d{1,5})$")
LeaseListener = Callable[[BoardLease, "lease_pb2.LeaseEvent | None"], None]
log = logging.getLogger("jumpstarter_jupyter.connection")


def channel_target(endpoint: str) -> str:
    """gRPC target for ``host:port``, ``unix:/path`` or a bare socket path (upstream's rule)."""
    if endpoint.startswith("unix:"):
        return f"unix:{os.path.abspath(endpoint[5:])}"
    match = TCP_ENDPOINT.match(endpoint)
    if match and 1 <= int(match["port"]) <= 65535:
        return endpoint
    return f"unix:{os.path.abspath(endpoint)}"


class Connection:
    """A channel, the exporter's report and the path -> UUID map (thread-safe)."""

    def __init__(
        self,
        endpoint: str,
        passphrase: str | None = None,
        tls_ca: str | None = None,
        name: str = "dut",
        lease_token: str | None = None,
    ):
        self.endpoint, self.name = endpoint, name
        self.board: str | None = None  # the pool board's name, when connected by name or by selector
        # the upstream controller's lease this connection reaches its exporter through (deleted at close)
        self.controller_lease: ControllerLease | None = None
        self.target = channel_target(endpoint)
        # a lease token someone else holds (run-notebooks' runs) goes with every call; it also
        # passes an exporter's passphrase check, as it does for upstream clients
        secret = passphrase or lease_token
        token = ((LEASE_KEY, lease_token),) if lease_token else ()
        self.credentials: tuple[tuple[str, str], ...] = (
            ((PASSPHRASE_KEY, secret),) if secret else ()
        ) + token
        self.metadata = self.credentials  # plus the lease's token while one is held
        self.lease: Lease | None = None
        self.lease_options: dict[str, Any] = {}  # purpose, duration: what a later acquire() asks for
        self._lease_listeners: list[LeaseListener] = []
        self._lease_watch: LeaseWatch | None = None
        self._lease_status: lease_pb2.LeaseStatus | None = None
        self._lease_status_known = False
        self.board_lease: BoardLease | None = None  # last known, once watch_lease() started following it
        self.tls_ca = tls_ca
        self.bulk_unreachable: set = set()  # bulk addresses uploads no longer try (protocol/bulk.py)
        self._retired: list[grpc.Channel] = []
        self._open_channel()
        self._lock = threading.Lock()
        self._stale = False
        self.report = self._get_report()
        self._bind(self.report)

    def _open_channel(self) -> None:
        if self.tls_ca is not None:
            credentials = grpc.ssl_channel_credentials(
                open(self.tls_ca, "rb").read() if self.tls_ca else None
            )
            self.channel = grpc.secure_channel(self.target, credentials, options=CHANNEL_OPTIONS)
        else:
            self.channel = grpc.insecure_channel(self.target, options=CHANNEL_OPTIONS)
        self.exporter = jumpstarter_pb2_grpc.ExporterServiceStub(self.channel)
        # RouterService.Stream with frames built by hand (frames.encode_data: protobuf's bytes,
        # one copy fewer); the answers are parsed by protobuf as usual
        self.router_stream = self.channel.stream_stream(
            ROUTER_STREAM,
            request_serializer=None,
            response_deserializer=router_pb2.StreamResponse.FromString,
            _registered_method=True,
        )
        self.console = console_pb2_grpc.ConsoleServiceStub(self.channel)

    # report and rebinding
    def _get_report(self) -> pb.GetReportResponse:
        try:
            return self.exporter.GetReport(empty_pb2.Empty(), metadata=self.metadata, timeout=REPORT_TIMEOUT)
        except grpc.RpcError as err:
            raise self._failure(err, self.name, "connect") from None

    def _bind(self, report: pb.GetReportResponse) -> None:
        """Compute each entry's path from its parent chain (pre-order: parents come first)."""
        path_of: dict[str, str] = {}
        entries = []
        for entry in report.reports:
            if entry.HasField("parent_uuid"):
                parent = path_of.get(entry.parent_uuid, "")
                name = entry.labels.get(NAME_LABEL, entry.uuid)
                path = f"{parent}.{name}" if parent else name
            else:
                path = ""
            path_of.setdefault(entry.uuid, path)
            entries.append((path, entry))
        self.entries = entries
        self.paths = {path: entry.uuid for path, entry in entries}
        self.ours = bool(entries and OUR_CLIENT_LABEL in entries[0][1].labels)
        self.frame_size = 1 << 20 if self.ours else 1 << 16  # upstream peers get upstream's framing
        # resource uploads to ours: the largest frame any gRPC server takes by default (a 4 MiB
        # message), since fewer, larger messages are what makes a flash fast
        self.upload_frame_size = OUR_UPLOAD_FRAME if self.ours else self.frame_size

    def refresh(self) -> bool:
        """Re-read the report; True when the exporter restarted (new UUIDs)."""
        with self._lock:
            if self._stale:
                # a fresh channel tries at once, where the old one may sit in reconnect backoff;
                # the old one keeps serving streams still open on it until close()
                self._retired.append(self.channel)
                self._open_channel()
        report = self._get_report()
        with self._lock:
            restarted = report.uuid != self.report.uuid
            self.report, self._stale = report, False
            self._bind(report)
        return restarted

    def reconnect(self) -> bool:
        """After a call found the exporter unreachable: a fresh channel and report (see ``refresh``)."""
        self._stale = True
        return self.refresh()

    def uuid(self, path: str) -> str:
        if self._stale:
            self.refresh()
        try:
            return self.paths[path]
        except KeyError:
            raise ConnectionFailed(
                f"{self.display(path)}: the exporter at {self.endpoint} no longer has this driver"
            ) from None

    def display(self, path: str) -> str:
        return f"{self.name}.{path}" if path else self.name

    # calls
    def call(self, path: str, method: str, args: list[Any]) -> Any:
        """Unary DriverCall; rebinds once if the exporter restarted under us."""
        request_args = self._encode_args(path, method, args)
        for attempt in (1, 2):
            request = pb.DriverCallRequest(uuid=self.uuid(path), method=method, args=request_args)
            try:
                response = self.exporter.DriverCall(request, metadata=self.metadata)
                return decode(response.result)
            except grpc.RpcError as err:
                if attempt == 1 and self._should_retry(err):
                    continue
                raise self._failure(err, self.display(path), method) from None

    def streaming_call(self, path: str, method: str, args: list[Any]) -> Iterator[Any]:
        """StreamingDriverCall, yielding decoded results; cancelled when the iterator closes."""
        request = pb.StreamingDriverCallRequest(
            uuid=self.uuid(path), method=method, args=self._encode_args(path, method, args)
        )
        responses = self.exporter.StreamingDriverCall(request, metadata=self.metadata)
        try:
            for response in responses:
                yield decode(response.result)
        except grpc.RpcError as err:
            self._should_retry(err)
            raise self._failure(err, self.display(path), method) from None
        finally:
            responses.cancel()

    def _encode_args(self, path: str, method: str, args: list[Any]) -> list:
        try:
            return [encode(arg) for arg in args]
        except EncodeError as exc:
            from jumpstarter_jupyter.errors import DriverInvalidArgument

            raise DriverInvalidArgument(self.display(path), method, str(exc)) from None

    def _failure(self, err: grpc.RpcError, name: str, method: str) -> JumpstarterError:
        """The error a failed call raises; through a controller lease that has ended (expired, or
        released), that lease's end and how to get a new one rather than a cancelled call."""
        error = translate(err, self.endpoint, name, method)
        lease = self.controller_lease
        if lease is None or not isinstance(error, (ConnectionFailed, LeaseRequired)):
            return error
        ended = lease.end_notice()
        return error if ended is None else ConnectionFailed(f"{name}.{method}: {ended}")

    def _should_retry(self, err: grpc.RpcError) -> bool:
        if err.code() == grpc.StatusCode.UNAVAILABLE:
            self._stale = True
            return False  # fail fast while the exporter is down
        if is_unknown_driver(err):
            try:
                self.refresh()
            except ConnectionFailed:
                return False
            return True
        return False

    # leases
    def lease_status(self) -> lease_pb2.LeaseStatus | None:
        """The exporter's lease status; None when it has no lease service (upstream's)."""
        return exporter_status(self.channel, self.credentials, self.endpoint)

    def read_board_lease(self) -> BoardLease:
        """The board's lease as the exporter reports it now, seen by this connection."""
        return BoardLease.of(self.lease_status(), self.lease)

    def acquire(self, status: lease_pb2.LeaseStatus | None = None, **options: Any) -> Lease:
        """Take the board's lease (waiting in line); every later call carries its token.

        ``status``: the exporter's lease status when the caller has just read it (else it is
        read here). ``options``: ``purpose``, ``duration`` (s), ``wait`` (s), ``hooks``, ``on_queued``.
        """
        status = status or self.lease_status()
        if status is None:
            raise ConnectionFailed(
                f"the exporter at {self.endpoint} has no lease service (an upstream exporter?)"
            )
        wait, on_queued = options.pop("wait", None), options.pop("on_queued", None)
        lease = Lease(
            self.channel,
            self.credentials,
            self.endpoint,
            heartbeat=status.heartbeat_seconds,
            hub_identity=status.hub_identity,
            tls=self.tls_ca is not None,
            **options,
        )
        return self.adopt(lease.wait_for_grant(wait, on_queued))

    def adopt(self, lease: Lease, channel: grpc.Channel | None = None) -> Lease:
        """Make a granted ``lease`` this connection's: its calls carry the token, ``release_lease()``
        and ``close()`` give it back. ``channel``: the one the lease was taken on, closed by ``close()``."""
        if channel is not None:
            self._retired.append(channel)
        self.lease = lease
        self.metadata = (*self.credentials, (LEASE_KEY, lease.token))
        lease.listeners.append(self._tell_lease_listeners)
        self._tell_lease_listeners(None)
        return lease

    def release_lease(self) -> None:
        """Give the lease back (if one is held); calls go on as a watcher's."""
        lease, self.lease = self.lease, None
        self.metadata = self.credentials
        if lease is not None:
            lease.release()
            self._tell_lease_listeners(None)

    def request_handover(self, message: str = "") -> str:
        """Ask whoever holds the board to hand it over (a notice in their panel)."""
        return request_handover(
            self.channel, self.credentials, self.endpoint, message, tls=self.tls_ca is not None
        )

    def watch_lease(self, listener: LeaseListener) -> Callable[[], None]:
        """Call ``listener(board_lease, event)`` on a background thread whenever the board's
        lease changes (who holds it, the queue, this connection's own lease and its events:
        expiry warnings, hand-over requests). Returns the function that stops the calls."""
        with self._lock:
            self._lease_listeners.append(listener)
            if self._lease_watch is None:
                self._lease_watch = LeaseWatch(lambda: self.channel, self.credentials, self._on_lease_status)
            known = self.board_lease
        if known is not None:
            listener(known, None)
        return lambda: self._lease_listeners.remove(listener) if listener in self._lease_listeners else None

    def _on_lease_status(self, status: lease_pb2.LeaseStatus | None) -> None:
        self._lease_status, self._lease_status_known = status, True
        self._tell_lease_listeners(None)

    def _tell_lease_listeners(self, event: lease_pb2.LeaseEvent | None) -> None:
        if not self._lease_status_known:
            return
        self.board_lease = BoardLease.of(self._lease_status, self.lease)
        for listener in list(self._lease_listeners):
            try:
                listener(self.board_lease, event)
            except Exception:  # one broken listener must not starve the others
                log.exception("lease listener %r failed", listener)

    def close(self) -> None:
        if self._lease_watch is not None:
            self._lease_watch.close()
        self.release_lease()
        for channel in (*self._retired, self.channel):
            channel.close()
        if self.controller_lease is not None:
            self.controller_lease.release()


def request_json(value: dict) -> str:
    return json.dumps(value, separators=(",", ":"))

"""A lease held by this process: ``dut.lease``.

The exporter's ``Hold`` stream stays open while the lease lives; a thread sends a heartbeat
every third of the exporter's period and another reads events (expiry warning, extension,
hand-over requests, end). When this process dies the stream breaks and the exporter frees the
board within one heartbeat period; a process that exits normally releases its leases on the
way out. While held, every call of the connection carries the lease's token.

Watchers (and holders' panels) follow the board's lease with :class:`LeaseWatch`: the
exporter's ``Watch`` stream sends the status again after every change.
"""

from __future__ import annotations

import atexit
import getpass
import logging
import os
import queue
import socket
import sys
import threading
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import grpc

from jumpstarter_jupyter.client.errors import translate
from jumpstarter_jupyter.client.identity import hub_credential, hub_user
from jumpstarter_jupyter.durations import format_duration
from jumpstarter_jupyter.errors import JumpstarterError, LeaseTimeout
from jumpstarter_jupyter.protocol.v1 import lease_pb2 as pb
from jumpstarter_jupyter.protocol.v1 import lease_pb2_grpc

log = logging.getLogger("jumpstarter_jupyter.lease")

Listener = Callable[[pb.LeaseEvent], None]


def who_am_i() -> str:
    """Who this client says it is: the JupyterHub user inside JupyterHub (never the container's
    account, such as ``jovyan``), else ``user@host``. An exporter that verifies hub users checks
    the claim against the hub (:mod:`jumpstarter_jupyter.client.identity`)."""
    return hub_user() or f"{getpass.getuser()}@{socket.gethostname()}"


def where_am_i() -> tuple[str, str]:
    """(kernel id, JupyterHub server) of this process when it is a Jupyter kernel, else ("", "").

    Sent with a lease request, so the lab's devices sidebar can tell "held by this notebook".
    """
    kernel_app = sys.modules.get("ipykernel.kernelapp")  # never imported here: only a kernel has it
    kernel_id = ""
    if kernel_app is not None and kernel_app.IPKernelApp.initialized():
        kernel_id = Path(kernel_app.IPKernelApp.instance().connection_file).stem.removeprefix("kernel-")
    user = os.environ.get("JUPYTERHUB_USER", "")
    return kernel_id, f"{user}/{os.environ.get('JUPYTERHUB_SERVER_NAME', '')}" if user else ""


def lease_service(channel: grpc.Channel) -> lease_pb2_grpc.LeaseServiceStub:
    return lease_pb2_grpc.LeaseServiceStub(channel)


# every lease this process holds, released when the interpreter exits (a kernel shut down or
# restarted, a pytest or papermill run ending): the board is free at once, not a heartbeat later
_held: weakref.WeakSet[Lease] = weakref.WeakSet()
READER_JOIN_TIMEOUT = 5.0  # s a release or close waits for its stream reader; only a stuck callback takes it


@atexit.register
def _release_all() -> None:
    for lease in list(_held):
        lease.release()


def held_leases() -> list[Lease]:
    """Every lease this process holds now."""
    return [lease for lease in list(_held) if lease.active]


def exporter_status(channel: grpc.Channel, metadata: tuple, endpoint: str) -> pb.LeaseStatus | None:
    """The exporter's lease status, or None when it has no lease service (upstream's)."""
    try:
        return lease_service(channel).Status(pb.StatusRequest(), metadata=metadata, timeout=10)
    except grpc.RpcError as err:
        if err.code() == grpc.StatusCode.UNIMPLEMENTED:
            return None
        raise translate(err, endpoint, "lease", "status") from None


class Withdrawn(JumpstarterError):
    """This request left the line (``Lease.withdraw()``, or it declined the board offered)."""


class Lease:
    """The board is ours while this object is held: ``extend()``, ``release()``, ``remaining``.

    Made in two steps: the constructor asks (opens the exporter's ``Hold`` stream) and
    :meth:`wait_for_grant` waits in line. ``listeners`` are called (on a background thread)
    with every event the exporter sends: a place for widgets to hook in. ``hub_identity``: the
    exporter verifies JupyterHub users, so the request carries a name-only hub credential
    (``tls``: the channel uses TLS). ``offers``: the exporter offers the board at the front of
    the line and this request answers (what a request waiting at several boards needs).
    """

    def __init__(
        self,
        channel: grpc.Channel,
        metadata: tuple,
        endpoint: str,
        *,
        purpose: str = "",
        duration: float = 0,
        hooks: bool = True,
        heartbeat: float = 10.0,
        hub_identity: bool = False,
        tls: bool = False,
        offers: bool = False,
    ):
        self.channel, self.endpoint, self.metadata = channel, endpoint, metadata
        self.stub = lease_service(channel)
        self.holder, self.purpose = who_am_i(), purpose
        self.token = ""
        self.since = self.expires = 0.0
        self.ended: str | None = None  # why it ended, once it has
        self.warning = ""  # the exporter's expiry warning, until the lease is extended
        self.requests: list[tuple[str, float]] = []  # hand-over requests: (who asks, unix seconds)
        self.listeners: list[Listener] = []
        self.position = 0  # the place in line while waiting (1: next)
        self._requests: queue.Queue[pb.HoldRequest | None] = queue.Queue()
        kernel_id, server = where_am_i()
        hub_token = hub_credential(endpoint, tls) if hub_identity else ""
        self._requests.put(
            pb.HoldRequest(
                holder=self.holder,
                purpose=purpose,
                duration=duration,
                one_command=not hooks,
                kernel_id=kernel_id,
                server=server,
                hub_token=hub_token,
                offers=offers,
            )
        )
        self._stopped = threading.Event()
        self._reader: threading.Thread | None = None  # follows the granted lease's events
        self.released = self.withdrawn = self.declined = False
        self._period = max(heartbeat / 3, 0.05)
        self._beating = False
        self._responses = self.stub.Hold(iter(self._requests.get, None), metadata=metadata)
        if offers:  # such a waiter heartbeats in line too: the exporter drops a silent one
            self._start_beating()

    def _start_beating(self) -> None:
        self._beating = True
        threading.Thread(target=self._beat, args=(self._period,), name="lease heartbeat", daemon=True).start()

    def wait_for_grant(
        self,
        wait: float | None = None,
        on_queued: Callable[[int], None] | None = None,
        on_offer: Callable[[Lease], bool] | None = None,
    ) -> Lease:
        """Wait in line (bounded by ``wait`` seconds; 0: not at all) until the lease is granted.

        ``on_queued(position)`` hears each new place in line; ``on_offer(lease)`` answers an
        offer (True: take the board; False: decline it, raising :class:`Withdrawn`).
        """
        self._granted(wait, on_queued or (lambda position: None), on_offer)
        _held.add(self)
        if not self._beating:
            self._start_beating()
        self._reader = threading.Thread(target=self._read, name="lease events", daemon=True)
        self._reader.start()
        return self

    def withdraw(self) -> None:
        """Leave the line (from any thread): :meth:`wait_for_grant` raises :class:`Withdrawn`."""
        self.withdrawn = True
        self.release()

    def _granted(
        self, wait: float | None, on_queued: Callable[[int], None], on_offer: Callable[[Lease], bool] | None
    ) -> None:
        timer = threading.Timer(wait, self._responses.cancel) if wait else None
        if timer is not None:
            timer.daemon = True
            timer.start()
        try:
            for event in self._responses:
                if event.kind == pb.LEASE_EVENT_QUEUED:
                    self.position = event.position
                    if wait == 0:
                        self._responses.cancel()
                        raise LeaseTimeout(self._still_waiting(0, self.position))
                    on_queued(self.position)
                elif event.kind == pb.LEASE_EVENT_OFFERED:
                    self._answer(on_offer is None or on_offer(self))
                elif event.kind == pb.LEASE_EVENT_HOOK_OUTPUT:
                    log.info("%s", event.message)
                elif event.kind == pb.LEASE_EVENT_GRANTED:
                    self.token = event.token
                    self._take(event.lease)
                    return
                elif event.kind == pb.LEASE_EVENT_ENDED and self.declined:
                    raise Withdrawn(f"declined the board offered at {self.endpoint}")
                elif event.kind == pb.LEASE_EVENT_ENDED:
                    raise JumpstarterError(f"lease on {self.endpoint} refused: {event.message}")
            raise JumpstarterError(f"lease on {self.endpoint}: the exporter closed the request")
        except grpc.RpcError as err:
            self._close_stream()
            if self.withdrawn:
                raise Withdrawn(f"left the line at {self.endpoint}") from None
            if err.code() == grpc.StatusCode.CANCELLED and timer is not None and not timer.is_alive():
                raise LeaseTimeout(self._still_waiting(wait, self.position)) from None
            raise translate(err, self.endpoint, "lease", "acquire") from None
        except BaseException:
            self._close_stream()
            raise
        finally:
            if timer is not None:
                timer.cancel()

    def _close_stream(self) -> None:
        """Stop the heartbeats and end the ``Hold`` stream (its request thread too)."""
        self._stopped.set()
        self._requests.put(None)
        self._responses.cancel()

    def _answer(self, accept: bool) -> None:
        """Answer the exporter's offer: ACCEPT, or DECLINE (the exporter then ends the request)."""
        if accept:
            self._requests.put(pb.HoldRequest(answer=pb.HOLD_ANSWER_ACCEPT))
            return
        self.declined = True  # the exporter ends the request at once: see the ENDED event
        self._requests.put(pb.HoldRequest(answer=pb.HOLD_ANSWER_DECLINE))

    def _still_waiting(self, wait: float, position: int) -> str:
        status = exporter_status(self.channel, self.metadata, self.endpoint)
        held = f": {describe(status.lease)}" if status is not None and status.HasField("lease") else ""
        waited = f"within {format_duration(wait)}, still number {position} in line" if wait else "now"
        return f"no lease on {self.endpoint} {waited}{held}"

    def _take(self, info: pb.LeaseInfo) -> None:
        self.since, self.expires = info.since, info.expires

    def _beat(self, period: float) -> None:
        while not self._stopped.wait(period):
            self._requests.put(pb.HoldRequest())

    def _read(self) -> None:
        try:
            for event in self._responses:
                self._on(event)
        except grpc.RpcError as err:
            if self.ended is None:
                self.ended = f"the exporter went away ({err.code().name})"
        finally:
            self._stopped.set()

    def _on(self, event: pb.LeaseEvent) -> None:
        if event.kind in (pb.LEASE_EVENT_EXTENDED, pb.LEASE_EVENT_GRANTED):
            self._take(event.lease)
            self.warning = ""
        elif event.kind == pb.LEASE_EVENT_EXPIRING:
            self.warning = event.message
            log.warning("lease on %s: %s", self.endpoint, event.message)
        elif event.kind == pb.LEASE_EVENT_HOOK_OUTPUT:
            log.info("%s", event.message)
        elif event.kind == pb.LEASE_EVENT_HANDOVER_REQUESTED:
            self.requests.append((event.message, time.time()))
            log.info("lease on %s: %s", self.endpoint, event.message)  # panels show it; no stderr in a cell
        elif event.kind == pb.LEASE_EVENT_ENDED:
            self.ended = event.message
            level = logging.INFO if self.released else logging.WARNING  # news only when not asked for
            log.log(level, "lease on %s ended: %s", self.endpoint, event.message)
        for listener in list(self.listeners):
            listener(event)

    @property
    def active(self) -> bool:
        """True while the lease is granted and has not ended."""
        return bool(self.token) and self.ended is None and not self._stopped.is_set()

    @property
    def remaining(self) -> float:
        """Seconds until the hard expiry (0 once ended)."""
        return max(0.0, self.expires - time.time()) if self.active else 0.0

    def extend(self, duration: float) -> None:
        """Make the lease run ``duration`` seconds from now (capped by the exporter's maximum)."""
        try:
            self._take(
                self.stub.Extend(
                    pb.ExtendRequest(token=self.token, duration=duration), metadata=self.metadata, timeout=10
                )
            )
        except grpc.RpcError as err:
            raise translate(err, self.endpoint, "lease", "extend") from None

    def release(self) -> None:
        """Give the board back (the exporter's ``afterLease`` hook runs); idempotent."""
        self.released = True
        if self.active:
            try:
                self.stub.Release(pb.ReleaseRequest(token=self.token), metadata=self.metadata, timeout=30)
            except grpc.RpcError as err:
                log.warning("releasing the lease on %s: %s", self.endpoint, err.details())
            self.ended = self.ended or "released"
        self._close_stream()
        # the reader leaves gRPC once the cancel reaches it: a daemon thread stopped at exit
        # holding the call's lock would deadlock the call's garbage collection (see LeaseWatch)
        if self._reader is not None and self._reader is not threading.current_thread():
            self._reader.join(READER_JOIN_TIMEOUT)
        _held.discard(self)

    def __repr__(self) -> str:
        if not self.active:
            return f"<Lease on {self.endpoint}: ended ({self.ended})>"
        purpose = f" ({self.purpose})" if self.purpose else ""
        return f"<Lease on {self.endpoint}: {self.holder}{purpose}, {format_duration(self.remaining)} left>"


def describe(info: pb.LeaseInfo | BoardLease) -> str:
    """``held by alice@lab (bring-up), 12 min left``."""
    purpose = f" ({info.purpose})" if info.purpose else ""
    verified = "" if info.verified else ", unverified"
    return f"held by {info.holder}{purpose}{verified}, {format_duration(info.expires - time.time())} left"


@dataclass(frozen=True)
class Waiter:
    """One client waiting in line for a board's lease."""

    holder: str
    purpose: str = ""
    since: float = 0.0  # unix seconds


@dataclass(frozen=True)
class BoardLease:
    """A board's lease as one connection sees it: what its panel draws.

    ``mine``: this connection controls the board (it holds the lease, or its credential is a
    lease hook's). ``waiting``: those in line, first in line first. ``warning``, ``requests``
    and ``ended`` are this connection's own lease's: the expiry warning, hand-over requests
    ((who asks, unix seconds)), and why it ended when its holder did not release it.
    """

    required: bool = False
    holder: str = ""  # "" when nobody holds the board
    purpose: str = ""
    since: float = 0.0
    expires: float = 0.0
    verified: bool = False
    waiting: tuple[Waiter, ...] = ()
    mine: bool = False
    supported: bool = True  # False: the exporter has no lease service (an upstream exporter)
    warning: str = ""
    requests: tuple[tuple[str, float], ...] = ()
    ended: str = ""

    @classmethod
    def of(cls, status: pb.LeaseStatus | None, own: Lease | None) -> BoardLease:
        """The status the exporter sent, seen by the connection holding ``own`` (or no lease)."""
        mine = own is not None and own.active
        about_own = (
            {}
            if own is None
            else dict(
                warning=own.warning if mine else "",
                requests=tuple(own.requests) if mine else (),
                ended="" if mine or own.released else (own.ended or ""),
            )
        )
        if status is None:
            return cls(supported=False, mine=mine, **about_own)
        info = status.lease if status.HasField("lease") else None
        return cls(
            required=status.required,
            mine=mine or status.caller_controls,
            waiting=tuple(Waiter(w.holder, w.purpose, w.since) for w in status.queue),
            **about_own,
            **(
                {}
                if info is None
                else dict(
                    holder=info.holder,
                    purpose=info.purpose,
                    since=info.since,
                    expires=info.expires,
                    verified=info.verified,
                )
            ),
        )

    @property
    def queue(self) -> tuple[str, ...]:
        """Who waits, first in line first."""
        return tuple(waiter.holder for waiter in self.waiting)

    @property
    def locked(self) -> str:
        """Why this connection may not control the board now; "" when it may."""
        if self.mine or not self.required:
            return ""
        if not self.holder:
            return "nobody holds the board: take the lease to control it"
        return f"held by {self.holder}" + (f" ({self.purpose})" if self.purpose else "")

    @property
    def remaining(self) -> float:
        """Seconds until the lease's hard expiry (0 when nobody holds it)."""
        return max(0.0, self.expires - time.time()) if self.holder else 0.0


class LeaseWatch:
    """Follow an exporter's lease status on a thread: ``on_status`` gets each new status
    (None once for an exporter without a lease service). A broken stream is opened again
    (the exporter restarting) until ``close()``."""

    RETRY = (0.2, 5.0)  # first and longest pause before opening a broken stream again

    def __init__(
        self,
        channel: Callable[[], grpc.Channel],
        metadata: tuple,
        on_status: Callable[[pb.LeaseStatus | None], None],
    ):
        self._channel, self._metadata, self._on_status = channel, metadata, on_status
        self._closed = threading.Event()
        self._stream: grpc.Future | None = None
        self._thread = threading.Thread(target=self._run, name="lease watch", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        pause = self.RETRY[0]
        while not self._closed.is_set():
            try:
                self._stream = lease_service(self._channel()).Watch(
                    pb.StatusRequest(), metadata=self._metadata
                )
                if self._closed.is_set():
                    self._stream.cancel()
                for status in self._stream:
                    pause = self.RETRY[0]
                    self._on_status(status)
            except grpc.RpcError as err:
                if err.code() == grpc.StatusCode.UNIMPLEMENTED:
                    self._on_status(None)
                    return
                log.debug("lease watch: %s", err.code().name)
            self._closed.wait(pause)  # not a poll: a pause before opening a broken stream again
            pause = min(pause * 2, self.RETRY[1])

    def close(self) -> None:
        """Stop following, and wait (``READER_JOIN_TIMEOUT`` at most) until the thread has left gRPC: a
        daemon thread the interpreter stops at exit while it holds a call's lock would deadlock
        the garbage collection of that call (grpcio's ``__del__`` takes the lock)."""
        self._closed.set()
        if self._stream is not None:
            self._stream.cancel()
        if self._thread is not threading.current_thread():
            self._thread.join(READER_JOIN_TIMEOUT)


def release(channel: grpc.Channel, metadata: tuple, endpoint: str, token: str) -> str:
    """Give back the lease ``token`` names (held by another process); the exporter's answer."""
    try:
        answer = lease_service(channel).Release(pb.ReleaseRequest(token=token), metadata=metadata, timeout=30)
        return answer.message
    except grpc.RpcError as err:
        raise translate(err, endpoint, "lease", "release") from None


def force_release(channel: grpc.Channel, metadata: tuple, endpoint: str, admin_passphrase: str) -> str:
    """End whoever's lease with the exporter's admin credential; the exporter's answer."""
    try:
        return (
            lease_service(channel)
            .ForceRelease(
                pb.ForceReleaseRequest(admin_passphrase=admin_passphrase), metadata=metadata, timeout=30
            )
            .message
        )
    except grpc.RpcError as err:
        raise translate(err, endpoint, "lease", "force-release") from None


def request_handover(
    channel: grpc.Channel, metadata: tuple, endpoint: str, message: str = "", tls: bool = False
) -> str:
    """Ask the board's holder to hand it over; the exporter's answer. Where the exporter verifies
    JupyterHub users, the request proves who asks (``tls``: the channel uses TLS)."""
    status = exporter_status(channel, metadata, endpoint)
    hub_token = hub_credential(endpoint, tls) if status is not None and status.hub_identity else ""
    try:
        return (
            lease_service(channel)
            .RequestHandover(
                pb.HandoverRequest(requester=who_am_i(), message=message, hub_token=hub_token),
                metadata=metadata,
                timeout=10,
            )
            .message
        )
    except grpc.RpcError as err:
        raise translate(err, endpoint, "lease", "request_handover") from None

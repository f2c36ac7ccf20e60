"""Join an upstream Jumpstarter controller: register, report status, follow leases, serve
through its router.

With ``endpoint`` and ``token`` in its config, the exporter registers with the controller
(``Register`` with its labels and driver reports), reports its status and follows the ``Status``
stream. When the controller leases it (``leased=true``), the lease's client joins our lease line
like any other request (``Leases.hold``, with a heartbeat the exporter sends for it): while it
waits behind a direct client the controller sees ``BEFORE_LEASE_HOOK`` and a message naming the
holder (so its client may dial and watch, as direct clients watch), then ``LEASE_READY`` once the
board is its. Meanwhile ``Listen`` yields one router endpoint and token per client dial; each
becomes a ``RouterService.Stream`` whose DATA frames carry one plaintext HTTP/2 connection, which
the exporter bridges to a private unix socket served by the same services as ``--listen``
(calls arriving there run under the controller lease: ``ROUTED_CREDENTIAL``).

When the controller or a router goes away, the exporter logs why and tries again with backoff;
direct clients keep working throughout. At stop it reports OFFLINE and unregisters, within a
few seconds whatever the controller does.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import shutil
import tempfile
import time
from collections.abc import AsyncIterator, Callable

import grpc

from jumpstarter_jupyter.aio_loop import first_to_end
from jumpstarter_jupyter.controller_channel import (
    ControllerSettings,
    carry,
    controller_channel,
    router_channel,
    why,
)
from jumpstarter_jupyter.exporter.hooks import AFTER, BEFORE
from jumpstarter_jupyter.exporter.leases import ROUTED_CREDENTIAL, Lease, Leases
from jumpstarter_jupyter.exporter.report import Tree
from jumpstarter_jupyter.protocol.v1 import common_pb2 as status_pb
from jumpstarter_jupyter.protocol.v1 import jumpstarter_pb2 as pb
from jumpstarter_jupyter.protocol.v1 import jumpstarter_pb2_grpc, router_pb2_grpc
from jumpstarter_jupyter.protocol.v1 import lease_pb2 as lease_pb

log = logging.getLogger("jumpstarter_jupyter.exporter.controller")

RPC_TIMEOUT = 10.0  # seconds for one unary call to the controller
STOP_TIMEOUT = 3.0  # seconds reporting OFFLINE and unregistering may take at stop
FIRST_RETRY, LAST_RETRY = 0.5, 30.0  # backoff between attempts, doubling
LINGER = 5.0  # seconds a lease's router streams stay up after it ended, for its clients to see so
HOOK_WARNING = "[HOOK_WARNING] "  # upstream's prefix of a status message that carries a hook's warning
STATUS_NAMES = {
    value.number: value.name.removeprefix("EXPORTER_STATUS_")
    for value in status_pb.DESCRIPTOR.enum_types_by_name["ExporterStatus"].values
}


class Backoff:
    """Waits that double from ``FIRST_RETRY`` to ``LAST_RETRY``, back to the first after a success."""

    def __init__(self) -> None:
        self.delay = FIRST_RETRY

    def next(self) -> float:
        delay, self.delay = self.delay, min(self.delay * 2, LAST_RETRY)
        return delay

    def reset(self) -> None:
        self.delay = FIRST_RETRY


class RoutedCalls(grpc.aio.ServerInterceptor):
    """On a controller lease's private server: every call runs under that lease."""

    def __init__(self, session: LeaseSession):
        self.session = session

    async def intercept_service(self, continuation, details):
        # set in the call's own task, so the handler that runs next in it sees it
        ROUTED_CREDENTIAL.set(self.session.token)
        return await continuation(details)


class ControllerLink:
    """The exporter's registration with one controller, kept up until :meth:`stop`."""

    def __init__(
        self,
        settings: ControllerSettings,
        tree: Tree,
        leases: Leases,
        routed_server: Callable[[LeaseSession], grpc.aio.Server],
    ):
        """``routed_server(session)`` makes (unstarted) the server of one lease's router streams:
        the services of ``--listen``, every call under the lease (:class:`RoutedCalls`)."""
        self.settings, self.tree, self.leases, self.routed_server = settings, tree, leases, routed_server
        self.sockets = tempfile.mkdtemp(prefix="jumpstarter-routed-")  # private: mode 0700
        self.session: LeaseSession | None = None
        self.stub: jumpstarter_pb2_grpc.ControllerServiceStub | None = None  # while connected
        self.connected = asyncio.Event()
        self.registered = False  # at least once: unregister at stop
        self.reported = (status_pb.EXPORTER_STATUS_AVAILABLE, "Available")
        self._status_changed = asyncio.Event()
        self._status_sent = asyncio.Event()  # the controller has the latest status
        self._task: asyncio.Task | None = None

    def start(self) -> None:
        """Connect (and keep connecting) in the background; call on the exporter's loop."""
        self._task = asyncio.ensure_future(self._run())

    # --- the connection ------------------------------------------------------------------
    async def _run(self) -> None:
        backoff = Backoff()
        while True:
            started = time.monotonic()
            try:
                await self._connected(backoff)
                reason = "the controller ended the status stream"
            except (grpc.aio.AioRpcError, OSError, ValueError, TimeoutError) as exc:
                reason = why(exc)
            except Exception as exc:  # noqa: BLE001 - a bug here must not end the link for good: log, retry
                log.exception("unexpected error with the controller at %s", self.settings.endpoint)
                reason = why(exc)
            finally:
                self.stub = None
                self.connected.clear()
            if time.monotonic() - started > LAST_RETRY:
                backoff.reset()  # it held a while: a new outage starts with quick retries
            delay = backoff.next()
            if self.registered:
                log.warning(
                    "lost the controller at %s (%s); reconnecting in %.1f s",
                    self.settings.endpoint,
                    reason,
                    delay,
                )
            else:
                log.warning(
                    "cannot register with the controller at %s (%s); retrying in %.1f s",
                    self.settings.endpoint,
                    reason,
                    delay,
                )
            await asyncio.sleep(delay)

    async def _connected(self, backoff: Backoff) -> None:
        channel = await controller_channel(self.settings, "Exporter")
        async with channel:
            stub = jumpstarter_pb2_grpc.ControllerServiceStub(channel)
            report = self.tree.report
            await stub.Register(
                pb.RegisterRequest(labels=report.labels, reports=report.reports), timeout=RPC_TIMEOUT
            )
            self.registered = True
            backoff.reset()
            log.info(
                "registered with the controller at %s as %s/%s",
                self.settings.endpoint,
                self.settings.namespace,
                self.settings.name,
            )
            self.stub = stub
            self.connected.set()
            self._status_changed.set()  # (re)send the status we are in
            await first_to_end(self._send_statuses(stub), self._follow(stub))

    async def _send_statuses(self, stub: jumpstarter_pb2_grpc.ControllerServiceStub) -> None:
        """ReportStatus whenever it changes; the latest wins when several come at once."""
        while True:
            await self._status_changed.wait()
            self._status_changed.clear()
            status, message = self.reported
            await stub.ReportStatus(
                pb.ReportStatusRequest(status=status, message=message), timeout=RPC_TIMEOUT
            )
            log.info("status %s: %s", STATUS_NAMES.get(status, status), message)
            if not self._status_changed.is_set():
                self._status_sent.set()

    async def _follow(self, stub: jumpstarter_pb2_grpc.ControllerServiceStub) -> None:
        async for status in stub.Status(pb.StatusRequest()):
            current = self.session
            if status.leased and status.lease_name:
                if current is not None and current.name != status.lease_name:
                    current.end(f"the controller moved on to lease {status.lease_name}")
                    current = None
                if current is None or current.over:
                    log.info("leased to %s under %s", status.client_name or "a client", status.lease_name)
                    self.session = LeaseSession(self, status.lease_name, status.client_name)
            elif current is not None:
                current.end("the controller ended the lease")

    def report(self, status: int, message: str) -> None:
        """Tell the controller (now, or once connected) the status we are in."""
        if (status, message) != self.reported:
            self.reported = (status, message)
            self._status_sent.clear()
            self._status_changed.set()

    async def status_sent(self) -> None:
        """Wait until the controller has the latest status (``RPC_TIMEOUT`` at most: it may be away)."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(RPC_TIMEOUT):
                await self._status_sent.wait()

    async def release(self, lease_name: str) -> None:
        """Ask the controller to end ``lease_name`` (our side of it ended first)."""
        stub = self.stub
        if stub is None:
            return  # the controller is away; when it comes back its Status says what holds
        try:
            await stub.ReleaseLease(pb.ReleaseLeaseRequest(name=lease_name), timeout=RPC_TIMEOUT)
        except grpc.aio.AioRpcError as exc:
            log.warning("could not release lease %s at the controller: %s", lease_name, why(exc))

    async def stop(self) -> None:
        """Stop following the controller; report OFFLINE and unregister (a few seconds at most)."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        failed_after = self.session.lease.after_failed if self.session and self.session.lease else ""
        if self.session is not None:
            await self.session.close()
        shutil.rmtree(self.sockets, ignore_errors=True)
        if not self.registered:
            return
        try:
            async with asyncio.timeout(STOP_TIMEOUT):
                async with await controller_channel(self.settings, "Exporter") as channel:
                    stub = jumpstarter_pb2_grpc.ControllerServiceStub(channel)
                    if failed_after:  # its onFailure: exit stops the exporter (upstream says so first)
                        await stub.ReportStatus(
                            pb.ReportStatusRequest(
                                status=status_pb.EXPORTER_STATUS_AFTER_LEASE_HOOK_FAILED,
                                message=f"afterLease hook failed (on_failure=exit, shutting down): {failed_after}",
                            )
                        )
                    await stub.ReportStatus(
                        pb.ReportStatusRequest(
                            status=status_pb.EXPORTER_STATUS_OFFLINE, message="Exporter shutting down"
                        )
                    )
                    await stub.Unregister(pb.UnregisterRequest(reason="Exporter shutdown"))
            log.info("unregistered from the controller at %s", self.settings.endpoint)
        except (grpc.aio.AioRpcError, OSError, TimeoutError) as exc:
            log.warning(
                "could not unregister from the controller at %s: %s", self.settings.endpoint, why(exc)
            )


class LeaseSession:
    """One controller lease: its place in our lease line, its Listen stream and router streams."""

    def __init__(self, link: ControllerLink, name: str, client: str):
        self.link, self.name = link, name
        self.client = client.rpartition("/")[2] or "controller client"  # namespaces/NS/clients/N
        self.token = ""  # our lease's token once the board is the client's
        self.lease: Lease | None = None
        self.over = False
        self.socket_path = ""  # its private server's, where its router streams lead
        self._ended = asyncio.Event()
        self._bridges: set[asyncio.Task] = set()
        self._task = asyncio.ensure_future(self._run())

    # --- what its client sees (ExporterService on the lease's private server) --------------
    def status(self) -> tuple[int, str]:
        if self.link.session is self:
            return self.link.reported
        return status_pb.EXPORTER_STATUS_AVAILABLE, "the lease ended"

    def end_session(self) -> str:
        if self.lease is None:
            return f"lease {self.name} does not hold the board"
        self.link.leases.end(self.lease, "the client ended its session")
        return f"ended the session of lease {self.name}"

    def end(self, reason: str) -> None:
        """The controller's lease ended: leave the line or give the board back."""
        if not self._ended.is_set():
            log.info("lease %s of %s: %s", self.name, self.client, reason)
            self._ended.set()
            if self.lease is not None:
                self.link.leases.end(self.lease, reason)

    async def close(self) -> None:
        """Drop everything now (the exporter stops)."""
        self._ended.set()
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)

    async def _requests(self) -> AsyncIterator[lease_pb.HoldRequest]:
        """The Hold stream the exporter keeps for the client: the request, then heartbeats."""
        policy = self.link.leases.policy
        yield lease_pb.HoldRequest(
            holder=self.client, purpose=f"controller lease {self.name}", duration=policy.max_duration
        )
        while not self._ended.is_set():
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(policy.heartbeat / 3):
                    await self._ended.wait()
            if not self._ended.is_set():
                yield lease_pb.HoldRequest()

    async def _run(self) -> None:
        link = self.link
        self.socket_path = os.path.join(link.sockets, f"{secrets.token_hex(8)}.sock")
        server = link.routed_server(self)
        server.add_insecure_port(f"unix:{self.socket_path}")
        await server.start()
        try:
            granted = await self._hold()
            await self._after(granted)
            if self._bridges:  # its clients hear that it ended (upstream's jmp waits to see AVAILABLE)
                await asyncio.wait(self._bridges, timeout=LINGER)
        except Exception:
            log.exception("lease %s of %s failed here", self.name, self.client)
        finally:
            self.over = True  # the controller's next word on this lease starts a new session
            if link.session is self:
                link.session = None
            # the lease's connections end with it: a client of the next lease dials anew
            for bridge in list(self._bridges):
                bridge.cancel()
            await asyncio.gather(*self._bridges, return_exceptions=True)
            await server.stop(0)
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.socket_path)

    async def _hold(self) -> bool:
        """Wait in our line, hold the board, until either side ends the lease; True if it was granted."""
        link = self.link
        listen = asyncio.ensure_future(self._listen())
        granted = False
        hooks = link.leases.hooks
        if hooks is not None and hooks.get(BEFORE):
            link.report(status_pb.EXPORTER_STATUS_BEFORE_LEASE_HOOK, "beforeLease hook running")
        try:
            async for event in link.leases.hold(self._requests(), vouched=self.client):
                if event.kind == lease_pb.LEASE_EVENT_QUEUED:
                    current = link.leases.current
                    ahead = current.held_by if current is not None else "others"
                    link.report(
                        status_pb.EXPORTER_STATUS_BEFORE_LEASE_HOOK,
                        f"waiting for the board ({ahead}): {self.client} is number {event.position} in line",
                    )
                elif event.kind == lease_pb.LEASE_EVENT_HOOK_OUTPUT and not granted:
                    link.report(status_pb.EXPORTER_STATUS_BEFORE_LEASE_HOOK, "beforeLease hook running")
                elif event.kind == lease_pb.LEASE_EVENT_GRANTED:
                    granted, self.token, self.lease = True, event.token, link.leases.current
                    link.report(status_pb.EXPORTER_STATUS_LEASE_READY, "Ready for commands")
                elif event.kind == lease_pb.LEASE_EVENT_ENDED:
                    log.info("lease %s of %s ended here: %s", self.name, self.client, event.message)
                    if not granted:
                        link.report(status_pb.EXPORTER_STATUS_BEFORE_LEASE_HOOK_FAILED, event.message)
        finally:
            self.token = ""
            listen.cancel()
            await asyncio.gather(listen, return_exceptions=True)
        return granted

    async def _after(self, granted: bool) -> None:
        """Wait for the afterLease hook, release the lease at the controller, be available.

        As upstream's exporter: a hook that failed under ``onFailure: warn`` is a warning in the
        AVAILABLE message; under ``endLease`` the controller and the lease's clients see
        AFTER_LEASE_HOOK_FAILED (upstream's ``jmp shell`` exits with its message) before the
        lease is released and AVAILABLE follows."""
        link, lease = self.link, self.lease
        hooks = link.leases.hooks
        after = hooks.get(AFTER) if hooks is not None else None
        available = "Available"
        if lease is not None and after is not None:
            if link.leases.current is lease:
                link.report(status_pb.EXPORTER_STATUS_AFTER_LEASE_HOOK, "afterLease hook running")
                async for _ in link.leases.watch({}):
                    if link.leases.current is not lease:
                        break
            if lease.after_failed and after.on_failure == "warn":
                available = f"{HOOK_WARNING}afterLease hook warning: {lease.after_failed}"
            elif lease.after_failed:
                policy = after.on_failure + (", shutting down" if after.on_failure == "exit" else "")
                link.report(
                    status_pb.EXPORTER_STATUS_AFTER_LEASE_HOOK_FAILED,
                    f"afterLease hook failed (on_failure={policy}): {lease.after_failed}",
                )
                await link.status_sent()
                if self._bridges:  # its clients see the failure and hang up (LINGER at most)
                    await asyncio.wait(self._bridges, timeout=LINGER)
        if not self._ended.is_set():  # our side ended first (expiry, force-release, hook, EndSession)
            await link.release(self.name)
        self.over = True
        if link.session is self:
            link.session = None  # what its clients see now: the lease ended
        if granted or link.reported[0] != status_pb.EXPORTER_STATUS_BEFORE_LEASE_HOOK_FAILED:
            link.report(status_pb.EXPORTER_STATUS_AVAILABLE, available)

    async def _listen(self) -> None:
        """Follow ``Listen``: one router endpoint and token per client dial; re-listen when it breaks."""
        backoff = Backoff()
        while True:
            await self.link.connected.wait()
            stub = self.link.stub
            if stub is None:  # the connection went again before this task ran
                continue
            log.debug("listening for dials of lease %s", self.name)
            try:
                async for target in stub.Listen(pb.ListenRequest(lease_name=self.name)):
                    backoff.reset()
                    log.debug("dial of lease %s: router %s", self.name, target.router_endpoint)
                    bridge = asyncio.ensure_future(self._bridge(target.router_endpoint, target.router_token))
                    self._bridges.add(bridge)
                    bridge.add_done_callback(self._bridges.discard)
                reason = "the controller ended it"
            except grpc.aio.AioRpcError as exc:
                reason = why(exc)
            delay = backoff.next()
            log.warning("listen for lease %s: %s; listening again in %.1f s", self.name, reason, delay)
            await asyncio.sleep(delay)

    async def _bridge(self, endpoint: str, token: str) -> None:
        """Carry one client connection: the router stream's DATA frames to and from a fresh
        connection to the private socket."""
        try:
            async with await router_channel(endpoint, token, self.link.settings) as channel:
                call = router_pb2_grpc.RouterServiceStub(channel).Stream()
                reader, writer = await asyncio.open_unix_connection(self.socket_path)
                log.info("client of lease %s connected through the router at %s", self.name, endpoint)
                try:
                    await carry(reader, writer, call)
                finally:
                    writer.transport.abort()  # the server sees the connection go: calls in flight end
                    call.cancel()
            log.info("router stream of lease %s closed", self.name)
        except (grpc.aio.AioRpcError, OSError, ValueError, TimeoutError) as exc:
            log.warning("router stream of lease %s at %s broke: %s", self.name, endpoint, why(exc))

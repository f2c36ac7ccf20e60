"""Leases: who holds the board, who waits for it, and what only the holder may do.

A client asks through ``LeaseService.Hold`` and waits in a FIFO queue, seeing its
position. Once granted, it keeps the lease by keeping that stream open and sending a
heartbeat at least every ``heartbeat`` seconds: a holder whose process dies (the stream
breaks) or whose network vanishes (heartbeats stop) loses the lease within one period. A
lease also ends at its hard expiry (a warning event comes ``warning`` seconds before), on
release, or when the admin force-releases it. ``afterLease`` runs however it ends.

With a hub API URL, holders are JupyterHub users the hub vouches for (``identity.py``): the
holder is the name the hub gives for the request's credential, marked verified, and a
request without a valid credential is refused.

With ``required``, control (every exported method not marked read-only, byte streams,
resource transfers) needs the lease's token; watching (the report, read-only methods, the
console's output, logs, status) never does. Everything here runs on the exporter's event
loop, so the state needs no lock.

A lease an upstream controller grants (``controller.py``) waits in the same line: its client
holds through a ``Hold`` stream the exporter keeps for it, and the calls that reach the exporter
through the controller's router run under that lease's token (``ROUTED_CREDENTIAL``).
"""

from __future__ import annotations

import asyncio
import contextvars
import hmac
import logging
import secrets
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import grpc

from jumpstarter_jupyter.durations import format_duration
from jumpstarter_jupyter.exporter.hooks import AFTER, BEFORE, Hook, HookRunner
from jumpstarter_jupyter.exporter.identity import HubIdentity, IdentityRefused
from jumpstarter_jupyter.protocol.metadata import LEASE_KEY, PASSPHRASE_KEY
from jumpstarter_jupyter.protocol.v1 import lease_pb2 as pb

log = logging.getLogger("jumpstarter_jupyter.exporter.leases")

NOT_LEASED = "not leased: acquire a lease first"

# The lease token a call that came through the controller's router runs under ("" none): set for
# each such call by the private server the router streams reach (``controller.py``).
ROUTED_CREDENTIAL: contextvars.ContextVar[str] = contextvars.ContextVar("routed_credential", default="")


@dataclass(frozen=True)
class LeasePolicy:
    """The config's ``lease:`` section (and ``--lease required``, ``--admin-passphrase-file``,
    ``--hub-api-url``)."""

    required: bool = False
    max_duration: float = 8 * 3600.0
    default_duration: float = 3600.0
    heartbeat: float = 10.0
    warning: float = 60.0
    admin_passphrase: str | None = None
    hub_api_url: str | None = None  # verify holders with this JupyterHub (its REST API, ``…/hub/api``)


class LeaseRefused(Exception):
    """A control call without the lease: gRPC FAILED_PRECONDITION with this message."""

    code = grpc.StatusCode.FAILED_PRECONDITION


class Lease:
    """One granted (or starting) lease."""

    def __init__(self, request: pb.HoldRequest, duration: float, holder: str, verified: bool = False):
        self.token = secrets.token_urlsafe(24)
        self.holder, self.verified = holder, verified
        self.purpose = request.purpose
        self.one_command = request.one_command
        self.kernel_id, self.server = request.kernel_id, request.server
        self.since = time.time()
        self.expires = self.since + duration
        self.heard = time.monotonic()  # last heartbeat
        self.events: asyncio.Queue[pb.LeaseEvent] = asyncio.Queue()
        self.active = False  # True between its grant and its end: its token controls the board
        self.ended = False
        self.warned = False
        self.controls: set[asyncio.Task] = set()  # control calls and streams running under it

    def info(self) -> pb.LeaseInfo:
        return pb.LeaseInfo(
            holder=self.holder,
            purpose=self.purpose,
            since=self.since,
            expires=self.expires,
            verified=self.verified,
            kernel_id=self.kernel_id,
            server=self.server,
        )

    @property
    def held_by(self) -> str:
        """``held by alice@lab (bring-up)``."""
        return f"held by {self.holder}" + (f" ({self.purpose})" if self.purpose else "")

    def describe(self) -> str:
        return f"{self.held_by}, {format_duration(self.expires - time.time())} left"


async def _until_done(task: asyncio.Task, events: asyncio.Queue) -> AsyncIterator[pb.LeaseEvent]:
    """Events from ``events`` while ``task`` runs (and those it left behind)."""
    while not task.done() or not events.empty():
        getter = asyncio.ensure_future(events.get())
        await asyncio.wait({task, getter}, return_when=asyncio.FIRST_COMPLETED)
        if getter.done():
            yield getter.result()
        else:
            getter.cancel()


@dataclass(eq=False)
class _Waiter:
    """One ``Hold`` stream from its request to its end: in line, then (maybe) holding."""

    holder: str
    purpose: str
    since: float
    offers: bool = False  # answers an OFFERED event before the board is its
    offered: float | None = None  # when the board was offered to it (monotonic)
    heard: float = field(default_factory=time.monotonic)  # its last request (a heartbeat or an answer)
    answer: int = pb.HOLD_ANSWER_NONE
    gone: bool = False  # its stream ended or broke
    lease: Lease | None = None


class _Left(Exception):
    """A waiter left the line; the message is what its stream hears ("" when nobody listens)."""


class Leases:
    """The exporter's lease state: the current lease, the queue, and the checks for control."""

    def __init__(
        self,
        policy: LeasePolicy,
        hooks: HookRunner | None = None,
        on_exit: Callable[[int], None] | None = None,
        hook_log: Callable[[str, str], None] | None = None,
    ):
        self.policy, self.hooks, self.on_exit = policy, hooks, on_exit
        self.hook_log = hook_log or (lambda hook, line: None)
        self.identity = HubIdentity(policy.hub_api_url) if policy.hub_api_url else None
        self.current: Lease | None = None
        self.queue: list[_Waiter] = []
        self.stopping = False
        self._news = asyncio.Event()  # set (and replaced) on every change watchers should see

    # --- who may control ---------------------------------------------------------------
    def accepts(self, credential: str) -> bool:
        """True for the current lease's token or, while a hook runs, the hooks' credential."""
        lease = self.current
        if lease is not None and lease.active and hmac.compare_digest(credential, lease.token):
            return True
        return (
            self.hooks is not None
            and self.hooks.running
            and hmac.compare_digest(credential, self.hooks.credential)
        )

    def control(self, metadata: dict[str, str]) -> Lease | None:
        """The lease a control call runs under (None: leases are not required, or a hook calls).

        Raises :class:`LeaseRefused` naming the holder when the caller has no valid lease.
        """
        if not self.policy.required:
            return None
        lease = self.current
        credential = self._controlling(metadata)
        if credential is not None:
            return lease if lease is not None and hmac.compare_digest(credential, lease.token) else None
        if lease is None:
            raise LeaseRefused(NOT_LEASED)
        if lease.ended:
            raise LeaseRefused(f"{lease.held_by}: the lease is ending")
        if not lease.active:
            raise LeaseRefused(f"{lease.describe()}: its beforeLease hook is running")
        raise LeaseRefused(lease.describe())

    def _controlling(self, metadata: dict[str, str]) -> str | None:
        """The caller's credential that controls the board now (a lease token or a hook's), if any."""
        for credential in (
            metadata.get(LEASE_KEY, ""),
            metadata.get(PASSPHRASE_KEY, ""),
            ROUTED_CREDENTIAL.get(),
        ):
            if credential and self.accepts(credential):
                return credential
        return None

    # --- the queue and the holder's stream --------------------------------------------
    def _announce(self) -> None:
        """Wake every ``watch`` stream: the lease or the queue changed."""
        self._news.set()
        self._news = asyncio.Event()

    def _duration(self, asked: float) -> float:
        wanted = asked if asked > 0 else self.policy.default_duration
        return min(wanted, self.policy.max_duration)

    async def hold(
        self, requests: AsyncIterator[pb.HoldRequest], vouched: str | None = None
    ) -> AsyncIterator[pb.LeaseEvent]:
        """Serve one ``Hold`` stream: queue (and offer), grant, keep, end. ``vouched`` is a holder
        someone else authenticated (the controller, for its leases' clients)."""
        request = await anext(aiter(requests), None)
        if request is None:
            return
        try:
            holder = vouched or await self.holder(request.holder, request.hub_token)
        except IdentityRefused as refused:
            log.warning("lease refused: %s", refused)
            yield pb.LeaseEvent(
                kind=pb.LEASE_EVENT_ENDED, message=str(refused)
            )  # the client says "refused: …"
            return
        waiter = _Waiter(holder, request.purpose, time.time(), offers=request.offers)
        listener = asyncio.ensure_future(self._listen(requests, waiter))
        self.queue.append(waiter)
        self._announce()
        left = None
        try:
            async for event in self._wait_for_turn(waiter):
                yield event
            lease = waiter.lease = self.current = Lease(
                request, self._duration(request.duration), holder, self.identity is not None
            )
        except _Left as why:
            left = str(why)
        finally:
            self.queue.remove(waiter)
            self._announce()  # the others move up
        if left is not None:
            listener.cancel()
            log.info("%s left the line: %s", holder, left or "its stream ended")
            if left:
                yield pb.LeaseEvent(kind=pb.LEASE_EVENT_ENDED, message=left)
            return
        try:
            async for event in self._keep(lease):
                yield event
        finally:
            listener.cancel()
            self.end(lease, "the holder went away")

    async def holder(self, claimed: str, hub_token: str) -> str:
        """Who asks: the hub user ``hub_token`` proves when this exporter verifies identity
        (a ``claimed`` name must be that user's), else ``claimed`` as the client reported it."""
        if self.identity is None:
            return claimed or "unknown"
        user = await self.identity.verify(hub_token)
        if claimed and claimed != user.name:
            raise IdentityRefused(
                f"the request claims to be {claimed!r}, but the hub says its credential is {user.name!r}'s"
            )
        return user.name

    async def requester(self, claimed: str, hub_token: str) -> str:
        """Who asks for a hand-over: the verified hub user, or the claimed name marked unverified
        when no credential came (the lab's sidebar sends none). A refused credential raises."""
        if self.identity is not None and hub_token:
            return await self.holder(claimed, hub_token)
        name = claimed or "someone"
        return f"{name} (unverified)" if self.identity is not None else name

    async def _wait_for_turn(self, waiter: _Waiter) -> AsyncIterator[pb.LeaseEvent]:
        """QUEUED whenever the waiter's place changes and, for a waiter that answers offers,
        OFFERED at the front; returns once the board is the waiter's. Raises :class:`_Left` when
        the waiter leaves the line (its stream ended, it went silent, or it declined)."""
        shown = None
        while True:
            news = self._news
            deadline = self._leaving(waiter)
            if self.current is None and self.queue[0] is waiter:
                if not waiter.offers or waiter.answer == pb.HOLD_ANSWER_ACCEPT:
                    return
                if waiter.offered is None:
                    waiter.offered = time.monotonic()
                    self._announce()
                    yield pb.LeaseEvent(kind=pb.LEASE_EVENT_OFFERED)
                    continue
            elif (position := self.queue.index(waiter) + 1) != shown:
                shown = position
                yield pb.LeaseEvent(kind=pb.LEASE_EVENT_QUEUED, position=position)
                continue
            try:
                async with asyncio.timeout(deadline):
                    await news.wait()
            except TimeoutError:
                pass

    def _leaving(self, waiter: _Waiter) -> float | None:
        """Raise :class:`_Left` when the waiter leaves the line now; else seconds until it might
        (a heartbeat or an answer due), None when only news can change that."""
        if waiter.gone:
            raise _Left("")
        if waiter.answer == pb.HOLD_ANSWER_DECLINE:
            raise _Left("declined the offer: the next in line gets the board")
        if not waiter.offers:
            return None
        now, period = time.monotonic(), self.policy.heartbeat
        if now - waiter.heard > period:
            raise _Left(f"the waiter went silent (no heartbeat for {period:g} s)")
        due = [waiter.heard + period]
        if waiter.offered is not None and waiter.answer == pb.HOLD_ANSWER_NONE:
            if now - waiter.offered > period:
                raise _Left(f"the offer was not answered within {period:g} s")
            due.append(waiter.offered + period)
        return min(due) - now + 0.01

    async def _listen(self, requests: AsyncIterator[pb.HoldRequest], waiter: _Waiter) -> None:
        """The stream's later requests: heartbeats, and the answer to an offer. A stream that
        ends or breaks takes its waiter out of the line, or ends its lease."""
        try:
            async for request in requests:
                waiter.heard = time.monotonic()
                if waiter.lease is not None:
                    waiter.lease.heard = waiter.heard
                if request.answer != pb.HOLD_ANSWER_NONE and waiter.answer == pb.HOLD_ANSWER_NONE:
                    waiter.answer = request.answer
                    self._announce()
        except Exception as exc:  # noqa: BLE001 - a broken stream: the same as its end
            log.debug("lease stream of %s broke: %r", waiter.holder, exc)
        finally:
            waiter.gone = True
            if waiter.lease is not None:
                self.end(waiter.lease, "the holder closed its lease stream")
            else:
                self._announce()

    async def _keep(self, lease: Lease) -> AsyncIterator[pb.LeaseEvent]:
        """Events for the holder: hook output, GRANTED, EXPIRING, EXTENDED, ENDED."""
        before = None if lease.one_command or self.hooks is None else self.hooks.get(BEFORE)
        if before is not None:
            hook = asyncio.ensure_future(self._run_hook(before, lease))
            try:
                async for event in _until_done(hook, lease.events):
                    yield event
            finally:
                hook.cancel()
            if not hook.result():  # its policy ended the lease; the ENDED event went out above
                return
        lease.active = True
        self._announce()
        log.info(
            "lease granted to %s%s for %s",
            lease.holder,
            f" ({lease.purpose})" if lease.purpose else "",
            format_duration(lease.expires - lease.since),
        )
        yield pb.LeaseEvent(kind=pb.LEASE_EVENT_GRANTED, token=lease.token, lease=lease.info())
        while True:
            try:
                async with asyncio.timeout(self._next_check(lease)):
                    event = await lease.events.get()
            except TimeoutError:
                self._check(lease)
                continue
            yield event
            if event.kind == pb.LEASE_EVENT_ENDED:
                return

    def _next_check(self, lease: Lease) -> float:
        """Seconds until the next heartbeat deadline, warning or expiry."""
        now, wall = time.monotonic(), time.time()
        moments = [lease.heard + self.policy.heartbeat - now, lease.expires - wall]
        if not lease.warned:
            moments.append(lease.expires - self.policy.warning - wall)
        return max(0.0, min(moments)) + 0.01

    def _check(self, lease: Lease) -> None:
        """Expiry, the warning before it, and the heartbeat deadline."""
        wall = time.time()
        if wall >= lease.expires:
            self.end(lease, "expired")
        elif time.monotonic() - lease.heard > self.policy.heartbeat:
            self.end(lease, f"the holder went silent (no heartbeat for {self.policy.heartbeat:g} s)")
        elif not lease.warned and wall >= lease.expires - self.policy.warning:
            lease.warned = True
            lease.events.put_nowait(
                pb.LeaseEvent(
                    kind=pb.LEASE_EVENT_EXPIRING,
                    lease=lease.info(),
                    message=f"the lease expires in {format_duration(lease.expires - wall)}: extend it or finish",
                )
            )

    # --- ending -------------------------------------------------------------------------
    def end(self, lease: Lease, reason: str) -> None:
        """End ``lease`` now (idempotent): its token stops working, its control calls are
        cancelled, ``afterLease`` runs, then the next waiter gets the board."""
        if lease.ended:
            return
        lease.ended, lease.active = True, False
        self._announce()
        for task in list(lease.controls):
            task.cancel(f"the lease of {lease.holder} ended: {reason}")
        lease.events.put_nowait(pb.LeaseEvent(kind=pb.LEASE_EVENT_ENDED, message=reason))
        log.info("lease of %s ended: %s", lease.holder, reason)
        asyncio.ensure_future(self._finish(lease))

    async def _finish(self, lease: Lease) -> None:
        after = None if lease.one_command or self.hooks is None or self.stopping else self.hooks.get(AFTER)
        if after is not None:
            await self._run_hook(after, lease)
        if self.current is lease:
            self.current = None
        self._announce()

    async def _run_hook(self, hook: Hook, lease: Lease) -> bool:
        """Run a hook for ``lease``; False when it failed and its policy ends the lease."""

        def output(line: str) -> None:
            self.hook_log(hook.name, line)
            lease.events.put_nowait(
                pb.LeaseEvent(kind=pb.LEASE_EVENT_HOOK_OUTPUT, message=f"[{hook.name}] {line}")
            )

        outcome = await self.hooks.run(hook, lease.holder, output)
        if outcome.ok:
            return True
        log.warning("%s (onFailure: %s)", outcome.message, hook.on_failure)
        if hook.on_failure == "exit":
            self.end(lease, f"{outcome.message}; the exporter is shutting down")
            if self.on_exit is not None:
                self.on_exit(1)
            return False
        if hook.on_failure == "endLease" and hook.name == BEFORE:
            self.end(lease, outcome.message)
            return False
        output(f"{outcome.message} (ignored: onFailure {hook.on_failure})")
        return True

    # --- the unary calls --------------------------------------------------------------
    def _holding(self, token: str) -> Lease:
        lease = self.current
        if lease is None or lease.ended or not hmac.compare_digest(token, lease.token):
            raise LeaseRefused("this lease is not held any more" if token else NOT_LEASED)
        return lease

    def extend(self, token: str, duration: float) -> pb.LeaseInfo:
        lease = self._holding(token)
        lease.expires = time.time() + self._duration(duration)
        lease.warned = False
        lease.events.put_nowait(pb.LeaseEvent(kind=pb.LEASE_EVENT_EXTENDED, lease=lease.info()))
        self._announce()
        log.info(
            "lease of %s extended to %s from now", lease.holder, format_duration(lease.expires - time.time())
        )
        return lease.info()

    def release(self, token: str) -> str:
        lease = self._holding(token)
        self.end(lease, "released by its holder")
        return f"released the lease of {lease.holder}"

    def force_release(self, admin_passphrase: str) -> str:
        expected = self.policy.admin_passphrase
        if not expected:
            raise PermissionError(
                "force-release needs the exporter's admin credential, and none is configured "
                "(--admin-passphrase-file, or lease: admin_passphrase_file in the config)"
            )
        if not hmac.compare_digest(admin_passphrase.encode(), expected.encode()):
            raise PermissionError("wrong admin passphrase")
        lease = self.current
        if lease is None or lease.ended:
            return "nobody holds the board"
        self.end(lease, "force-released by the exporter's admin")
        return f"force-released the lease of {lease.holder}"

    def request_handover(self, requester: str, message: str) -> str:
        """Tell the holder that ``requester`` asks for the board (a notice in its panel)."""
        lease = self.current
        if lease is None or not lease.active:
            raise LeaseRefused("nobody holds the board: take the lease instead")
        words = f": {message}" if message else ""
        lease.events.put_nowait(
            pb.LeaseEvent(
                kind=pb.LEASE_EVENT_HANDOVER_REQUESTED,
                lease=lease.info(),
                message=f"{requester or 'someone'} asks for the board{words}",
            )
        )
        log.info("%s asks %s for the board", requester, lease.holder)
        return f"asked {lease.holder} to hand the board over"

    async def watch(self, metadata: dict[str, str]) -> AsyncIterator[pb.LeaseStatus]:
        """The status now, then after every change, until the caller goes away."""
        while True:
            news = self._news
            yield self.status(metadata)
            await news.wait()

    def status(self, metadata: dict[str, str]) -> pb.LeaseStatus:
        """The lease, the queue and the limits; ``caller_controls`` for a caller whose credential
        (a lease token, or a hook's) already controls the board."""
        status = pb.LeaseStatus(
            required=self.policy.required,
            heartbeat_seconds=self.policy.heartbeat,
            hub_identity=self.identity is not None,
            caller_controls=self._controlling(metadata) is not None,
            max_duration=self.policy.max_duration,
            queue=[pb.Waiter(holder=w.holder, purpose=w.purpose, since=w.since) for w in self.queue],
            offered=bool(self.queue) and self.current is None and self.queue[0].offered is not None,
        )
        if self.current is not None and not self.current.ended:
            status.lease.CopyFrom(self.current.info())
        return status

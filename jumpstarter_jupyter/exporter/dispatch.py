"""What every service does with a request: find the driver and method it names, check its
lease, and turn a driver's exception into a gRPC status.

Driver exceptions become gRPC statuses here and nowhere else (``STATUS_FOR``). The details
are upstream's texts; trailing metadata adds the exception type and driver path so our
client can raise the right exception with a precise message.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterator

import grpc

from jumpstarter_jupyter.driver.base import CALL, STREAM, STREAMING, ExportedMethod
from jumpstarter_jupyter.exporter.arguments import bind
from jumpstarter_jupyter.exporter.leases import LeaseRefused, Leases
from jumpstarter_jupyter.exporter.report import Node, Tree
from jumpstarter_jupyter.protocol.codec import decode
from jumpstarter_jupyter.protocol.metadata import EXCEPTION_KEY, PATH_KEY, UNKNOWN_DRIVER

log = logging.getLogger("jumpstarter_jupyter.exporter")

STATUS_FOR = (  # first match wins
    (NotImplementedError, grpc.StatusCode.UNIMPLEMENTED),
    (ValueError, grpc.StatusCode.INVALID_ARGUMENT),
    (TimeoutError, grpc.StatusCode.DEADLINE_EXCEEDED),
)
MARKER = {CALL: "marker_drivercall", STREAMING: "marker_streamingdrivercall", STREAM: "marker_streamcall"}


class Refused(Exception):
    """A request answered with an error status: code, details, exception type, driver path."""

    def __init__(self, code: grpc.StatusCode, details: str, exc_type: str, path: str):
        super().__init__(details)
        self.code, self.details, self.exc_type, self.path = code, details, exc_type, path

    @classmethod
    def of(cls, exc: BaseException, path: str) -> Refused:
        """The refusal for a driver's exception (``STATUS_FOR``)."""
        if isinstance(exc, Refused):
            return exc
        code = next((code for kind, code in STATUS_FOR if isinstance(exc, kind)), grpc.StatusCode.UNKNOWN)
        return cls(code, str(exc) or type(exc).__name__, type(exc).__name__, path)

    async def abort(self, context: grpc.aio.ServicerContext):
        await context.abort(self.code, self.details, ((EXCEPTION_KEY, self.exc_type), (PATH_KEY, self.path)))


class Dispatcher:
    """Finds the node and exported method a request names, or refuses the way upstream does;
    and checks that a call that controls the board runs under its lease."""

    def __init__(self, tree: Tree, leases: Leases):
        self.tree, self.leases = tree, leases

    @contextlib.contextmanager
    def controlling(self, context, node: Node, what: str, readonly: bool = False) -> Iterator[None]:
        """Run the call ``what`` under the caller's lease (nothing to check when leases are off or
        the method only observes); the lease's end cancels it. A call the exporter itself
        cancels (the lease ended, the exporter stops) is logged as such and answered with why."""
        lease = None
        if not readonly and self.leases.policy.required:
            try:
                lease = self.leases.control(dict(context.invocation_metadata()))
            except LeaseRefused as refused:
                raise Refused(refused.code, str(refused), "LeaseRequired", node.path) from None
        task = asyncio.current_task()
        if lease is not None:
            lease.controls.add(task)
        try:
            yield
        except asyncio.CancelledError as cancelled:
            reason = self._cancelled_by_exporter(cancelled)
            if reason is None:  # its caller went away, cancelled it or let its deadline pass
                raise
            log.warning("%s was cancelled by the exporter, not by its caller: %s", what, reason)
            if self.leases.stopping:  # nothing can be answered any more
                raise
            raise Refused(
                grpc.StatusCode.CANCELLED, f"cancelled by the exporter: {reason}", "Cancelled", node.path
            ) from None
        finally:
            if lease is not None:
                lease.controls.discard(task)

    def _cancelled_by_exporter(self, cancelled: asyncio.CancelledError) -> str | None:
        """Why the exporter cancelled a call itself, or None when grpc did because the caller went away.

        The exporter cancels with a message (``Task.cancel(reason)``); grpc cancels without one."""
        if cancelled.args and cancelled.args[0]:
            return str(cancelled.args[0])
        if self.leases.stopping:
            return "the exporter is stopping"
        return None

    def node(self, uuid: str) -> Node:
        node = self.tree.nodes.get(uuid)
        if node is None:
            raise Refused(
                grpc.StatusCode.UNKNOWN, f"Unexpected <class 'KeyError'>: UUID('{uuid}')", UNKNOWN_DRIVER, ""
            )
        return node

    def method(self, uuid: str, name: str, kind: str) -> tuple[Node, ExportedMethod]:
        node = self.node(uuid)
        method = type(node.driver).exports.get(name)
        if method is None:
            raise Refused(
                grpc.StatusCode.NOT_FOUND, f"method {name} not found on driver", "AttributeError", node.path
            )
        if method.kind != kind:
            raise Refused(
                grpc.StatusCode.NOT_FOUND,
                f"method {name} missing marker {MARKER[kind]}",
                f"Not{kind.capitalize()}Method",
                node.path,
            )
        return node, method

    def arguments(self, node: Node, method: ExportedMethod, args) -> list:
        try:
            return bind(method, type(node.driver).__name__, [decode(a) for a in args])
        except Exception as exc:
            raise Refused.of(exc, node.path) from None


def call_name(node: Node, method: ExportedMethod) -> str:
    """``path.method`` as logs and cancellation name a call."""
    return f"{node.path}.{method.name}" if node.path else method.name

"""Upstream's ExporterService: the report, driver calls, streaming driver calls, logs, status.

Every handler is a coroutine on the exporter's event loop: a call that waits, or a stream that
stays open, costs no thread, and grpc cancels the handler when its client goes away (see
``calls``).
"""

from __future__ import annotations

from typing import Protocol

from jumpstarter_jupyter.driver.base import CALL, STREAMING
from jumpstarter_jupyter.exporter.calls import Calls
from jumpstarter_jupyter.exporter.dispatch import Dispatcher, Refused, call_name
from jumpstarter_jupyter.exporter.leases import Leases
from jumpstarter_jupyter.exporter.logs import LogHub
from jumpstarter_jupyter.exporter.report import Tree
from jumpstarter_jupyter.protocol.codec import encode
from jumpstarter_jupyter.protocol.v1 import common_pb2, jumpstarter_pb2_grpc
from jumpstarter_jupyter.protocol.v1 import jumpstarter_pb2 as pb


class RoutedSession(Protocol):
    """What a client that came through the controller's router sees of its lease (``controller.py``)."""

    def status(self) -> tuple[int, str]:
        """The ExporterStatus (and its message) last reported to the controller."""

    def end_session(self) -> str:
        """End the lease's session (upstream's ``jmp shell`` asks so on exit)."""


class ExporterServicer(jumpstarter_pb2_grpc.ExporterServiceServicer):
    """The service on our listener (``routed`` None) or on the router streams' private socket."""

    def __init__(
        self, tree: Tree, logs: LogHub, calls: Calls, leases: Leases, routed: RoutedSession | None = None
    ):
        self.tree, self.logs, self.calls, self.dispatch = tree, logs, calls, Dispatcher(tree, leases)
        self.routed = routed

    async def GetReport(self, request, context):
        return self.tree.report

    async def DriverCall(self, request, context):
        try:
            node, method = self.dispatch.method(request.uuid, request.method, CALL)
            args = self.dispatch.arguments(node, method, request.args)
            with self.dispatch.controlling(context, node, call_name(node, method), method.readonly):
                try:
                    result = await self.calls.call(method, node.driver, args, call_name(node, method))
                    return pb.DriverCallResponse(uuid=request.uuid, result=encode(result))
                except Exception as exc:
                    raise Refused.of(exc, node.path) from None
        except Refused as refused:
            await refused.abort(context)

    async def StreamingDriverCall(self, request, context):
        try:
            node, method = self.dispatch.method(request.uuid, request.method, STREAMING)
            args = self.dispatch.arguments(node, method, request.args)
            with self.dispatch.controlling(context, node, call_name(node, method), method.readonly):
                try:
                    async for item in self.calls.items(method, node.driver, args, call_name(node, method)):
                        yield pb.StreamingDriverCallResponse(uuid=request.uuid, result=encode(item))
                except Exception as exc:
                    raise Refused.of(exc, node.path) from None
        except Refused as refused:
            await refused.abort(context)

    async def LogStream(self, request, context):
        async for message in self.logs.follow():
            yield message

    async def GetStatus(self, request, context):
        if self.routed is not None:
            status, message = self.routed.status()
            return pb.GetStatusResponse(status=status, message=message)
        return pb.GetStatusResponse(
            status=common_pb2.EXPORTER_STATUS_LEASE_READY,
            message="Ready for commands",
            status_version=1,
            previous_status=common_pb2.EXPORTER_STATUS_AVAILABLE,
        )

    async def EndSession(self, request, context):
        if self.routed is not None:
            return pb.EndSessionResponse(success=True, message=self.routed.end_session())
        # Direct connections hold no lease: ending one must not make the exporter unusable.
        return pb.EndSessionResponse(success=True, message="direct session: nothing to end")

"""Our LeaseService: hold (queue, grant, heartbeat), extend, release, status, watch,
force-release and hand-over requests, answered by the exporter's ``Leases``."""

from __future__ import annotations

import inspect
from collections.abc import Callable

import grpc

from jumpstarter_jupyter.exporter.dispatch import Refused
from jumpstarter_jupyter.exporter.leases import LeaseRefused, Leases
from jumpstarter_jupyter.protocol.v1 import lease_pb2, lease_pb2_grpc


class LeaseServicer(lease_pb2_grpc.LeaseServiceServicer):
    """Our lease service: hold (queue, grant, heartbeat), extend, release, status, force-release."""

    def __init__(self, leases: Leases):
        self.leases = leases

    async def Hold(self, request_iterator, context):
        async for event in self.leases.hold(request_iterator):
            yield event

    async def Extend(self, request, context):
        return await self._answer(context, lambda: self.leases.extend(request.token, request.duration))

    async def Release(self, request, context):
        return await self._answer(
            context, lambda: lease_pb2.ReleaseResponse(message=self.leases.release(request.token))
        )

    async def Status(self, request, context):
        return self.leases.status(dict(context.invocation_metadata()))

    async def ForceRelease(self, request, context):
        return await self._answer(
            context,
            lambda: lease_pb2.ReleaseResponse(message=self.leases.force_release(request.admin_passphrase)),
        )

    async def Watch(self, request, context):
        async for status in self.leases.watch(dict(context.invocation_metadata())):
            yield status

    async def RequestHandover(self, request, context):
        requester = await self._answer(
            context, lambda: self.leases.requester(request.requester, request.hub_token)
        )
        return await self._answer(
            context,
            lambda: lease_pb2.HandoverResponse(
                message=self.leases.request_handover(requester, request.message)
            ),
        )

    @staticmethod
    async def _answer(context, answer: Callable):
        try:
            result = answer()
            return await result if inspect.isawaitable(result) else result
        except LeaseRefused as refused:
            await Refused(refused.code, str(refused), "LeaseRequired", "").abort(context)
        except PermissionError as exc:
            await Refused(grpc.StatusCode.PERMISSION_DENIED, str(exc), "PermissionError", "").abort(context)

"""The gRPC servicers (grpc.aio): upstream's ExporterService and RouterService, plus our ConsoleService.

Driver exceptions become gRPC statuses here and nowhere else (``STATUS_FOR``). The details
are upstream's texts; trailing metadata adds the exception type and driver path so our
client can raise the right exception with a precise message. Every handler is a coroutine
on the exporter's event loop: a call that waits, or a stream that stays open, costs no
thread, and grpc cancels the handler when its client goes away (see ``calls``).
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator

import grpc

from jumpstarter_jupyter.driver.base import CALL, STREAM, STREAMING, ExportedMethod
from jumpstarter_jupyter.driver.resources import ENCODINGS
from jumpstarter_jupyter.driver.streams import ThreadedStream, is_async_stream
from jumpstarter_jupyter.drivers.serial.common import RESTARTED
from jumpstarter_jupyter.exporter.calls import Calls
from jumpstarter_jupyter.exporter.leases import LeaseRefused, Leases
from jumpstarter_jupyter.exporter.arguments import bind
from jumpstarter_jupyter.exporter.logs import LogHub
from jumpstarter_jupyter.exporter.report import Node, Tree
from jumpstarter_jupyter.protocol.codec import decode, encode
from jumpstarter_jupyter.protocol.v1 import common_pb2
from jumpstarter_jupyter.protocol.v1 import console_pb2, console_pb2_grpc, lease_pb2, lease_pb2_grpc
from jumpstarter_jupyter.protocol.v1 import jumpstarter_pb2 as pb, jumpstarter_pb2_grpc
from jumpstarter_jupyter.protocol.v1 import router_pb2, router_pb2_grpc, stream_pb2, stream_pb2_grpc

EXCEPTION_KEY = "x-jmp-exception"
PATH_KEY = "x-jmp-path"
UNKNOWN_DRIVER = "UnknownDriver"

STATUS_FOR = (  # first match wins
    (NotImplementedError, grpc.StatusCode.UNIMPLEMENTED),
    (ValueError, grpc.StatusCode.INVALID_ARGUMENT),
    (TimeoutError, grpc.StatusCode.DEADLINE_EXCEEDED),
)
MARKER = {CALL: "marker_drivercall", STREAMING: "marker_streamingdrivercall", STREAM: "marker_streamcall"}
GOAWAY = router_pb2.StreamResponse(frame_type=router_pb2.FRAME_TYPE_GOAWAY)

log = logging.getLogger("jumpstarter_jupyter.exporter")




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
            raise Refused(grpc.StatusCode.CANCELLED, f"cancelled by the exporter: {reason}", "Cancelled",
                          node.path) from None
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
            raise Refused(grpc.StatusCode.UNKNOWN, f"Unexpected <class 'KeyError'>: UUID('{uuid}')", UNKNOWN_DRIVER, "")
        return node

    def method(self, uuid: str, name: str, kind: str) -> tuple[Node, ExportedMethod]:
        node = self.node(uuid)
        method = type(node.driver).exports.get(name)
        if method is None:
            raise Refused(grpc.StatusCode.NOT_FOUND, f"method {name} not found on driver", "AttributeError", node.path)
        if method.kind != kind:
            raise Refused(grpc.StatusCode.NOT_FOUND, f"method {name} missing marker {MARKER[kind]}",
                          f"Not{kind.capitalize()}Method", node.path)
        return node, method

    def arguments(self, node: Node, method: ExportedMethod, args) -> list:
        try:
            return bind(method, type(node.driver).__name__, [decode(a) for a in args])
        except Exception as exc:
            raise Refused.of(exc, node.path) from None


def _name(node: Node, method: ExportedMethod) -> str:
    return f"{node.path}.{method.name}" if node.path else method.name


class ExporterServicer(jumpstarter_pb2_grpc.ExporterServiceServicer):
    def __init__(self, tree: Tree, logs: LogHub, calls: Calls, leases: Leases):
        self.tree, self.logs, self.calls, self.dispatch = tree, logs, calls, Dispatcher(tree, leases)

    async def GetReport(self, request, context):
        return self.tree.report

    async def DriverCall(self, request, context):
        try:
            node, method = self.dispatch.method(request.uuid, request.method, CALL)
            args = self.dispatch.arguments(node, method, request.args)
            with self.dispatch.controlling(context, node, _name(node, method), method.readonly):
                try:
                    result = await self.calls.call(method, node.driver, args, _name(node, method))
                    return pb.DriverCallResponse(uuid=request.uuid, result=encode(result))
                except Exception as exc:
                    raise Refused.of(exc, node.path) from None
        except Refused as refused:
            await refused.abort(context)

    async def StreamingDriverCall(self, request, context):
        try:
            node, method = self.dispatch.method(request.uuid, request.method, STREAMING)
            args = self.dispatch.arguments(node, method, request.args)
            with self.dispatch.controlling(context, node, _name(node, method), method.readonly):
                try:
                    async for item in self.calls.items(method, node.driver, args, _name(node, method)):
                        yield pb.StreamingDriverCallResponse(uuid=request.uuid, result=encode(item))
                except Exception as exc:
                    raise Refused.of(exc, node.path) from None
        except Refused as refused:
            await refused.abort(context)

    async def LogStream(self, request, context):
        async for message in self.logs.follow():
            yield message

    async def GetStatus(self, request, context):
        return pb.GetStatusResponse(
            status=common_pb2.EXPORTER_STATUS_LEASE_READY, message="Ready for commands",
            status_version=1, previous_status=common_pb2.EXPORTER_STATUS_AVAILABLE,
        )

    async def EndSession(self, request, context):
        # Direct connections hold no lease: ending one must not make the exporter unusable.
        return pb.EndSessionResponse(success=True, message="direct session: nothing to end")


class RouterServicer(router_pb2_grpc.RouterServiceServicer):
    """Byte streams (``kind: driver``) and resource transfers (``kind: resource``)."""

    def __init__(self, tree: Tree, calls: Calls, leases: Leases):
        self.dispatch, self.calls = Dispatcher(tree, leases), calls

    async def Stream(self, request_iterator, context):
        try:
            async for data in self.serve(_router_payloads(request_iterator), context, None):
                yield GOAWAY if data is None else router_pb2.StreamResponse(payload=data)
        except Refused as refused:
            await refused.abort(context)

    async def serve(self, incoming: AsyncIterator[bytes], context, acks: Acknowledgements | None
                    ) -> AsyncIterator[bytes | None]:
        """The stream the ``request`` metadata names: the driver's bytes, then ``None`` (GOAWAY)."""
        request = _stream_request(context)
        if request.get("kind") == "resource":
            node = self.dispatch.node(str(request.get("uuid")))
            relay = getattr(node.driver, "forward_resource", None)  # a hosted driver's resources are its process's
            readonly, responses = False, (relay(request, incoming, context) if relay
                                          else self._resource(node, request, incoming, context, acks))
            what = f"{node.path or 'root'} resource stream"
        else:
            node, method = self.dispatch.method(str(request.get("uuid")), request.get("method") or "connect", STREAM)
            readonly, responses = method.readonly, self._driver_stream(node, method, incoming, context, acks)
            what = _name(node, method)
        with self.dispatch.controlling(context, node, what, readonly):
            async for data in responses:
                yield data

    async def _driver_stream(self, node: Node, method: ExportedMethod, incoming, context,
                             acks: Acknowledgements | None) -> AsyncIterator[bytes | None]:
        try:
            stream = await self.calls.call(method, node.driver, [], _name(node, method))
        except Exception as exc:
            raise Refused.of(exc, node.path) from None
        if not is_async_stream(stream):
            stream = ThreadedStream(stream, self.calls.run)
        pump = None
        try:
            await context.send_initial_metadata(())
            pump = asyncio.ensure_future(_pump(incoming, stream.send, stream.send_eof, acks))
            while data := await stream.receive():
                yield data
            yield None
            await pump
            await _until_cancelled()
        finally:
            if pump is not None:
                pump.cancel()
            stream.close()

    async def _resource(self, node: Node, request: dict, incoming, context,
                        acks: Acknowledgements | None) -> AsyncIterator[bytes | None]:
        encoding = request.get("x_jmp_content_encoding")
        channel = node.driver.resources.register(encoding)
        accepted = encoding if encoding in ENCODINGS else ""
        pump = None
        try:
            await context.send_initial_metadata((("resource", json.dumps(channel.handle())),
                                                 ("x_jmp_accept_encoding", accepted)))
            pump = asyncio.ensure_future(_pump(incoming, channel.inbound.put_async, channel.end_of_input, acks))
            while (data := await channel.outbound.get_async()) is not None:
                yield data
            yield None
            await pump
            node.driver.resources.forget(channel)
            await _until_cancelled()
        finally:
            if pump is not None:
                pump.cancel()
            channel.abort()
            node.driver.resources.forget(channel)


class StreamServicer(stream_pb2_grpc.StreamServiceServicer):
    """Our acknowledged byte streams: RouterService's streams, plus the count of bytes the
    driver took, on every frame out and on frames of its own while the driver says nothing."""

    def __init__(self, router: RouterServicer):
        self.router = router

    async def Stream(self, request_iterator, context):
        acks = Acknowledgements(context)
        sender = asyncio.ensure_future(acks.send())
        try:
            async for data in self.router.serve(_our_payloads(request_iterator), context, acks):
                await acks.write(stream_pb2.StreamFrame(goaway=True) if data is None
                                 else stream_pb2.StreamFrame(payload=data))
        except Refused as refused:
            sender.cancel()
            await refused.abort(context)
        finally:
            sender.cancel()


class Acknowledgements:
    """How many bytes of one stream the driver has taken, or why it took no more; and the
    stream's writer, which stamps that count on every frame it sends."""

    def __init__(self, context):
        self.received, self.error = 0, ""
        self._reported = 0  # the count the client was last sent
        self._context, self._lock = context, asyncio.Lock()
        self._changed = asyncio.Event()

    def taken(self, count: int) -> None:
        self.received += count
        self._changed.set()

    def failed(self, reason: str) -> None:
        self.error = reason
        self._changed.set()

    async def write(self, frame: stream_pb2.StreamFrame) -> None:
        """Send ``frame`` with the count (the driver's bytes and the counts share one stream)."""
        async with self._lock:
            frame.received = self._reported = self.received
            await self._context.write(frame)

    async def send(self) -> None:
        """Send the count on a frame of its own when no frame of the driver's bytes carried it."""
        while True:
            await self._changed.wait()
            self._changed.clear()
            await asyncio.sleep(0)  # a frame of the driver's bytes about to go out carries it
            if self.received > self._reported or self.error:
                await self.write(stream_pb2.StreamFrame(error=self.error))
            if self.error:  # said: the driver takes no more, so the count stays
                return


def _stream_request(context) -> dict:
    raw = dict(context.invocation_metadata()).get("request")
    try:
        request = json.loads(raw) if raw else None
    except ValueError:
        request = None
    if not isinstance(request, dict) or request.get("kind") not in ("driver", "resource") or "uuid" not in request:
        raise Refused(grpc.StatusCode.UNKNOWN,
                      f"Unexpected <class 'ValidationError'>: invalid `request` metadata {raw!r}: expected JSON "
                      '{"kind": "driver"|"resource", "uuid": ..., ...}', "ValidationError", "")
    return request


async def _until_cancelled() -> None:
    """Keep a finished stream open until the client cancels it, as upstream's exporter does.

    Ending it with OK is tolerated by upstream clients, but upstream's `jmp shell` traces
    show CANCELLED for every stream, and peers compare them. Waiting costs nothing: grpc
    cancels this task when the client does.
    """
    await asyncio.get_running_loop().create_future()


async def _router_payloads(frames) -> AsyncIterator[bytes]:
    """Data of RouterService frames until GOAWAY or half-close."""
    async for frame in frames:
        if frame.frame_type == router_pb2.FRAME_TYPE_GOAWAY:
            return
        if frame.frame_type == router_pb2.FRAME_TYPE_DATA and frame.payload:
            yield frame.payload


async def _our_payloads(frames) -> AsyncIterator[bytes]:
    """Data of StreamService frames until GOAWAY or half-close."""
    async for frame in frames:
        if frame.payload:
            yield frame.payload
        if frame.goaway:
            return


async def _pump(incoming: AsyncIterator[bytes], write: Callable[[bytes], Awaitable],
                write_eof: Callable[[], Awaitable], acks: Acknowledgements | None) -> None:
    """Copy client bytes to ``write`` (counting them in ``acks``) until the client's EOF, then
    ``write_eof``. A driver that refuses bytes ends the copy: ``acks`` says why."""
    try:
        async for data in incoming:
            try:
                await write(data)
            except Exception as exc:
                if acks is not None:
                    acks.failed(f"the driver took no more bytes: {str(exc) or type(exc).__name__}")
                raise
            if acks is not None:
                acks.taken(len(data))
    except asyncio.CancelledError:
        raise
    except Exception:  # the client's side broke, or the driver's: both mean EOF here
        pass
    await write_eof()


class ConsoleServicer(console_pb2_grpc.ConsoleServiceServicer):
    """Our console streams: follow (scrollback replay plus live bytes, with dropped counts) and
    acknowledged transmit."""

    def __init__(self, tree: Tree, leases: Leases):
        self.dispatch = Dispatcher(tree, leases)

    async def Follow(self, request, context):
        try:
            node = self.dispatch.node(request.uuid)
            console = getattr(node.driver, "console", None)
            if console is None:
                raise Refused(grpc.StatusCode.NOT_FOUND, f"driver {node.path or 'root'} has no console",
                              "AttributeError", node.path)
        except Refused as refused:
            await refused.abort(context)
        epoch = self.dispatch.tree.uuid
        start = None if request.offset < 0 else request.offset
        if request.epoch and request.epoch != epoch:  # an offset of an earlier run means nothing here
            yield console_pb2.ConsoleChunk(offset=0, event=RESTARTED, epoch=epoch)
            start = None
        first = True
        async for chunk in console.follow_async(start, from_end=request.from_end, snapshot=request.snapshot):
            yield console_pb2.ConsoleChunk(offset=chunk.offset, data=chunk.data, dropped=chunk.dropped,
                                           event=chunk.event, epoch=epoch if first else "")
            first = False

    async def Transmit(self, request_iterator, context):
        try:
            async for ack in _console_transmit(self.dispatch, request_iterator, context):
                yield ack
        except Refused as refused:
            await refused.abort(context)


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
        return await self._answer(context, lambda: lease_pb2.ReleaseResponse(message=self.leases.release(request.token)))

    async def Status(self, request, context):
        return self.leases.status(dict(context.invocation_metadata()))

    async def ForceRelease(self, request, context):
        return await self._answer(context, lambda: lease_pb2.ReleaseResponse(
            message=self.leases.force_release(request.admin_passphrase)))

    async def Watch(self, request, context):
        async for status in self.leases.watch(dict(context.invocation_metadata())):
            yield status

    async def RequestHandover(self, request, context):
        requester = await self._answer(context, lambda: self.leases.requester(request.requester, request.hub_token))
        return await self._answer(context, lambda: lease_pb2.HandoverResponse(
            message=self.leases.request_handover(requester, request.message)))

    @staticmethod
    async def _answer(context, answer: Callable):
        try:
            result = answer()
            return await result if inspect.isawaitable(result) else result
        except LeaseRefused as refused:
            await Refused(refused.code, str(refused), "LeaseRequired", "").abort(context)
        except PermissionError as exc:
            await Refused(grpc.StatusCode.PERMISSION_DENIED, str(exc), "PermissionError", "").abort(context)


async def _console_transmit(dispatch: Dispatcher, requests, context) -> AsyncIterator[console_pb2.TransmitAck]:
    """Write each request's bytes to the serial port, acknowledging the total after each."""
    first = await anext(aiter(requests), None)
    if first is None:
        return
    node = dispatch.node(first.uuid)
    write = getattr(node.driver, "write", None)
    if getattr(node.driver, "console", None) is None or write is None:
        raise Refused(grpc.StatusCode.NOT_FOUND, f"driver {node.path or 'root'} has no console",
                      "AttributeError", node.path)
    # console input is control: the lease holder's
    with dispatch.controlling(context, node, f"{node.path or 'root'} console input"):
        written = 0
        await context.send_initial_metadata(())
        async for request in _with_first(first, requests):
            if request.data:
                try:
                    await asyncio.to_thread(write, request.data)  # a port write blocks at the baud rate
                except Exception as exc:
                    raise Refused.of(exc, node.path) from None
                written += len(request.data)
                yield console_pb2.TransmitAck(written=written)


async def _with_first(first, rest) -> AsyncIterator:
    yield first
    async for item in rest:
        yield item

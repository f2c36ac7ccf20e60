"""The gRPC servicers: upstream's ExporterService and RouterService, plus our ConsoleService.

Driver exceptions become gRPC statuses here and nowhere else (``STATUS_FOR``). The details
are upstream's texts; trailing metadata adds the exception type and driver path so our
client can raise the right exception with a precise message.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator

import grpc

from jumpstarter_jupyter.driver.base import CALL, STREAM, STREAMING, ExportedMethod
from jumpstarter_jupyter.driver.resources import ENCODINGS
from jumpstarter_jupyter.exporter.arguments import bind
from jumpstarter_jupyter.exporter.logs import LogHub
from jumpstarter_jupyter.exporter.report import Node, Tree
from jumpstarter_jupyter.protocol.codec import decode, encode
from jumpstarter_jupyter.protocol.v1 import common_pb2
from jumpstarter_jupyter.protocol.v1 import console_pb2, console_pb2_grpc
from jumpstarter_jupyter.protocol.v1 import jumpstarter_pb2 as pb, jumpstarter_pb2_grpc
from jumpstarter_jupyter.protocol.v1 import router_pb2, router_pb2_grpc

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


def _abort(context: grpc.ServicerContext, code: grpc.StatusCode, details: str, exc_type: str, path: str):
    context.set_trailing_metadata(((EXCEPTION_KEY, exc_type), (PATH_KEY, path)))
    context.abort(code, details)


def _abort_for(context: grpc.ServicerContext, exc: BaseException, path: str):
    code = next((code for kind, code in STATUS_FOR if isinstance(exc, kind)), grpc.StatusCode.UNKNOWN)
    _abort(context, code, str(exc) or type(exc).__name__, type(exc).__name__, path)


class Dispatcher:
    """Finds the node and exported method a request names, or aborts the way upstream does."""

    def __init__(self, tree: Tree):
        self.tree = tree

    def node(self, uuid: str, context: grpc.ServicerContext) -> Node:
        node = self.tree.nodes.get(uuid)
        if node is None:
            _abort(context, grpc.StatusCode.UNKNOWN, f"Unexpected <class 'KeyError'>: UUID('{uuid}')", UNKNOWN_DRIVER, "")
        return node

    def method(self, uuid: str, name: str, kind: str, context: grpc.ServicerContext) -> tuple[Node, ExportedMethod]:
        node = self.node(uuid, context)
        method = type(node.driver).exports.get(name)
        if method is None:
            _abort(context, grpc.StatusCode.NOT_FOUND, f"method {name} not found on driver", "AttributeError", node.path)
        if method.kind != kind:
            _abort(context, grpc.StatusCode.NOT_FOUND, f"method {name} missing marker {MARKER[kind]}",
                   f"Not{kind.capitalize()}Method", node.path)
        return node, method

    def arguments(self, node: Node, method: ExportedMethod, args) -> list:
        return bind(method, type(node.driver).__name__, [decode(a) for a in args])


class ExporterServicer(jumpstarter_pb2_grpc.ExporterServiceServicer):
    def __init__(self, tree: Tree, logs: LogHub):
        self.tree, self.logs, self.dispatch = tree, logs, Dispatcher(tree)

    def GetReport(self, request, context):
        return self.tree.report

    def DriverCall(self, request, context):
        node, method = self.dispatch.method(request.uuid, request.method, CALL, context)
        try:
            result = method.func(node.driver, *self.dispatch.arguments(node, method, request.args))
            return pb.DriverCallResponse(uuid=request.uuid, result=encode(result))
        except Exception as exc:
            _abort_for(context, exc, node.path)

    def StreamingDriverCall(self, request, context):
        node, method = self.dispatch.method(request.uuid, request.method, STREAMING, context)
        try:
            for item in method.func(node.driver, *self.dispatch.arguments(node, method, request.args)):
                yield pb.StreamingDriverCallResponse(uuid=request.uuid, result=encode(item))
        except Exception as exc:
            _abort_for(context, exc, node.path)

    def LogStream(self, request, context):
        yield from self.logs.follow(context.is_active)

    def GetStatus(self, request, context):
        return pb.GetStatusResponse(
            status=common_pb2.EXPORTER_STATUS_LEASE_READY, message="Ready for commands",
            status_version=1, previous_status=common_pb2.EXPORTER_STATUS_AVAILABLE,
        )

    def EndSession(self, request, context):
        # Direct connections hold no lease: ending one must not make the exporter unusable.
        return pb.EndSessionResponse(success=True, message="direct session: nothing to end")


class RouterServicer(router_pb2_grpc.RouterServiceServicer):
    """Byte streams (``kind: driver``) and resource transfers (``kind: resource``)."""

    def __init__(self, tree: Tree):
        self.dispatch = Dispatcher(tree)

    def Stream(self, request_iterator, context):
        request = _stream_request(context)
        if request.get("kind") == "resource":
            yield from self._resource(request, request_iterator, context)
        else:
            yield from self._driver_stream(request, request_iterator, context)

    def _driver_stream(self, request: dict, frames, context) -> Iterator[router_pb2.StreamResponse]:
        node, method = self.dispatch.method(str(request.get("uuid")), request.get("method") or "connect", STREAM, context)
        try:
            stream = method.func(node.driver)
        except Exception as exc:
            _abort_for(context, exc, node.path)
        context.add_callback(stream.close)
        context.send_initial_metadata(())
        pump = _start_pump(frames, stream.send, stream.send_eof)
        while True:
            data = stream.receive()
            if not data:
                break
            yield router_pb2.StreamResponse(payload=data)
        yield GOAWAY
        pump.join()
        _until_cancelled(context)

    def _resource(self, request: dict, frames, context) -> Iterator[router_pb2.StreamResponse]:
        node = self.dispatch.node(str(request.get("uuid")), context)
        encoding = request.get("x_jmp_content_encoding")
        channel = node.driver.resources.register(encoding)
        context.add_callback(channel.abort)
        accepted = encoding if encoding in ENCODINGS else ""
        context.send_initial_metadata((("resource", json.dumps(channel.handle())), ("x_jmp_accept_encoding", accepted)))
        pump = _start_pump(frames, channel.feed, lambda: channel.feed(None))
        try:
            for data in channel.drain():
                yield router_pb2.StreamResponse(payload=data)
            yield GOAWAY
            pump.join()
        finally:
            node.driver.resources.forget(channel)
        _until_cancelled(context)


def _stream_request(context) -> dict:
    raw = dict(context.invocation_metadata()).get("request")
    try:
        request = json.loads(raw) if raw else None
    except ValueError:
        request = None
    if not isinstance(request, dict) or request.get("kind") not in ("driver", "resource") or "uuid" not in request:
        _abort(context, grpc.StatusCode.UNKNOWN,
               f"Unexpected <class 'ValidationError'>: invalid `request` metadata {raw!r}: expected JSON "
               '{"kind": "driver"|"resource", "uuid": ..., ...}', "ValidationError", "")
    return request


def _until_cancelled(context) -> None:
    """Keep a finished stream open until the client cancels it, as upstream's exporter does.

    Ending it with OK is tolerated by upstream clients, but upstream's `jmp shell` traces
    show CANCELLED for every stream, and peers compare them.
    """
    ended = threading.Event()
    if context.add_callback(ended.set):
        ended.wait()


def _start_pump(frames, write, write_eof) -> threading.Thread:
    """Copy client frames to ``write`` until GOAWAY, half-close or cancellation."""

    def pump():
        try:
            for frame in frames:
                if frame.frame_type == router_pb2.FRAME_TYPE_GOAWAY:
                    break
                if frame.frame_type == router_pb2.FRAME_TYPE_DATA and frame.payload:
                    write(frame.payload)
        except Exception:  # cancelled, or the driver side broke: both mean EOF here
            pass
        finally:
            write_eof()

    thread = threading.Thread(target=pump, name="stream-pump", daemon=True)
    thread.start()
    return thread


class ConsoleServicer(console_pb2_grpc.ConsoleServiceServicer):
    """Our console follow stream: scrollback replay plus live bytes, with dropped counts."""

    def __init__(self, tree: Tree):
        self.dispatch = Dispatcher(tree)

    def Follow(self, request, context):
        node = self.dispatch.node(request.uuid, context)
        console = getattr(node.driver, "console", None)
        if console is None:
            _abort(context, grpc.StatusCode.NOT_FOUND, f"driver {node.path or 'root'} has no console", "AttributeError", node.path)
        start = None if request.offset < 0 else request.offset
        for chunk in console.follow(start, from_end=request.from_end, snapshot=request.snapshot, active=context.is_active):
            yield console_pb2.ConsoleChunk(offset=chunk.offset, data=chunk.data, dropped=chunk.dropped, event=chunk.event)

"""Raw ceilings: the same work with plain grpcio and plain sockets, no jumpstarter layer.

    python benchmarks/raw.py serve --socket PATH      # prints "serving tcp=H:P unix=unix:PATH sink=H:P"
    python benchmarks/raw.py serve-aio --socket PATH  # the same answers from a grpc.aio server
    python benchmarks/raw.py unary TARGET COUNT        # DriverCall round trips on a raw grpcio server
    python benchmarks/raw.py bidi TARGET TOTAL CHUNK   # echo over a raw grpcio bidi stream
    python benchmarks/raw.py socket-echo H:P TOTAL CHUNK
    python benchmarks/raw.py copy H:P FILE             # send a file to the sink, which writes it to disk
    python benchmarks/raw.py snmp H:P COUNT            # SNMP sets of outlet 1 on snmp_agent.py's agent

The gRPC server answers ``DriverCall`` with a fixed null result and echoes every
``RouterService.Stream`` frame: the wire messages of the real thing, none of its logic.
There are two: grpcio's thread-pool server and its asyncio server (``grpc.aio``, what our
exporter runs on); the faster of the two is the ceiling.
"""

from __future__ import annotations

import asyncio
import os
import queue
import shutil
import socket
import sys
import tempfile
import threading
import time
from concurrent import futures

import grpc

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from measure import MB, call_rate, echo_rate, report  # noqa: E402

from jumpstarter_jupyter.protocol.codec import encode  # noqa: E402
from jumpstarter_jupyter.protocol.v1 import jumpstarter_pb2 as pb  # noqa: E402
from jumpstarter_jupyter.protocol.v1 import jumpstarter_pb2_grpc, router_pb2, router_pb2_grpc  # noqa: E402

NULL_RESULT = pb.DriverCallResponse(uuid="00000000-0000-4000-8000-000000000000", result=encode(None))
SINK_CHUNK = 1 << 20


def _driver_call(request: pb.DriverCallRequest, context) -> pb.DriverCallResponse:
    return NULL_RESULT


def _stream(frames, context):
    for frame in frames:
        yield router_pb2.StreamResponse(payload=frame.payload)


async def _driver_call_aio(request: pb.DriverCallRequest, context) -> pb.DriverCallResponse:
    return NULL_RESULT


async def _stream_aio(frames, context):
    async for frame in frames:
        yield router_pb2.StreamResponse(payload=frame.payload)


def _handlers(driver_call, stream) -> list:
    return [
        grpc.method_handlers_generic_handler(
            "jumpstarter.v1.ExporterService",
            {
                "DriverCall": grpc.unary_unary_rpc_method_handler(
                    driver_call, pb.DriverCallRequest.FromString, pb.DriverCallResponse.SerializeToString
                )
            },
        ),
        grpc.method_handlers_generic_handler(
            "jumpstarter.v1.RouterService",
            {
                "Stream": grpc.stream_stream_rpc_method_handler(
                    stream, router_pb2.StreamRequest.FromString, router_pb2.StreamResponse.SerializeToString
                )
            },
        ),
    ]


def _grpc_server(tcp: str, unix: str) -> tuple[grpc.Server, int]:
    server = grpc.server(futures.ThreadPoolExecutor(16))
    server.add_generic_rpc_handlers(_handlers(_driver_call, _stream))
    port = server.add_insecure_port(tcp)
    server.add_insecure_port(f"unix:{unix}")
    server.start()
    return server, port


def serve_aio(unix: str) -> None:
    async def run() -> None:
        server = grpc.aio.server()
        server.add_generic_rpc_handlers(_handlers(_driver_call_aio, _stream_aio))
        port = server.add_insecure_port("127.0.0.1:0")
        server.add_insecure_port(f"unix:{unix}")
        await server.start()
        print(f"serving tcp=127.0.0.1:{port} unix=unix:{unix}", flush=True)
        await asyncio.to_thread(sys.stdin.read)  # runs until the harness closes our stdin
        await server.stop(0)

    asyncio.run(run())


def _sink(conn: socket.socket) -> None:
    """Write everything the peer sends to a temporary file, then answer one byte."""
    with conn, tempfile.TemporaryFile() as out:
        while data := conn.recv(SINK_CHUNK):
            out.write(data)
        out.flush()
        conn.sendall(b"k")


def _accept(listener: socket.socket, handle) -> None:
    while True:
        conn, _ = listener.accept()
        threading.Thread(target=handle, args=(conn,), daemon=True).start()


def serve(unix: str) -> None:
    server, port = _grpc_server("127.0.0.1:0", unix)
    sink = socket.create_server(("127.0.0.1", 0))
    threading.Thread(target=_accept, args=(sink, _sink), daemon=True).start()
    print(f"serving tcp=127.0.0.1:{port} unix=unix:{unix} sink=127.0.0.1:{sink.getsockname()[1]}", flush=True)
    sys.stdin.read()  # runs until the harness closes our stdin
    server.stop(0)


def unary(target: str, count: int) -> None:
    with grpc.insecure_channel(target) as channel:
        stub = jumpstarter_pb2_grpc.ExporterServiceStub(channel)
        request = pb.DriverCallRequest(uuid=NULL_RESULT.uuid, method="on")
        report(call_rate(lambda: stub.DriverCall(request), count))


class _BidiStream:
    """send/receive over a raw bidi call, the way a byte-stream client uses one."""

    def __init__(self, channel: grpc.Channel):
        self._outbox: queue.Queue = queue.Queue(8)
        stub = router_pb2_grpc.RouterServiceStub(channel)
        self._responses = stub.Stream(iter(self._outbox.get, None))

    def send(self, data: bytes) -> None:
        self._outbox.put(router_pb2.StreamRequest(payload=data))

    def receive(self) -> bytes:
        return next(self._responses).payload

    def close(self) -> None:
        self._outbox.put(None)
        self._responses.cancel()


def bidi(target: str, total: int, chunk: int) -> None:
    with grpc.insecure_channel(target) as channel:
        stream = _BidiStream(channel)
        try:
            report(echo_rate(stream.send, stream.receive, total, chunk))
        finally:
            stream.close()


def socket_echo(address: str, total: int, chunk: int) -> None:
    host, _, port = address.rpartition(":")
    with socket.create_connection((host, int(port))) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        report(echo_rate(sock.sendall, lambda: sock.recv(1 << 20), total, chunk))


def copy(address: str, path: str) -> None:
    host, _, port = address.rpartition(":")
    size = os.path.getsize(path)
    start = time.perf_counter()
    with socket.create_connection((host, int(port))) as sock, open(path, "rb") as source:
        shutil.copyfileobj(source, sock.makefile("wb"), SINK_CHUNK)
        sock.shutdown(socket.SHUT_WR)
        if sock.recv(1) != b"k":
            raise RuntimeError("the sink did not confirm the copy")
    report(size / (time.perf_counter() - start) / MB)


def snmp(address: str, count: int) -> None:
    """The ceiling of an outlet switch: pysnmp sets from one engine, no exporter in between."""
    from pysnmp.hlapi.v3arch.asyncio import (
        CommunityData,
        ContextData,
        Integer,
        ObjectIdentity,
        ObjectType,
        SnmpEngine,
        UdpTransportTarget,
        set_cmd,
    )

    host, _, port = address.rpartition(":")
    outlet = ObjectType(ObjectIdentity("1.3.6.1.4.1.13742.6.4.1.2.1.2.1.1"), Integer(1))

    async def run() -> float:
        engine, target = SnmpEngine(), await UdpTransportTarget.create((host, int(port)))

        async def switch() -> None:
            indication, status, _, _ = await set_cmd(
                engine, CommunityData("private"), target, ContextData(), outlet, lookupMib=False
            )
            if indication or status:
                raise RuntimeError(f"snmp set failed: {indication or status.prettyPrint()}")

        for _ in range(5):
            await switch()
        start = time.perf_counter()
        for _ in range(count):
            await switch()
        return count / (time.perf_counter() - start)

    report(asyncio.run(run()))


def main(argv: list[str]) -> None:
    command, args = argv[0], argv[1:]
    if command == "serve":
        serve(args[args.index("--socket") + 1])
    elif command == "serve-aio":
        serve_aio(args[args.index("--socket") + 1])
    elif command == "unary":
        unary(args[0], int(args[1]))
    elif command == "bidi":
        bidi(args[0], int(args[1]), int(args[2]))
    elif command == "socket-echo":
        socket_echo(args[0], int(args[1]), int(args[2]))
    elif command == "copy":
        copy(args[0], args[1])
    elif command == "snmp":
        snmp(args[0], int(args[1]))
    else:
        raise SystemExit(f"raw.py: unknown command {command!r}; see the module docstring")


if __name__ == "__main__":
    main(sys.argv[1:])

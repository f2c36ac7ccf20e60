"""A recording gRPC proxy: forwards every RPC as raw bytes and records (method, status code).

It knows no message types: a generic handler serves every method as a bidirectional
stream of opaque bytes (on the wire unary and streaming calls are framed alike), so it
records exactly what a peer asked and what the exporter behind it answered.
"""

from __future__ import annotations

import threading
from concurrent import futures
from dataclasses import dataclass

import grpc

# Hop-by-hop or transport metadata that grpc sets itself on the forwarded call.
_TRANSPORT_KEYS = {"user-agent", ":authority", "te", "content-type", "grpc-accept-encoding", "grpc-encoding"}


@dataclass
class Call:
    """One forwarded RPC; ``code`` stays None while it is still open."""

    method: str
    code: str | None = None
    details: str = ""


class RecordingProxy:
    """``RecordingProxy(target)`` listens on a free loopback port (``.address``) and forwards to ``target``."""

    def __init__(self, target: str):
        self.calls: list[Call] = []
        self._changed = threading.Condition()
        self._channel = grpc.insecure_channel(target)
        # pings are permitted as an exporter permits them, or the proxy would break idle streams
        self._server = grpc.server(
            futures.ThreadPoolExecutor(64),
            options=[
                ("grpc.http2.min_ping_interval_without_data_ms", 10_000),
                ("grpc.keepalive_permit_without_calls", 1),
                ("grpc.so_reuseport", 0),
            ],
        )
        self._server.add_generic_rpc_handlers([_Forwarder(self)])
        self.address = f"127.0.0.1:{self._server.add_insecure_port('127.0.0.1:0')}"
        self._server.start()

    def sequence(self) -> list[tuple[str, str | None]]:
        """``[("GetReport", "OK"), ...]`` in the order the calls started (short method names)."""
        with self._changed:
            return [(call.method.rpartition("/")[2], call.code) for call in self.calls]

    def wait_until_finished(self, timeout: float) -> bool:
        """Wait until every recorded call has a status; False if some are still open."""
        with self._changed:
            return self._changed.wait_for(lambda: all(c.code for c in self.calls), timeout)

    def stop(self) -> None:
        self._server.stop(grace=0).wait()
        self._channel.close()

    def _start(self, method: str) -> Call:
        call = Call(method)
        with self._changed:
            self.calls.append(call)
        return call

    def _finish(self, call: Call, code: grpc.StatusCode, details: str) -> None:
        with self._changed:
            if call.code is None:
                call.code, call.details = code.name, details or ""
                self._changed.notify_all()


class _Forwarder(grpc.GenericRpcHandler):
    def __init__(self, proxy: RecordingProxy):
        self.proxy = proxy

    def service(self, handler_call_details):
        method = handler_call_details.method
        return grpc.stream_stream_rpc_method_handler(
            lambda requests, context: self._forward(method, requests, context)
        )

    def _forward(self, method: str, requests, context: grpc.ServicerContext):
        record = self.proxy._start(method)
        metadata = [(k, v) for k, v in context.invocation_metadata() if k not in _TRANSPORT_KEYS]
        upstream = self.proxy._channel.stream_stream(method)(
            requests, metadata=metadata, timeout=_deadline(context)
        )

        def client_went_away():
            # the peer cancelled (or its connection died): cancel ours and record it as such
            self.proxy._finish(record, grpc.StatusCode.CANCELLED, "cancelled by the client")
            upstream.cancel()

        context.add_callback(client_went_away)
        try:
            # forward headers at once, even empty ones: upstream clients block on them (wire §9.1)
            context.send_initial_metadata(upstream.initial_metadata() or ())
            yield from upstream
        except grpc.RpcError:
            pass  # the status is read below
        code = upstream.code()
        self.proxy._finish(record, code, upstream.details())
        context.set_trailing_metadata(upstream.trailing_metadata() or ())
        if code != grpc.StatusCode.OK:
            context.abort(code, upstream.details() or "")


def _deadline(context: grpc.ServicerContext) -> float | None:
    """The caller's remaining time, or None when it set no deadline (grpc then reports ~2**63 s)."""
    remaining = context.time_remaining()
    return remaining if remaining < 10**9 else None
